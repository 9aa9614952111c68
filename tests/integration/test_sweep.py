"""The alert sweep in batches, and tenant writes that evaluate their own
alerts by key.

The sweep takes one batch of incubators per transaction and locks only
those, so a write to an incubator outside the batch never waits for it; a
batched sweep finds what a single pass finds. One call of
api.run_job_batches runs batch after batch, each committed on its own, and
sizes them by the time each held its locks. A tenant's write brings the
alerts of its own subjects (its credit codes, its external id) in line and
leaves every other subject's alone.
"""

import json
import re
import threading
import time

import psycopg
import pytest

from alerting import (add_months, alerts, days, events_of, make_incubator, put_tenant, sweep,
                      today, uscc, wait_for_startup_sweep)
from harness import Api


def sweep_ctx(on, **extra):
    return json.dumps({"request_id": "test", "method": "JOB", "path": "alert_sweep",
                       "today": str(on), "now": "2030-01-01T00:00:00Z",
                       "token_name": "scheduler", "admin": True, **extra})


def overdue_admission(t):
    """An admission day whose 48-month limit is yesterday: overdue today."""
    return add_months(t - days(1), -48)


@pytest.fixture
def city(sql, daemon):
    """Five incubators, each with one overdue tenant, and no alerts open yet."""
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    for n in range(5):
        make_incubator(api, f"SW-{n}", t - days(5))
    ids = [r[0] for r in sql.execute("SELECT id FROM incubators ORDER BY id")]
    # Written straight into the table, so no write has evaluated them yet.
    for n, inc in enumerate(ids):
        sql.execute("INSERT INTO tenants (incubator_id, external_id, name, credit_code, "
                    "founded_on, admitted_on, field) VALUES (%s, 'OD', '企业', %s, %s, %s, "
                    "'other')", (inc, uscc(100 + n), overdue_admission(t) - days(100),
                                 overdue_admission(t)))
    return api, ids


def test_a_batched_sweep_finds_what_one_pass_finds_and_says_where_to_go_on(sql, city):
    api, ids = city
    t = today()
    first = json.loads(sql.execute("SELECT api.job_alert_sweep(%s::jsonb)::text",
                                   (sweep_ctx(t, batch=2),)).fetchone()[0])
    assert first["next"] == ids[1]
    assert {a["incubator"] for a in alerts(sql, "overdue_tenant")} == {"SW-0", "SW-1"}
    # The last batch is shorter than the batch size: no "next".
    last = json.loads(sql.execute("SELECT api.job_alert_sweep(%s::jsonb)::text",
                                  (sweep_ctx(t, batch=2, after=ids[3]),)).fetchone()[0])
    assert "next" not in last and last["fired"] >= 1
    # The helper goes batch by batch as the scheduler does; the alerts are one
    # per incubator, whatever the batch size.
    total = json.loads(sweep(sql, t, batch=2))
    assert total["fired"] == 2  # SW-2, SW-3: the others were fired above
    assert sorted(a["incubator"] for a in alerts(sql, "overdue_tenant")) == [
        f"SW-{n}" for n in range(5)]
    assert json.loads(sweep(sql, t, batch=1))["fired"] == 0
    assert len(events_of(sql, "overdue_tenant", "alert.firing")) == 5


def test_the_sweep_locks_only_its_batch_so_writes_elsewhere_never_wait(pg, db, sql, city):
    _, ids = city
    t = today()
    # A write in flight on the last incubator holds its evaluation lock, as
    # api.alerts_lock takes it: the global lock shared, the incubator's own.
    with pg.connect(db, autocommit=False) as writer:
        writer.execute("SELECT pg_advisory_xact_lock_shared(api.lock_key('alerts')), "
                       "pg_advisory_xact_lock(api.lock_key('alerts', %s::text))", (ids[-1],))
        with pg.connect(db, autocommit=False) as sweeper:
            sweeper.execute("SET lock_timeout = '2s'")
            # A batch without that incubator goes through at once (a sweep
            # holding the global lock exclusively would wait for the write)...
            sweeper.execute("SELECT api.job_alert_sweep(%s::jsonb)",
                            (sweep_ctx(t, batch=len(ids) - 1),))
            sweeper.commit()
            # ... and the batch with it waits for the write, like any other write.
            with pytest.raises(psycopg.errors.LockNotAvailable):
                sweeper.execute("SELECT api.job_alert_sweep(%s::jsonb)",
                                (sweep_ctx(t, after=ids[-2]),))
            sweeper.rollback()
        writer.rollback()
    assert sorted(a["incubator"] for a in alerts(sql, "overdue_tenant")) == [
        f"SW-{n}" for n in range(4)]


def test_the_daemon_sweeps_batch_after_batch_and_logs_the_run_once(sql, pg, db, workdir,
                                                                   daemons):
    from conftest import start_daemon
    t = today()
    sql.execute("INSERT INTO incubators (code, name, level, kind, opened_on) "
                "SELECT 'B-' || g, '孵化器' || g, 'district', 'comprehensive', %s "
                "FROM generate_series(1, 250) g", (t - days(400),))
    d = daemons(pg, db, workdir)
    wait_for_startup_sweep(d)
    line = [ln for ln in d.log().splitlines() if "job alert_sweep: done" in ln]
    assert len(line) == 1, line
    # 250 incubators, each stale (no snapshot in 400 days), in batches whose
    # size the scheduler adapts (the first of 10): several, one line.
    m = re.search(r'done in \d+ ms (\{.*\})', line[0])
    assert m, line[0]
    run = json.loads(m.group(1))
    assert run["fired"] == 250 and run["batches"] >= 3, run
    assert len(alerts(sql, "stale_data")) == 250


def call_batches(conn, ctx, budget_ms=60000, target_ms=25):
    """One CALL of api.run_job_batches for the sweep, as the scheduler makes it."""
    row = conn.execute("CALL api.run_job_batches('alert_sweep', %s::jsonb, %s, %s, NULL)",
                       (ctx, budget_ms, target_ms)).fetchone()
    return None if row[0] is None else row[0]


def batch_sizes(result):
    """The sizes of the batches, from the call's debug lines."""
    return [int(m.group(1)) for m in (re.search(r"batch \d+ of (\d+) in [\d.]+ ms",
                                                line["message"]) for line in result["log"]) if m]


def test_one_call_commits_batch_after_batch_while_it_goes_on(pg, db, sql, city):
    _, ids = city
    t = today()
    out = {}

    def call():
        with pg.connect(db) as sweeper:
            out["result"] = call_batches(sweeper, sweep_ctx(t, batch=1))

    # A write in flight on the fourth incubator holds its evaluation lock.
    writer = pg.connect(db, autocommit=False)
    writer.execute("SELECT pg_advisory_xact_lock_shared(api.lock_key('alerts')), "
                   "pg_advisory_xact_lock(api.lock_key('alerts', %s::text))", (ids[3],))
    thread = threading.Thread(target=call)
    thread.start()
    try:
        # The batches before it are committed while the call waits for the
        # write: seen from outside.
        deadline = time.monotonic() + 10
        while not alerts(sql, "overdue_tenant") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        seen = sorted(a["incubator"] for a in alerts(sql, "overdue_tenant"))
        waiting = thread.is_alive()
    finally:
        writer.rollback()
        writer.close()
        thread.join(10)
    # Batches of 1 or 2 (doubled after a fast one) up to the one that waits.
    assert waiting and seen in (["SW-0"], ["SW-0", "SW-1"], ["SW-0", "SW-1", "SW-2"]), (seen, out)
    result = out["result"]
    assert result["fired"] == 5 and "next" not in result, result
    sizes = batch_sizes(result)
    assert result["batches"] == len(sizes) and sum(sizes) >= 5, result
    assert sum(1 for line in result["log"] if line["level"] == "debug") == len(sizes)
    assert len(alerts(sql, "overdue_tenant")) == 5


def test_a_call_comes_back_with_next_when_its_budget_is_spent(sql, city):
    _, ids = city
    t = today()
    # No time at all: one batch, then "next" and the size to go on with.
    first = call_batches(sql, sweep_ctx(t, batch=2), budget_ms=0)
    assert first["batches"] == 1 and first["next"] == ids[1] and first["batch"] >= 1, first
    assert first["fired"] == 2
    rest = call_batches(sql, sweep_ctx(t, batch=first["batch"], after=first["next"]))
    assert "next" not in rest and rest["fired"] == 3, rest
    assert len(alerts(sql, "overdue_tenant")) == 5


def test_batches_halve_after_a_slow_one_down_to_one_incubator(sql, city):
    # With a target of 0 ms every batch is slower than it: the size asked halves.
    result = call_batches(sql, sweep_ctx(today(), batch=4), target_ms=0)
    assert batch_sizes(result) == [4, 2], result  # asked 4, then 2 (for the fifth)
    result = call_batches(sql, sweep_ctx(today(), batch=4), target_ms=0)
    assert batch_sizes(result) == [4, 2]
    result = call_batches(sql, sweep_ctx(today(), batch=2), target_ms=0)
    # (The last finds no incubator left: the one before was full.)
    assert batch_sizes(result) == [2, 1, 1, 1, 1], result
    assert result["fired"] == 0


def test_a_call_skips_the_job_another_daemon_runs(pg, db, sql, city):
    with pg.connect(db, autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(api.lock_key('job', 'alert_sweep'))")
        assert call_batches(sql, sweep_ctx(today())) is None
        other.rollback()
    assert alerts(sql, "overdue_tenant") == []


def test_a_batch_stops_at_max_events_and_the_next_goes_on_from_there(sql, city):
    _, ids = city
    t = today()
    # SW-0 has five overdue tenants to open and an open alert of a tenant
    # gone, which resolves only once every opening is written.
    for k in range(2, 6):
        sql.execute("INSERT INTO tenants (incubator_id, external_id, name, credit_code, "
                    "founded_on, admitted_on, field) VALUES (%s, %s, '企业', %s, %s, %s, "
                    "'other')", (ids[0], f"OD{k}", uscc(300 + k),
                                 overdue_admission(t) - days(100), overdue_admission(t)))
    sql.execute("INSERT INTO alerts (rule, incubator_id, subject, severity, state, value, "
                "message, started_at, last_notified_at) VALUES ('overdue_tenant', %s, 'GONE', "
                "'info', 'firing', 1, '旧告警', now(), now())", (ids[0],))

    def batch():
        return json.loads(sql.execute("SELECT api.job_alert_sweep(%s::jsonb)::text",
                                      (sweep_ctx(t, batch=2, max_events=3),)).fetchone()[0])

    def firing():
        return sorted(a["subject"] for a in alerts(sql, "overdue_tenant")
                      if a["state"] == "firing")

    # Three transitions, then the same incubators again: SW-0's first three...
    assert batch() == {"fired": 3, "resolved": 0, "repeated": 0, "cut": 1, "next": 0}
    assert firing() == ["GONE", "OD", "OD2", "OD3"]
    # ... its last two and SW-1's (the batch is SW-0 and SW-1); GONE still open...
    assert batch() == {"fired": 3, "resolved": 0, "repeated": 0, "cut": 1, "next": 0}
    assert firing() == ["GONE", "OD", "OD", "OD2", "OD3", "OD4", "OD5"]
    # ... then, every opening written, the resolution, and the batch is done.
    assert batch() == {"fired": 0, "resolved": 1, "repeated": 0, "next": ids[1]}
    assert "GONE" not in firing()
    # As the scheduler runs it: the rest, each transition notified once.
    result = call_batches(sql, sweep_ctx(t, batch=2, after=ids[1], max_events=1))
    assert result["fired"] == 3 and result["cut"] == 3 and "next" not in result, result
    assert len(firing()) == 9
    assert len(events_of(sql, "overdue_tenant", "alert.firing")) == 9
    assert len(events_of(sql, "overdue_tenant", "alert.resolved")) == 1


def test_a_tenant_write_evaluates_its_own_subjects_and_leaves_the_others(sql, city):
    api, ids = city
    t = today()
    sweep(sql, t)
    open_before = {(a["incubator"], a["subject"]) for a in alerts(sql) if a["state"] == "firing"}
    # Another tenant's write, in the same incubator, leaves SW-0's overdue
    # tenant as it is, even though the write's sweep-free evaluation would
    # not see it otherwise: its alert stays open, untouched, not notified again.
    sql.execute("UPDATE alerts SET message = 'as the sweep left it' WHERE rule = 'overdue_tenant'")
    put_tenant(api, "SW-0", "NEW", uscc(200), t - days(10))
    od = [a for a in alerts(sql, "overdue_tenant") if a["incubator"] == "SW-0"]
    assert [(a["subject"], a["state"]) for a in od] == [("OD", "firing")]
    assert sql.execute("SELECT message FROM alerts WHERE rule = 'overdue_tenant' "
                       "AND subject = 'OD' AND incubator_id = %s",
                       (ids[0],)).fetchone()[0] == "as the sweep left it"
    # The overdue tenant's own write re-evaluates it: admitted recently, it resolves.
    put_tenant(api, "SW-0", "OD", uscc(100), t - days(30), founded_on=t - days(100))
    od = [a for a in alerts(sql, "overdue_tenant") if a["incubator"] == "SW-0"]
    assert [(a["subject"], a["state"]) for a in od] == [("OD", "resolved")]
    # A tenant taking another incubator's credit code raises the duplicate at
    # both, and giving it back resolves both: its old and new codes are its subjects.
    put_tenant(api, "SW-1", "NEW", uscc(102), t - days(10))
    got = {(a["incubator"], a["subject"], a["state"]) for a in alerts(sql, "duplicate_enterprise")}
    assert got == {("SW-1", uscc(102), "firing"), ("SW-2", uscc(102), "firing")}
    put_tenant(api, "SW-1", "NEW", uscc(201), t - days(10))
    got = {(a["incubator"], a["state"]) for a in alerts(sql, "duplicate_enterprise")}
    assert got == {("SW-1", "resolved"), ("SW-2", "resolved")}
    still = {(a["incubator"], a["subject"]) for a in alerts(sql) if a["state"] == "firing"}
    assert still == open_before - {("SW-0", "OD")}
