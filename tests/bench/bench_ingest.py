#!/usr/bin/python3
"""How close does the daemon come to PostgreSQL itself on the ingest path?

Occupancy snapshots of 50 tenants each for 200 incubators, pushed at the same
concurrency through the daemon and straight into PostgreSQL:

- the daemon: wrk (Lua script) sends PUT /v1/incubators/{code}/occupancy over
  loopback HTTP, each incubator with its own token, the incubators in
  rotation. Every snapshot of an incubator is a day after its previous one and
  moves 10 of its 50 tenants to another area (two area variants, alternating),
  so each is a real change: intervals closed and opened, a snapshot row, an
  audit row; never the no-op path.
- PostgreSQL: pgbench runs the statement the daemon sends,
  SELECT ... FROM api.run('occupancy_put', ctx, args), with the same
  payloads (the args the daemon would build, read from a table with the as_of
  added), the same sequence per incubator, over the Unix socket with the
  extended protocol as the daemon's libpq does.

Each side runs on a fresh copy of one prepared database (200 incubators,
10,000 tenants, a first snapshot each), after a warm-up on that copy, in
alternating rounds (daemon, pgbench, pgbench, daemon, ...). It prints the
daemon's requests/s, pgbench's transactions/s, their ratio (target >= 0.6)
and the daemon's p99 latency (target < 20 ms); then, for scale, the p99 of
the same snapshots sent by one client at a time.

Run it with `ctest -C bench -L bench --output-on-failure` in the build
directory, or directly with INCUBATORD_BIN set. Environment:
BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_SECONDS (15), BENCH_ROUNDS (2),
BENCH_POOL_SIZE (4, the daemon's default), BENCH_LOG_LEVEL (info, the default),
BENCH_STRICT (unset; 1: exit 1 when a target is missed).
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
from benchlib import cpu_seconds, exit_status, machine, verdict  # noqa: E402
from harness import Api, Daemon, PgCluster, run_cli  # noqa: E402
from ingestlib import uscc  # noqa: E402

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "4"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "info")
WARMUP_SECONDS = 3

INCUBATORS = 200
TENANTS = 50
TEMPLATE = "bench_ingest_template"
# Day k of an incubator's sequence is 2000-01-01 + k; the main run starts at
# k = MAIN_START, beyond anything a warm-up reaches.
MAIN_START = 3000

# The one-client run after each daemon round: its days start this far after
# the main run's first day, beyond anything the main run reaches.
SINGLE_OFFSET = 1000
SINGLE_SECONDS = 5

RATIO_TARGET = 0.6
P99_TARGET_MS = 20.0

RUN_SQL = "SELECT status, body::text, location, replayed FROM api.run"

# The payload of each (incubator, variant) is read from a table and gets its
# as_of here; :i, :v and :k come from the per-client sequence below.
PGBENCH_SCRIPT = """\\set cnt (%(n)d - 1 - :client_id) / %(c)d + 1
\\set i :client_id + %(c)d * (:n %% :cnt)
\\set k :n / :cnt + 1 + :start
\\set v :k %% 2
\\set n :n + 1
SELECT r.status, r.body::text, r.location, r.replayed
  FROM bench_payloads p,
       api.run('occupancy_put', p.ctx,
               p.args || jsonb_build_object('as_of', (date '2000-01-01' + :k::integer)::text)) r
 WHERE p.incubator = :i::integer AND p.variant = :v::integer;
"""

# wrk: each thread takes the incubators i with i % threads == its id, in turn;
# each incubator's k-th snapshot is dated 2000-01-01 + start + k.
WRK_SCRIPT = """
local data = dofile("%(data)s")
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  start = tonumber(args[1])
  mine, seq, pos = {}, {}, 1
  for i = 1, #data.paths do
    if (i - 1) %% %(threads)d == tid then
      mine[#mine + 1] = i
      seq[i] = start
    end
  end
end
function request()
  local i = mine[pos]
  pos = pos %% #mine + 1
  local k = seq[i] + 1
  seq[i] = k
  local as_of = os.date("!%%Y-%%m-%%d", 946684800 + k * 86400)
  local body = '{"as_of": "' .. as_of .. data.rest[i][k %% 2 + 1]
  return wrk.format("PUT", data.paths[i], data.headers[i], body)
end
"""


def code_of(i):
    return f"BENCH-{i:03d}"


def areas(variant):
    """The 50 areas of a variant: variant 1 moves every fifth tenant by half a square metre."""
    return [f"{100 + j}.{50 if variant == 1 and j % 5 == 0 else '00'}" for j in range(TENANTS)]


def request_body_rest(variant):
    """The request body after its as_of value, as an incubator's system would send it."""
    items = ", ".join(f'{{"external_id": "T-{j:02d}", "area_m2": {a}}}'
                      for j, a in enumerate(areas(variant)))
    return f'", "public_service_area_m2": 500, "tenants": [{items}]}}'


def normalised_args(i, variant):
    """What the daemon hands to SQL for that body (validate.c: areas as "420.50")."""
    return {"code": code_of(i), "public_service_area_m2": "500.00",
            "tenants": [{"external_id": f"T-{j:02d}", "area_m2": a}
                        for j, a in enumerate(areas(variant))]}


def run_wrk(daemon, script, start, seconds, connections=CONNECTIONS, threads=THREADS):
    """One wrk run; returns (requests/s, p99 ms)."""
    return benchlib.run_wrk(f"http://127.0.0.1:{daemon.port}", seconds, threads, connections,
                            options=["-s", script], script_args=[str(start)],
                            context=lambda: daemon.log()[-3000:])


def run_pgbench(pg, db, script, start, seconds):
    """One pgbench run at the same concurrency; returns (transactions/s, processed)."""
    return benchlib.run_pgbench(pg, db, script, seconds, CONNECTIONS, THREADS,
                                {"n": 0, "start": start})


def prepare(pg, workdir):
    """The template: 200 incubators with a token each, 50 tenants each (half of them
    science/technology enterprises), a first snapshot each, the payload table."""
    pg.create_database(TEMPLATE)
    daemon = Daemon(workdir, pg.conninfo(TEMPLATE), extra_config="[log]\nlevel = notice")
    run_cli(daemon.config_path, "migrate")
    admin_token = run_cli(daemon.config_path, "token", "create", "--admin",
                          "bench").stdout.strip()
    daemon.start()
    admin = Api(daemon, admin_token)
    tokens = []
    try:
        for i in range(INCUBATORS):
            r = admin.post("/v1/incubators", {
                "code": code_of(i), "name": f"基准孵化器{i}", "level": "municipal",
                "kind": "comprehensive", "opened_on": "2000-01-01",
                "disposable_area_m2": 10000, "public_service_area_m2": 500})
            assert r.status == 201, r
            r = admin.post(f"/v1/incubators/{code_of(i)}/tokens", {"name": "erp-sync"})
            assert r.status == 201, r
            tokens.append((r.json()["id"], r.json()["token"]))
        with pg.connect(TEMPLATE) as conn:
            # Each tenant its own enterprise (credit code), as in life: one code
            # shared by all would make every snapshot a duplicate_enterprise case.
            conn.execute("""
                INSERT INTO tenants (incubator_id, external_id, name, credit_code, founded_on,
                                     admitted_on, field, tech_certified_on)
                SELECT i.id, 'T-' || lpad(j::text, 2, '0'), i.code || ' tenant ' || j,
                       (%s::text[])[(row_number() OVER ())::int], '2000-01-01', '2000-01-01',
                       'other', CASE WHEN j %% 2 = 0 THEN date '2000-01-01' END
                  FROM incubators i, generate_series(0, %s) j""",
                         ([uscc(1000 + n) for n in range(INCUBATORS * TENANTS)], TENANTS - 1))
            conn.execute("ANALYZE tenants")
        for i in range(INCUBATORS):
            r = daemon.request("PUT", f"/v1/incubators/{code_of(i)}/occupancy",
                               token=tokens[i][1],
                               body='{"as_of": "2000-01-01' + request_body_rest(0))
            assert r.status == 200, r
    finally:
        daemon.stop()

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    with pg.connect(TEMPLATE) as conn:
        conn.execute("CREATE TABLE bench_payloads (incubator integer, variant integer, "
                     "ctx jsonb, args jsonb, PRIMARY KEY (incubator, variant))")
        with conn.cursor() as cur:
            for i in range(INCUBATORS):
                # The context the daemon builds for this request (req_context in http.c).
                ctx = {"request_id": "pgbench", "method": "PUT",
                       "path": f"/v1/incubators/{code_of(i)}/occupancy", "today": today,
                       "now": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "token_id": tokens[i][0], "token_name": "erp-sync", "admin": False,
                       "incubator": code_of(i)}
                for v in (0, 1):
                    cur.execute("INSERT INTO bench_payloads VALUES (%s, %s, %s, %s)",
                                (i, v, json.dumps(ctx), json.dumps(normalised_args(i, v))))
        # The state a running daemon keeps the database in: swept, so the alerts
        # that time alone raises (every tenant here is past its incubation limit,
        # every incubator's data stale) are open before the rounds start, and
        # no round's start-up sweep has to raise 10,000 of them under load.
        sweep = {"request_id": "bench-sweep", "method": "JOB", "path": "alert_sweep",
                 "today": today, "now": ctx["now"], "token_name": "scheduler", "admin": True}
        conn.execute("SELECT api.job_alert_sweep(%s::jsonb)", (json.dumps(sweep),))
        conn.execute("VACUUM ANALYZE")

    data = os.path.join(workdir, "bench_data.lua")
    with open(data, "w") as f:
        f.write("return {\n  paths = {\n")
        for i in range(INCUBATORS):
            f.write(f'    "/v1/incubators/{code_of(i)}/occupancy",\n')
        f.write("  },\n  headers = {\n")
        for _, token in tokens:
            f.write(f'    {{["Authorization"] = "Bearer {token}", '
                    f'["Content-Type"] = "application/json"}},\n')
        f.write("  },\n  rest = {\n")
        rest = [json.dumps(request_body_rest(v)) for v in (0, 1)]
        for _ in range(INCUBATORS):
            f.write(f"    {{{rest[0]}, {rest[1]}}},\n")
        f.write("  },\n}\n")
    wrk_script = os.path.join(workdir, "bench_ingest.lua")
    with open(wrk_script, "w") as f:
        f.write(WRK_SCRIPT % {"data": data, "threads": THREADS})
    pgbench_script = os.path.join(workdir, "bench_ingest.sql")
    with open(pgbench_script, "w") as f:
        f.write(PGBENCH_SCRIPT % {"n": INCUBATORS, "c": CONNECTIONS})
    return wrk_script, pgbench_script


def daemon_round(pg, workdir, db, script):
    pg.create_database(db, template=TEMPLATE)
    d = Daemon(workdir, pg.conninfo(db), extra_config=f"[log]\nlevel = {LOG_LEVEL}\n"
               f"[database]\npool_size = {POOL_SIZE}")
    d.start()
    try:
        run_wrk(d, script, 0, WARMUP_SECONDS)
        before = cpu_seconds(d.proc.pid)
        rps, p99 = run_wrk(d, script, MAIN_START, SECONDS)
        cpu_us = (cpu_seconds(d.proc.pid) - before) * 1e6 / (rps * SECONDS)
        # The same snapshots from one client at a time (wrk's first thread's
        # incubators, on later days): a snapshot's latency without queueing.
        _, p99_alone = run_wrk(d, script, MAIN_START + SINGLE_OFFSET, SINGLE_SECONDS, 1, 1)
        assert d.stop() == 0, d.log()[-3000:]
    finally:
        d.stop()
    pg.drop_database(db)
    return rps, p99, cpu_us, p99_alone


def pgbench_round(pg, db, script):
    pg.create_database(db, template=TEMPLATE)
    _, warm = run_pgbench(pg, db, script, 0, WARMUP_SECONDS)
    tps, done = run_pgbench(pg, db, script, MAIN_START, SECONDS)
    # pgbench counts a transaction whatever api.run answered: each must have been an
    # accepted snapshot, which writes an audit row (a 409 writes none).
    with pg.connect(db) as conn:
        accepted = conn.execute("SELECT count(*) FROM audit_log "
                                "WHERE request_id = 'pgbench'").fetchone()[0]
    assert accepted == warm + done, (accepted, warm, done)
    pg.drop_database(db)
    return tps


def main():
    if benchlib.tools_missing():
        return 1

    pg = PgCluster()
    workdir = tempfile.mkdtemp(prefix="incubatord-bench-ingest-")
    os.chmod(workdir, 0o755)
    rps, p99s, cpus, tps, alone = [], [], [], [], []
    try:
        pg.start()
        wrk_script, pgbench_script = prepare(pg, workdir)
        for n in range(ROUNDS):
            # Alternate which side goes first, so drift in the machine's load evens out.
            order = ("daemon", "pgbench") if n % 2 == 0 else ("pgbench", "daemon")
            for side in order:
                if side == "daemon":
                    r, p, c, a = daemon_round(pg, workdir, f"bench_d{n}", wrk_script)
                    rps.append(r)
                    p99s.append(p)
                    cpus.append(c)
                    alone.append(a)
                else:
                    tps.append(pgbench_round(pg, f"bench_p{n}", pgbench_script))
            print(f"round {n + 1}: daemon {rps[-1]:.0f} req/s (p99 {p99s[-1]:.2f} ms, "
                  f"{cpus[-1]:.0f} us daemon CPU/request; one client: p99 "
                  f"{alone[-1]:.2f} ms), pgbench {tps[-1]:.0f} tps")
    finally:
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    d_rps, p_tps, d_p99 = statistics.median(rps), statistics.median(tps), statistics.median(p99s)
    ratio = d_rps / p_tps
    ratio_ok, p99_ok = ratio >= RATIO_TARGET, d_p99 < P99_TARGET_MS
    print()
    print(f"machine:        {machine()}")
    print(f"workload:       PUT occupancy, {INCUBATORS} incubators x {TENANTS} tenants, "
          f"each snapshot a new day moving 10 tenants")
    print(f"load:           {CONNECTIONS} connections, {THREADS} threads, {SECONDS} s x "
          f"{ROUNDS} rounds each side, alternating; medians below")
    print(f"daemon:         {d_rps:.0f} requests/s  (pool_size {POOL_SIZE}, log level "
          f"{LOG_LEVEL}, wrk over loopback)")
    print(f"pgbench:        {p_tps:.0f} transactions/s  (same SQL call, Unix socket, -M extended)")
    print(f"ratio:          {ratio:.2f}  (target >= {RATIO_TARGET}: "
          f"{verdict(ratio_ok)})")
    print(f"daemon p99:     {d_p99:.2f} ms  (target < {P99_TARGET_MS:.0f} ms: "
          f"{verdict(p99_ok)})")
    print(f"one client:     p99 {statistics.median(alone):.2f} ms  (the same snapshots, "
          f"one connection, {SINGLE_SECONDS} s after each daemon round: no queueing)")
    print(f"daemon CPU:     {statistics.median(cpus):.0f} us per request (user + system)")
    print(f"host load:      {os.getloadavg()[0]:.1f} (1-minute load average at the end)")
    return exit_status([name for name, ok in (("ratio", ratio_ok), ("daemon p99", p99_ok))
                        if not ok])


if __name__ == "__main__":
    sys.exit(main())
