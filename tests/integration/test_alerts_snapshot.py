"""The alert evaluation a snapshot ends with takes today's share from the
snapshot's own sums (the listed tenants' areas by kind, the areas in force
today) instead of summing the incubator's occupancy again. It must come out
exactly as an evaluation from the tables, the sweep's, would: after every
snapshot each share alert carries the figures and the message that the tables
give, and a sweep on the same day finds nothing to change and notifies
nothing.

The snapshots here are dated before today, on today and tomorrow, with a
certification, an exit and an area change between the snapshot's day and
today, so that the snapshot's day and today differ in every part of the
share. Expected figures are computed here, in Python.
"""

from decimal import ROUND_HALF_UP, Decimal

from alerting import (days, make_incubator, outbox, put_tenant, snapshot, sweep, today, uscc,
                      wait_for_startup_sweep)
from harness import Api

SHARE_RULES = ["space_share_breach", "space_share_warning"]


def percent(x):
    return str((x * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)) + "%"


COLUMNS = "a.id, a.rule, a.state, a.value, a.threshold, a.message, a.started_at, " \
          "a.resolved_at, a.last_notified_at, a.acknowledged"


def share_alerts(sql, code):
    """Every share alert of the incubator: (id, rule, state, value, threshold,
    message, started_at, resolved_at, last_notified_at, acknowledged)."""
    return sql.execute(
        f"SELECT {COLUMNS} FROM alerts a JOIN incubators i ON i.id = a.incubator_id "
        "WHERE i.code = %s AND a.rule = ANY (%s) ORDER BY a.id", (code, SHARE_RULES)).fetchall()


def share_events(sql):
    return [e for e in outbox(sql) if e["payload"]["data"].get("rule") in SHARE_RULES]


def from_tables(sql, code, on):
    """The share rules' observations computed from the tables, as the sweep
    computes them: {rule: (firing, value, threshold, message)}."""
    rows = sql.execute(
        "SELECT o.rule, o.firing, o.value, o.threshold, o.message FROM incubators i "
        "CROSS JOIN LATERAL api.alert_observations(ARRAY[i.id], %s::date, %s::text[], now()) o "
        "WHERE i.code = %s", (on, SHARE_RULES, code)).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def put_and_compare(sql, api, code, t, as_of, areas, public_service):
    """Sends the snapshot, checks its share alerts against the tables' figures
    and that a sweep of the same day changes nothing; returns the share
    events the snapshot wrote."""
    open_before = {a[0] for a in share_alerts(sql, code) if a[2] == "firing"}
    events_before = len(share_events(sql))
    snapshot(api, code, as_of, areas, public_service)

    after = share_alerts(sql, code)
    truth = from_tables(sql, code, t)
    assert sorted(truth) == SHARE_RULES
    for id_, rule, state, value, threshold, message, *_ in after:
        if state == "firing":
            assert truth[rule][0], (rule, truth[rule])
            assert (value, threshold, message) == truth[rule][1:]
        elif id_ in open_before:
            # Resolved by this snapshot: with the figures of its resolution.
            assert not truth[rule][0], (rule, truth[rule])
            assert (value, threshold, message) == truth[rule][1:]
    for rule, (firing, *_) in truth.items():
        assert firing == any(a[1] == rule and a[2] == "firing" for a in after), rule

    written = share_events(sql)[events_before:]
    sweep(sql, t)
    assert share_alerts(sql, code) == after
    assert len(share_events(sql)) == events_before + len(written)
    return written


def kinds(events):
    return [(e["type"], e["payload"]["data"]["rule"]) for e in events]


def start(daemon, code, opened_ago, area, public_service):
    """An incubator, after the daemon's first sweep: (api, today)."""
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    make_incubator(api, code, t - days(opened_ago), area=area, public_service=public_service)
    return api, t


def leave(api, code, external_id, on):
    r = api.post(f"/v1/incubators/{code}/tenants/{external_id}/exit",
                 {"exited_on": str(on), "reason": "relocated"})
    assert r.status == 200, r


def test_a_snapshot_crossing_the_line_fires_and_clears_as_the_sweep_would(sql, daemon):
    code = "HRB-EQ"
    api, t = start(daemon, code, 400, 10000, 500)
    put_tenant(api, code, "T-A", uscc(501), t - days(300), tech_on=t - days(200))
    # Certified the day before today: not yet a science enterprise on t - 3.
    put_tenant(api, code, "T-B", uscc(502), t - days(300), tech_on=t - days(1))
    put_tenant(api, code, "T-C", uscc(503), t - days(300))
    put_tenant(api, code, "T-D", uscc(504), t - days(300), tech_on=t - days(200))
    # T-D leaves the day before today, recorded ahead of the snapshot.
    leave(api, code, "T-D", t - days(1))

    # On t - 3: (3000 + 1500 + 500) / 10000 = 0.50, not below the line; today
    # T-B counts and T-D is gone: (3000 + 1000 + 500) / 10000 = 0.45.
    written = put_and_compare(sql, api, code, t, t - days(3),
                              {"T-A": 3000, "T-B": 1000, "T-C": 2000, "T-D": 1500}, 500)
    assert kinds(written) == [("alert.firing", "space_share_breach")]
    data = written[0]["payload"]["data"]
    assert (data["value"], data["threshold"]) == (0.45, 0.5)
    assert data["message"] == f"{code} 科技企业场地占比 45.00%，低于一票否决线 50.00%"

    # A disposable area of 9500 from yesterday on (4500 / 9500: still a
    # breach), then a snapshot of t - 2 that restores today's share:
    # (3000 + 1000 + 1900) / 9500 = 0.6210...
    r = api.patch(f"/v1/incubators/{code}", {"disposable_area_m2": 9500,
                                              "effective_on": str(t - days(1))})
    assert r.status == 200, r
    written = put_and_compare(sql, api, code, t, t - days(2),
                              {"T-A": 3000, "T-B": 1000, "T-C": 2000, "T-D": 1400}, 1900)
    share = Decimal(5900) / Decimal(9500)
    assert kinds(written) == [("alert.resolved", "space_share_breach")]
    data = written[0]["payload"]["data"]
    assert data["value"] == float(share.quantize(Decimal("0.0001"), ROUND_HALF_UP))
    assert data["message"] == f"{code} 科技企业场地占比 {percent(share)}，不低于一票否决线 50.00%"

    # Today: (3000 + 1000 + 1000) / 9500 = 0.5263..., in the warning band.
    written = put_and_compare(sql, api, code, t, t,
                              {"T-A": 3000, "T-B": 1000, "T-C": 2000}, 1000)
    share = Decimal(5000) / Decimal(9500)
    assert kinds(written) == [("alert.firing", "space_share_warning")]
    assert written[0]["payload"]["data"]["message"] == (
        f"{code} 科技企业场地占比 {percent(share)}，低于预警线 55.00%（一票否决线 50.00%）")

    # Tomorrow's snapshot leaves today's share as it was: nothing changes today.
    assert put_and_compare(sql, api, code, t, t + days(1), {"T-C": 2000}, 0) == []
    # The same snapshot again: nothing at all.
    assert put_and_compare(sql, api, code, t, t + days(1), {"T-C": 2000}, 0) == []
    assert kinds(share_events(sql)) == [
        ("alert.firing", "space_share_breach"), ("alert.resolved", "space_share_breach"),
        ("alert.firing", "space_share_warning")]


def test_a_replaced_snapshot_whose_tenants_left_by_today_fires_and_clears_as_the_sweep_would(
        sql, daemon):
    """A snapshot whose listed tenants have all left by today (its share today
    is the public service area alone), then its replacement of the same day."""
    code = "HRB-EQ2"
    api, t = start(daemon, code, 100, 1000, 0)
    put_tenant(api, code, "T-1", uscc(511), t - days(90), tech_on=t - days(90))
    leave(api, code, "T-1", t)
    # On t - 1 T-1 fills the incubator; today it has left: 100 / 1000 = 0.1.
    written = put_and_compare(sql, api, code, t, t - days(1), {"T-1": 900}, 100)
    assert kinds(written) == [("alert.firing", "space_share_breach")]
    assert written[0]["payload"]["data"]["message"] == (
        f"{code} 科技企业场地占比 10.00%，低于一票否决线 50.00%")
    # The same day again, with more public service area: 600 / 1000 = 0.6.
    written = put_and_compare(sql, api, code, t, t - days(1), {"T-1": 400}, 600)
    assert kinds(written) == [("alert.resolved", "space_share_breach")]
