"""Reads pipelined on one database connection (libpq's pipeline mode,
[database] pipeline_depth): with a pool of one connection and many clients at once, every GET still gets its
own answer (found, not found, refused), writes keep their connection to
themselves and stay correct, and a connection lost with reads in its
pipeline fails those reads with 503, after which the pool recovers."""

import threading

from conftest import start_daemon, stop_and_check
from harness import Api, assert_problem, create_incubator, wait_for

CODES = [f"HRB-{n:03d}" for n in range(1, 13)]
POOL_OF_ONE = "[database]\npool_size = 1\npipeline_depth = 8\n"


def pipelined(daemon):
    return daemon.metrics().get("incubatord_db_pipelined_total", 0)


def hammer(api, jobs, threads=24):
    """Runs jobs (callables returning None or a failure text) from many threads."""
    failures, lock = [], threading.Lock()
    chunks = [jobs[i::threads] for i in range(threads)]

    def run(chunk):
        for job in chunk:
            failure = job()
            if failure:
                with lock:
                    failures.append(failure)

    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return failures


def test_each_pipelined_read_gets_its_own_answer(pg, db, workdir):
    d = start_daemon(pg, db, workdir, extra_config=POOL_OF_ONE)
    try:
        admin = Api(d, d.admin_token)
        for n, code in enumerate(CODES):
            create_incubator(admin, code, name=f"孵化器 {code}", disposable_area_m2=20000 + n)
        before = pipelined(d)

        def found(code):
            def job():
                r = admin.get(f"/v1/incubators/{code}")
                if r.status != 200 or r.json()["code"] != code \
                        or r.json()["name"] != f"孵化器 {code}":
                    return f"GET {code}: {r.status} {r.body[:200]!r}"
            return job

        def missing():
            r = admin.get("/v1/incubators/NOPE-9")
            if r.status != 404 or "NOPE-9" not in r.json().get("detail", ""):
                return f"GET NOPE-9: {r.status} {r.body[:200]!r}"

        def refused():
            # A refusal raised inside the function (api.fail): an error
            # result in the middle of the pipeline, which must not spill
            # into the statements behind it.
            r = admin.get(f"/v1/incubators/{CODES[0]}/tenants/NOBODY")
            if r.status != 404:
                return f"GET tenant NOBODY: {r.status} {r.body[:200]!r}"

        jobs = []
        for i in range(600):
            jobs.append(found(CODES[i % len(CODES)]) if i % 3 else
                        (missing if i % 2 else refused))
        assert hammer(admin, jobs) == []
        # The reads did share the one connection's pipeline.
        assert pipelined(d) > before
        assert d.metrics()['incubatord_db_queries_total{outcome="timeout"}'] == 0
    finally:
        stop_and_check(d)


def test_writes_among_pipelined_reads_are_each_answered_and_kept(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, extra_config=POOL_OF_ONE)
    try:
        admin = Api(d, d.admin_token)
        for code in CODES:
            create_incubator(admin, code)

        def rename(code, n):
            def job():
                r = admin.patch(f"/v1/incubators/{code}", {"name": f"{code} 第{n}次"})
                if r.status != 200 or r.json()["name"] != f"{code} 第{n}次":
                    return f"PATCH {code} {n}: {r.status} {r.body[:200]!r}"
            return job

        def read(code):
            def job():
                r = admin.get(f"/v1/incubators/{code}")
                if r.status != 200 or r.json()["code"] != code:
                    return f"GET {code}: {r.status} {r.body[:200]!r}"
            return job

        # Each incubator renamed once per round by one thread only, so its
        # last name is known; reads of all of them in between.
        jobs = []
        for n in range(1, 6):
            for code in CODES:
                jobs.append(rename(code, n) if code.endswith(("1", "5", "9")) else read(code))
                jobs.append(read(code))
        assert hammer(admin, jobs, threads=1 + len(jobs) // 40) == []
        for code in CODES:
            name = sql.execute("SELECT name FROM incubators WHERE code = %s",
                               (code,)).fetchone()[0]
            assert admin.get(f"/v1/incubators/{code}").json()["name"] == name
    finally:
        stop_and_check(d)


def test_a_lost_connection_fails_its_pipelined_reads_and_the_pool_recovers(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, extra_config=POOL_OF_ONE)
    try:
        admin = Api(d, d.admin_token)
        create_incubator(admin, CODES[0])
        stop = threading.Event()
        statuses, lock = [], threading.Lock()

        def reader():
            while not stop.is_set():
                r = admin.get(f"/v1/incubators/{CODES[0]}")
                with lock:
                    statuses.append(r.status)
                if r.status == 503:
                    assert_problem(r, 503)
                else:
                    assert r.status == 200 and r.json()["code"] == CODES[0], r

        ts = [threading.Thread(target=reader) for _ in range(16)]
        for t in ts:
            t.start()
        try:
            wait_for(lambda: pipelined(d) > 50, 20, "reads to be pipelined")
            # The pool's connection goes away under its pipeline.
            killed = sql.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'incubatord' AND pid <> pg_backend_pid()"
                " AND query NOT LIKE 'LISTEN%'").fetchone()[0]
            assert killed >= 1
            wait_for(lambda: d.metrics()["incubatord_db_reconnects_total"] >= 2, 20,
                     "the pool to reconnect")
            with lock:
                seen = len(statuses)
            wait_for(lambda: len(statuses) > seen + 100, 20, "reads after the reconnect")
        finally:
            stop.set()
            for t in ts:
                t.join()
        assert set(statuses) <= {200, 503}
        assert statuses.count(200) > 100
        assert admin.get(f"/v1/incubators/{CODES[0]}").status == 200
    finally:
        stop_and_check(d)


def test_no_pipeline_by_default(pg, db, workdir):
    d = start_daemon(pg, db, workdir, extra_config="[database]\npool_size = 1\n")
    try:
        admin = Api(d, d.admin_token)
        create_incubator(admin, CODES[0])
        jobs = [lambda: None if admin.get(f"/v1/incubators/{CODES[0]}").status == 200
                else "not 200"] * 200
        assert hammer(admin, jobs, threads=16) == []
        assert pipelined(d) == 0
    finally:
        stop_and_check(d)
