#!/usr/bin/python3
"""The console's two reads over a province-sized city, through the API
versus the bare SQL behind them through psql.

The city of the report benchmark (1,000 incubators, 100,000 tenants,
1,000,000 occupancy intervals; tests/fixtures/city.py) in a throwaway
PostgreSQL cluster; then, side by side in one run, the median of several
runs of
  - GET /v1/reports/overview (the whole city today) through the real daemon,
    and SELECT body FROM api.reports_overview(ctx, args) through psql;
  - GET /v1/incubators/{code}/space-share/daily over 1,100 days (the longest
    series one request may ask for), for incubators taken across the city,
    and the same SQL call through psql;
  - for scale, a primary-key read of one incubator through psql (the
    smallest thing PostgreSQL answers).
Targets: the overview under 300 ms, the 1,100-day series under 100 ms, and
each API answer within 1.3 times its bare SQL. A missed target prints
MISSED; with BENCH_STRICT=1 it also makes the exit status 1.

    INCUBATORD_BIN=build/incubatord python3 tests/bench/bench_console.py [--small]
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

from bench_reports import api_ms, psql_ms  # noqa: E402
from benchlib import cpu_seconds, machine, province  # noqa: E402
from harness import run_cli  # noqa: E402

RUNS = 9
SERIES_DAYS = 1100
TARGETS_MS = {"overview": 300.0, "series": 100.0}
TARGET_RATIO = 1.3
STRICT = os.environ.get("BENCH_STRICT") == "1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="a tenth of the size (a quick try)")
    a = ap.parse_args()
    pg, daemon = None, None
    try:
        pg, daemon, city, gen_s, load_s = province(a.small, "bench-console-")
        params = city.params
        s = city.stats()
        print(f"machine: {machine()}")
        print(f"fixture: {s['incubators']} incubators, {s['tenants']} tenants, "
              f"{s['intervals']} occupancy intervals, {s['snapshots']} snapshots "
              f"(generated in {gen_s:.0f} s, loaded in {load_s:.0f} s)")
        token = run_cli(daemon.config_path, "token", "create", "--admin", "bench").stdout.strip()
        daemon.start()

        today = params.today
        first = (today - dt.timedelta(days=SERIES_DAYS - 1)).isoformat()
        ctx = {"today": today.isoformat(), "request_id": "bench", "method": "GET",
               "path": "/", "admin": True}
        codes = sorted(i.code for i in city.incubators)
        picks = codes[::max(1, len(codes) // 7)][:7]

        def sql(fn, args):
            return (f"SELECT body FROM api.{fn}('{json.dumps(ctx)}', "
                    f"'{json.dumps(args)}')")
        cases = {
            "overview": [("/v1/reports/overview", sql("reports_overview", {"on": None}))],
            "series": [(f"/v1/incubators/{c}/space-share/daily?from={first}&to={today}",
                        sql("space_share_daily", {"code": c, "from": first, "to": today.isoformat()}))
                       for c in picks],
        }
        pk = f"SELECT code, name FROM incubators WHERE code = '{picks[0]}'"
        times = {k: {"api": [], "sql": []} for k in cases}
        size = {}
        for _, pairs in cases.items():   # warm caches and plans once
            for path, query in pairs:
                api_ms(daemon, token, path)
                psql_ms(pg, "bench", query)
        pk_ms = []
        for _ in range(RUNS):
            for k, pairs in cases.items():
                for path, query in pairs:
                    ms, size[k] = api_ms(daemon, token, path)
                    times[k]["api"].append(ms)
                    times[k]["sql"].append(psql_ms(pg, "bench", query))
            pk_ms.append(psql_ms(pg, "bench", pk))

        # The backend's own CPU time for the same SQL, on one connection: on a
        # machine shared with other work the wall-clock figures above grow
        # with its load, this one hardly does.
        cpu = {}
        with pg.connect("bench") as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            conn.execute("SET jit = off")
            for k, pairs in cases.items():
                for _, query in pairs:
                    conn.execute(query).fetchall()
                before = cpu_seconds(backend)
                for _ in range(RUNS):
                    for _, query in pairs:
                        conn.execute(query).fetchall()
                cpu[k] = (cpu_seconds(backend) - before) * 1000 / (RUNS * len(pairs))
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]

        ok = True
        print(f"load average {load}; median of {RUNS} runs (series: {len(picks)} incubators each run); "
              f"a primary-key read through psql: {statistics.median(pk_ms):.2f} ms")
        for k in cases:
            api, bare = statistics.median(times[k]["api"]), statistics.median(times[k]["sql"])
            ratio = api / bare
            good = api < TARGETS_MS[k] and ratio <= TARGET_RATIO
            ok &= good
            what = "overview, whole city" if k == "overview" else f"series, {SERIES_DAYS} days"
            print(f"  {what:22} API {api:7.1f} ms ({size[k]} bytes)   psql {bare:7.1f} ms   "
                  f"(backend CPU {cpu[k]:.0f} ms)   ratio {ratio:.2f} (target <= {TARGET_RATIO})   "
                  f"target < {TARGETS_MS[k]:.0f} ms   {'ok' if good else 'MISSED'}")
        return 0 if ok or not STRICT else 1
    finally:
        if daemon is not None:
            daemon.stop()
        if pg is not None:
            pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
