"""Graduation and exit: the criteria table with the thresholds of the policy
in force (a version inserted here shows that it is read), the lifecycle's
409s, the date rules, frozen history (exits; graduations are taken late), exit
ending occupancy, and bad input."""

import datetime

import pytest

from harness import MAX_BODY_BYTES, assert_problem
from ingestlib import (Unchanged, freeze_until, hrb, insert_policy, iso,  # noqa: F401
                       occupancy_intervals, put_tenant, refuse_all, today)

PATH = "/v1/incubators/HRB-001/tenants"
OCC = "/v1/incubators/HRB-001/occupancy"


def graduate(api, ext, graduated_on, basis, evidence=None, **kw):
    body = {"graduated_on": graduated_on, "basis": basis}
    if evidence is not None:
        body["evidence"] = evidence
    return api.post(f"{PATH}/{ext}/graduation", body, **kw)


def leave(api, ext, exited_on, reason="relocated"):
    return api.post(f"{PATH}/{ext}/exit", {"exited_on": exited_on, "reason": reason})


# ---- the criteria table, policy version 1 (API.md's defaults) ----

CRITERIA = [
    # (case, profile overrides, graduated_on, basis, evidence, failing field or None)
    ("high-tech-same-day", {"high_tech_certified_on": "2025-10-01"}, "2025-10-01", "high_tech",
     None, None),
    ("high-tech-earlier", {"high_tech_certified_on": "2025-09-30"}, "2025-10-01", "high_tech",
     None, None),
    ("high-tech-later", {"high_tech_certified_on": "2025-10-02"}, "2025-10-01", "high_tech",
     None, "basis"),
    ("high-tech-none", {}, "2025-10-01", "high_tech", None, "basis"),
    ("investment-at-min", {}, "2025-10-01", "investment", {"investment_total_fen": 500000000},
     None),
    ("investment-above", {}, "2025-10-01", "investment", {"investment_total_fen": 800000000},
     None),
    ("investment-1-fen-short", {}, "2025-10-01", "investment",
     {"investment_total_fen": 499999999}, "evidence.investment_total_fen"),
    ("investment-zero", {}, "2025-10-01", "investment", {"investment_total_fen": 0},
     "evidence.investment_total_fen"),
    ("revenue-at-min", {}, "2025-10-01", "revenue",
     {"revenue_fen": {"2023": 400000000, "2024": 600000000}}, None),
    ("revenue-one-pair-of-three", {}, "2025-10-01", "revenue",
     {"revenue_fen": {"2022": 10, "2023": 900000000, "2024": 100000000}}, None),
    ("revenue-1-fen-short", {}, "2025-10-01", "revenue",
     {"revenue_fen": {"2023": 400000000, "2024": 599999999}}, "evidence.revenue_fen"),
    ("revenue-not-consecutive", {}, "2025-10-01", "revenue",
     {"revenue_fen": {"2022": 600000000, "2024": 600000000}}, "evidence.revenue_fen"),
    ("revenue-one-year", {}, "2025-10-01", "revenue", {"revenue_fen": {"2024": 2000000000}},
     "evidence.revenue_fen"),
    ("revenue-empty", {}, "2025-10-01", "revenue", {"revenue_fen": {}}, "evidence.revenue_fen"),
    ("acquired", {}, "2025-10-01", "acquired_or_listed", {"event": "被某上市公司整体收购"}, None),
    ("acquired-empty", {}, "2025-10-01", "acquired_or_listed", {"event": ""}, "evidence.event"),
    ("acquired-blank", {}, "2025-10-01", "acquired_or_listed", {"event": "  "}, "evidence.event"),
    ("acquired-no-evidence", {}, "2025-10-01", "acquired_or_listed", None, "evidence.event"),
    ("acquired-empty-evidence", {}, "2025-10-01", "acquired_or_listed", {}, "evidence.event"),
    ("investment-no-figure", {}, "2025-10-01", "investment", {}, "evidence.investment_total_fen"),
    ("investment-null-figure", {}, "2025-10-01", "investment", {"investment_total_fen": None},
     "evidence.investment_total_fen"),
    ("investment-wrong-evidence", {}, "2025-10-01", "investment",
     {"investment_total_fen": 600000000, "event": "x"}, "evidence.event"),
    ("high-tech-with-evidence", {"high_tech_certified_on": "2025-09-01"}, "2025-10-01",
     "high_tech", {"investment_total_fen": 1}, "evidence.investment_total_fen"),
]


@pytest.mark.parametrize("case,profile,graduated_on,basis,evidence,failing", CRITERIA,
                         ids=[c[0] for c in CRITERIA])
def test_graduation_criteria(hrb, sql, case, profile, graduated_on, basis, evidence, failing):
    assert put_tenant(hrb, "T-1", 1, **profile).status == 201
    if failing:
        with Unchanged(sql):
            assert_problem(graduate(hrb, "T-1", graduated_on, basis, evidence), 422, failing)
        return
    r = graduate(hrb, "T-1", graduated_on, basis, evidence)
    assert r.status == 200, r
    t = r.json()
    assert (t["status"], t["graduated_on"], t["graduation_basis"]) == \
        ("graduated", graduated_on, basis)
    assert sql.execute("SELECT status, graduated_on, graduation_basis FROM tenants") \
        .fetchone() == ("graduated", datetime.date.fromisoformat(graduated_on), basis)
    summary, details = sql.execute(
        "SELECT summary, details FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert summary == f"graduated tenant T-1 on {graduated_on} ({basis}, policy version 1)"
    assert details["policy_version"] == 1


def test_thresholds_come_from_the_policy_in_force_on_graduated_on(hrb, sql):
    # From July 2025 on: 8,000,000 CNY of investment, 20,000,000 CNY of revenue.
    insert_policy(sql, 2, "2025-07-01", 800000000, 2000000000)
    for n in range(1, 7):
        assert put_tenant(hrb, f"T-{n}", n, admitted_on="2025-06-01").status == 201
    # June: version 1 (5,000,000 CNY) applies.
    assert graduate(hrb, "T-1", "2025-06-30", "investment",
                    {"investment_total_fen": 500000000}).status == 200
    # July: version 2.
    with Unchanged(sql):
        p = assert_problem(graduate(hrb, "T-2", "2025-07-01", "investment",
                                    {"investment_total_fen": 799999999}), 422,
                           "evidence.investment_total_fen")
    assert "800000000" in p["errors"][0]["message"] and "version 2" in p["errors"][0]["message"]
    assert graduate(hrb, "T-2", "2025-07-01", "investment",
                    {"investment_total_fen": 800000000}).status == 200
    revenue = {"2023": 500000000, "2024": 500000000}
    assert graduate(hrb, "T-3", "2025-06-15", "revenue", {"revenue_fen": revenue}).status == 200
    with Unchanged(sql):
        assert_problem(graduate(hrb, "T-4", "2025-07-15", "revenue", {"revenue_fen": revenue}),
                       422, "evidence.revenue_fen")
    # A newer version for the same month supersedes the older one.
    insert_policy(sql, 3, "2025-07-01", 700000000, 2000000000)
    assert graduate(hrb, "T-5", "2025-07-31", "investment",
                    {"investment_total_fen": 700000000}).status == 200
    assert sql.execute("SELECT details->>'policy_version' FROM audit_log "
                       "WHERE summary LIKE 'graduated tenant T-5 %' ").fetchone()[0] == "3"
    # A version effective later has no say over earlier months.
    insert_policy(sql, 4, "2025-09-01", 100, 100)
    with Unchanged(sql):
        assert_problem(graduate(hrb, "T-6", "2025-08-31", "investment",
                                {"investment_total_fen": 100}), 422,
                       "evidence.investment_total_fen")


# ---- lifecycle and dates ----

def test_lifecycle_conflicts(hrb, sql):
    for n in (1, 2, 3):
        assert put_tenant(hrb, f"T-{n}", n).status == 201
    assert graduate(hrb, "T-1", "2025-10-01", "acquired_or_listed", {"event": "上市"}).status \
        == 200
    with Unchanged(sql):
        p = assert_problem(graduate(hrb, "T-1", "2025-10-02", "acquired_or_listed",
                                    {"event": "again"}), 409)
        assert "graduated" in p["detail"]
    # A graduate may leave: it stays a graduate in the record.
    r = leave(hrb, "T-1", "2025-11-01", "relocated")
    assert r.status == 200, r
    t = r.json()
    assert (t["status"], t["graduated_on"], t["graduation_basis"], t["exited_on"],
            t["exit_reason"]) == ("exited", "2025-10-01", "acquired_or_listed", "2025-11-01",
                                  "relocated")
    assert leave(hrb, "T-2", "2025-09-01", "closed").status == 200
    with Unchanged(sql):
        assert_problem(leave(hrb, "T-1", "2025-11-02"), 409)
        assert_problem(leave(hrb, "T-2", "2025-09-02"), 409)
        p = assert_problem(graduate(hrb, "T-2", "2025-08-01", "acquired_or_listed",
                                    {"event": "x"}), 409)
        assert "exited" in p["detail"]
        assert_problem(graduate(hrb, "T-404", "2025-08-01", "acquired_or_listed",
                                {"event": "x"}), 404)
        assert_problem(leave(hrb, "T-404", "2025-08-01"), 404)
        assert_problem(leave(hrb, "T-3", "2025-08-01", "bankrupt"), 422, "reason")


def test_graduation_and_exit_dates(hrb, sql):
    tomorrow = today() + datetime.timedelta(days=1)
    later = iso(tomorrow + datetime.timedelta(days=1))
    for n in (1, 2, 3, 4):
        assert put_tenant(hrb, f"T-{n}", n, admitted_on="2025-06-01").status == 201
    ev = {"event": "上市"}
    with Unchanged(sql):
        assert_problem(graduate(hrb, "T-1", "2025-05-31", "acquired_or_listed", ev), 422,
                       "graduated_on")
        assert_problem(graduate(hrb, "T-1", later, "acquired_or_listed", ev), 422,
                       "graduated_on")
        assert_problem(leave(hrb, "T-1", "2025-05-31"), 422, "exited_on")
        assert_problem(leave(hrb, "T-1", later), 422, "exited_on")
    assert graduate(hrb, "T-1", "2025-06-01", "acquired_or_listed", ev).status == 200
    assert graduate(hrb, "T-2", iso(tomorrow), "acquired_or_listed", ev).status == 200
    with Unchanged(sql):
        # A graduate cannot leave before it graduated.
        assert_problem(leave(hrb, "T-2", iso(tomorrow - datetime.timedelta(days=1))), 422,
                       "exited_on")
    assert leave(hrb, "T-2", iso(tomorrow)).status == 200
    assert leave(hrb, "T-3", "2025-06-01").status == 200
    assert leave(hrb, "T-4", iso(tomorrow)).status == 200


def test_frozen_history_refuses_exits_and_takes_late_graduations(hrb, sql):
    for n in (1, 2):
        assert put_tenant(hrb, f"T-{n}", n, admitted_on="2025-06-01").status == 201
    freeze_until(sql, "2025-10-31")
    with Unchanged(sql):
        assert_problem(leave(hrb, "T-2", "2025-10-31"), 409)
    # A graduation dated in an approved period is a true fact recorded late: it
    # is accepted, and paid as an adjustment by the next run (test_payouts.py).
    assert graduate(hrb, "T-1", "2025-10-31", "acquired_or_listed", {"event": "x"}).status \
        == 200
    assert leave(hrb, "T-2", "2025-11-01").status == 200


# ---- exit and occupancy ----

def snapshot(api, as_of, tenants, ps=1000):
    return api.put(OCC, {"as_of": as_of, "public_service_area_m2": ps,
                         "tenants": [{"external_id": e, "area_m2": a} for e, a in tenants]})


D = datetime.date


def test_exit_ends_occupancy_on_its_day(hrb, sql):
    for n in (1, 2, 3, 4):
        assert put_tenant(hrb, f"T-{n}", n, admitted_on="2025-01-01",
                          tech_certified_on="2025-01-01").status == 201
    assert snapshot(hrb, "2025-07-01", [("T-1", 100), ("T-2", 200), ("T-3", 300)]).status == 200
    # An exit before the latest snapshot that lists the tenant is a conflict.
    assert snapshot(hrb, "2025-07-05", [("T-1", 100), ("T-2", 200)]).status == 200
    with Unchanged(sql):
        p = assert_problem(leave(hrb, "T-1", "2025-07-04"), 409)
        assert "2025-07-05" in p["detail"]
    # T-3 was last listed on 07-01: it may leave on 07-03, inside its closed interval.
    assert leave(hrb, "T-3", "2025-07-03").status == 200
    assert occupancy_intervals(sql)["T-3"] == [(D(2025, 7, 1), D(2025, 7, 3), 300)]
    # On the day of the latest listing itself it may leave.
    r = leave(hrb, "T-1", "2025-07-05")
    assert r.status == 200, r
    assert r.json()["area_m2"] == 0
    assert occupancy_intervals(sql)["T-1"] == [(D(2025, 7, 1), D(2025, 7, 5), 100)]
    share = hrb.get("/v1/incubators/HRB-001/space-share?on=2025-07-04").json()
    assert share["tech_area_m2"] == 300
    share = hrb.get("/v1/incubators/HRB-001/space-share?on=2025-07-05").json()
    assert share["tech_area_m2"] == 200
    occ = hrb.get(f"{OCC}?on=2025-07-05").json()
    assert occ["as_of"] == "2025-07-05"
    assert occ["tenants"] == [{"external_id": "T-2", "area_m2": 200}]
    # An exited tenant cannot be listed from its exit day on.
    with Unchanged(sql):
        p = assert_problem(snapshot(hrb, "2025-07-06", [("T-2", 200), ("T-1", 100)]), 422,
                           "tenants[1].external_id")
        assert "exited" in p["errors"][0]["message"]
    # An exit dated ahead (tomorrow) cuts the open interval there; a snapshot before that
    # day may still list the tenant, up to its exit.
    tomorrow = today() + datetime.timedelta(days=1)
    assert leave(hrb, "T-2", iso(tomorrow)).status == 200
    assert occupancy_intervals(sql)["T-2"] == [(D(2025, 7, 1), tomorrow, 200)]
    assert snapshot(hrb, "2025-08-01", [("T-2", 250), ("T-4", 10)]).status == 200
    assert occupancy_intervals(sql)["T-2"] == [(D(2025, 7, 1), D(2025, 8, 1), 200),
                                               (D(2025, 8, 1), tomorrow, 250)]
    assert occupancy_intervals(sql)["T-4"] == [(D(2025, 8, 1), None, 10)]
    # A tenant never listed leaves without touching occupancy.
    assert put_tenant(hrb, "T-5", 5, admitted_on="2025-01-01").status == 201
    assert leave(hrb, "T-5", "2025-02-01").status == 200
    assert "T-5" not in occupancy_intervals(sql)


def test_graduation_leaves_occupancy_alone(hrb, sql):
    assert put_tenant(hrb, "T-1", 1, admitted_on="2025-01-01").status == 201
    assert snapshot(hrb, "2025-07-01", [("T-1", 100)]).status == 200
    before = occupancy_intervals(sql)
    assert graduate(hrb, "T-1", "2025-07-10", "acquired_or_listed", {"event": "x"}).status \
        == 200
    assert occupancy_intervals(sql) == before
    assert snapshot(hrb, "2025-07-11", [("T-1", 120)]).status == 200


# ---- bad input ----

GRAD_OK = {"graduated_on": "2025-10-01", "basis": "investment",
           "evidence": {"investment_total_fen": 600000000}}


def g(**over):
    b = dict(GRAD_OK)
    b.update(over)
    return {k: v for k, v in b.items() if v != "<absent>"}


BAD_GRADUATIONS = [
    ("malformed", b'{"graduated_on": ', 400, None),
    ("duplicate-key", b'{"basis": "revenue", "basis": "investment"}', 400, "basis"),
    ("array", b"[]", 422, "(body)"),
    ("basis-wrong", g(basis="ipo"), 422, "basis"),
    ("basis-number", g(basis=1), 422, "basis"),
    ("basis-missing", g(basis="<absent>"), 422, "basis"),
    ("date-missing", g(graduated_on="<absent>"), 422, "graduated_on"),
    ("date-feb30", g(graduated_on="2026-02-30"), 422, "graduated_on"),
    ("date-month13", g(graduated_on="2026-13-01"), 422, "graduated_on"),
    ("date-number", g(graduated_on=20251001), 422, "graduated_on"),
    ("evidence-array", g(evidence=[]), 422, "evidence"),
    ("evidence-unknown", g(evidence={"investment_total_fen": 600000000, "amount": 1}), 422,
     "evidence.amount"),
    ("investment-real", g(evidence={"investment_total_fen": 6e8}), 422,
     "evidence.investment_total_fen"),
    ("investment-string", g(evidence={"investment_total_fen": "600000000"}), 422,
     "evidence.investment_total_fen"),
    ("investment-nan-like", g(evidence={"investment_total_fen": "NaN"}), 422,
     "evidence.investment_total_fen"),
    ("investment-negative", g(evidence={"investment_total_fen": -1}), 422,
     "evidence.investment_total_fen"),
    ("revenue-year", g(basis="revenue", evidence={"revenue_fen": {"last": 1}}), 422,
     "evidence.revenue_fen.last"),
    ("unknown-field", g(note="x"), 422, "note"),
    # Beyond 10^15 fen, however the amounts would add up in SQL (this one was a 500).
    ("revenue-bigint-overflow", g(basis="revenue", evidence={"revenue_fen": {
        "2024": 9223372036854775807, "2025": 1}}), 422, "evidence.revenue_fen.2024"),
    ("revenue-over-max", g(basis="revenue", evidence={"revenue_fen": {
        "2024": 10**15 + 1, "2025": 1}}), 422, "evidence.revenue_fen.2024"),
    ("investment-over-max", g(evidence={"investment_total_fen": 10**15 + 1}), 422,
     "evidence.investment_total_fen"),
    ("investment-beyond-int64", b'{"graduated_on": "2025-10-01", "basis": "investment", '
     b'"evidence": {"investment_total_fen": 92233720368547758070}}', 400, None),
]

BAD_EXITS = [
    ("malformed", b'{"exited_on": "2025-10-01"', 400, None),
    ("duplicate-key", b'{"exited_on": "2025-10-01", "exited_on": "2025-10-02", '
                      b'"reason": "closed"}', 400, "exited_on"),
    ("reason-wrong", {"exited_on": "2025-10-01", "reason": "bankrupt"}, 422, "reason"),
    ("reason-case", {"exited_on": "2025-10-01", "reason": "Closed"}, 422, "reason"),
    ("reason-missing", {"exited_on": "2025-10-01"}, 422, "reason"),
    ("reason-null", {"exited_on": "2025-10-01", "reason": None}, 422, "reason"),
    ("date-missing", {"reason": "closed"}, 422, "exited_on"),
    ("date-feb30", {"exited_on": "2026-02-30", "reason": "closed"}, 422, "exited_on"),
    ("date-month13", {"exited_on": "2026-13-01", "reason": "closed"}, 422, "exited_on"),
    ("date-bool", {"exited_on": False, "reason": "closed"}, 422, "exited_on"),
    ("unknown-field", {"exited_on": "2025-10-01", "reason": "closed", "status": "exited"}, 422,
     "status"),
]


def test_revenue_at_the_money_bound_graduates(hrb, sql):
    assert put_tenant(hrb, "T-1", 1).status == 201
    r = graduate(hrb, "T-1", "2025-10-01", "revenue",
                 {"revenue_fen": {"2023": 10**15, "2024": 10**15}})
    assert r.status == 200, r


def test_revenue_sums_in_sql_do_not_overflow(sql):
    # What the edge refuses, SQL still adds without an error.
    row = sql.execute("SELECT api.revenue_two_years_reach("
                      "'{\"2024\": 9223372036854775807, \"2025\": 9223372036854775807}', "
                      "1000000000)").fetchone()
    assert row[0] is True


def test_bad_graduations_and_exits_change_nothing(hrb, sql):
    assert put_tenant(hrb, "T-1", 1).status == 201
    refuse_all(hrb, sql, "POST", f"{PATH}/T-1/graduation", BAD_GRADUATIONS)
    refuse_all(hrb, sql, "POST", f"{PATH}/T-1/exit", BAD_EXITS)
    limit = MAX_BODY_BYTES
    big = b'{"basis": "' + b"x" * (limit - 12) + b'"}'
    assert len(big) == limit + 1
    refuse_all(hrb, sql, "POST", f"{PATH}/T-1/graduation", [("too-large", big, 413, None)])
    refuse_all(hrb, sql, "POST", f"{PATH}/T-1/exit", [("too-large", big, 413, None)])
    assert hrb.get(f"{PATH}/T-1").json()["status"] == "incubating"
