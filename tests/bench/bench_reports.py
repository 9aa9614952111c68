#!/usr/bin/python3
"""The monthly report over a province-sized city: through the API versus the
bare SQL behind it through psql.

A generated city of 1,000 incubators, 100,000 tenants and 1,000,000
occupancy intervals (tests/fixtures/city.py; its generation and loading are
timed and printed apart) in a throwaway PostgreSQL cluster; then, side by
side in one run, the median of several runs of
  - GET /v1/reports/monthly?period=P through the real daemon (JSON and CSV),
  - SELECT body FROM api.reports_monthly(ctx, args) through psql (the same
    SQL the daemon's api.run call runs, without the daemon),
printing the ratio (target <= 1.3) and the absolute time (target: the whole
monthly computation under 2 s). A missed target prints MISSED; with
BENCH_STRICT=1 it also makes the exit status 1. With --explain FILE, the
plans of the statements inside the share and count functions, as auto_explain
logged them while they ran, go to FILE.

    INCUBATORD_BIN=build/incubatord python3 tests/bench/bench_reports.py [--small]
"""

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import city as citygen  # noqa: E402
from benchlib import exit_status, province  # noqa: E402
from harness import PG_BIN, run_cli  # noqa: E402

RUNS = 7
TARGET_RATIO = 1.3
TARGET_SECONDS = 2.0


def psql_ms(pg, db, query):
    """psql's own \\timing of one query, its output thrown away."""
    out = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At",
                          pg.conninfo(db), "-c", "\\timing on", "-c", query,
                          "-o", "/dev/null"],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Time: ([0-9.]+) ms", out).group(1))


def api_ms(daemon, token, path, headers=None):
    h = {"Authorization": f"Bearer {token}", **(headers or {})}
    c = daemon.connection(timeout=60)
    try:
        t = time.perf_counter()
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read()
        ms = (time.perf_counter() - t) * 1000
    finally:
        c.close()
    assert r.status == 200, (r.status, body[:300])
    return ms, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="a tenth of the size (a quick try)")
    ap.add_argument("--explain", help="write EXPLAIN (ANALYZE) of the report's parts here")
    a = ap.parse_args()
    pg, daemon = None, None
    try:
        pg, daemon, city, gen_s, load_s = province(a.small, "bench-reports-")
        params = city.params
        s = city.stats()
        print(f"fixture: {s['incubators']} incubators, {s['tenants']} tenants, "
              f"{s['intervals']} occupancy intervals, {s['snapshots']} snapshots; "
              f"generated in {gen_s:.1f} s, loaded (COPY, indexes, ANALYZE) in {load_s:.1f} s")

        token = run_cli(daemon.config_path, "token", "create", "--admin", "bench").stdout.strip()
        daemon.start()
        first = params.today.replace(day=1)
        period = (first - dt.timedelta(days=1)).strftime("%Y-%m")  # the last complete month
        ctx = json.dumps({"today": params.today.isoformat(), "request_id": "bench",
                          "method": "GET", "path": "/v1/reports/monthly", "admin": True})
        args = json.dumps({"period": period})
        sql_json = f"SELECT body FROM api.reports_monthly('{ctx}', '{args}')"
        ctx_csv = json.dumps({**json.loads(ctx), "format": "csv"})
        sql_csv = f"SELECT body FROM api.reports_monthly('{ctx_csv}', '{args}')"
        path = f"/v1/reports/monthly?period={period}"

        # Warm both paths once (caches, plans), then alternate them.
        api_ms(daemon, token, path)
        psql_ms(pg, "bench", sql_json)
        times = {"api_json": [], "sql_json": [], "api_csv": [], "sql_csv": []}
        size = {}
        for _ in range(RUNS):
            ms, size["json"] = api_ms(daemon, token, path)
            times["api_json"].append(ms)
            times["sql_json"].append(psql_ms(pg, "bench", sql_json))
            ms, size["csv"] = api_ms(daemon, token, path, {"Accept": "text/csv"})
            times["api_csv"].append(ms)
            times["sql_csv"].append(psql_ms(pg, "bench", sql_csv))
        med = {k: statistics.median(v) for k, v in times.items()}

        ok = True
        print(f"monthly report for {period}, {s['incubators']} incubators, "
              f"median of {RUNS} runs:")
        for fmt in ("json", "csv"):
            ratio = med[f"api_{fmt}"] / med[f"sql_{fmt}"]
            seconds = med[f"api_{fmt}"] / 1000
            good = ratio <= TARGET_RATIO and seconds < TARGET_SECONDS
            ok &= good
            print(f"  {fmt:4}  API {med[f'api_{fmt}']:7.1f} ms ({size[fmt]} bytes)   "
                  f"psql {med[f'sql_{fmt}']:7.1f} ms   ratio {ratio:.2f} "
                  f"(target <= {TARGET_RATIO})   absolute {seconds:.2f} s "
                  f"(target < {TARGET_SECONDS:.0f} s)   {'ok' if good else 'MISSED'}")

        if a.explain:
            # The plans of the statements inside each function, as PostgreSQL ran
            # them: auto_explain logs every nested statement to this session.
            last = dt.date.fromisoformat(period + "-01")
            last = citygen.add_months(last, 1) - dt.timedelta(days=1)
            with pg.connect("bench") as conn, open(a.explain, "w") as f:
                plans = []
                conn.add_notice_handler(lambda d: plans.append(d.message_primary))
                for setting in ("jit = off", "client_min_messages = log",
                                "auto_explain.log_min_duration = 0",
                                "auto_explain.log_analyze = on", "auto_explain.log_buffers = on",
                                "auto_explain.log_nested_statements = on"):
                    conn.execute("SET " + setting)
                conn.execute("LOAD 'auto_explain'")
                for name in ("share_days", "share_stats", "tenant_counts"):
                    plans.clear()
                    conn.execute(f"SELECT count(*) FROM api.{name}(%s, %s)",
                                 [f"{period}-01", last.isoformat()])
                    f.write(f"-- api.{name}('{period}-01', '{last}')\n")
                    for plan in plans:
                        f.write(plan + "\n\n")
            print(f"EXPLAIN (ANALYZE) of every statement written to {a.explain}")
        return exit_status([] if ok else ["monthly report"])
    finally:
        if daemon is not None:
            daemon.stop()
        if pg is not None:
            pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
