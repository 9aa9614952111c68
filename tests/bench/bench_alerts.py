"""What alerting costs, measured side by side in one run:

1. a snapshot write with its alert evaluation (the whole PUT, through
   api.run) against that evaluation alone (api.alerts_evaluate for that
   incubator and the rules a snapshot can change): the share of a write's
   time that alerting takes; and the evaluation of all five rules, as other
   writes do it; beside both, PostgreSQL's own limit for a transaction of
   that size: a bare one updating as many rows by key as the incubator has
   tenants, one round trip each like the evaluation;
2. the sweep over every incubator, per incubator, as the daemon runs it
   (CALL api.run_job_batches until it returns no "next"), beside as many
   bare transactions as it had batches, each updating as many rows as its
   batch had incubators (benchlib.bare_batches_s);
3. delivery throughput: a burst of events written in one transaction until
   delivered on every channel (syslog, NOTIFY, a local webhook receiver),
   by one daemon and by two daemons sharing the database.

Targets: a snapshot's own evaluation at most half of its write (it is O(1)
in the incubator's size where the snapshot itself decides it), at most
BARE_EVALUATION_TARGET bare transactions of its size; the sweep at most 1 ms
per incubator and at most BARE_SWEEP_TARGET times its bare transactions. A missed target prints MISSED; with
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
from benchlib import bare_batches_s, exit_status, verdict  # noqa: E402
from harness import Daemon, PgCluster, run_cli  # noqa: E402

INCUBATORS = int(os.environ.get("BENCH_INCUBATORS", "300"))
TENANTS = int(os.environ.get("BENCH_TENANTS", "20"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "500"))
EVALUATION_SHARE_TARGET = 0.5
SWEEP_MS_PER_INCUBATOR_TARGET = 1.0
BARE_EVALUATION_TARGET = 10.0
BARE_SWEEP_TARGET = 10.0


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


def bare_transaction_s(sql, rows, repeat):
    """PostgreSQL's own limit for a transaction of `rows` rows: a bare one,
    one round trip in autocommit, updating that many rows by key."""
    sql.execute("DROP TABLE IF EXISTS bench_bare_one")
    sql.execute("CREATE TABLE bench_bare_one AS SELECT g AS id, 0 AS n "
                "FROM generate_series(1, %s) g", (rows,))
    sql.execute("ALTER TABLE bench_bare_one ADD PRIMARY KEY (id)")
    sql.execute("VACUUM ANALYZE bench_bare_one")
    keys = list(range(1, rows + 1))
    took = timed(sql, "UPDATE bench_bare_one SET n = n + 1 WHERE id = ANY (%s) RETURNING id",
                 (keys,), repeat=repeat)
    sql.execute("DROP TABLE bench_bare_one")
    return took


def sweep_batches(sql):
    """One sweep as the daemon runs it: CALL api.run_job_batches until no
    "next" is left; returns the number of batches."""
    ctx = {"today": str(today()), "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "request_id": "bench", "method": "JOB", "path": "alert_sweep", "admin": True,
           "token_name": "scheduler"}
    batches = 0
    while True:
        done = sql.execute("CALL api.run_job_batches('alert_sweep', %s::jsonb, 500, 25, NULL)",
                           (json.dumps(ctx),)).fetchone()[0]
        batches += done["batches"]
        if "next" not in done:
            return batches
        ctx.update(after=done["next"], batch=done["batch"])


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
        bare_s = bare_transaction_s(sql, TENANTS, reps)
        share = snap_eval_s / write_s
        per_bare = snap_eval_s / bare_s
        print(f"snapshot PUT with evaluation: {write_s * 1000:.2f} ms; its evaluation alone "
              f"(3 rules): {snap_eval_s * 1000:.2f} ms; evaluation / write = "
              f"{share:.2f} (target <= {EVALUATION_SHARE_TARGET}: "
              f"{verdict(share <= EVALUATION_SHARE_TARGET)})")
        print(f"PostgreSQL's own: a bare transaction updating {TENANTS} rows by key "
              f"{bare_s * 1000:.2f} ms; the evaluation / that = {per_bare:.1f} (target <= "
              f"{BARE_EVALUATION_TARGET:.0f}: {verdict(per_bare <= BARE_EVALUATION_TARGET)}), "
              f"the write / that = {write_s / bare_s:.1f}")
        print(f"evaluation of all five rules for one incubator (other writes): "
              f"{eval_s * 1000:.2f} ms; / the bare transaction = {eval_s / bare_s:.1f}")

        # 2. The sweep over every incubator, as the daemon runs it.
        started = time.perf_counter()
        for _ in range(3):
            batches = sweep_batches(sql)
        sweep_s = (time.perf_counter() - started) / 3
        sweep_bare_s = bare_batches_s(sql, batches, INCUBATORS)
        per_ms = sweep_s / INCUBATORS * 1000
        sweep_per_bare = sweep_s / sweep_bare_s
        print(f"sweep of {INCUBATORS} incubators ({INCUBATORS * TENANTS} tenants) in {batches} "
              f"batches: {sweep_s * 1000:.0f} ms, {per_ms * 1000:.0f} us per incubator (target "
              f"<= {SWEEP_MS_PER_INCUBATOR_TARGET:.0f} ms: "
              f"{verdict(per_ms <= SWEEP_MS_PER_INCUBATOR_TARGET)}); "
              f"sweep / one evaluation = {sweep_s / eval_s:.0f}")
        print(f"PostgreSQL's own: {batches} bare transactions updating {INCUBATORS} rows in all "
              f"{sweep_bare_s * 1000:.0f} ms; the sweep / that = {sweep_per_bare:.1f} (target <= "
              f"{BARE_SWEEP_TARGET:.0f}: {verdict(sweep_per_bare <= BARE_SWEEP_TARGET)})")
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
            ("evaluation / bare transaction", per_bare <= BARE_EVALUATION_TARGET),
            ("sweep per incubator", per_ms <= SWEEP_MS_PER_INCUBATOR_TARGET),
            ("sweep / bare transactions", sweep_per_bare <= BARE_SWEEP_TARGET)) if not ok]
        return exit_status(missed)
    finally:
        for d in daemons:
            d.stop()
        receiver.stop()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
