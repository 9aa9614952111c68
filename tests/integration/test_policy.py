"""GET /v1/policy: version 1 holds API.md's defaults; the version in force for a
month is the latest effective on or before it, the newest among equals."""

from harness import assert_problem
from ingestlib import hrb, insert_policy  # noqa: F401

DEFAULTS = {
    "version": 1, "veto_threshold": 0.5, "warning_margin": 0.05,
    "reward_per_graduate_fen": 5000000, "high_tech_bonus_fen": 2000000,
    "annual_cap_fen": 100000000, "incubation_limit_months": 48, "extended_limit_months": 60,
    "extended_fields": ["biomedicine", "modern_agriculture", "integrated_circuit"],
    "entry_max_age_months": 24, "graduation_investment_min_fen": 500000000,
    "graduation_revenue_2y_min_fen": 1000000000, "stale_after_days": 35, "repeat_hours": 24,
    "plan": {"from": "2015-01-01", "to": "2017-12-31", "targets": {
        "incubators": 60, "new_tech_enterprises": 1000, "revenue_over_5m": 600,
        "revenue_over_20m": 100, "listed": 30, "new_high_tech": 120}},
}


def test_version_1_holds_the_defaults_for_any_token(admin, hrb):
    for api in (admin, hrb):
        r = api.get("/v1/policy?period=2020-01")
        assert r.status == 200, r
        got = r.json()
        for k, v in DEFAULTS.items():
            assert got[k] == v, k
        assert got["effective_from"] == "1900-01"
    assert admin.get("/v1/policy").json()["version"] == 1


def test_the_version_in_force_for_each_month(admin, sql):
    insert_policy(sql, 2, "2025-07-01", 800000000, 2000000000)
    insert_policy(sql, 3, "2025-07-01", 700000000, 2000000000)
    insert_policy(sql, 4, "2025-09-01", 100, 100)
    got = {p: admin.get(f"/v1/policy?period={p}").json() for p in
           ("2025-06", "2025-07", "2025-08", "2025-09", "2030-01")}
    assert {p: g["version"] for p, g in got.items()} == {
        "2025-06": 1, "2025-07": 3, "2025-08": 3, "2025-09": 4, "2030-01": 4}
    assert got["2025-08"]["graduation_investment_min_fen"] == 700000000
    assert got["2025-08"]["effective_from"] == "2025-07"
    assert admin.get("/v1/policy").json()["version"] == 4  # this month: after 2025-09


def test_bad_queries_and_no_token(admin):
    for q, field in (("period=2025-13", "period"), ("period=2025-7", "period"),
                     ("period=2025-07-01", "period"), ("month=2025-07", "month")):
        assert_problem(admin.get(f"/v1/policy?{q}"), 400, field)
    assert_problem(admin.daemon.request("GET", "/v1/policy"), 401)
