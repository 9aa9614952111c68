#!/usr/bin/python3
"""How close does the daemon come to PostgreSQL itself on one authenticated read?

Starts a throwaway PostgreSQL cluster and the real daemon (the integration
tests' harness), registers an incubator, then measures at the same
concurrency, in alternating rounds:

- the daemon: wrk drives GET /v1/incubators/{code} with an admin token over
  loopback HTTP (after the first request the token is cached, so each request
  is one database round trip: the prepared call of api.incubator_get);
- PostgreSQL: pgbench runs that same statement, with the same kind of context
  and arguments, over the Unix socket, prepared as the daemon's is.
  (tests/bench/bench_limits.py sets the daemon beside the bare primary-key
  read instead.)

It prints the daemon's requests/s, pgbench's transactions/s, their ratio
(target >= 0.6), the daemon's p99 latency, the CPU time it spends per request,
and its peak RSS (VmHWM; target < 20 MiB). The daemon runs with its default
pool size and log level (an access-log line per request), like an installed
one.

Run it with `ctest -C bench -L bench --output-on-failure` in the build
directory, or directly with INCUBATORD_BIN set. Environment:
BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_SECONDS (10), BENCH_ROUNDS (2),
BENCH_POOL_SIZE (4, the daemon's default), BENCH_LOG_LEVEL (info, the default),
BENCH_STRICT (1: exit 1 when a target is missed; MISSED is printed either way).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import datetime
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import benchlib  # noqa: E402
from benchlib import TICKS, cpu_seconds, exit_status, machine, stat_fields, verdict  # noqa: E402
from harness import Api, Daemon, PgCluster, run_cli  # noqa: E402

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "4"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")
WARMUP_SECONDS = 3
CODE = "BENCH-001"
DB = "bench"

RATIO_TARGET = 0.6
RSS_TARGET_KIB = 20 * 1024

# The statement the daemon sends for GET /v1/incubators/{code} (daemon/apicall.c:
# the API function itself, prepared once per connection).
PGBENCH_SCRIPT = ("SELECT status, body::text, location, false "
                  "FROM api.incubator_get(:ctx::jsonb, :args::jsonb);\n")


def run_wrk(daemon, token, seconds):
    """One wrk run; returns (requests/s, p99 ms)."""
    return benchlib.run_wrk(f"http://127.0.0.1:{daemon.port}/v1/incubators/{CODE}", seconds,
                            THREADS, CONNECTIONS,
                            options=["-H", f"Authorization: Bearer {token}"])


def run_pgbench(pg, script, variables, seconds):
    """One pgbench run at the same concurrency; returns transactions/s."""
    return benchlib.run_pgbench(pg, DB, script, seconds, CONNECTIONS, THREADS, variables,
                                "prepared")[0]


class OtherWork:
    """How much CPU the rest of the machine used while a side was measured.

    The host's busy time (/proc/stat) less what this benchmark's own
    processes used: the daemon, the cluster (the postmaster, its live
    children and the ones it reaped), this script and its reaped children
    (wrk, pgbench). The machine is shared, and a ratio taken while other
    work ran says as much about that work as about the daemon."""

    def __init__(self, daemon_pid, postmaster_pid):
        self.pids = (daemon_pid, postmaster_pid)

    def _host_busy(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return (sum(v) - v[3] - v[4]) / TICKS  # all but idle and iowait

    def _ours(self):
        daemon, postmaster = self.pids
        total = cpu_seconds(daemon) + cpu_seconds(postmaster, children=True)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = stat_fields(entry)
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                total += (int(fields[11]) + int(fields[12])) / TICKS
        t = os.times()
        return total + t.user + t.system + t.children_user + t.children_system

    def start(self):
        self.busy0, self.ours0 = self._host_busy(), self._ours()

    def cores(self, seconds):
        """Cores' worth of CPU others used since start()."""
        others = (self._host_busy() - self.busy0) - (self._ours() - self.ours0)
        return max(0.0, others / seconds)


def run_queue_seconds(pid):
    """Time the process has spent runnable but waiting for a CPU (schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/%d/status" % pid)


def main():
    if benchlib.tools_missing():
        return 1

    pg = PgCluster()
    workdir = tempfile.mkdtemp(prefix="incubatord-bench-")
    daemon = None
    try:
        pg.start()
        pg.create_database(DB)
        daemon = Daemon(workdir, pg.conninfo(DB), extra_config=f"[log]\nlevel = {LOG_LEVEL}\n"
                        f"[database]\npool_size = {POOL_SIZE}")
        run_cli(daemon.config_path, "migrate")
        token = run_cli(daemon.config_path, "token", "create", "--admin",
                        "bench").stdout.strip()
        daemon.start()
        admin = Api(daemon, token)
        r = admin.post("/v1/incubators", {
            "code": CODE, "name": "哈尔滨基准孵化器", "level": "municipal",
            "kind": "comprehensive", "district": "南岗区", "opened_on": "2024-01-01",
            "disposable_area_m2": 12000, "public_service_area_m2": 1500})
        assert r.status == 201, r
        r = admin.get(f"/v1/incubators/{CODE}")
        assert r.status == 200, r

        # The same context the daemon builds for this request (req_context in http.c).
        with pg.connect(DB) as conn:
            token_id = conn.execute("SELECT id FROM tokens WHERE name = 'bench'").fetchone()[0]
        ctx = {"request_id": "0123456789abcdef", "method": "GET",
               "path": f"/v1/incubators/{CODE}",
               "today": datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat(),
               "token_id": token_id, "token_name": "bench", "admin": True, "incubator": None}
        variables = {"ctx": json.dumps(ctx, separators=(",", ":")),
                     "args": json.dumps({"code": CODE}, separators=(",", ":"))}
        script = os.path.join(workdir, "get_incubator.sql")
        with open(script, "w") as f:
            f.write(PGBENCH_SCRIPT)

        run_wrk(daemon, token, WARMUP_SECONDS)
        run_pgbench(pg, script, variables, WARMUP_SECONDS)

        rps, p99s, tps, cpu_us, waited, other_d, other_p = [], [], [], [], [], [], []
        pid = daemon.proc.pid
        with open(os.path.join(pg.data, "postmaster.pid")) as f:
            others = OtherWork(pid, int(f.readline()))
        for i in range(ROUNDS):
            cpu_before, wait_before = cpu_seconds(pid), run_queue_seconds(pid)
            others.start()
            d_rps, d_p99 = run_wrk(daemon, token, SECONDS)
            other_d.append(others.cores(SECONDS))
            busy = cpu_seconds(pid) - cpu_before
            cpu_us.append(busy * 1e6 / (d_rps * SECONDS))
            # Of the time the daemon wanted a CPU, how much it spent waiting for one.
            wait = run_queue_seconds(pid) - wait_before
            waited.append(wait / (wait + busy) if wait + busy > 0 else 0.0)
            others.start()
            p_tps = run_pgbench(pg, script, variables, SECONDS)
            other_p.append(others.cores(SECONDS))
            rps.append(d_rps)
            p99s.append(d_p99)
            tps.append(p_tps)
            print(f"round {i + 1}: daemon {d_rps:.0f} req/s (p99 {d_p99:.2f} ms, "
                  f"{cpu_us[-1]:.0f} us CPU/request, waited for a CPU {waited[-1]:.0%} "
                  f"of its runnable time; other work {other_d[-1]:.2f} cores), "
                  f"pgbench {p_tps:.0f} tps (other work {other_p[-1]:.2f} cores)")
        rss = peak_rss_kib(daemon.proc.pid)
        exit_code = daemon.stop()
        assert exit_code == 0, f"the daemon exited with {exit_code}:\n{daemon.log()}"
    finally:
        if daemon is not None:
            daemon.stop()
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    d_rps, p_tps, d_p99 = statistics.median(rps), statistics.median(tps), statistics.median(p99s)
    ratio = d_rps / p_tps
    print()
    print(f"machine:        {machine()}")
    print(f"load:           {CONNECTIONS} connections, {THREADS} threads, {SECONDS} s x "
          f"{ROUNDS} rounds each side, alternating; medians below")
    print(f"daemon:         {d_rps:.0f} requests/s  (pool_size {POOL_SIZE}, log level {LOG_LEVEL}, "
          "wrk over loopback)")
    print(f"pgbench:        {p_tps:.0f} transactions/s  (same SQL, Unix socket, prepared)")
    print(f"ratio:          {ratio:.2f}  (target >= {RATIO_TARGET}: "
          f"{verdict(ratio >= RATIO_TARGET)})")
    print(f"daemon p99:     {d_p99:.2f} ms")
    print(f"daemon CPU:     {statistics.median(cpu_us):.0f} us per request (user + system); "
          f"runnable but waiting for a CPU {statistics.median(waited):.0%} of the time")
    print(f"other work:     {statistics.median(other_d):.2f} cores during the daemon's rounds, "
          f"{statistics.median(other_p):.2f} during pgbench's (of {os.cpu_count()}; "
          f"CPU used by processes outside this benchmark)")
    print(f"daemon VmHWM:   {rss / 1024:.1f} MiB  (target < {RSS_TARGET_KIB // 1024} MiB: "
          f"{verdict(rss < RSS_TARGET_KIB)})")
    return exit_status([name for name, ok in (("ratio", ratio >= RATIO_TARGET),
                                              ("peak RSS", rss < RSS_TARGET_KIB)) if not ok])


if __name__ == "__main__":
    sys.exit(main())
