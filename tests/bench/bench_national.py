#!/usr/bin/python3
"""A national-size city: 15,000 incubators, 600,000 tenants, about 6 million
occupancy intervals (tests/fixtures/city.py), measured through the real
daemon:

  - GET /v1/reports/monthly for last month (target < 10 s),
  - GET /v1/reports/overview,
  - POST /v1/payout-runs for last month (target < 30 s),
  - the alert sweep (the daemon's start-up sweep: the first one, which opens
    the city's alerts, and a second one in the steady state), and meanwhile
    occupancy snapshots PUT by four writers: the longest a write waited for
    the sweep, its latency less the median write's (target < 100 ms),
  - a tenant PUT before and after its incubator gains 5,000 tenants sharing
    one credit code with another incubator (target: after / before < 1.5).

Beside each long read, PostgreSQL's own limit for the same data: a
sequential scan of the occupancy intervals (SELECT sum(area_m2) FROM
occupancy), and the ratio. Beside each write, the same write at rest.

The city is built once and kept, loaded and analysed, in a PostgreSQL data
directory under build/bench-national/ (BENCH_NATIONAL_DIR), keyed by its
sizes (remove the directory to rebuild it): a rerun starts that cluster, copies the city
into a scratch database (CREATE DATABASE ... STRATEGY FILE_COPY) and
migrates it, so the stored city is never changed. BENCH_SCALE=10 builds and
measures a tenth of the size (a quick try; kept apart).

    INCUBATORD_BIN=build/incubatord python3 tests/bench/bench_national.py [--build-only]

BENCH_STRICT=1: exit 1 when a target is missed (else MISSED is printed).
"""

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import city as citygen  # noqa: E402
from benchlib import machine  # noqa: E402
from harness import PG_BIN, Daemon, PgCluster, _as_postgres, free_port, run_cli  # noqa: E402

SCALE = int(os.environ.get("BENCH_SCALE", "1"))
STRICT = os.environ.get("BENCH_STRICT") == "1"
CACHE = os.environ.get("BENCH_NATIONAL_DIR",
                       os.path.join(ROOT, "build", "bench-national" + (f"-{SCALE}" if SCALE > 1
                                                                       else "")))
TARGET_REPORT_S = 10.0
TARGET_PAYOUT_S = 30.0
TARGET_WAIT_MS = 100.0
TARGET_TENANT_GROWTH = 1.5
WRITERS = 4
SWEEP_PERIOD_S = int(os.environ.get("BENCH_SWEEP_PERIOD_S", "30"))
WARMUP_S = 5
DAEMON_CONFIG = ("[server]\nrequest_timeout_ms = 600000\n"
                 "[database]\nstatement_timeout_ms = 600000\npool_size = 6\n"
                 "[log]\nlevel = info\n[schedule]\nalert_sweep_seconds = 86400\n")
CITY_DB = "city"
RUN_DB = "run"

missed = []


def target(name, ok, text):
    print(f"  {text}  [{'ok' if ok else 'MISSED'}]")
    if not ok:
        missed.append(name)


def params():
    return citygen.Params(incubators=15000 // SCALE, tenants=600000 // SCALE,
                          intervals=6000000 // SCALE, years=5, snapshot_days=30, seed=20151,
                          today=None)


def cache_key(p):
    """The stored city's key: its sizes and seed. (Not the generator's source:
    a change of it elsewhere would cost a rebuild of half an hour; remove the
    directory to rebuild after a change of the generator that matters here.)"""
    return repr((p.incubators, p.tenants, p.intervals, p.years, p.snapshot_days, p.seed))


class CachedCluster(PgCluster):
    """A PgCluster in a fixed directory that outlives the run."""

    def __init__(self, directory):  # noqa: super().__init__ would initdb a temporary one
        self.dir = directory
        self.data = os.path.join(directory, "data")
        self.port = free_port()
        self.host = directory
        self.user = "postgres"

    def initdb(self):
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        super().initdb("shared_buffers = '1GB'\nmaintenance_work_mem = '1GB'\n"
                       "max_wal_size = '8GB'\ncheckpoint_timeout = '30min'\n")

    def start(self):
        # A run that was interrupted may have left its server running.
        subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_as_postgres())
        # The port is chosen afresh each run: set it on the command line.
        subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w",
                        "-l", os.path.join(self.dir, "log"), "-o", f"-p {self.port}", "start"],
                       check=True, stdout=subprocess.DEVNULL, **_as_postgres())


def migrate(pg, db):
    cfg = os.path.join(pg.dir, f"migrate-{db}.conf")
    with open(cfg, "w") as f:
        f.write(f"[database]\nconninfo = {pg.conninfo(db)}\n[log]\nsyslog = false\n")
    run_cli(cfg, "migrate", timeout=1800)


def build_city(pg, p):
    """Generates and loads the city into CITY_DB; returns its stats and today."""
    pg.create_database(CITY_DB)
    migrate(pg, CITY_DB)
    t0 = time.monotonic()
    city = citygen.generate(p)
    t1 = time.monotonic()
    with pg.connect(CITY_DB) as conn:
        citygen.load(conn, city)
        conn.execute("VACUUM ANALYZE")
    t2 = time.monotonic()
    s = city.stats()
    print(f"city built: {s} (today {city.today}); generated in {t1 - t0:.0f} s, "
          f"loaded with COPY and analysed in {t2 - t1:.0f} s")
    return {"stats": s, "today": str(city.today), "generate_s": round(t1 - t0),
            "load_s": round(t2 - t1)}


def cluster():
    """The cached cluster, started, with the city; rebuilt when its key changed."""
    p = params()
    key = cache_key(p)
    meta_path = os.path.join(CACHE, "city.json")
    meta = None
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("key") != key:
            print(f"the cached city in {CACHE} is of another generator or size: rebuilding")
            subprocess.run(["rm", "-rf", CACHE], check=True)
            meta = None
    pg = CachedCluster(CACHE)
    if meta is None:
        subprocess.run(["rm", "-rf", CACHE], check=True)
        pg.initdb()
        pg.start()
        meta = build_city(pg, p)
        meta["key"] = key
        with open(meta_path, "w") as f:
            json.dump(meta, f)
    else:
        pg.start()
        print(f"the cached city: {meta['stats']} (today {meta['today']}, built in "
              f"{meta['generate_s']} + {meta['load_s']} s)")
    return pg, meta


def fresh_run_db(pg):
    pg.drop_database(RUN_DB)
    t = time.monotonic()
    with pg.connect() as c:
        c.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{CITY_DB}" STRATEGY FILE_COPY')
    migrate(pg, RUN_DB)
    print(f"scratch copy of the city made and migrated in {time.monotonic() - t:.0f} s")


def seconds(call):
    t = time.perf_counter()
    out = call()
    return time.perf_counter() - t, out


def request(d, token, method, path, body=None, timeout=600):
    r = d.request(method, path, token=token, json_body=body, timeout=timeout)
    return r


def scan_s(sql):
    """PostgreSQL's own limit for a pass over the intervals: one sequential scan."""
    sql.execute("SELECT sum(area_m2) FROM occupancy").fetchone()
    took, _ = seconds(lambda: sql.execute("SELECT sum(area_m2) FROM occupancy").fetchone())
    return took


def snapshot_bodies(sql, today, n):
    """n snapshot PUTs the city accepts: each incubator's latest list as of today,
    less the tenants that left, with its public service area."""
    rows = sql.execute("""
        SELECT i.code, s.public_service_area_m2,
               coalesce((SELECT json_agg(json_build_object('external_id', e->>'external_id',
                                                           'area_m2', (e->>'area_m2')::numeric))
                           FROM jsonb_array_elements(s.tenants) e
                           JOIN tenants t ON t.incubator_id = i.id
                                         AND t.external_id = e->>'external_id'
                          WHERE t.exited_on IS NULL OR t.exited_on > %s), '[]')
          FROM incubators i
          JOIN LATERAL (SELECT * FROM snapshots s WHERE s.incubator_id = i.id
                         ORDER BY as_of DESC LIMIT 1) s ON true
         WHERE i.id %% 97 = 1
         ORDER BY i.id LIMIT %s""", (today, n)).fetchall()
    return [(code, float(ps), tenants) for code, ps, tenants in rows]


class Writers:
    """WRITERS threads PUTting snapshots round robin; latencies with their start times."""

    def __init__(self, d, token, bodies, today):
        self.d, self.token, self.bodies, self.today = d, token, bodies, today
        self.samples = []  # (start monotonic, seconds, status)
        self.errors = []   # the first few refusals' bodies
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(WRITERS)]

    def run(self, k):
        i = k
        while not self.stop.is_set():
            code, ps, tenants = self.bodies[i % len(self.bodies)]
            flip = (i // len(self.bodies)) % 2
            body = {"as_of": str(self.today), "public_service_area_m2": round(ps - flip, 2),
                    "tenants": tenants}
            t = time.monotonic()
            r = request(self.d, self.token, "PUT", f"/v1/incubators/{code}/occupancy", body)
            self.samples.append((t, time.monotonic() - t, r.status))
            if r.status != 200 and len(self.errors) < 3:
                self.errors.append(r.text[:300])
            i += WRITERS

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


class Sweeps:
    """Watches the daemon's log for finished sweeps: (noticed at, took s or None, result)."""

    def __init__(self, d):
        self.d = d
        self.after = os.path.getsize(d.log_path) if os.path.exists(d.log_path) else 0
        self.done = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        seen = 0
        while not self.stop.is_set():
            log = self.d.log() if os.path.exists(self.d.log_path) else ""
            lines = re.findall(r"job alert_sweep: done (?:in (\d+) ms )?(.*)", log[self.after:])
            now = time.monotonic()
            for took, result in lines[seen:]:
                self.done.append((now, int(took) / 1000.0 if took else None, result))
            seen = len(lines)
            time.sleep(0.02)

    def wait(self, n, timeout=1800):
        deadline = time.monotonic() + timeout
        while len(self.done) < n:
            assert time.monotonic() < deadline, "the sweep did not finish"
            time.sleep(0.05)
        return self.done[n - 1]

    def close(self):
        self.stop.set()
        self.thread.join()


def measure_sweeps(d, token, sql, bodies, today, period_s):
    """Snapshot PUTs from WRITERS threads while the daemon sweeps: its
    start-up sweep, which opens the city's alerts (the PUTs of the first
    WARMUP_S seconds, while connections warm up, left out), the next one in
    the steady state, and then the same sweep as one transaction, as the
    sweep was before it went in batches (api.alerts_evaluate over every
    incubator, which takes the global evaluation lock). Returns, per sweep,
    (seconds, longest write overlapping it less the median write)."""
    sweeps = Sweeps(d)
    d.start(timeout=60)
    out = []
    try:
        with Writers(d, token, bodies, today) as w:
            warm = time.monotonic() + WARMUP_S
            for n, label in ((1, "opening the city's alerts"), (2, "steady state")):
                done_at, took, result = sweeps.wait(n)
                if took is None:  # a daemon that does not log the sweep's duration
                    took = done_at - (sweeps.done[n - 2][0] + period_s if n > 1 else warm)
                out.append((label, done_at - took, done_at, took, result))
            time.sleep(2)
            ctx = json.dumps({"request_id": "bench", "method": "JOB", "path": "alert_sweep",
                              "today": str(today), "token_name": "bench", "admin": True,
                              "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            start = time.monotonic()
            result = sql.execute("SELECT api.alerts_evaluate(%s::jsonb, NULL, true)::text",
                                 (ctx,)).fetchone()[0]
            end = time.monotonic()
            out.append(("as one transaction (before batching)", start, end, end - start, result))
            time.sleep(2)
        samples = [(t, s) for t, s, st in w.samples if t > warm]
        bad = [st for _, _, st in w.samples if st != 200] + w.errors
        assert not bad, f"snapshot PUTs failed: {bad[:10]}"
        median = statistics.median(s for _, s in samples)
        results = []
        for label, start, end, took, result in out:
            during = [s for t, s in samples if t <= end and t + s >= start]
            longest = max(during) if during else 0.0
            print(f"alert sweep, {label}: {took:.2f} s ({result}); {len(during)} snapshot PUTs "
                  f"overlapping it, the longest {longest * 1000:.0f} ms; the median PUT "
                  f"{median * 1000:.1f} ms ({len(samples)} PUTs)")
            results.append((took, (longest - median) * 1000))
        return results
    finally:
        sweeps.close()
        d.stop()


def tenant_body(code, name):
    return {"name": name, "credit_code": code, "founded_on": "2024-01-02",
            "admitted_on": "2024-03-01", "field": "other", "tech_certified_on": "2024-03-01"}


def tenant_put_ms(d, token, inc, n, code_for):
    times = []
    for k in range(n):
        ext = f"BENCH-{k:04d}"
        body = tenant_body(code_for(k), f"基准企业{k}号{time.monotonic_ns() % 1000}")
        t = time.perf_counter()
        r = request(d, token, "PUT", f"/v1/incubators/{inc}/tenants/{ext}", body)
        times.append(time.perf_counter() - t)
        assert r.status in (200, 201), r
    return statistics.median(times) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-only", action="store_true", help="build the cached city and stop")
    ap.add_argument("--only", default="sweep,reads,tenant",
                    help="what to measure, of sweep,reads,tenant (default: all)")
    a = ap.parse_args()
    only = set(a.only.split(","))
    print(f"national-size benchmark, 1/{SCALE} scale; {machine()}")
    pg, meta = cluster()
    try:
        if a.build_only:
            return 0
        fresh_run_db(pg)
        today = citygen.bureau_today()
        period = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        workdir = os.path.join(CACHE, "work")
        os.makedirs(workdir, exist_ok=True)
        sql = pg.connect(RUN_DB)
        sizes = sql.execute("SELECT (SELECT count(*) FROM incubators), "
                            "(SELECT count(*) FROM tenants), (SELECT count(*) FROM occupancy), "
                            "pg_size_pretty(pg_database_size(current_database()))").fetchone()
        print(f"database: {sizes[0]} incubators, {sizes[1]} tenants, {sizes[2]} occupancy "
              f"intervals, {sizes[3]}")
        scan = scan_s(sql)
        print(f"PostgreSQL's own limit: one sequential scan of the intervals {scan:.2f} s")

        # The sweeps first, on the city as loaded (no alerts yet), with writers going.
        first_s = second_s = first_wait = second_wait = one_s = one_wait = None
        report_s = payout_s = before_ms = after_ms = None
        d = Daemon(workdir, pg.conninfo(RUN_DB), extra_config=DAEMON_CONFIG)
        token = run_cli(d.config_path, "token", "create", "--admin", "bench").stdout.strip()
        if "sweep" in only:
            bodies = snapshot_bodies(sql, today, 100)
            # Sweeps SWEEP_PERIOD_S apart.
            d.write_config(DAEMON_CONFIG + f"[schedule]\nalert_sweep_seconds = {SWEEP_PERIOD_S}\n")
            (first_s, first_wait), (second_s, second_wait), (one_s, one_wait) = \
                measure_sweeps(d, token, sql, bodies, today, SWEEP_PERIOD_S)
            d.write_config(DAEMON_CONFIG)
            open_alerts = sql.execute("SELECT count(*) FROM alerts "
                                      "WHERE state = 'firing'").fetchone()
            print(f"open alerts after the sweeps: {open_alerts[0]}")
        if only & {"reads", "tenant"}:
            d.start(timeout=60)
            d.wait_startup_jobs(timeout=900)
        if "reads" in only:
            report_s, payout_s = measure_reads(d, token, period, scan)
        if "tenant" in only:
            before_ms, after_ms = measure_tenant_put(d, token, sql)
        d.stop()

        print()
        print("targets:")
        if report_s is not None:
            target("report", report_s < TARGET_REPORT_S,
                   f"monthly report {report_s:.2f} s < {TARGET_REPORT_S:.0f} s")
            target("payout", payout_s < TARGET_PAYOUT_S,
                   f"payout run {payout_s:.2f} s < {TARGET_PAYOUT_S:.0f} s")
        if first_s is not None:
            wait = max(first_wait, second_wait)
            target("sweep wait", wait < TARGET_WAIT_MS,
                   f"longest snapshot wait during the sweeps {wait:.0f} ms < "
                   f"{TARGET_WAIT_MS:.0f} ms (sweeps {first_s:.1f} s, {second_s:.1f} s; as one "
                   f"transaction, before batching: {one_s:.1f} s, longest wait "
                   f"{one_wait:.0f} ms)")
        if before_ms is not None:
            target("tenant PUT", after_ms / before_ms < TARGET_TENANT_GROWTH,
                   f"tenant PUT {before_ms:.1f} ms, with 5,000 more tenants sharing a credit "
                   f"code {after_ms:.1f} ms: after / before = {after_ms / before_ms:.2f} "
                   f"< {TARGET_TENANT_GROWTH}")
    finally:
        try:
            pg.drop_database(RUN_DB)
        except Exception:
            pass
        pg.stop()
    if missed:
        print("MISSED: " + ", ".join(missed))
        return 1 if STRICT else 0
    return 0


def measure_reads(d, token, period, scan):
    """The monthly report, the overview and the payout run, through the daemon."""
    report_s, r = seconds(lambda: request(d, token, "GET",
                                          f"/v1/reports/monthly?period={period}"))
    assert r.status == 200, r
    print(f"monthly report {period}: {report_s:.2f} s ({len(r.body) / 1e6:.1f} MB, "
          f"{len(r.json()['items'])} incubators); / one scan = {report_s / scan:.1f}")
    overview_s, r = seconds(lambda: request(d, token, "GET", "/v1/reports/overview"))
    print(f"overview: {overview_s:.2f} s (status {r.status}); / one scan = "
          f"{overview_s / scan:.1f}")
    payout_s, r = seconds(lambda: request(d, token, "POST", "/v1/payout-runs",
                                          {"period": period}))
    assert r.status in (200, 201), r
    print(f"payout run {period}: {payout_s:.2f} s (status {r.status}, total "
          f"{r.json().get('total_fen')} fen); / one scan = {payout_s / scan:.1f}")

    return report_s, payout_s


def measure_tenant_put(d, token, sql):
    """A tenant PUT, then again once its incubator holds 5,000 more tenants
    sharing one credit code with a tenant incubating elsewhere."""
    inc, other_code = sql.execute(
        "SELECT i.code, t.credit_code FROM incubators i, tenants t "
        "WHERE t.status = 'incubating' AND t.incubator_id <> i.id AND i.id % 89 = 7 "
        "ORDER BY i.id, t.id LIMIT 1").fetchone()
    uscc = [row[0] for row in sql.execute(
        "SELECT credit_code FROM tenants ORDER BY id DESC LIMIT 200")]
    before_ms = tenant_put_ms(d, token, inc, 40, lambda k: uscc[k])
    sql.execute("""
        INSERT INTO tenants (incubator_id, external_id, name, credit_code, founded_on,
                             admitted_on, field)
        SELECT i.id, 'DUP-' || g, '同码企业' || g, %s, '2024-01-02', '2024-03-01', 'other'
          FROM incubators i, generate_series(1, 5000) g WHERE i.code = %s""",
                (other_code, inc))
    sql.execute("ANALYZE tenants")
    after_ms = tenant_put_ms(d, token, inc, 40, lambda k: uscc[k + 100])
    return before_ms, after_ms


if __name__ == "__main__":
    sys.exit(main())
