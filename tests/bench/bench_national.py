#!/usr/bin/python3
"""A national-size city: 15,000 incubators, 600,000 tenants, about 6 million
occupancy intervals (tests/fixtures/city.py), measured through the real
daemon:

  - GET /v1/reports/monthly for last month (target < 10 s),
  - GET /v1/reports/overview,
  - POST /v1/payout-runs for last month (target < 30 s),
  - the alert sweep (the daemon's start-up sweep: the first one, which opens
    the city's alerts, and a second one in the steady state), and meanwhile
    occupancy snapshots PUT by four writers: the longest any backend (a
    write, the outbox) waited for a lock the sweep held, as PostgreSQL logs
    it (log_lock_waits; target < 100 ms), and beside it the longest write's latency less the median's,
    during the sweeps and while no sweep runs (the machine's own stalls); the batched sweep's time beside PostgreSQL's own for as many bare
    transactions, each updating as many rows as a batch has incubators, and
    beside the same sweep as one transaction (target: batched / one
    transaction < 2),
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
BENCH_TRACE=1: the daemon logs every batch of the sweep (debug) and
PostgreSQL logs statements over 100 ms.
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
from benchlib import bare_batches_s, exit_status, machine  # noqa: E402
from harness import PG_BIN, Daemon, PgCluster, _as_postgres, free_port, run_cli  # noqa: E402

SCALE = int(os.environ.get("BENCH_SCALE", "1"))
TRACE = os.environ.get("BENCH_TRACE") == "1"
CACHE = os.environ.get("BENCH_NATIONAL_DIR",
                       os.path.join(ROOT, "build", "bench-national" + (f"-{SCALE}" if SCALE > 1
                                                                       else "")))
TARGET_REPORT_S = 10.0
TARGET_PAYOUT_S = 30.0
TARGET_WAIT_MS = 100.0
TARGET_BATCHING = 2.0
TARGET_TENANT_GROWTH = 1.5
WRITERS = 4
SWEEP_PERIOD_S = int(os.environ.get("BENCH_SWEEP_PERIOD_S", "30"))
WARMUP_S = 5
QUIET_S = 15  # the writers alone, between two sweeps
DAEMON_CONFIG = ("[server]\nrequest_timeout_ms = 600000\n"
                 "[database]\nstatement_timeout_ms = 600000\npool_size = 6\n"
                 f"[log]\nlevel = {'debug' if TRACE else 'info'}\n"
                 "[schedule]\nalert_sweep_seconds = 86400\n")
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
    with pg.connect() as c:
        # PostgreSQL's own account of every lock wait over 20 ms: LockWaits.
        c.execute(f'ALTER DATABASE "{RUN_DB}" SET log_lock_waits = on')
        c.execute(f'ALTER DATABASE "{RUN_DB}" SET deadlock_timeout = \'20ms\'')
        if TRACE:
            c.execute(f'ALTER DATABASE "{RUN_DB}" SET log_min_duration_statement = 100')
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
    """Watches the daemon's log for finished sweeps, (noticed at, took s or
    None, result), and keeps its request lines. It reads only what was
    appended since it last looked, so that it costs the writers' threads
    nothing however long the log grows."""

    def __init__(self, d):
        self.d = d
        self.offset = os.path.getsize(d.log_path) if os.path.exists(d.log_path) else 0
        self.done = []
        self.puts = []  # (start, seconds) of each snapshot PUT, as the daemon timed it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        rest = b""
        while not self.stop.is_set():
            if os.path.exists(self.d.log_path):
                with open(self.d.log_path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
                self.offset += len(chunk)
                *lines, rest = (rest + chunk).split(b"\n")
                now = time.monotonic()
                for line in lines:
                    self.line(line.decode("utf-8", "replace"), now)
            time.sleep(0.02)

    def line(self, text, now):
        m = re.search(r"job alert_sweep: done (?:in (\d+) ms )?(.*)", text)
        if m:
            self.done.append((now, int(m.group(1)) / 1000.0 if m.group(1) else None,
                              m.group(2)))
            return
        m = re.match(r"(\S+)Z .*\"PUT /v1/incubators/[^/]+/occupancy\" \d+ ([\d.]+)ms", text)
        if m:
            end = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=dt.timezone.utc)
            took = float(m.group(2)) / 1000
            self.puts.append((end.timestamp() - took, took))

    def wait(self, n, timeout=1800):
        deadline = time.monotonic() + timeout
        while len(self.done) < n:
            assert time.monotonic() < deadline, "the sweep did not finish"
            time.sleep(0.05)
        return self.done[n - 1]

    def close(self):
        self.stop.set()
        self.thread.join()


class LockWaits:
    """PostgreSQL's own account of the waits for a lock (log_lock_waits, with
    deadlock_timeout 20 ms, so every wait longer than that): which backend
    waited, for which backends, how long. A backend waits for the sweep when
    the one that holds its lock is the sweep's session, which
    pg_stat_activity shows running CALL api.run_job_batches: an incubator's
    evaluation lock, or the lock that serialises the commits of
    transactions that NOTIFY (an event written). The longest such wait of
    any backend bounds a write's: a wait at commit names no statement, so
    the waits of the writes are not told apart from the outbox's."""

    def __init__(self, pg):
        self.path = os.path.join(pg.dir, "log")
        self.offset = os.path.getsize(self.path)
        self.conn = pg.connect(RUN_DB)
        self.sweepers = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for (pid,) in self.conn.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE query LIKE 'CALL api.run_job_batches%%'").fetchall():
                self.sweepers.add(pid)
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.conn.close()

    def waits(self):
        """[(wall time acquired, waiter, holders, ms)] since the start."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode("utf-8", "replace")
        holders, out = {}, []
        for line in text.splitlines():
            m = re.match(r"(\S+ \S+) UTC \[(\d+)\] (LOG|DETAIL):  (.*)", line)
            if not m:
                continue
            stamp, pid, kind, message = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            h = re.match(r"Process(?:es)? holding the lock: ([\d, ]+)\.", message)
            if kind == "DETAIL" and h and pid not in holders:
                holders[pid] = {int(x) for x in h.group(1).split(",")}
            a = re.match(r"process \d+ acquired .* after ([\d.]+) ms", message)
            if kind == "LOG" and a:
                at = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc)
                out.append((at.timestamp(), pid, holders.pop(pid, set()), float(a.group(1))))
        return out

    def longest_for(self, start, end, holders):
        """The longest wait acquired within [start, end] (wall time) for a
        lock that one of holders held: ms, or 0 with none over 20 ms."""
        return max([ms for at, _, held, ms in self.waits()
                    if start <= at <= end and held & holders] or [0.0])


def longest_wait(samples, start, end, median):
    """The longest of the samples (start, seconds) overlapping [start, end],
    less the median: (wait ms, how many overlapped)."""
    during = [s for t, s in samples if t <= end and t + s >= start]
    return ((max(during) if during else median) - median) * 1000, len(during)


def measure_sweeps(pg, d, token, sql, bodies, today, period_s):
    """Snapshot PUTs from WRITERS threads while the daemon sweeps: its
    start-up sweep, which opens the city's alerts (the PUTs of the first
    WARMUP_S seconds, while connections warm up, left out), the next one in
    the steady state, QUIET_S seconds with no sweep (what the writes wait
    with no sweep to wait for: the machine's own), and then the same sweep as
    one transaction, as the sweep was before it went in batches
    (api.alerts_evaluate over every incubator, which takes the global
    evaluation lock). Returns, per measured span, a dict: label, seconds,
    result, and the longest write overlapping it less the median write, as
    the client and as the daemon timed it, and the longest a write waited
    for a lock the sweep held, as PostgreSQL logged it."""
    sweeps = Sweeps(d)
    locks = LockWaits(pg)
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
            start = time.monotonic()
            time.sleep(QUIET_S)
            end = time.monotonic()
            assert len(sweeps.done) == 2, "a sweep ran in the quiet span: raise the period"
            out.append(("no sweep running (the writes alone)", start, end, end - start, ""))
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
        # The daemon's clock is the wall clock; the spans are monotonic.
        shift = time.time() - time.monotonic()
        served = [(t - shift, s) for t, s in sweeps.puts if t - shift > warm]
        median = statistics.median(s for _, s in samples)
        served_median = statistics.median(s for _, s in served)
        print(f"snapshot PUTs: {len(samples)}, the median {median * 1000:.1f} ms "
              f"({served_median * 1000:.1f} ms as the daemon timed it)")
        bench_pid = sql.execute("SELECT pg_backend_pid()").fetchone()[0]
        results = []
        for label, start, end, took, result in out:
            wait, n = longest_wait(samples, start, end, median)
            served_wait, _ = longest_wait(served, start, end, served_median)
            lock_ms = locks.longest_for(start + shift, end + shift + 1,
                                        {bench_pid} if "one transaction" in label
                                        else locks.sweepers)
            print(f"alert sweep, {label}: {took:.2f} s {result}; {n} snapshot PUTs overlapping "
                  f"it, the longest waited {wait:.0f} ms ({served_wait:.0f} ms as the daemon "
                  f"timed it); the longest wait for a lock the sweep held {lock_ms:.0f} ms")
            results.append({"label": label, "s": took, "result": result, "wait_ms": wait,
                            "served_wait_ms": served_wait, "lock_ms": lock_ms})
        return results
    finally:
        locks.close()
        sweeps.close()
        d.stop()


def measure_sweep_baselines(sql, first, steady):
    """Bare PostgreSQL beside each batched sweep: as many bare transactions,
    of as many rows (and, for the first, as many inserted rows)."""
    for sweep in (first, steady):
        result = json.loads(sweep["result"])
        batches = result.get("batches", 1)
        fired = result.get("fired", 0)
        incubators = 15000 // SCALE
        sweep["bare_s"] = bare_batches_s(sql, batches, incubators, 2 * fired)
        print(f"PostgreSQL's own for the sweep {sweep['label']}: {batches} bare transactions "
              f"updating {incubators} rows and inserting {2 * fired} in all, in "
              f"{sweep['bare_s']:.2f} s; the sweep / that = {sweep['s'] / sweep['bare_s']:.1f}")


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
        sweeps = None
        report_s = payout_s = before_ms = after_ms = None
        d = Daemon(workdir, pg.conninfo(RUN_DB), extra_config=DAEMON_CONFIG)
        token = run_cli(d.config_path, "token", "create", "--admin", "bench").stdout.strip()
        if "sweep" in only:
            bodies = snapshot_bodies(sql, today, 100)
            # Sweeps SWEEP_PERIOD_S apart.
            d.write_config(DAEMON_CONFIG + f"[schedule]\nalert_sweep_seconds = {SWEEP_PERIOD_S}\n")
            sweeps = measure_sweeps(pg, d, token, sql, bodies, today, SWEEP_PERIOD_S)
            d.write_config(DAEMON_CONFIG)
            open_alerts = sql.execute("SELECT count(*) FROM alerts "
                                      "WHERE state = 'firing'").fetchone()
            print(f"open alerts after the sweeps: {open_alerts[0]}")
            measure_sweep_baselines(sql, sweeps[0], sweeps[1])
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
        if sweeps is not None:
            first, steady, quiet, one = sweeps
            wait = max(first["lock_ms"], steady["lock_ms"])
            target("sweep wait", wait < TARGET_WAIT_MS,
                   f"longest wait for a lock the sweep held {wait:.0f} ms < "
                   f"{TARGET_WAIT_MS:.0f} ms (first sweep {first['lock_ms']:.0f} ms, steady "
                   f"{steady['lock_ms']:.0f} ms; as one transaction, before batching: "
                   f"{one['lock_ms']:.0f} ms. Longest PUT less the median: first "
                   f"{first['wait_ms']:.0f} ms, steady {steady['wait_ms']:.0f} ms, with no sweep "
                   f"running {quiet['wait_ms']:.0f} ms; as the daemon timed them "
                   f"{first['served_wait_ms']:.0f}, {steady['served_wait_ms']:.0f} and "
                   f"{quiet['served_wait_ms']:.0f} ms)")
            ratio = steady["s"] / one["s"]
            target("sweep batching", ratio < TARGET_BATCHING,
                   f"steady sweep in batches {steady['s']:.1f} s / as one transaction "
                   f"{one['s']:.1f} s = {ratio:.2f} < {TARGET_BATCHING:.0f} (first sweep "
                   f"{first['s']:.1f} s; / PostgreSQL's own, bare transactions of the same "
                   f"batches: first {first['s'] / first['bare_s']:.1f}, steady "
                   f"{steady['s'] / steady['bare_s']:.1f}; / one scan: first "
                   f"{first['s'] / scan:.0f}, steady {steady['s'] / scan:.0f}, one "
                   f"transaction {one['s'] / scan:.0f})")
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
    return exit_status(missed)


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
