#!/usr/bin/python3
"""The daemon beside PostgreSQL's own limit for the same work, both request
paths in one run.

One throwaway cluster, one prepared city (200 incubators, 50 tenants each, a
first snapshot each: bench_ingest.prepare), one daemon started once, and in
alternating rounds at the same concurrency:

- the read: wrk drives GET /v1/incubators/{code} with an admin token over
  loopback HTTP; pgbench reads the same row by primary key,
  SELECT row_to_json(t) FROM incubators t WHERE code = $1, prepared (the best
  PostgreSQL does for one row);
- the write: wrk sends 50-tenant occupancy snapshots, PUT
  /v1/incubators/{code}/occupancy, each incubator's next day (bench_ingest's
  sequence: 10 of its 50 tenants move each time); pgbench runs the bare
  transaction of a snapshot on an equivalent table (occupancy's columns,
  constraints and indexes, without the foreign keys): close the incubator's
  open intervals, insert 50 new ones, commit.

Before each read round the database is vacuumed and checkpointed, so that
the CPU PostgreSQL spends per read (printed for both sides, with wrk's and
pgbench's own) is the read's, not the last write round's after-work.

It prints both ratios (targets: read >= 0.5, snapshot >= 0.6), the daemon's
p99 and CPU per request on each path, and its peak RSS after all of it
(VmHWM; target < 20 MiB). Beside the read it also measures, in the same
rounds, GET /healthz: the daemon's HTTP path with no database, no token and
no access line, wrk and the daemon alone; its rate set beside the primary-key
read says how much of the read ratio the HTTP side leaves (informative, no
target). A missed target prints MISSED; with BENCH_STRICT=1
it also makes the exit status 1.

Run it with `ctest -C bench -L bench --output-on-failure` in the build
directory, or directly with INCUBATORD_BIN set. Environment:
BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_SECONDS (10), BENCH_ROUNDS (2),
BENCH_POOL_SIZE (4, the daemon's default), BENCH_PIPELINE_DEPTH (0, the
daemon's default: [database] pipeline_depth), BENCH_LOG_LEVEL (info, the default),
BENCH_STRICT.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

import bench_ingest as ingest  # noqa: E402
import benchlib  # noqa: E402
from benchlib import (children_cpu_seconds, cluster_cpu_seconds, cpu_seconds,  # noqa: E402
                      exit_status, machine, peak_rss_kib, verdict)
from harness import Daemon, PgCluster, run_cli  # noqa: E402

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "4"))
PIPELINE_DEPTH = int(os.environ.get("BENCH_PIPELINE_DEPTH", "0"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")
WARMUP_SECONDS = 3
DB = "bench_limits"
CODE = ingest.code_of(0)

READ_TARGET = 0.5
SNAPSHOT_TARGET = 0.6
RSS_TARGET_KIB = 20 * 1024

PK_READ = "SELECT row_to_json(t) FROM incubators t WHERE code = :code;\n"

# The bare snapshot: incubator :i's open intervals closed on day :k, 50 opened.
# The per-client sequence is bench_ingest's, so each incubator's days rise.
BARE_SNAPSHOT = """\\set cnt (%(n)d - 1 - :client_id) / %(c)d + 1
\\set i :client_id + %(c)d * (:n %% :cnt)
\\set k :n / :cnt + 1 + :start
\\set n :n + 1
BEGIN;
UPDATE bench_bare SET valid = daterange(lower(valid), date '2000-01-01' + :k::integer)
 WHERE incubator_id = :i AND coalesce(upper(valid), 'infinity') > date '2000-01-01' + :k::integer;
INSERT INTO bench_bare (tenant_id, incubator_id, valid, area_m2)
SELECT :i * 50 + j, :i, daterange(date '2000-01-01' + :k::integer, NULL), 100 + j + (:k %% 2) * 0.5
  FROM generate_series(0, 49) j;
COMMIT;
"""


def prepare_bare(pg):
    """The equivalent table in the template, each incubator's 50 intervals open."""
    with pg.connect(ingest.TEMPLATE) as conn:
        conn.execute("CREATE TABLE bench_bare (LIKE occupancy INCLUDING ALL)")
        conn.execute("""INSERT INTO bench_bare (tenant_id, incubator_id, valid, area_m2)
                        SELECT i * 50 + j, i, daterange('2000-01-01', NULL), 100 + j
                          FROM generate_series(0, %s) i, generate_series(0, 49) j""",
                     (ingest.INCUBATORS - 1,))
        conn.execute("VACUUM ANALYZE bench_bare")


def main():
    if benchlib.tools_missing():
        return 1

    pg = PgCluster()
    workdir = tempfile.mkdtemp(prefix="incubatord-bench-limits-")
    os.chmod(workdir, 0o755)
    daemon = None
    get = {"rps": [], "p99": [], "cpu": [], "tps": [], "bare_http": [],
           "pg_cpu": [], "wrk_cpu": [], "pk_pg_cpu": [], "pk_client_cpu": []}
    put = {"rps": [], "p99": [], "cpu": [], "tps": []}
    try:
        pg.start()
        wrk_put, _ = ingest.prepare(pg, workdir)
        prepare_bare(pg)
        pg.create_database(DB, template=ingest.TEMPLATE)
        bare = os.path.join(workdir, "bare_snapshot.sql")
        with open(bare, "w") as f:
            f.write(BARE_SNAPSHOT % {"n": ingest.INCUBATORS, "c": CONNECTIONS})
        pk = os.path.join(workdir, "pk_read.sql")
        with open(pk, "w") as f:
            f.write(PK_READ)

        daemon = Daemon(workdir, pg.conninfo(DB), extra_config=f"[log]\nlevel = {LOG_LEVEL}\n"
                        f"[database]\npool_size = {POOL_SIZE}\n"
                        f"pipeline_depth = {PIPELINE_DEPTH}")
        token = run_cli(daemon.config_path, "token", "create", "--admin",
                        "bench-read").stdout.strip()
        daemon.start()
        # The alert sweep that follows start-up goes over the whole city in
        # batches: measured beside it, either side would share the machine
        # with it.
        daemon.wait_startup_jobs(timeout=600)
        pid = daemon.proc.pid
        url = f"http://127.0.0.1:{daemon.port}/v1/incubators/{CODE}"

        def read_round(seconds):
            return benchlib.run_wrk(url, seconds, THREADS, CONNECTIONS,
                                    options=["-H", f"Authorization: Bearer {token}"],
                                    context=lambda: daemon.log()[-3000:])

        def settle():
            """The last write round's after-work done before a read round
            (the alert events it raised delivered, vacuum, dirty buffers
            written), so that neither side's read is charged for it."""
            with pg.connect(DB) as conn:
                deadline = time.monotonic() + 300
                while conn.execute("SELECT count(*) FROM outbox WHERE 'pending' IN "
                                   "(syslog_state, notify_state)").fetchone()[0] > 0 \
                        and time.monotonic() < deadline:
                    time.sleep(0.2)
                conn.execute("VACUUM (ANALYZE)")
                conn.execute("CHECKPOINT")

        def health_round(seconds):
            return benchlib.run_wrk(f"http://127.0.0.1:{daemon.port}/healthz", seconds, THREADS,
                                    CONNECTIONS, context=lambda: daemon.log()[-3000:])[0]

        def write_round(start, seconds):
            return ingest.run_wrk(daemon, wrk_put, start, seconds)

        def pgbench(script, seconds, variables, mode):
            return benchlib.run_pgbench(pg, DB, script, seconds, CONNECTIONS, THREADS, variables,
                                        mode)[0]

        read_round(WARMUP_SECONDS)
        write_round(0, WARMUP_SECONDS)
        pgbench(pk, WARMUP_SECONDS, {"code": CODE}, "prepared")
        pgbench(bare, WARMUP_SECONDS, {"n": 0, "start": 0}, "extended")

        for n in range(ROUNDS):
            # Each round's days lie beyond the last round's (and the warm-up's).
            start = ingest.MAIN_START + 2000 * n
            for side in (("daemon", "pgbench") if n % 2 == 0 else ("pgbench", "daemon")):
                settle()
                if side == "daemon":
                    before = cpu_seconds(pid)
                    pg_before, wrk_before = cluster_cpu_seconds(pg), children_cpu_seconds()
                    rps, p99 = read_round(SECONDS)
                    get["cpu"].append((cpu_seconds(pid) - before) * 1e6 / (rps * SECONDS))
                    get["pg_cpu"].append((cluster_cpu_seconds(pg) - pg_before) * 1e6
                                         / (rps * SECONDS))
                    get["wrk_cpu"].append((children_cpu_seconds() - wrk_before) * 1e6
                                          / (rps * SECONDS))
                    get["rps"].append(rps)
                    get["p99"].append(p99)
                    get["bare_http"].append(health_round(SECONDS))
                    before = cpu_seconds(pid)
                    rps, p99 = write_round(start, SECONDS)
                    put["cpu"].append((cpu_seconds(pid) - before) * 1e6 / (rps * SECONDS))
                    put["rps"].append(rps)
                    put["p99"].append(p99)
                else:
                    pg_before, client_before = cluster_cpu_seconds(pg), children_cpu_seconds()
                    get["tps"].append(pgbench(pk, SECONDS, {"code": CODE}, "prepared"))
                    done = get["tps"][-1] * SECONDS
                    get["pk_pg_cpu"].append((cluster_cpu_seconds(pg) - pg_before) * 1e6 / done)
                    get["pk_client_cpu"].append((children_cpu_seconds() - client_before) * 1e6
                                                / done)
                    put["tps"].append(pgbench(bare, SECONDS, {"n": 0, "start": start},
                                              "extended"))
            print(f"round {n + 1}: GET {get['rps'][-1]:.0f} req/s beside {get['tps'][-1]:.0f} "
                  f"primary-key reads/s; PUT {put['rps'][-1]:.0f} req/s beside "
                  f"{put['tps'][-1]:.0f} bare snapshots/s")
        rss = peak_rss_kib(pid)
        assert daemon.stop() == 0, daemon.log()[-3000:]
    finally:
        if daemon is not None:
            daemon.stop()
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    med = {k: {m: statistics.median(v) for m, v in side.items()} for k, side in
           (("get", get), ("put", put))}
    read_ratio = med["get"]["rps"] / med["get"]["tps"]
    snap_ratio = med["put"]["rps"] / med["put"]["tps"]
    missed = [name for name, ok in (("read ratio", read_ratio >= READ_TARGET),
                                    ("snapshot ratio", snap_ratio >= SNAPSHOT_TARGET),
                                    ("peak RSS", rss < RSS_TARGET_KIB)) if not ok]
    print()
    print(f"machine:         {machine()}")
    print(f"load:            {CONNECTIONS} connections, {THREADS} threads, {SECONDS} s x "
          f"{ROUNDS} rounds each side, alternating; medians below; pool {POOL_SIZE}, "
          f"pipeline_depth {PIPELINE_DEPTH}")
    print(f"read:            daemon {med['get']['rps']:.0f} GET/s (p99 {med['get']['p99']:.2f} "
          f"ms, {med['get']['cpu']:.0f} us daemon CPU each); pgbench {med['get']['tps']:.0f} "
          "primary-key reads/s (prepared)")
    print(f"read ratio:      {read_ratio:.2f}  (target >= {READ_TARGET}: "
          f"{verdict(read_ratio >= READ_TARGET)})")
    g = med["get"]
    daemon_path = g["wrk_cpu"] + g["cpu"] + g["pg_cpu"]
    pk_path = g["pk_client_cpu"] + g["pk_pg_cpu"]
    print(f"CPU per read:    wrk {g['wrk_cpu']:.0f} + daemon {g['cpu']:.0f} + PostgreSQL "
          f"{g['pg_cpu']:.0f} = {daemon_path:.0f} us; pgbench {g['pk_client_cpu']:.0f} + "
          f"PostgreSQL {g['pk_pg_cpu']:.0f} = {pk_path:.0f} us: on saturated cores at most "
          f"{pk_path / daemon_path:.2f}")
    print(f"HTTP alone:      daemon {med['get']['bare_http']:.0f} GET /healthz/s (no database, "
          f"no token, no access line): {med['get']['bare_http'] / med['get']['tps']:.2f} of "
          "the primary-key read")
    print(f"snapshot:        daemon {med['put']['rps']:.0f} PUT/s (p99 {med['put']['p99']:.2f} "
          f"ms, {med['put']['cpu']:.0f} us daemon CPU each); pgbench "
          f"{med['put']['tps']:.0f} bare snapshot transactions/s")
    print(f"snapshot ratio:  {snap_ratio:.2f}  (target >= {SNAPSHOT_TARGET}: "
          f"{verdict(snap_ratio >= SNAPSHOT_TARGET)})")
    print(f"daemon VmHWM:    {rss / 1024:.1f} MiB  (target < {RSS_TARGET_KIB // 1024} MiB: "
          f"{verdict(rss < RSS_TARGET_KIB)})")
    print(f"host load:       {os.getloadavg()[0]:.1f} (1-minute load average at the end)")
    return exit_status(missed)


if __name__ == "__main__":
    sys.exit(main())
