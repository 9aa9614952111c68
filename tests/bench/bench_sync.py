#!/usr/bin/python3
"""The bulk tenant sync beside PostgreSQL's own limit for the same rows, and
what it saves over one PUT per tenant.

5,000 tenants of one incubator, each way on a fresh copy of one prepared
database (a migrated database with the incubator, its token, and an empty
table bench_bare_tenants like tenants: LIKE tenants INCLUDING ALL, its
columns, checks, unique keys, identity and indexes, plus the foreign key to
incubators):

- bulk JSON: one PUT /v1/incubators/{code}/tenants with all 5,000;
- bulk CSV:  the same tenants as one text/csv body with the Chinese header;
- bare:      PostgreSQL's own limit for the same rows, one transaction:
             COPY of the 5,000 rows (text format, prepared before the clock
             starts) into a temporary table, then one INSERT INTO
             bench_bare_tenants ... ON CONFLICT (incubator_id, external_id)
             DO UPDATE SET every profile column, over the Unix socket
             (psycopg): the create-or-replace of the same rows with the same
             constraints and indexes, without validation, warnings, audit or
             alert evaluation. The plain COPY into the empty table (create
             only) is timed beside it, for scale;
- singles:   5,000 PUT /v1/incubators/{code}/tenants/{external_id}, each
             tenant once, over 16 keep-alive connections (a Python thread
             each: the daemon's time per PUT is milliseconds, the client's
             tens of microseconds);
- sql:       the statement the daemon sends for the bulk JSON,
             SELECT ... FROM api.tenants_sync(ctx, args), with the args it
             builds, straight over the Unix socket: where the daemon's time
             goes (SQL, or HTTP, parsing and validation), not a target.

Each way runs twice in a row on its copy: first every tenant is created, then
every tenant's name changes (an update of all 5,000: the answer counts 5,000
updated; the bare upsert updates the 5,000 rows it inserted). The ways run in
BENCH_ROUNDS rounds, the order reversed every other round (bulk JSON and bare
next to each other); medians are printed.

Targets, each for the create and for the update:
- bare / bulk JSON >= 0.25 (the headline): a bulk sync of 5,000 tenants costs
  at most four times what PostgreSQL needs to upsert the same rows into the
  same table. The sync is more than the upsert by design, in two halves of
  about equal size. In SQL, twice the upsert: the existing rows are locked
  and compared first (an unchanged tenant is not rewritten), revenues are
  replaced, every tenant's warnings are computed and kept in the call's one
  audit row, and the incubator's alerts are evaluated once, each a
  set-based pass over the 5,000 rows. At the edge, at most as much again:
  reading, parsing and validating the 1.6 MB body (every credit code,
  date, enum and unknown field) before anything is written. 2 x 2 = 4;
- singles / bulk JSON >= 5: the bulk call at least five times faster than
  5,000 single PUTs.
A missed target prints MISSED; with BENCH_STRICT=1 it makes the exit status 1.

Run it with `ctest -C bench -L bench -R bench_sync --output-on-failure` in the
build directory, or directly with INCUBATORD_BIN set. Environment:
BENCH_ROUNDS (2), BENCH_CONNECTIONS (16), BENCH_WAYS
(json,bare,csv,sql,singles; the targets need json, bare and singles),
BENCH_STRICT.
"""

import http.client
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from benchlib import exit_status, machine, verdict  # noqa: E402
from harness import Api, Daemon, PgCluster, run_cli  # noqa: E402
from ingestlib import uscc  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
# A subset of the ways, for a quick look (the targets need json, bare and singles).
WAYS = tuple(os.environ.get("BENCH_WAYS", "json,bare,csv,sql,singles").split(","))

N = 5000
CODE = "BENCH-SYNC"
TEMPLATE = "bench_sync_template"
SPEEDUP_TARGET = 5.0
BARE_RATIO_TARGET = 0.25
ZH = ["企业编号", "企业名称", "统一社会信用代码", "成立时间", "入驻时间", "技术领域",
      "科技型中小企业认定日期", "高新技术企业认定日期", "创业者类型", "上市日期"]
FIELDS = ["external_id", "name", "credit_code", "founded_on", "admitted_on", "field",
          "tech_certified_on", "high_tech_certified_on", "founder_origin", "listed_on"]

def tenant(n, variant):
    """The n-th tenant; variant 1 renames every one (an update of all 5,000)."""
    return {"external_id": f"T-{n:05d}",
            "name": f"哈尔滨某某科技有限公司{n}" + ("（更名）" if variant else ""),
            "credit_code": uscc(10000 + n), "founded_on": "2024-03-01",
            "admitted_on": "2025-06-01", "field": "electronic_information",
            "tech_certified_on": "2025-09-01" if n % 2 else None,
            "high_tech_certified_on": None, "founder_origin": "university", "listed_on": None}


def json_body(variant):
    return json.dumps({"tenants": [tenant(n, variant) for n in range(N)]},
                      ensure_ascii=False).encode()


def csv_body(variant):
    def cell(v):
        if v is None:
            return ""
        return v.replace("-", "/") if re.fullmatch(r"\d{4}-\d\d-\d\d", v) else v
    lines = [",".join(ZH)] + [",".join(cell(tenant(n, variant)[f]) for f in FIELDS)
                              for n in range(N)]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def single_body(n, variant):
    t = tenant(n, variant)
    del t["external_id"]
    return json.dumps(t, ensure_ascii=False)


def prepare(pg, workdir):
    """The template database: the incubator, its token (returned), and the
    bare side's empty table, constrained and indexed as tenants is."""
    pg.create_database(TEMPLATE)
    d = Daemon(workdir, pg.conninfo(TEMPLATE), extra_config="[log]\nlevel = notice")
    run_cli(d.config_path, "migrate")
    admin_token = run_cli(d.config_path, "token", "create", "--admin", "bench").stdout.strip()
    d.start()
    try:
        admin = Api(d, admin_token)
        r = admin.post("/v1/incubators", {"code": CODE, "name": "基准孵化器", "level": "municipal",
                                          "kind": "comprehensive", "opened_on": "2020-01-01",
                                          "disposable_area_m2": 100000})
        assert r.status == 201, r
        r = admin.post(f"/v1/incubators/{CODE}/tokens", {"name": "erp-sync"})
        assert r.status == 201, r
        token = r.json()
    finally:
        d.stop()
    with pg.connect(TEMPLATE) as conn:
        conn.execute("CREATE TABLE bench_bare_tenants (LIKE tenants INCLUDING ALL)")
        conn.execute("ALTER TABLE bench_bare_tenants ADD FOREIGN KEY (incubator_id) "
                     "REFERENCES incubators")
        conn.execute("VACUUM ANALYZE")
    return token


def start_daemon(pg, workdir, db):
    pg.create_database(db, template=TEMPLATE)
    d = Daemon(workdir, pg.conninfo(db),
               extra_config="[server]\nrequest_timeout_ms = 60000\n"
                            "[database]\nstatement_timeout_ms = 60000")
    d.start()
    return d


def check_counts(pg, db, variant):
    with pg.connect(db) as conn:
        n, renamed = conn.execute("SELECT count(*), count(*) FILTER (WHERE name LIKE '%%更名%%') "
                                  "FROM tenants").fetchone()
    assert n == N and renamed == (N if variant else 0), (n, renamed)


def bulk_round(pg, workdir, db, token, kind):
    """Seconds for the creating and the updating bulk sync, as JSON or CSV."""
    d = start_daemon(pg, workdir, db)
    times = []
    try:
        for variant in (0, 1):
            body = json_body(variant) if kind == "json" else csv_body(variant)
            t0 = time.monotonic()
            r = d.request("PUT", f"/v1/incubators/{CODE}/tenants", token=token["token"],
                          body=body, timeout=120,
                          content_type="application/json" if kind == "json" else "text/csv")
            times.append(time.monotonic() - t0)
            assert r.status == 200, r
            assert r.json()["created" if variant == 0 else "updated"] == N, r
            check_counts(pg, db, variant)
        assert d.stop() == 0, d.log()[-3000:]
    finally:
        d.stop()
        pg.drop_database(db)
    return times


def put_all(d, token, variant):
    """Every tenant's own PUT, over CONNECTIONS keep-alive connections (one
    thread each, taking the next tenant from a shared counter); returns the
    seconds from the first request to the last answer."""
    headers = {"Authorization": f"Bearer {token['token']}", "Content-Type": "application/json"}
    bodies = [single_body(n, variant).encode() for n in range(N)]
    todo = iter(range(N))
    lock = threading.Lock()
    failures = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
        try:
            while True:
                with lock:
                    n = next(todo, None)
                if n is None:
                    return
                c.request("PUT", f"/v1/incubators/{CODE}/tenants/T-{n:05d}", body=bodies[n],
                          headers=headers)
                r = c.getresponse()
                body = r.read()
                if r.status not in (200, 201):
                    failures.append((n, r.status, body[:300]))
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    assert not failures, failures[:5]
    return seconds


def singles_round(pg, workdir, db, token):
    """Seconds for 5,000 creating and 5,000 updating single PUTs over CONNECTIONS."""
    d = start_daemon(pg, workdir, db)
    times = []
    try:
        for variant in (0, 1):
            times.append(put_all(d, token, variant))
            check_counts(pg, db, variant)
        assert d.stop() == 0, d.log()[-3000:]
    finally:
        d.stop()
        pg.drop_database(db)
    return times


def copy_text(incubator_id, variant):
    """The 5,000 rows in COPY's text format (no value here needs escaping)."""
    def cell(v):
        return "\\N" if v is None else v
    return "".join("\t".join([str(incubator_id)] + [cell(tenant(n, variant)[f]) for f in FIELDS])
                   + "\n" for n in range(N)).encode()


BARE_COLUMNS = "incubator_id, " + ", ".join(FIELDS)
BARE_UPSERT = (f"INSERT INTO bench_bare_tenants ({BARE_COLUMNS}) SELECT {BARE_COLUMNS} "
               "FROM bench_in ON CONFLICT (incubator_id, external_id) DO UPDATE SET "
               + ", ".join(f"{f} = excluded.{f}" for f in FIELDS if f != "external_id")
               + ", updated_at = now()")


def bare_round(pg, db):
    """Seconds for PostgreSQL's own create-or-replace of the same rows, one
    transaction each: COPY into a temporary table, one INSERT ... ON CONFLICT
    DO UPDATE into the equivalent table; then a plain COPY of the creating
    rows into the emptied table, for scale. Returns [create, update, copy]."""
    pg.create_database(db, template=TEMPLATE)
    times = []
    try:
        with pg.connect(db, autocommit=True) as conn:
            incubator_id = conn.execute("SELECT id FROM incubators WHERE code = %s",
                                        (CODE,)).fetchone()[0]
            for variant in (0, 1):
                data = copy_text(incubator_id, variant)
                t0 = time.monotonic()
                with conn.transaction():
                    conn.execute(f"CREATE TEMP TABLE bench_in ON COMMIT DROP AS SELECT "
                                 f"{BARE_COLUMNS} FROM bench_bare_tenants WITH NO DATA")
                    with conn.cursor().copy(f"COPY bench_in ({BARE_COLUMNS}) FROM STDIN") as cp:
                        cp.write(data)
                    conn.execute(BARE_UPSERT)
                times.append(time.monotonic() - t0)
                n, renamed = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE name LIKE '%%更名%%') "
                    "FROM bench_bare_tenants").fetchone()
                assert n == N and renamed == (N if variant else 0), (n, renamed)
            conn.execute("TRUNCATE bench_bare_tenants")
            data = copy_text(incubator_id, 0)
            t0 = time.monotonic()
            with conn.transaction():
                with conn.cursor().copy(f"COPY bench_bare_tenants ({BARE_COLUMNS}) "
                                        "FROM STDIN") as cp:
                    cp.write(data)
            times.append(time.monotonic() - t0)
    finally:
        pg.drop_database(db)
    return times


def sql_round(pg, db, token):
    """Seconds for the same two syncs as the daemon's own SQL call, straight in SQL."""
    pg.create_database(db, template=TEMPLATE)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    ctx = {"request_id": "bench", "method": "PUT", "path": f"/v1/incubators/{CODE}/tenants",
           "today": today, "now": datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
           "token_id": token["id"], "token_name": "erp-sync", "admin": False, "incubator": CODE}
    times = []
    try:
        with pg.connect(db) as conn:
            for variant in (0, 1):
                args = {"code": CODE, "tenants": [dict(tenant(n, variant), annual_revenue_fen=None)
                                                  for n in range(N)]}
                payload = json.dumps(args, ensure_ascii=False)
                t0 = time.monotonic()
                status, body = conn.execute(
                    "SELECT status, body::text FROM api.tenants_sync(%s::jsonb, %s::jsonb)",
                    (json.dumps(ctx), payload)).fetchone()
                times.append(time.monotonic() - t0)
                assert status == 200, body
                check_counts(pg, db, variant)
    finally:
        pg.drop_database(db)
    return times


def main():
    pg = PgCluster()
    workdir = tempfile.mkdtemp(prefix="incubatord-bench-sync-")
    os.chmod(workdir, 0o755)
    ways = WAYS
    results = {w: [] for w in ways}
    try:
        pg.start()
        token = prepare(pg, workdir)
        for n in range(ROUNDS):
            # Reverse the order every other round, so drift in the machine's load
            # evens out and the bulk JSON and the bare upsert stay next to each other.
            for way in (ways if n % 2 == 0 else ways[::-1]):
                db = f"bench_{way}_{n}"
                if way in ("json", "csv"):
                    results[way].append(bulk_round(pg, workdir, db, token, way))
                elif way == "singles":
                    results[way].append(singles_round(pg, workdir, db, token))
                elif way == "bare":
                    results[way].append(bare_round(pg, db))
                else:
                    results[way].append(sql_round(pg, db, token))
            print(f"round {n + 1}: " + ", ".join(
                f"{w} {results[w][-1][0]:.2f}/{results[w][-1][1]:.2f} s" for w in ways)
                + "  (create/update)")
    finally:
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    med = {w: [statistics.median(r[i] for r in results[w]) for i in range(len(results[w][0]))]
           for w in ways}
    nan = [float("nan")] * 3
    speedup = [med.get("singles", nan)[i] / med["json"][i] for i in (0, 1)]
    bare_ratio = [med.get("bare", nan)[i] / med["json"][i] for i in (0, 1)]
    speed_ok = min(speedup) >= SPEEDUP_TARGET
    bare_ok = min(bare_ratio) >= BARE_RATIO_TARGET
    print()
    print(f"machine:      {machine()}")
    print(f"workload:     {N} tenants of one incubator: created, then every one renamed")
    print(f"rounds:       {ROUNDS}, order reversed every other round; medians "
          "(create / update) below")
    for w, what in (("json", "one PUT .../tenants, JSON"),
                    ("csv", "one PUT .../tenants, text/csv, Chinese header"),
                    ("bare", "COPY + INSERT ... ON CONFLICT DO UPDATE, one transaction"),
                    ("singles", f"{N} PUT .../tenants/{{id}}, {CONNECTIONS} connections"),
                    ("sql", "api.tenants_sync straight in PostgreSQL")):
        if w not in med:
            continue
        print(f"{w + ':':13} {med[w][0]:6.3f} s / {med[w][1]:6.3f} s  "
              f"({N / med[w][0]:6.0f} / {N / med[w][1]:6.0f} tenants/s)  {what}")
    if "bare" in med:
        print(f"{'copy:':13} {med['bare'][2]:6.3f} s            plain COPY into the empty table")
    print(f"bare ratio:   {bare_ratio[0]:.2f} / {bare_ratio[1]:.2f}  (bare / bulk JSON; target >= "
          f"{BARE_RATIO_TARGET}: {verdict(bare_ok)})")
    if "sql" in med:
        print(f"sql share:    {med['sql'][0] / med['json'][0]:.2f} / "
              f"{med['sql'][1] / med['json'][1]:.2f}  (the daemon's SQL call / bulk JSON: the "
              "part of the time spent in PostgreSQL)")
    print(f"speed-up:     {speedup[0]:.1f} / {speedup[1]:.1f}  (singles / bulk JSON; target >= "
          f"{SPEEDUP_TARGET:.0f}: {verdict(speed_ok)})")
    print(f"host load:    {os.getloadavg()[0]:.1f} (1-minute load average at the end)")
    return exit_status([name for name, ok in (("bare ratio", bare_ok), ("speed-up", speed_ok))
                        if not ok])


if __name__ == "__main__":
    sys.exit(main())
