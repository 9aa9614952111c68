"""Closing an incubator, POST /v1/incubators/{code}/close, with each of its
consequences (occupancy ends, incubating tenants exit with incubator_closed,
writes 409, its tokens 401, no alerts and the open ones resolved, no share
after closed_on, the month's average up to it, no payout line or report row
in later periods, history readable, closing twice 409), the bad-input matrix
with the database read back unchanged; and stale_data counted from the day
an incubator was registered."""

import datetime

import pytest

from alerting import alerts, sweep
from harness import MAX_BODY_BYTES, assert_problem
from ingestlib import (Unchanged, freeze_until, hrb, occupancy_intervals, other,  # noqa: F401
                       put_tenant, refuse_all, today, tenant_body)

CODE = "HRB-001"
BASE = f"/v1/incubators/{CODE}"
CLOSED_ON = "2026-10-15"


@pytest.fixture
def town(admin, hrb, sql):
    """HRB-001 with three tenants (T-1 certified, T-2 graduated, T-3 not certified),
    snapshots on 1 September and 1 October 2026, and a breach alert firing."""
    assert put_tenant(hrb, "T-1", 1).status == 201
    assert put_tenant(hrb, "T-2", 2, high_tech_certified_on="2025-10-01").status == 201
    assert put_tenant(hrb, "T-3", 3, tech_certified_on=None).status == 201
    r = hrb.post(f"{BASE}/tenants/T-2/graduation", {"graduated_on": "2026-01-10",
                                                   "basis": "high_tech"})
    assert r.status == 200, r
    for as_of, t1 in (("2026-09-01", 3000), ("2026-10-01", 1000)):
        r = hrb.put(f"{BASE}/occupancy", {"as_of": as_of, "public_service_area_m2": 1500,
                                          "tenants": [{"external_id": "T-1", "area_m2": t1},
                                                      {"external_id": "T-2", "area_m2": 500},
                                                      {"external_id": "T-3", "area_m2": 4000}]})
        assert r.status == 200, r
    # 1000 + 500 + 1500 of 12000 = 0.25: below the veto threshold from 1 October.
    firing = {a["rule"] for a in alerts(sql) if a["state"] == "firing"}
    assert "space_share_breach" in firing, firing  # and stale_data, for a snapshot of October
    return hrb


def close(api, closed_on=CLOSED_ON, code=CODE, reason="运营主体注销"):
    return api.post(f"/v1/incubators/{code}/close", {"closed_on": closed_on, "reason": reason})


def test_close_answers_the_incubator_with_closed_on(admin, town, sql):
    audits = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    r = close(admin)
    assert r.status == 200, r
    body = r.json()
    assert body["code"] == CODE and body["closed_on"] == CLOSED_ON
    assert body["disposable_area_m2"] == 12000, "the areas of the closing day"
    assert admin.get(BASE).json()["closed_on"] == CLOSED_ON
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audits + 1
    summary, details = sql.execute(
        "SELECT summary, details FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert "closed incubator HRB-001" in summary
    assert details["reason"] == "运营主体注销" and details["tenants_exited"] == 2
    listed = {i["code"]: i["closed_on"] for i in admin.get("/v1/incubators").json()["items"]}
    assert listed == {CODE: CLOSED_ON}


def test_tenants_exit_and_occupancy_ends_on_closed_on(admin, town, sql):
    assert close(admin).status == 200
    t = {x["external_id"]: x for x in admin.get(f"{BASE}/tenants?limit=500").json()["items"]}
    for ext in ("T-1", "T-3"):
        assert (t[ext]["status"], t[ext]["exited_on"], t[ext]["exit_reason"]) == \
            ("exited", CLOSED_ON, "incubator_closed")
        assert t[ext]["area_m2"] == 0
    assert (t["T-2"]["status"], t["T-2"]["exited_on"]) == ("graduated", None)
    end = datetime.date.fromisoformat(CLOSED_ON)
    for ext, intervals in occupancy_intervals(sql).items():
        assert intervals[-1][1] == end, (ext, intervals)


def test_share_until_closed_on_then_no_data(admin, town):
    assert close(admin).status == 200
    on_day = admin.get(f"{BASE}/space-share?on={CLOSED_ON}").json()
    assert on_day["status"] != "no_data" and on_day["share"] == 0.125  # tenants gone: 1500/12000
    assert admin.get(f"{BASE}/space-share?on=2026-10-14").json()["share"] == 0.25
    for d in ("2026-10-16", str(today())):
        s = admin.get(f"{BASE}/space-share?on={d}").json()
        assert (s["status"], s["share"]) == ("no_data", None), s
    m = admin.get(f"{BASE}/metrics?period=2026-10").json()
    assert m["days_with_data"] == 15, m
    # 14 days at 0.25 and the closing day at 0.125, over its 15 days.
    assert m["space_share"]["average"] == round((14 * 0.25 + 0.125) / 15, 4)
    assert admin.get(f"{BASE}/metrics?period=2026-11").json()["days_with_data"] == 0


def test_reports_and_payouts_leave_it_out_of_later_periods(admin, town, other):
    assert close(admin).status == 200
    codes = lambda period: [i["incubator"] for i in admin.get(  # noqa: E731
        f"/v1/reports/monthly?period={period}").json()["items"]]
    assert CODE in codes("2026-10") and CODE in codes("2026-09")
    assert CODE not in codes("2026-11") and "HRB-002" in codes("2026-11")
    for period, present in (("2026-10", True), ("2026-11", False)):
        r = admin.post("/v1/payout-runs", {"period": period})
        assert r.status in (200, 201), r
        lines = [x["incubator"] for x in admin.get(f"/v1/payout-runs/{period}").json()["lines"]]
        assert (CODE in lines) == present, (period, lines)
        assert "HRB-002" in lines


def test_every_write_to_it_is_409_and_history_stays_readable(admin, town, sql):
    assert close(admin).status == 200
    profile = tenant_body(9)
    writes = [
        ("PATCH", BASE, {"name": "新名字"}),
        ("POST", f"{BASE}/tokens", {"name": "another"}),
        ("PUT", f"{BASE}/tenants/T-9", profile),
        ("PUT", f"{BASE}/tenants/T-1", tenant_body(1, name="改")),
        ("PUT", f"{BASE}/tenants", {"tenants": [dict(profile, external_id="T-9")]}),
        ("POST", f"{BASE}/tenants/T-2/exit", {"exited_on": "2026-10-20", "reason": "other"}),
        ("POST", f"{BASE}/tenants/T-1/graduation", {"graduated_on": "2026-10-10",
                                                   "basis": "investment",
                                                   "evidence": {"investment_total_fen": 10**9}}),
        ("PUT", f"{BASE}/occupancy", {"as_of": "2026-10-20", "public_service_area_m2": 0,
                                      "tenants": []}),
        ("POST", f"{BASE}/close", {"closed_on": "2026-10-20", "reason": "again"}),
    ]
    with Unchanged(sql):
        for method, path, body in writes:
            p = assert_problem(admin.call(method, path, body), 409)
            assert "closed" in p["detail"], (path, p)
    for path in (BASE, f"{BASE}/tenants/T-1", f"{BASE}/occupancy?on=2026-10-10",
                 f"{BASE}/tenants?status=exited", f"{BASE}/tokens", f"{BASE}/metrics?period=2026-09",
                 f"/v1/audit?incubator={CODE}", f"/v1/alerts?incubator={CODE}&state=all"):
        assert admin.get(path).status == 200, path


def test_its_tokens_fail_at_once(admin, town, other):
    town.daemon.wait_listening()
    assert town.get(BASE).status == 200  # cached now
    assert close(admin).status == 200
    r = town.get(BASE)
    assert_problem(r, 401)
    assert "invalid_token" in r.header("WWW-Authenticate")
    assert other.get("/v1/incubators/HRB-002").status == 200, "other incubators' tokens work"


def test_it_raises_no_alert_and_its_open_ones_resolve(admin, town, sql):
    assert close(admin).status == 200
    mine = [a for a in alerts(sql) if a["incubator"] == CODE]
    assert mine and all(a["state"] == "resolved" for a in mine), mine
    # Not even stale data, however long the sweep waits.
    sweep(sql, datetime.date(2027, 6, 1))
    assert all(a["state"] == "resolved" for a in alerts(sql) if a["incubator"] == CODE)


def test_its_duplicates_elsewhere_resolve(admin, hrb, other, sql):
    assert put_tenant(hrb, "T-1", 1).status == 201
    assert put_tenant(other, "X-1", 1).status == 201
    dup = [a for a in alerts(sql, "duplicate_enterprise") if a["state"] == "firing"]
    assert sorted(a["incubator"] for a in dup) == ["HRB-001", "HRB-002"]
    assert close(admin).status == 200
    assert all(a["state"] == "resolved" for a in alerts(sql, "duplicate_enterprise"))


# ---- the bad-input matrix ----

def day_after_tomorrow():
    return str(today() + datetime.timedelta(days=2))


BAD_CLOSES = [
    ("malformed", b'{"closed_on": ', 400, None),
    ("duplicate-key", b'{"closed_on": "2026-10-15", "closed_on": "2026-10-16", "reason": "x"}',
     400, "closed_on"),
    ("empty-body", b"", 400, None),
    ("array-body", b"[]", 422, "(body)"),
    ("missing-closed-on", {"reason": "x"}, 422, "closed_on"),
    ("missing-reason", {"closed_on": CLOSED_ON}, 422, "reason"),
    ("null-reason", {"closed_on": CLOSED_ON, "reason": None}, 422, "reason"),
    ("blank-reason", {"closed_on": CLOSED_ON, "reason": "  "}, 422, "reason"),
    ("reason-too-long", {"closed_on": CLOSED_ON, "reason": "因" * 501}, 422, "reason"),
    ("reason-number", {"closed_on": CLOSED_ON, "reason": 5}, 422, "reason"),
    ("closed-on-number", {"closed_on": 20261015, "reason": "x"}, 422, "closed_on"),
    ("closed-on-feb30", {"closed_on": "2026-02-30", "reason": "x"}, 422, "closed_on"),
    ("closed-on-future", {"closed_on": None, "reason": "x"}, 422, "closed_on"),
    ("unknown-field", {"closed_on": CLOSED_ON, "reason": "x", "force": True}, 422, "force"),
    ("before-opening", {"closed_on": "2023-12-31", "reason": "x"}, 422, "closed_on"),
    ("before-latest-snapshot", {"closed_on": "2026-09-30", "reason": "x"}, 409, None),
    ("too-large", b'{"reason": "' + b"x" * MAX_BODY_BYTES + b'"}', 413, None),
]


def test_bad_closes_are_refused_and_change_nothing(admin, town, sql):
    cases = [(c, dict(b, closed_on=day_after_tomorrow()) if c == "closed-on-future" else b, s, f)
             for c, b, s, f in BAD_CLOSES]
    refuse_all(admin, sql, "POST", f"{BASE}/close", cases)


def test_a_tenant_recorded_after_closed_on_is_409(admin, town, sql):
    with Unchanged(sql):
        # T-2 graduated on 2026-01-10: closing before it contradicts the record.
        assert_problem(close(admin, "2026-01-01"), 409)


def test_frozen_history_is_409(admin, town, sql):
    freeze_until(sql, "2026-10-31")
    with Unchanged(sql):
        p = assert_problem(close(admin), 409)
    assert "frozen" in p["detail"]


def test_scope_and_unknown_incubator(admin, town, other, sql):
    with Unchanged(sql):
        assert_problem(close(town), 403)    # its own token: closing is the bureau's
        assert_problem(close(other), 403)
        assert_problem(close(admin, code="HRB-404"), 404)
        r = admin.daemon.request("POST", f"{BASE}/close",
                                 json_body={"closed_on": CLOSED_ON, "reason": "x"})
        assert_problem(r, 401)
        r = admin.daemon.request("POST", f"{BASE}/close", token=admin.token,
                                 body='{"closed_on": "2026-10-15", "reason": "x"}',
                                 content_type="text/plain")
        assert_problem(r, 415)


# ---- stale_data from the day of registration ----

def test_stale_data_counts_from_registration_not_from_an_old_opening(admin, sql):
    r = admin.post("/v1/incubators", {"code": "OLD-1", "name": "老孵化器", "level": "district",
                                      "kind": "maker_space", "opened_on": "2020-01-01",
                                      "disposable_area_m2": 500})
    assert r.status == 201, r
    registered = today()
    assert sql.execute("SELECT registered_on FROM incubators WHERE code = 'OLD-1'"
                       ).fetchone()[0] == registered
    assert [a for a in alerts(sql, "stale_data") if a["incubator"] == "OLD-1"] == []
    sweep(sql, registered + datetime.timedelta(days=34))
    assert [a for a in alerts(sql, "stale_data") if a["incubator"] == "OLD-1"] == []
    sweep(sql, registered + datetime.timedelta(days=35))
    stale = [a for a in alerts(sql, "stale_data") if a["incubator"] == "OLD-1"]
    assert [a["state"] for a in stale] == ["firing"]
    message = sql.execute("SELECT message FROM alerts WHERE id = %s", (stale[0]["id"],)).fetchone()[0]
    assert f"自 {registered} 登记以来" in message, message


def test_stale_data_counts_from_opening_when_it_opens_after_registration(admin, sql):
    opened = today() + datetime.timedelta(days=1)
    r = admin.post("/v1/incubators", {"code": "NEW-1", "name": "新孵化器", "level": "district",
                                      "kind": "maker_space", "opened_on": str(opened),
                                      "disposable_area_m2": 500})
    assert r.status == 201, r
    sweep(sql, opened + datetime.timedelta(days=34))
    assert [a for a in alerts(sql, "stale_data") if a["incubator"] == "NEW-1"] == []
    sweep(sql, opened + datetime.timedelta(days=35))
    assert [a["state"] for a in alerts(sql, "stale_data") if a["incubator"] == "NEW-1"] == \
        ["firing"]


def test_an_incubator_of_unknown_registration_counts_from_opening(admin, sql):
    r = admin.post("/v1/incubators", {"code": "OLD-2", "name": "老孵化器二", "level": "district",
                                      "kind": "maker_space", "opened_on": "2020-01-01",
                                      "disposable_area_m2": 500})
    assert r.status == 201, r
    # Registered before the day was recorded: the old rule, from opened_on.
    sql.execute("UPDATE incubators SET registered_on = NULL WHERE code = 'OLD-2'")
    sweep(sql, today())
    assert [a["state"] for a in alerts(sql, "stale_data") if a["incubator"] == "OLD-2"] == \
        ["firing"]
