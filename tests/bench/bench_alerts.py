"""What alerting costs, measured side by side in one run:

1. a snapshot write with its alert evaluation (the whole PUT, through
   api.run) against that evaluation alone (api.alerts_evaluate for that
   incubator and the rules a snapshot can change): the share of a write's
   time that alerting takes; and the evaluation of all five rules, as other
   writes do it;
2. the sweep over every incubator, per incubator;
3. delivery throughput: a burst of events written in one transaction until
   delivered on every channel (syslog, NOTIFY, a local webhook receiver),
   by one daemon and by two daemons sharing the database.

Targets: a snapshot's own evaluation at most half of its write (it is O(1)
in the incubator's size where the snapshot itself decides it), and the sweep
at most 1 ms per incubator. A missed target prints MISSED; with
BENCH_STRICT=1 it also makes the exit status 1.

Run: ctest -C bench -L bench (or python3 tests/bench/bench_alerts.py).
"""

import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from alerting import Receiver, days, settle, today, uscc, webhook_config  # noqa: E402
from benchlib import exit_status, verdict  # noqa: E402
from harness import Daemon, PgCluster, run_cli  # noqa: E402

INCUBATORS = int(os.environ.get("BENCH_INCUBATORS", "300"))
TENANTS = int(os.environ.get("BENCH_TENANTS", "20"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "500"))
EVALUATION_SHARE_TARGET = 0.5
SWEEP_MS_PER_INCUBATOR_TARGET = 1.0


def ctx(method="PUT", path="/bench"):
    return json.dumps({"request_id": "bench", "method": method, "path": path,
                       "today": str(today()), "token_name": "bench", "admin": True,
                       "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def run(sql, fn, args):
    status = sql.execute("SELECT status FROM api.run(%s, %s::jsonb, %s::jsonb)",
                         (fn, ctx(), json.dumps(args))).fetchone()[0]
    assert status in (200, 201), (fn, status)


def populate(sql):
    t = today()
    n = 0
    for i in range(INCUBATORS):
        code = f"B-{i:05d}"
        run(sql, "incubator_create", {"code": code, "name": code, "level": "district",
                                      "kind": "comprehensive", "opened_on": str(t - days(400)),
                                      "disposable_area_m2": "10000.00",
                                      "public_service_area_m2": "1000.00"})
        tenants = []
        for k in range(TENANTS):
            n += 1
            ext = f"T-{k:03d}"
            run(sql, "tenant_put", {"code": code, "external_id": ext, "name": ext,
                                    "credit_code": uscc(n), "founded_on": str(t - days(900)),
                                    "admitted_on": str(t - days(800)), "field": "other",
                                    "tech_certified_on": str(t - days(700)) if k % 3 else None,
                                    "high_tech_certified_on": None, "founder_origin": None,
                                    "annual_revenue_fen": None, "listed_on": None})
            tenants.append({"external_id": ext, "area_m2": "300.00"})
        run(sql, "occupancy_put", {"code": code, "as_of": str(t - days(10)),
                                   "public_service_area_m2": "1000.00", "tenants": tenants})


def timed(sql, statement, params=(), repeat=1):
    started = time.perf_counter()
    for _ in range(repeat):
        sql.execute(statement, params).fetchall()
    return (time.perf_counter() - started) / repeat


def main():
    pg = PgCluster()
    pg.start()
    workdir = tempfile.mkdtemp(prefix="bench-alerts-")
    receiver = Receiver()
    daemons = []
    try:
        pg.create_database("bench")
        cfg = os.path.join(workdir, "migrate.conf")
        with open(cfg, "w") as f:
            f.write(f"[database]\nconninfo = {pg.conninfo('bench')}\n[log]\nsyslog = false\n")
        run_cli(cfg, "migrate")
        sql = pg.connect("bench")
        started = time.perf_counter()
        populate(sql)
        print(f"populated {INCUBATORS} incubators x {TENANTS} tenants in "
              f"{time.perf_counter() - started:.1f} s")
        # Measured as the city runs, with its tables analysed (autovacuum does so
        # within a minute or so of a load like this one).
        sql.execute("ANALYZE")
        sql.execute("DELETE FROM outbox")

        # 1. A snapshot write against its evaluation alone (same incubator, no transition).
        inc = sql.execute("SELECT id FROM incubators ORDER BY id LIMIT 1").fetchone()[0]
        code = "B-00000"
        body = sql.execute("SELECT tenants FROM snapshots WHERE incubator_id = %s",
                           (inc,)).fetchone()[0]
        write_args = {"code": code, "as_of": str(today()), "public_service_area_m2": "1000.00",
                      "tenants": [{"external_id": e["external_id"], "area_m2": "300.00"}
                                  for e in body]}
        reps = 50
        write_s = 0.0
        for r in range(reps):
            write_args["public_service_area_m2"] = f"{1000 + (r % 2)}.00"  # a real change
            started = time.perf_counter()
            run(sql, "occupancy_put", write_args)
            write_s += time.perf_counter() - started
        write_s /= reps
        # A snapshot evaluates the rules it can change (31_occupancy.sql); every
        # other write, all five.
        snap_eval_s = timed(sql, "SELECT api.alerts_evaluate(%s::jsonb, ARRAY[%s]::bigint[], "
                            "false, ARRAY['space_share_breach', 'space_share_warning', "
                            "'stale_data'])", (ctx(), inc), repeat=reps)
        eval_s = timed(sql, "SELECT api.alerts_evaluate(%s::jsonb, ARRAY[%s]::bigint[], false)",
                       (ctx(), inc), repeat=reps)
        share = snap_eval_s / write_s
        print(f"snapshot PUT with evaluation: {write_s * 1000:.2f} ms; its evaluation alone "
              f"(3 rules): {snap_eval_s * 1000:.2f} ms; evaluation / write = "
              f"{share:.2f} (target <= {EVALUATION_SHARE_TARGET}: "
              f"{verdict(share <= EVALUATION_SHARE_TARGET)})")
        print(f"evaluation of all five rules for one incubator (other writes): "
              f"{eval_s * 1000:.2f} ms")

        # 2. The sweep over every incubator.
        sweep_ctx = json.dumps({"today": str(today()),
                                "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        sweep_s = timed(sql, "SELECT api.job_alert_sweep(%s::jsonb)", (sweep_ctx,), repeat=3)
        per_ms = sweep_s / INCUBATORS * 1000
        print(f"sweep of {INCUBATORS} incubators ({INCUBATORS * TENANTS} tenants): "
              f"{sweep_s * 1000:.0f} ms, {per_ms * 1000:.0f} us per incubator (target <= "
              f"{SWEEP_MS_PER_INCUBATOR_TARGET:.0f} ms: "
              f"{verdict(per_ms <= SWEEP_MS_PER_INCUBATOR_TARGET)}); "
              f"sweep / one evaluation = {sweep_s / eval_s:.0f}")
        sql.execute("DELETE FROM outbox")

        # 3. Delivery throughput, one daemon then two.
        rates = []
        for count in (1, 2):
            for d in daemons:
                d.stop()
            daemons = []
            for _ in range(count):
                d = Daemon(workdir, pg.conninfo("bench"),
                           extra_config=webhook_config(receiver) + "\n[log]\nlevel = notice")
                d.start()
                daemons.append(d)
            time.sleep(1.5)  # the start-up sweep
            sql.execute("DELETE FROM outbox")
            before = len(receiver.requests)
            started = time.perf_counter()
            sql.execute("SELECT api.emit('{}'::jsonb, 'bench.event', json_build_object('n', g), "
                        "'info', 'event=bench.event n=' || g) FROM generate_series(1, %s) g",
                        (EVENTS,))
            settle(sql, timeout=600)
            took = time.perf_counter() - started
            assert len(receiver.requests) - before == EVENTS
            rates.append(EVENTS / took)
            print(f"{count} daemon(s): {EVENTS} events delivered on every channel in "
                  f"{took:.2f} s = {EVENTS / took:.0f} events/s")
        print(f"two daemons / one daemon = {rates[1] / rates[0]:.2f} "
              "(the webhook goes in outbox order, one event at a time)")
        missed = [name for name, ok in (
            ("evaluation share", share <= EVALUATION_SHARE_TARGET),
            ("sweep per incubator", per_ms <= SWEEP_MS_PER_INCUBATOR_TARGET)) if not ok]
        return exit_status(missed)
    finally:
        for d in daemons:
            d.stop()
        receiver.stop()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
