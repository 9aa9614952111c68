"""Alert rules and their lifecycle, seen through the API, the outbox, the
webhook, NOTIFY and the daemon's log.

Dates are relative to the bureau's real today, because the API refuses dates
after tomorrow and every write evaluates the rules on the daemon's today; the
sweep is run with explicit days (api.job_alert_sweep, as the scheduler calls
it) for what only time changes.
"""

import collections
import datetime
import json
import time

import pytest

from alerting import (Listener, Receiver, add_months, alerts, days, events_of, log_events,
                      make_incubator, outbox, put_tenant, settle, snapshot, sweep, today, uscc,
                      verify_signature, wait_for_startup_sweep, wait_until, webhook_config)
from conftest import start_daemon
from harness import MAX_BODY_BYTES, Api, assert_problem


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def hooked(pg, db, workdir, receiver):
    """A daemon that delivers to the test's webhook receiver."""
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    yield d
    d.stop()


def kinds(events):
    return [(e["type"], e["payload"]["data"]["rule"]) for e in events]


def test_warning_then_breach_then_recovery_notify_each_transition_once_on_every_channel(
        pg, db, sql, hooked, receiver):
    api = Api(hooked, hooked.admin_token)
    listener = Listener(pg, db)
    t = today()
    make_incubator(api, "HRB-001", t - days(10))
    put_tenant(api, "HRB-001", "T-1", uscc(1), t - days(300), tech_on=t - days(200))

    # 5300 of 10000 m² used by a science enterprise: 0.53, below 0.50 + 0.05.
    snapshot(api, "HRB-001", t - days(2), {"T-1": 5300})
    settle(sql)
    assert kinds(outbox(sql)) == [("alert.firing", "space_share_warning")]

    # 0.49: the breach fires and supersedes the warning, which resolves.
    snapshot(api, "HRB-001", t - days(1), {"T-1": 4900})
    settle(sql)
    assert kinds(outbox(sql)[1:]) == [("alert.firing", "space_share_breach"),
                                      ("alert.resolved", "space_share_warning")]

    # 0.60: the breach resolves, and no warning comes back.
    snapshot(api, "HRB-001", t, {"T-1": 6000})
    settle(sql)
    events = outbox(sql)
    assert kinds(events[3:]) == [("alert.resolved", "space_share_breach")]
    ids = [e["id"] for e in events]
    assert len(set(ids)) == 4

    # The webhook got each event once, signed, with its id in the header and the body.
    assert len(receiver.requests) == 4
    for req, event in zip(receiver.requests, events):
        verify_signature(req)
        body = json.loads(req["body"])
        assert req["headers"]["X-Incubatord-Event-Id"] == body["id"] == event["id"]
        assert body == event["payload"]
        assert req["headers"]["Content-Type"] == "application/json"
        assert req["path"] == "/hooks/incubatord?src=test"
    warning_fired, breach_fired, warning_resolved, breach_resolved = (
        json.loads(r["body"]) for r in receiver.requests)
    assert warning_fired["type"] == "alert.firing"
    assert warning_fired["data"]["value"] == 0.53 and warning_fired["data"]["threshold"] == 0.55
    assert warning_fired["data"]["severity"] == "warning"
    assert breach_fired["data"] | {"started_at": None, "message": None} == {
        "id": breach_fired["data"]["id"], "rule": "space_share_breach", "severity": "critical",
        "incubator": "HRB-001", "subject": None, "state": "firing", "acknowledged": False,
        "started_at": None, "resolved_at": None, "value": 0.49, "threshold": 0.5,
        "message": None, "acknowledgement": None}
    # The message is Chinese, the share and the threshold in percent.
    assert "科技企业场地占比 49.00%，低于一票否决线 50.00%" in breach_fired["data"]["message"]
    assert warning_resolved["data"]["state"] == "resolved"
    assert warning_resolved["data"]["id"] == warning_fired["data"]["id"]
    assert "一票否决告警（space_share_breach）取代" in warning_resolved["data"]["message"]
    assert breach_resolved["data"]["id"] == breach_fired["data"]["id"]
    assert breach_resolved["data"]["value"] == 0.6
    assert breach_resolved["data"]["resolved_at"] is not None
    for e in (warning_fired, breach_fired, warning_resolved, breach_resolved):
        assert e["occurred_at"].endswith("Z")

    # syslog: one line per event, at the level of its kind.
    lines = log_events(hooked)
    assert [line["event_id"] for line in lines] == ids
    assert [(line["event"], line["rule"], line["level"]) for line in lines] == [
        ("alert.firing", "space_share_warning", "warning"),
        ("alert.firing", "space_share_breach", "alert"),
        ("alert.resolved", "space_share_warning", "notice"),
        ("alert.resolved", "space_share_breach", "notice")]
    assert lines[1]["share"] == "0.4900" and lines[1]["threshold"] == "0.5000"
    assert lines[1]["incubator"] == "HRB-001"
    assert lines[1]["alert_id"] == str(breach_fired["data"]["id"])

    # NOTIFY incubatord_events: each event id once.
    wait_until(lambda: len(listener.poll()) >= 4, what="four notifications")
    time.sleep(0.2)
    assert sorted(listener.poll()) == sorted(ids)
    listener.close()

    # The alerts as the API shows them: none firing, both resolved.
    assert api.get("/v1/alerts").json() == {"items": [], "next_cursor": None}
    got = api.get("/v1/alerts?state=all").json()["items"]
    assert [(a["rule"], a["state"]) for a in got] == [("space_share_breach", "resolved"),
                                                      ("space_share_warning", "resolved")]


def test_shares_are_compared_exactly_not_rounded(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    t = today()
    make_incubator(api, "HRB-EX", t - days(10))
    put_tenant(api, "HRB-EX", "T-1", uscc(2), t - days(300), tech_on=t - days(200))
    # Exactly 0.5 is not below the threshold: a warning, not a breach.
    snapshot(api, "HRB-EX", t - days(3), {"T-1": 5000})
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [("space_share_warning", "firing")]
    # Exactly 0.55 is not below 0.50 + 0.05: all clear.
    snapshot(api, "HRB-EX", t - days(2), {"T-1": 5500})
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [("space_share_warning", "resolved")]
    # 0.49995 shows as 0.5 but is below 0.5: a breach.
    snapshot(api, "HRB-EX", t - days(1), {"T-1": 4999.5})
    fired = api.get("/v1/alerts").json()["items"]
    assert [(a["rule"], a["value"], a["threshold"]) for a in fired] == [
        ("space_share_breach", 0.5, 0.5)]


def test_a_certification_dated_tomorrow_counts_from_tomorrow_through_the_sweep(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    make_incubator(api, "HRB-FC", t - days(10))
    put_tenant(api, "HRB-FC", "T-1", uscc(3), t - days(300), tech_on=t + days(1))
    snapshot(api, "HRB-FC", t, {"T-1": 6000})
    # Today the tenant is not yet a science enterprise: share 0.
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [("space_share_breach", "firing")]
    sweep(sql, t)
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [("space_share_breach", "firing")]
    sweep(sql, t + days(1))
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [("space_share_breach", "resolved")]


def test_stale_data_fires_after_stale_after_days_without_a_snapshot(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    # Opened 100 days ago, registered today and never reported: not stale at once,
    # for without a snapshot it counts from the later of opening and registration.
    make_incubator(api, "HRB-ST", t - days(100))
    assert api.get("/v1/alerts?rule=stale_data").json()["items"] == []
    sweep(sql, t + days(34))
    assert alerts(sql, "stale_data") == []
    sweep(sql, t + days(35))
    got = api.get("/v1/alerts?rule=stale_data").json()["items"]
    assert [(a["incubator"], a["value"], a["threshold"], a["severity"]) for a in got] == [
        ("HRB-ST", 35, 35, "warning")]
    assert f"自 {t} 登记以来" in got[0]["message"]
    # A snapshot today resolves it (public service space keeps the share at 0.6).
    snapshot(api, "HRB-ST", t, {}, public_service=6000)
    assert [a["state"] for a in alerts(sql, "stale_data")] == ["resolved"]

    # 34 days later it is not stale yet; 35 days later it is.
    sweep(sql, t + days(34))
    assert [a["state"] for a in alerts(sql, "stale_data")] == ["resolved"]
    sweep(sql, t + days(35))
    assert [a["state"] for a in alerts(sql, "stale_data")] == ["resolved", "firing"]
    fired = events_of(sql, "stale_data", "alert.firing")[-1]["payload"]["data"]
    assert (fired["value"], fired["threshold"]) == (35, 35)
    assert str(t) in fired["message"]

    # Fresh data, even with the same content, resolves it.
    snapshot(api, "HRB-ST", t + days(1), {}, public_service=6000)
    assert [a["state"] for a in alerts(sql, "stale_data")] == ["resolved", "resolved"]
    settle(sql)
    lines = [e for e in log_events(daemon) if e["rule"] == "stale_data"]
    assert [(e["event"], e["level"]) for e in lines] == [
        ("alert.firing", "warning"), ("alert.resolved", "notice"),
        ("alert.firing", "warning"), ("alert.resolved", "notice")]
    assert [e["days"] for e in lines[:3]] == ["35", "0", "35"]
    # Only stale_data ever fired here.
    assert {a["rule"] for a in alerts(sql)} == {"stale_data"}


def test_stale_after_days_and_repeat_hours_come_from_the_policy_in_force(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    make_incubator(api, "HRB-PO", t - days(5))
    snapshot(api, "HRB-PO", t - days(5), {}, public_service=6000)
    sql.execute("""INSERT INTO policies SELECT 2, effective_from, veto_threshold, warning_margin,
                   reward_per_graduate_fen, high_tech_bonus_fen, annual_cap_fen,
                   incubation_limit_months, extended_limit_months, extended_fields,
                   entry_max_age_months, graduation_investment_min_fen,
                   graduation_revenue_2y_min_fen, 10, 2, plan, now(), 'test'
                   FROM policies WHERE version = 1""")
    sweep(sql, t + days(4))
    assert alerts(sql, "stale_data") == []
    now = datetime.datetime.now(datetime.timezone.utc)
    sweep(sql, t + days(5), now)
    assert [a["state"] for a in alerts(sql, "stale_data")] == ["firing"]
    sweep(sql, t + days(5), now + datetime.timedelta(hours=1, minutes=59))
    assert events_of(sql, "stale_data", "alert.repeat") == []
    sweep(sql, t + days(5), now + datetime.timedelta(hours=2))
    assert len(events_of(sql, "stale_data", "alert.repeat")) == 1


def test_overdue_fires_the_day_after_the_incubation_limit_48_or_60_months_by_field(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    make_incubator(api, "HRB-OD", t - days(5))
    admitted = add_months(t, -48)
    while add_months(admitted, 48) < t:
        admitted += days(1)
    limit48, limit60 = add_months(admitted, 48), add_months(admitted, 60)
    put_tenant(api, "HRB-OD", "T-EI", uscc(11), admitted, field="electronic_information")
    put_tenant(api, "HRB-OD", "T-BIO", uscc(12), admitted, field="biomedicine")
    assert api.get("/v1/incubators/HRB-OD/tenants/T-EI").json()["incubation_limit_on"] == \
        str(limit48)
    assert api.get("/v1/incubators/HRB-OD/tenants/T-BIO").json()["incubation_limit_on"] == \
        str(limit60)
    # On its limit a tenant is not overdue (the writes evaluated today, <= limit48).
    assert alerts(sql, "overdue_tenant") == []
    sweep(sql, limit48)
    assert alerts(sql, "overdue_tenant") == []
    sweep(sql, limit48 + days(1))
    assert [(a["subject"], a["state"]) for a in alerts(sql, "overdue_tenant")] == [
        ("T-EI", "firing")]
    sweep(sql, limit60)
    assert [a["subject"] for a in alerts(sql, "overdue_tenant")] == ["T-EI"]
    sweep(sql, limit60 + days(1))
    assert [(a["subject"], a["state"]) for a in alerts(sql, "overdue_tenant")] == [
        ("T-EI", "firing"), ("T-BIO", "firing")]
    fired = [e["payload"]["data"] for e in events_of(sql, "overdue_tenant", "alert.firing")]
    assert [(d["subject"], d["severity"], d["value"]) for d in fired] == [
        ("T-EI", "info", 1), ("T-BIO", "info", 1)]
    settle(sql)
    lines = [e for e in log_events(daemon) if e["rule"] == "overdue_tenant"]
    assert [(e["subject"], e["level"], e["days_overdue"]) for e in lines] == [
        ("T-EI", "notice", "1"), ("T-BIO", "notice", "1")]


def test_a_snapshot_evaluates_only_the_rules_a_snapshot_can_change(sql, daemon):
    """A snapshot changes occupancy, not the tenants: it re-evaluates the share and
    stale data rules and leaves the tenants' alerts as the last evaluation of
    those left them (here, an overdue alert the sweep raised for a later day,
    which an evaluation of every rule on today would resolve)."""
    api = Api(daemon, daemon.admin_token)
    wait_for_startup_sweep(daemon)
    t = today()
    make_incubator(api, "HRB-SN", t - days(5))
    put_tenant(api, "HRB-SN", "T-1", uscc(31), t - days(10), tech_on=t - days(10))
    limit = add_months(t - days(10), 48)
    sweep(sql, limit + days(1))
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [
        ("stale_data", "firing"), ("overdue_tenant", "firing")]
    before = len(outbox(sql))

    snapshot(api, "HRB-SN", t, {"T-1": 6000})
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [
        ("stale_data", "resolved"), ("overdue_tenant", "firing")]
    assert [e["type"] for e in outbox(sql)[before:]] == ["alert.resolved"]
    # The sweep, which evaluates every rule, brings the rest in line with today.
    sweep(sql, t)
    assert [(a["rule"], a["state"]) for a in alerts(sql)] == [
        ("stale_data", "resolved"), ("overdue_tenant", "resolved")]


def test_duplicate_enterprise_fires_at_both_incubators_and_resolves_when_one_exits(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    t = today()
    make_incubator(api, "HRB-DA", t - days(5))
    make_incubator(api, "HRB-DB", t - days(5))
    code = uscc(21)
    put_tenant(api, "HRB-DA", "X-1", code, t - days(20))
    put_tenant(api, "HRB-DA", "X-2", uscc(22), t - days(20))
    assert alerts(sql, "duplicate_enterprise") == []
    put_tenant(api, "HRB-DB", "Y-1", code, t - days(3))
    got = alerts(sql, "duplicate_enterprise")
    assert [(a["incubator"], a["subject"], a["state"]) for a in got] == [
        ("HRB-DA", code, "firing"), ("HRB-DB", code, "firing")]
    listed = api.get("/v1/alerts?rule=duplicate_enterprise").json()["items"]
    assert {(a["incubator"], a["value"], a["severity"]) for a in listed} == {
        ("HRB-DA", 2, "warning"), ("HRB-DB", 2, "warning")}
    assert "HRB-DA, HRB-DB" in listed[0]["message"]

    r = api.post("/v1/incubators/HRB-DB/tenants/Y-1/exit", {"exited_on": str(t),
                                                            "reason": "relocated"})
    assert r.status == 200, r
    assert [(a["incubator"], a["state"]) for a in alerts(sql, "duplicate_enterprise")] == [
        ("HRB-DA", "resolved"), ("HRB-DB", "resolved")]
    assert [e["type"] for e in events_of(sql, "duplicate_enterprise")] == [
        "alert.firing", "alert.firing", "alert.resolved", "alert.resolved"]


def test_acknowledgement_stops_repeats_and_resolution_still_notifies(sql, hooked, receiver):
    api = Api(hooked, hooked.admin_token)
    t = today()
    make_incubator(api, "HRB-AK", t - days(10))
    put_tenant(api, "HRB-AK", "T-1", uscc(31), t - days(300), tech_on=t - days(200))
    snapshot(api, "HRB-AK", t - days(1), {"T-1": 4000})
    now = datetime.datetime.now(datetime.timezone.utc)
    wait_for_startup_sweep(hooked)
    breach = api.get("/v1/alerts").json()["items"][0]
    assert breach["rule"] == "space_share_breach" and not breach["acknowledged"]

    # Repeats every repeat_hours (24) while firing and unacknowledged.
    sweep(sql, t, now + datetime.timedelta(hours=23))
    assert events_of(sql, type="alert.repeat") == []
    sweep(sql, t, now + datetime.timedelta(hours=24, minutes=1))
    assert len(events_of(sql, type="alert.repeat")) == 1
    sweep(sql, t, now + datetime.timedelta(hours=24, minutes=2))
    assert len(events_of(sql, type="alert.repeat")) == 1

    r = api.post(f"/v1/alerts/{breach['id']}/ack", {"note": "区科技局已约谈，整改中"})
    assert r.status == 200, r
    acked = r.json()
    assert acked["acknowledged"] is True and acked["state"] == "firing"
    assert acked["acknowledgement"]["note"] == "区科技局已约谈，整改中"
    assert acked["acknowledgement"]["by"] == "test-admin"
    # Acknowledging again changes nothing.
    again = api.post(f"/v1/alerts/{breach['id']}/ack", {"note": "another"})
    assert again.status == 200 and again.json()["acknowledgement"] == acked["acknowledgement"]

    sweep(sql, t, now + datetime.timedelta(hours=49))
    sweep(sql, t, now + datetime.timedelta(hours=100))
    assert len(events_of(sql, type="alert.repeat")) == 1

    snapshot(api, "HRB-AK", t, {"T-1": 7000})
    settle(sql)
    assert kinds(outbox(sql)) == [("alert.firing", "space_share_breach"),
                                  ("alert.repeat", "space_share_breach"),
                                  ("alert.resolved", "space_share_breach")]
    hooks = [json.loads(r["body"]) for r in receiver.requests]
    assert [h["type"] for h in hooks] == ["alert.firing", "alert.repeat", "alert.resolved"]
    assert hooks[2]["data"]["acknowledged"] is True
    assert [(e["event"], e["level"]) for e in log_events(hooked)] == [
        ("alert.firing", "alert"), ("alert.repeat", "alert"), ("alert.resolved", "notice")]
    audit = api.get("/v1/audit?incubator=HRB-AK").json()["items"]
    assert sum("acknowledged alert" in a["summary"] for a in audit) == 1


def test_an_area_change_re_evaluates_the_share(sql, daemon):
    api = Api(daemon, daemon.admin_token)
    t = today()
    make_incubator(api, "HRB-AR", t - days(10))
    put_tenant(api, "HRB-AR", "T-1", uscc(41), t - days(300), tech_on=t - days(200))
    snapshot(api, "HRB-AR", t - days(1), {"T-1": 6000})
    assert alerts(sql) == []
    r = api.patch("/v1/incubators/HRB-AR", {"disposable_area_m2": 13000,
                                             "effective_on": str(t)})
    assert r.status == 200, r
    # 6000 / 13000 = 0.4615...
    got = api.get("/v1/alerts").json()["items"]
    assert [(a["rule"], a["value"]) for a in got] == [("space_share_breach", 0.4615)]


# ---- GET /v1/alerts ----

@pytest.fixture
def three_incubators(sql, daemon):
    """HRB-A: a firing breach; HRB-B: a resolved breach; HRB-C: a firing warning."""
    api = Api(daemon, daemon.admin_token)
    t = today()
    for i, code in enumerate(["HRB-A", "HRB-B", "HRB-C"]):
        make_incubator(api, code, t - days(10))
        put_tenant(api, code, "T-1", uscc(50 + i), t - days(300), tech_on=t - days(200))
    snapshot(api, "HRB-A", t - days(1), {"T-1": 1000})
    snapshot(api, "HRB-B", t - days(1), {"T-1": 2000})
    snapshot(api, "HRB-C", t - days(1), {"T-1": 5200})
    snapshot(api, "HRB-B", t, {"T-1": 8000})
    return api


def test_alert_list_filters_pages_and_scopes(daemon, three_incubators):
    api = three_incubators
    firing = api.get("/v1/alerts").json()
    assert [(a["incubator"], a["rule"]) for a in firing["items"]] == [
        ("HRB-C", "space_share_warning"), ("HRB-A", "space_share_breach")]
    assert firing["next_cursor"] is None
    resolved = api.get("/v1/alerts?state=resolved").json()["items"]
    assert [(a["incubator"], a["state"]) for a in resolved] == [("HRB-B", "resolved")]
    everything = api.get("/v1/alerts?state=all").json()["items"]
    assert len(everything) == 3
    assert [a["id"] for a in everything] == sorted((a["id"] for a in everything), reverse=True)
    assert [a["incubator"] for a in api.get("/v1/alerts?incubator=HRB-A&state=all")
            .json()["items"]] == ["HRB-A"]
    assert [a["incubator"] for a in api.get("/v1/alerts?rule=space_share_warning")
            .json()["items"]] == ["HRB-C"]
    assert api.get("/v1/alerts?rule=stale_data&state=all").json()["items"] == []

    # Pages of one, in the same order, each alert once.
    seen, cursor = [], None
    while True:
        page = api.get("/v1/alerts?state=all&limit=1" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page
        seen += [a["id"] for a in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["id"] for a in everything]

    # An incubator's token sees its own alerts only.
    r = api.post("/v1/incubators/HRB-A/tokens", {"name": "erp"})
    own = Api(daemon, r.json()["token"])
    assert [a["incubator"] for a in own.get("/v1/alerts?state=all").json()["items"]] == ["HRB-A"]
    assert [a["incubator"] for a in own.get("/v1/alerts?incubator=HRB-A").json()["items"]] == [
        "HRB-A"]
    assert_problem(own.get("/v1/alerts?incubator=HRB-B"), 403)
    assert_problem(own.get("/v1/alerts?incubator=NOPE"), 403)
    assert_problem(api.get("/v1/alerts?incubator=NOPE"), 404)


def test_alert_list_rejects_bad_queries(daemon, three_incubators):
    api = three_incubators
    assert_problem(api.get("/v1/alerts?state=open"), 400, "state")
    assert_problem(api.get("/v1/alerts?rule=space_share"), 400, "rule")
    assert_problem(api.get("/v1/alerts?limit=0"), 400, "limit")
    assert_problem(api.get("/v1/alerts?limit=501"), 400, "limit")
    assert_problem(api.get("/v1/alerts?limit=ten"), 400, "limit")
    assert_problem(api.get("/v1/alerts?cursor=not%20one"), 400, "cursor")
    assert_problem(api.get("/v1/alerts?cursor=Zm9v"), 400, "cursor")
    assert_problem(api.get("/v1/alerts?incubator=-bad"), 400, "incubator")
    assert_problem(api.get("/v1/alerts?severity=critical"), 400, "severity")
    assert_problem(api.get("/v1/alerts?state=all&state=firing"), 400, "state")
    assert_problem(daemon.request("GET", "/v1/alerts"), 401)
    assert_problem(daemon.request("GET", "/v1/alerts", token="ikd_" + "x" * 43), 401)
    assert_problem(api.delete("/v1/alerts"), 405)


# ---- POST /v1/alerts/{id}/ack ----

def test_ack_rejects_bad_input_and_changes_nothing(sql, daemon, three_incubators):
    api = three_incubators
    firing = {a["incubator"]: a for a in api.get("/v1/alerts").json()["items"]}
    resolved = api.get("/v1/alerts?state=resolved").json()["items"][0]
    path = f"/v1/alerts/{firing['HRB-A']['id']}/ack"
    audit_before = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]

    assert_problem(daemon.request("POST", path, json_body={"note": "x"}), 401)
    token = api.post("/v1/incubators/HRB-A/tokens", {"name": "erp"}).json()["token"]
    audit_before += 1
    assert_problem(Api(daemon, token).post(path, {"note": "x"}), 403)
    def raw(body, **kw):
        return daemon.request("POST", path, token=daemon.admin_token, body=body, **kw)

    assert_problem(raw(b'{"note": "x"'), 400)
    assert_problem(raw(b'{"note": "x", "note": "y"}'), 400)
    assert_problem(raw(b'{"note": "x"}', content_type="text/plain"), 415)
    assert_problem(raw(b'["note"]'), 422)
    assert_problem(api.post(path, {}), 422, "note")
    assert_problem(api.post(path, {"note": 42}), 422, "note")
    assert_problem(api.post(path, {"note": ""}), 422, "note")
    assert_problem(api.post(path, {"note": "   "}), 422, "note")
    assert_problem(api.post(path, {"note": "x" * 1001}), 422, "note")
    assert_problem(api.post(path, {"note": "x", "by": "me"}), 422, "by")
    assert_problem(raw(b'{"note": "' + b"x" * MAX_BODY_BYTES + b'"}'), 413)
    assert_problem(api.post("/v1/alerts/999999/ack", {"note": "x"}), 404)
    assert_problem(api.post("/v1/alerts/0/ack", {"note": "x"}), 404)
    assert_problem(api.post("/v1/alerts/abc/ack", {"note": "x"}), 404)
    assert_problem(api.post(f"/v1/alerts/{resolved['id']}/ack", {"note": "x"}), 409)
    assert_problem(api.get(path), 405)

    rows = sql.execute("SELECT count(*) FROM alerts WHERE acknowledged").fetchone()[0]
    assert rows == 0
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit_before
    assert api.post(path, {"note": "x" * 1000}).status == 200
    assert sql.execute("SELECT count(*) FROM alerts WHERE acknowledged").fetchone()[0] == 1


def test_concurrent_writes_and_sweeps_notify_every_transition_exactly_once(pg, db, sql, workdir):
    """Snapshots of one incubator, tenant writes that make and unmake a duplicate
    across two incubators, and sweeps, all at once: every request succeeds (no
    deadlock), each alert has one firing and at most one resolution, an
    identity's alerts never overlap, and the end state matches the end data."""
    import random
    import threading

    d = start_daemon(pg, db, workdir, "[database]\npool_size = 6")
    try:
        api = Api(d, d.admin_token)
        wait_for_startup_sweep(d)
        t = today()
        make_incubator(api, "HRB-CI", t - days(10))
        make_incubator(api, "HRB-CJ", t - days(10))
        shared = uscc(61)
        put_tenant(api, "HRB-CI", "T-1", shared, t - days(300), tech_on=t - days(200))
        # Created first: two concurrent creations of one tenant are another matter.
        put_tenant(api, "HRB-CJ", "D-1", uscc(62), t - days(300))
        statuses = []
        lock = threading.Lock()

        def snapshots(seed):
            rnd = random.Random(seed)
            for _ in range(12):
                area = rnd.choice([4000, 5200, 7000])
                r = api.put("/v1/incubators/HRB-CI/occupancy", {
                    "as_of": str(t), "public_service_area_m2": 0,
                    "tenants": [{"external_id": "T-1", "area_m2": area}]})
                with lock:
                    statuses.append(r.status)

        def duplicates(seed):
            rnd = random.Random(seed)
            for _ in range(12):
                code = shared if rnd.random() < 0.5 else uscc(62)
                r = api.put("/v1/incubators/HRB-CJ/tenants/D-1", {
                    "name": "企业 D-1", "credit_code": code, "founded_on": str(t - days(400)),
                    "admitted_on": str(t - days(300)), "field": "electronic_information"})
                with lock:
                    statuses.append(r.status)

        def sweeps():
            with pg.connect(db) as c:
                for _ in range(6):
                    sweep(c, t)

        threads = [threading.Thread(target=snapshots, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=duplicates, args=(10 + i,)) for i in range(2)]
        threads += [threading.Thread(target=sweeps)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert set(statuses) <= {200, 201}, statuses
        sweep(sql, t)
        settle(sql)

        events = collections_by_alert(outbox(sql))
        rows = alerts(sql)
        assert len(rows) >= 6  # the writes made many transitions, not a quiet run
        for a in rows:
            types = events[a["id"]]
            assert types == (["alert.firing", "alert.resolved"] if a["state"] == "resolved"
                             else ["alert.firing"]), (a, types)
        by_identity = {}
        for a in rows:
            by_identity.setdefault((a["rule"], a["incubator"], a["subject"]), []).append(a)
        for identity, group in by_identity.items():
            assert [a["state"] for a in group[:-1]] == ["resolved"] * (len(group) - 1), identity

        # The end state follows the end data, computed here.
        area = api.get("/v1/incubators/HRB-CI/occupancy").json()["tenants"][0]["area_m2"]
        share = area / 10000
        expected = {("space_share_breach" if share < 0.5 else "space_share_warning"
                     if share < 0.55 else None)} - {None}
        code_now = api.get("/v1/incubators/HRB-CJ/tenants/D-1").json()["credit_code"]
        if code_now == shared:
            expected.add("duplicate_enterprise")
        open_rules = {a["rule"] for a in rows if a["state"] == "firing"}
        assert open_rules == expected
        lines = collections.Counter(e["event_id"] for e in log_events(d))
        assert set(lines.values()) == {1} and len(lines) == len(outbox(sql))
    finally:
        d.stop()


def collections_by_alert(events):
    by = {}
    for e in events:
        by.setdefault(e["payload"]["data"]["id"], []).append(e["type"])
    return by


def test_the_sweep_period_is_reloaded_with_sighup(sql, daemon):
    import signal

    wait_for_startup_sweep(daemon)
    assert daemon.log().count("job alert_sweep: done") == 1
    daemon.write_config("[schedule]\nalert_sweep_seconds = 1")
    daemon.kill(signal.SIGHUP)
    wait_until(lambda: daemon.log().count("job alert_sweep: done") >= 3, timeout=10,
               what="two more sweeps a second apart")
    assert "config: [schedule] alert_sweep_seconds reloaded" in daemon.log()
