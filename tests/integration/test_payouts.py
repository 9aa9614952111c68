"""Monthly reward payouts: amounts computed here, independently, from the data
each test pushes through the API, and compared with the daemon's runs."""

import csv
import io
import os
import signal
import time
from decimal import Decimal
from fractions import Fraction

import pytest

from conftest import start_daemon
from harness import MAX_BODY_BYTES, Api, assert_problem, preload, run_cli, wait_for

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [pow(3, i, 31) for i in range(17)]
REWARD = 5_000_000
BONUS = 2_000_000
CAP = 100_000_000


def credit_code(n):
    """A valid Unified Social Credit Code, different for each n (GB 32100-2015)."""
    body = "91230100" + "".join(CHARSET[(n // 31 ** k) % 31] for k in range(9))
    total = sum(CHARSET.index(c) * w for c, w in zip(body, WEIGHTS))
    return body + CHARSET[(31 - total % 31) % 31]


def admin_token(daemon, name):
    """Another admin token (the command line makes admin tokens)."""
    return Api(daemon, run_cli(daemon.config_path, "token", "create", "--admin",
                               name).stdout.strip())


class City:
    """Registers incubators and tenants and pushes snapshots through the API.

    Approval takes four eyes (the default): reviewer, a second admin token,
    reviews a run before api approves it."""

    def __init__(self, api, reviewer=None):
        self.api = api
        self.reviewer = reviewer
        self.codes = 0

    def incubator(self, code, area=10000, opened="2024-01-01"):
        r = self.api.post("/v1/incubators", {
            "code": code, "name": f"孵化器 {code}", "level": "municipal",
            "kind": "comprehensive", "opened_on": opened, "disposable_area_m2": area,
            "public_service_area_m2": 0})
        assert r.status == 201, r

    def tenant(self, inc, ext, tech="2024-01-01", high_tech=None, founded="2023-06-01",
               admitted="2024-01-01", code=None):
        if code is None:
            self.codes += 1
            code = credit_code(self.codes)
        r = self.api.put(f"/v1/incubators/{inc}/tenants/{ext}", {
            "name": f"企业 {ext}", "credit_code": code, "founded_on": founded,
            "admitted_on": admitted, "field": "other", "tech_certified_on": tech,
            "high_tech_certified_on": high_tech})
        assert r.status in (200, 201), r
        return code

    def snapshot(self, inc, as_of, areas, public_service=0):
        r = self.api.put(f"/v1/incubators/{inc}/occupancy", {
            "as_of": as_of, "public_service_area_m2": public_service,
            "tenants": [{"external_id": k, "area_m2": v} for k, v in areas.items()]})
        assert r.status == 200, r
        return r.json()

    def graduate(self, inc, ext, on, basis="investment"):
        evidence = {"investment_total_fen": 600_000_000} if basis == "investment" else None
        r = self.api.post(f"/v1/incubators/{inc}/tenants/{ext}/graduation",
                          {"graduated_on": on, "basis": basis, "evidence": evidence})
        assert r.status == 200, r

    def run(self, period, expect=(200, 201)):
        r = self.api.post("/v1/payout-runs", {"period": period})
        assert r.status in expect, r
        return r

    def review(self, period, note=None):
        r = self.reviewer.post(f"/v1/payout-runs/{period}/review",
                               {} if note is None else {"note": note})
        assert r.status == 200, r
        return r.json()

    def approve(self, period):
        if self.reviewer is not None:
            self.review(period)
        r = self.api.post(f"/v1/payout-runs/{period}/approve")
        assert r.status == 200, r
        return r.json()


def line(run, code):
    return next(l for l in run["lines"] if l["incubator"] == code)


@pytest.fixture
def city(admin, daemon):
    return City(admin, admin_token(daemon, "test-reviewer"))


def test_veto_no_data_bonus_and_time_weighted_share(city):
    # OK: 6,000 of 10,000 m2 tech all month -> 0.6; two graduates, one high-tech.
    city.incubator("OK-1")
    city.tenant("OK-1", "A", high_tech="2025-01-01")
    city.tenant("OK-1", "B")
    city.tenant("OK-1", "C")
    city.snapshot("OK-1", "2025-09-01", {"A": 3000, "B": 2000, "C": 1000})
    city.graduate("OK-1", "A", "2025-10-10", basis="high_tech")
    city.graduate("OK-1", "B", "2025-10-20")
    # LOW: 0.6 for the first 10 days of October, then 0.45: the average decides.
    city.incubator("LOW-1")
    city.tenant("LOW-1", "X")
    city.tenant("LOW-1", "Y", tech=None)
    city.snapshot("LOW-1", "2025-10-01", {"X": 6000})
    city.snapshot("LOW-1", "2025-10-11", {"X": 4500, "Y": 1000})
    city.graduate("LOW-1", "X", "2025-10-25")
    # NONE: registered, never reported.
    city.incubator("NONE-1")

    run = city.run("2025-10", expect=(201,)).json()
    assert run["status"] == "draft" and run["policy_version"] == 1

    ok = line(run, "OK-1")
    assert ok["vetoed"] is False and ok["reason"] is None
    assert ok["share_average"] == 0.6
    assert ok["eligible_graduates"] == 2
    assert ok["base_fen"] == 2 * REWARD + BONUS
    assert ok["amount_fen"] == 2 * REWARD + BONUS
    assert {g["external_id"]: g["high_tech"] for g in ok["graduates"]} == {"A": True, "B": False}

    low = line(run, "LOW-1")
    expected = (Fraction(6000, 10000) * 10 + Fraction(4500, 10000) * 21) / 31
    assert expected < Fraction(1, 2)
    assert low["share_average"] == round(float(expected), 4)
    assert low["vetoed"] is True and low["reason"] == "veto"
    assert low["eligible_graduates"] == 1 and low["base_fen"] == REWARD
    assert low["amount_fen"] == 0

    none = line(run, "NONE-1")
    assert none["vetoed"] is True and none["reason"] == "no_data"
    assert none["share_average"] is None and none["amount_fen"] == 0

    assert run["total_fen"] == sum(l["amount_fen"] for l in run["lines"])
    assert run["vetoed"] == ["LOW-1", "NONE-1"]


def test_exact_threshold_is_not_a_veto(city):
    # Exactly 0.5 every day: not below the threshold.
    city.incubator("EDGE")
    city.tenant("EDGE", "A")
    city.snapshot("EDGE", "2025-10-01", {"A": 5000})
    run = city.run("2025-10").json()
    assert line(run, "EDGE")["vetoed"] is False
    assert line(run, "EDGE")["share_average"] == 0.5


def test_not_tech_and_entry_age_are_excluded(city):
    city.incubator("EX")
    city.tenant("EX", "OK")
    city.tenant("EX", "LATE-TECH", tech="2025-10-21")  # certified after graduating
    city.tenant("EX", "OLD", founded="2019-01-01", admitted="2024-01-01")  # 60 months > 24
    city.tenant("EX", "BIG", tech=None)
    city.snapshot("EX", "2025-10-01", {"OK": 3000, "LATE-TECH": 1000, "OLD": 2000, "BIG": 1000})
    for ext in ("OK", "LATE-TECH", "OLD", "BIG"):
        city.graduate("EX", ext, "2025-10-20")
    run = city.run("2025-10").json()
    reasons = {g["external_id"]: (g["eligible"], g["reason"]) for g in line(run, "EX")["graduates"]}
    assert reasons == {"OK": (True, None), "LATE-TECH": (False, "not_tech"),
                       "OLD": (False, "entry_age"), "BIG": (False, "not_tech")}
    assert line(run, "EX")["amount_fen"] == REWARD


def test_already_rewarded_only_once_the_earlier_run_is_approved(city):
    city.incubator("FIRST")
    city.incubator("SECOND")
    code = city.tenant("FIRST", "E1", founded="2024-06-01", admitted="2024-07-01",
                       tech="2024-07-01")
    city.tenant("FIRST", "F1")
    city.snapshot("FIRST", "2025-08-01", {"E1": 4000, "F1": 5000})
    city.graduate("FIRST", "E1", "2025-08-15")
    r = city.api.post("/v1/incubators/FIRST/tenants/E1/exit",
                      {"exited_on": "2025-08-20", "reason": "relocated"})
    assert r.status == 200, r
    # The same enterprise is admitted at SECOND and graduates again in September.
    city.tenant("SECOND", "E2", code=code, founded="2024-06-01", admitted="2025-08-21",
                tech="2024-07-01")
    city.tenant("SECOND", "F2")
    city.snapshot("SECOND", "2025-08-21", {"E2": 3000, "F2": 3000})
    city.graduate("SECOND", "E2", "2025-09-15")

    city.run("2025-08")
    sept = city.run("2025-09").json()
    g = line(sept, "SECOND")["graduates"][0]
    assert g["eligible"] is True, "the August run is only a draft"

    city.approve("2025-08")
    sept = city.run("2025-09").json()
    g = line(sept, "SECOND")["graduates"][0]
    assert (g["eligible"], g["reason"]) == (False, "already_rewarded")
    assert line(sept, "SECOND")["amount_fen"] == 0


def test_earliest_graduation_in_one_run_counts(city):
    city.incubator("B-2")
    city.incubator("A-1")
    code = credit_code(9999)
    city.tenant("B-2", "T", code=code)
    city.tenant("A-1", "T", code=code)
    city.snapshot("B-2", "2025-10-01", {"T": 6000})
    city.snapshot("A-1", "2025-10-01", {"T": 6000})
    city.graduate("B-2", "T", "2025-10-05")
    city.graduate("A-1", "T", "2025-10-05")  # same day: the lower code wins
    run = city.run("2025-10").json()
    assert line(run, "A-1")["graduates"][0]["eligible"] is True
    assert line(run, "B-2")["graduates"][0]["reason"] == "already_rewarded"


POLICY = {
    "veto_threshold": 0.5, "warning_margin": 0.05, "reward_per_graduate_fen": REWARD,
    "high_tech_bonus_fen": BONUS, "annual_cap_fen": CAP, "incubation_limit_months": 48,
    "extended_limit_months": 60,
    "extended_fields": ["biomedicine", "modern_agriculture", "integrated_circuit"],
    "entry_max_age_months": 24, "graduation_investment_min_fen": 500_000_000,
    "graduation_revenue_2y_min_fen": 1_000_000_000, "stale_after_days": 35, "repeat_hours": 24,
    "plan": {"from": "2015-01-01", "to": "2017-12-31",
             "targets": {"incubators": 60, "new_tech_enterprises": 1000, "revenue_over_5m": 600,
                         "revenue_over_20m": 100, "listed": 30, "new_high_tech": 120}}}


def capped_incubator(city, code, cap, tenants, since="2024-11"):
    """A policy with annual_cap_fen = cap from since on, and an incubator whose
    tenants T0, T1, ... hold 6,000 of its 10,000 m2 (share 0.6) from then."""
    r = city.api.post("/v1/policy", dict(POLICY, effective_from=since, annual_cap_fen=cap))
    assert r.status == 201, r
    city.incubator(code)
    for i in range(tenants):
        city.tenant(code, f"T{i}")
    city.snapshot(code, since + "-01", {f"T{i}": 6000 / tenants for i in range(tenants)})


def test_cap_across_months_and_its_reset_in_january(city):
    capped_incubator(city, "CAP", 12_000_000, 6)
    # 2 graduates in Nov 2024 (10M), 1 in Dec 2024 (5M, 2M left), 2 in Jan 2025 (new year).
    city.graduate("CAP", "T0", "2024-11-05")
    city.graduate("CAP", "T1", "2024-11-06")
    city.graduate("CAP", "T2", "2024-12-05")
    city.graduate("CAP", "T3", "2025-01-05")
    city.graduate("CAP", "T4", "2025-01-06")
    nov = city.run("2024-11").json()
    assert line(nov, "CAP")["amount_fen"] == 10_000_000
    city.approve("2024-11")
    dec = line(city.run("2024-12").json(), "CAP")
    assert (dec["base_fen"], dec["cap_remaining_fen"], dec["amount_fen"], dec["reason"]) == \
        (5_000_000, 2_000_000, 2_000_000, "cap")
    city.approve("2024-12")
    jan = line(city.run("2025-01").json(), "CAP")
    assert (jan["cap_remaining_fen"], jan["amount_fen"], jan["reason"]) == \
        (12_000_000, 10_000_000, None)


def test_policy_change_applies_from_its_month_only(city):
    r = city.api.post("/v1/policy", dict(POLICY, effective_from="2025-07",
                                         reward_per_graduate_fen=6_000_000))
    assert r.status == 201, r
    version = r.json()["version"]
    city.incubator("POL")
    city.tenant("POL", "J")
    city.tenant("POL", "K")
    city.snapshot("POL", "2025-06-01", {"J": 3000, "K": 3000})
    city.graduate("POL", "J", "2025-06-30")
    city.graduate("POL", "K", "2025-07-01")
    june, july = city.run("2025-06").json(), city.run("2025-07").json()
    assert june["policy_version"] == 1 and line(june, "POL")["amount_fen"] == REWARD
    assert july["policy_version"] == version and line(july, "POL")["amount_fen"] == 6_000_000
    assert city.api.get("/v1/policy?period=2025-06").json()["version"] == 1
    assert city.api.get("/v1/policy?period=2025-07").json()["version"] == version


def test_recomputing_a_draft_replaces_it(city, sql):
    city.incubator("RE")
    city.tenant("RE", "A")
    city.tenant("RE", "B")
    city.snapshot("RE", "2025-10-01", {"A": 6000, "B": 100})
    city.graduate("RE", "A", "2025-10-03")
    first = city.run("2025-10", expect=(201,)).json()
    assert first["total_fen"] == REWARD
    city.graduate("RE", "B", "2025-10-04")
    second = city.run("2025-10", expect=(200,))
    assert second.header("Location") == "/v1/payout-runs/2025-10"
    assert second.json()["total_fen"] == 2 * REWARD
    assert sql.execute("SELECT count(*) FROM payout_graduates").fetchone()[0] == 2


def test_unfinished_month_and_approved_run_are_refused(city):
    today = time.strftime("%Y-%m")
    assert_problem(city.api.post("/v1/payout-runs", {"period": today}), 422, "period")
    assert_problem(city.api.post("/v1/payout-runs", {"period": "2999-01"}), 422, "period")
    city.incubator("Q")
    city.run("2025-10")
    city.approve("2025-10")
    assert_problem(city.api.post("/v1/payout-runs", {"period": "2025-10"}), 409)
    assert_problem(city.api.post("/v1/payout-runs/2025-10/approve"), 409)
    assert_problem(city.api.post("/v1/payout-runs/2025-09/approve"), 404)


def test_bad_input(city, daemon, sql):
    city.incubator("BAD")
    tok = city.api.post("/v1/incubators/BAD/tokens", {"name": "x"}).json()["token"]
    assert_problem(city.api.post("/v1/payout-runs", {"period": "2025-13"}), 422, "period")
    assert_problem(city.api.post("/v1/payout-runs", {"period": 202510}), 422, "period")
    assert_problem(city.api.post("/v1/payout-runs", {"period": "2025-10", "x": 1}), 422, "x")
    assert_problem(city.api.post("/v1/payout-runs", {}), 422, "period")
    assert_problem(daemon.request("POST", "/v1/payout-runs", token=daemon.admin_token,
                                  body='{"period": '), 400)
    assert_problem(daemon.request("POST", "/v1/payout-runs", token=daemon.admin_token,
                                  body='{"period": "2025-10", "period": "2025-09"}'), 400)
    assert_problem(Api(daemon, tok).post("/v1/payout-runs", {"period": "2025-10"}), 403)
    assert_problem(Api(daemon, "ikd_" + "x" * 43).post("/v1/payout-runs",
                                                        {"period": "2025-10"}), 401)
    assert_problem(daemon.request("POST", "/v1/payout-runs", token=daemon.admin_token,
                                  body=b"x" * (MAX_BODY_BYTES + 1)), 413)
    assert_problem(city.api.get("/v1/payout-runs/2025-13"), 404)
    assert_problem(city.api.get("/v1/payout-runs?limit=0"), 400)
    bad = dict(POLICY, effective_from="2026-01", veto_threshold=1.5)
    assert_problem(city.api.post("/v1/policy", bad), 422, "veto_threshold")
    bad = dict(POLICY, effective_from="2026-01", annual_cap_fen=1.5)
    assert_problem(city.api.post("/v1/policy", bad), 422, "annual_cap_fen")
    bad = {k: v for k, v in POLICY.items() if k != "plan"}
    bad["effective_from"] = "2026-01"
    assert_problem(city.api.post("/v1/policy", bad), 422, "plan")
    bad = dict(POLICY, effective_from="2026-01", extended_fields=["biomedicine", "space"])
    assert_problem(city.api.post("/v1/policy", bad), 422, "extended_fields[1]")
    assert_problem(Api(daemon, tok).post("/v1/policy", dict(POLICY, effective_from="2026-01")),
                   403)
    assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 0
    assert sql.execute("SELECT count(*) FROM policies").fetchone()[0] == 1


def test_approval_freezes_history(city, daemon):
    city.incubator("FZ")
    city.tenant("FZ", "A", admitted="2024-03-01")
    city.tenant("FZ", "B")
    city.snapshot("FZ", "2025-09-01", {"A": 6000})
    city.run("2025-09")
    approved = city.approve("2025-09")
    assert approved["status"] == "approved" and approved["approved_by"] == "test-admin"
    frozen = [
        ("PUT", "/v1/incubators/FZ/occupancy",
         {"as_of": "2025-09-30", "public_service_area_m2": 0, "tenants": []}),
        # (A graduation in it is taken as a late graduation: see below.)
        ("POST", "/v1/incubators/FZ/tenants/B/exit",
         {"exited_on": "2025-09-30", "reason": "closed"}),
        ("PATCH", "/v1/incubators/FZ",
         {"disposable_area_m2": 9000, "effective_on": "2025-09-30"}),
        ("PUT", "/v1/incubators/FZ/tenants/A",  # admitted_on moves across the frozen end
         {"name": "企业 A", "credit_code": credit_code(1), "founded_on": "2023-06-01",
          "admitted_on": "2025-10-02", "field": "other", "tech_certified_on": "2024-01-01"}),
        ("POST", "/v1/policy", dict(POLICY, effective_from="2025-09")),
    ]
    for method, path, body in frozen:
        assert_problem(city.api.call(method, path, body), 409)
    # After the frozen end, and new tenants admitted long ago, are fine.
    city.snapshot("FZ", "2025-10-01", {"A": 6000})
    city.tenant("FZ", "NEW", admitted="2024-02-01")
    assert city.api.post("/v1/policy", dict(POLICY, effective_from="2025-10")).status == 201
    # The approved run never changes.
    city.graduate("FZ", "B", "2025-10-15")
    assert city.api.get("/v1/payout-runs/2025-09").json() == approved


def test_approving_out_of_order_is_refused(city):
    city.incubator("ORD")
    city.run("2025-08")
    city.run("2025-09")
    p = assert_problem(city.api.post("/v1/payout-runs/2025-09/approve"), 409)
    assert "2025-08" in p["detail"]
    city.approve("2025-08")
    city.approve("2025-09")
    runs = city.api.get("/v1/payout-runs").json()["items"]
    assert [(r["period"], r["status"]) for r in runs] == [("2025-09", "approved"),
                                                         ("2025-08", "approved")]


def csv_rows(daemon, path, lang=None):
    """The CSV export at path as a list of rows (the header first), via csv.reader."""
    headers = {"Accept": "text/csv"}
    if lang:
        headers["Accept-Language"] = lang
    r = daemon.request("GET", path, token=daemon.admin_token, headers=headers)
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert r.body.startswith(b"\xef\xbb\xbf")
    text = r.body[3:].decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


def cny(fen):
    """Fen as the CSV shows yuan, computed here: -5000000 -> '-50000.00'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def ratio4(x):
    return "" if x is None else str(Decimal(str(x)).quantize(Decimal("0.0001")))


ZH_WORDS = {"yes": "是", "no": "否", "veto": "一票否决", "no_data": "无数据", "cap": "年度上限",
            "not_tech": "非科技型企业", "entry_age": "入孵时成立超期",
            "already_rewarded": "已奖励过", "total": "合计", "graduate": "本期毕业",
            "late_graduation": "补报毕业", "clawback": "追回"}


def assert_zh_same_cells(en, zh, zh_header):
    """The Chinese export: its own header, then every cell as the English one's,
    with yes/no and codes in words."""
    assert zh[0] == zh_header and len(zh) == len(en)
    for en_row, zh_row in zip(en[1:], zh[1:]):
        assert zh_row == [ZH_WORDS.get(c, c) for c in en_row]


@pytest.fixture
def exported(city):
    """A run with every kind of line: a quoted name, a veto, no data, a cap, a late
    graduation and a clawback (October 2025, after September was approved)."""
    r = city.api.post("/v1/policy", dict(POLICY, effective_from="2025-09",
                                         annual_cap_fen=3 * REWARD))
    assert r.status == 201, r
    city.incubator("CSV-1")
    assert city.api.patch("/v1/incubators/CSV-1", {"name": '哈尔滨 "创新", 孵化器'}).status == 200
    city.incubator("CSV-2")
    city.incubator("CSV-3")  # no data
    for ext in ("A", "B", "C", "D"):
        city.tenant("CSV-1", ext, high_tech="2024-01-01" if ext == "A" else None)
    city.tenant("CSV-2", "V")
    city.snapshot("CSV-1", "2025-09-01", {"A": 2000, "B": 2000, "C": 1000, "D": 1000})
    city.snapshot("CSV-2", "2025-09-01", {"V": 4000})   # 0.4: vetoed
    city.graduate("CSV-1", "A", "2025-09-05", basis="high_tech")
    city.graduate("CSV-2", "V", "2025-09-06")
    city.run("2025-09")
    city.approve("2025-09")
    city.graduate("CSV-1", "B", "2025-09-20")           # late: 5,000,000
    revoke(city.api, "CSV-1", "A")                       # clawback: -7,000,000
    city.graduate("CSV-1", "C", "2025-10-10")
    city.graduate("CSV-1", "D", "2025-10-11")            # the cap cuts D
    return city.run("2025-10").json()


def test_payout_csv_in_both_languages_matches_the_json(exported, daemon):
    run = exported
    rows = csv_rows(daemon, "/v1/payout-runs/2025-10")
    assert rows[0] == ["period", "incubator", "name", "share_average", "days_with_data",
                       "vetoed", "eligible_graduates", "base_cny", "adjustments_cny",
                       "adjustments_fen", "amount_cny", "reason"]
    names = {"CSV-1": '哈尔滨 "创新", 孵化器', "CSV-2": "孵化器 CSV-2", "CSV-3": "孵化器 CSV-3"}
    lines = run["lines"]
    assert len(rows) == 1 + len(lines) + 1
    for row, ln in zip(rows[1:], lines):
        assert row == ["2025-10", ln["incubator"], names[ln["incubator"]],
                       ratio4(ln["share_average"]), str(ln["days_with_data"]),
                       "yes" if ln["vetoed"] else "no", str(ln["eligible_graduates"]),
                       cny(ln["base_fen"]), cny(ln["adjustments_fen"]),
                       str(ln["adjustments_fen"]), cny(ln["amount_fen"]), ln["reason"] or ""]
    one = line(run, "CSV-1")
    # 2025's cap (15,000,000) after September (7,000,000) and B's late 5,000,000: 3,000,000
    # for C and D; A's 7,000,000 is recovered.
    assert (one["base_fen"], one["cap_remaining_fen"], one["adjustments_fen"],
            one["amount_fen"]) == (2 * REWARD, 3 * REWARD - (REWARD + BONUS) - REWARD,
                                   REWARD - (REWARD + BONUS),
                                   3 * REWARD - (REWARD + BONUS) - REWARD - BONUS)
    assert rows[1][8:10] == ["-20000.00", "-2000000"]  # 5,000,000 late, less 7,000,000 recovered
    total = rows[-1]
    assert total == ["2025-10", "total", "", "", "", str(len(run["vetoed"])),
                     str(sum(l["eligible_graduates"] for l in lines)),
                     cny(sum(l["base_fen"] for l in lines)),
                     cny(sum(l["adjustments_fen"] for l in lines)),
                     str(sum(l["adjustments_fen"] for l in lines)), cny(run["total_fen"]), ""]
    assert sum(Fraction(r[10]) for r in rows[1:-1]) * 100 == run["total_fen"]
    # Chinese: the same cells.
    zh_header = ["期间", "孵化器代码", "孵化器名称", "科技企业场地占比均值", "有数据天数", "一票否决",
                 "符合条件毕业企业数", "基础奖励（元）", "调整金额（元）", "调整金额（分）", "奖励金额（元）",
                 "原因"]
    assert_zh_same_cells(rows, csv_rows(daemon, "/v1/payout-runs/2025-10?lang=zh"), zh_header)
    assert_zh_same_cells(rows, csv_rows(daemon, "/v1/payout-runs/2025-10", lang="zh-CN,zh;q=0.9"),
                         zh_header)
    assert csv_rows(daemon, "/v1/payout-runs/2025-10", lang="en-US,zh;q=0.5") == rows


def test_payout_csv_per_graduate_adds_up_to_each_line(exported, daemon):
    run = exported
    rows = csv_rows(daemon, "/v1/payout-runs/2025-10?detail=graduates")
    head = rows[0]
    assert head == ["period", "incubator", "incubator_name", "kind", "for_period", "external_id",
                    "name", "credit_code", "graduated_on", "high_tech", "eligible", "reason",
                    "amount_cny"]
    items = [dict(zip(head, r)) for r in rows[1:-1]]
    # One row per graduate of the month and per adjustment, as the JSON lists them.
    expected = []
    for ln in run["lines"]:
        for g in ln["graduates"]:
            expected.append((ln["incubator"], "graduate", "2025-10", g["external_id"],
                             g["credit_code"], g["graduated_on"],
                             "yes" if g["high_tech"] else "no", "yes" if g["eligible"] else "no",
                             g["reason"] or ""))
        for a in ln["adjustments"]:
            expected.append((ln["incubator"], a["kind"], a["for_period"], a["external_id"],
                             a["credit_code"], a["graduated_on"],
                             "yes" if a["high_tech"] else "no",
                             "yes" if a["kind"] == "late_graduation" else "no", a["reason"] or ""))
    assert [(i["incubator"], i["kind"], i["for_period"], i["external_id"], i["credit_code"],
             i["graduated_on"], i["high_tech"], i["eligible"], i["reason"]) for i in items] \
        == expected
    assert all(i["name"] == f"企业 {i['external_id']}" for i in items)
    # Each line's rows add up to its amount; the cap left C 3,000,000 of its 5,000,000 and
    # D, graduated last, nothing; a vetoed line pays nobody.
    for ln in run["lines"]:
        assert sum(Fraction(i["amount_cny"]) for i in items
                   if i["incubator"] == ln["incubator"]) * 100 == ln["amount_fen"]
    by = {(i["incubator"], i["kind"], i["external_id"]): i["amount_cny"] for i in items}
    cap_left = 3 * REWARD - (REWARD + BONUS) - REWARD
    assert by[("CSV-1", "graduate", "C")] == cny(cap_left) == "30000.00"
    assert by[("CSV-1", "graduate", "D")] == "0.00"
    assert by[("CSV-1", "late_graduation", "B")] == cny(REWARD)
    assert by[("CSV-1", "clawback", "A")] == cny(-(REWARD + BONUS)) == "-70000.00"
    sept = {(r[1], r[5]): r[-1] for r in
            csv_rows(daemon, "/v1/payout-runs/2025-09?detail=graduates")[1:-1]}
    assert sept == {("CSV-1", "A"): cny(REWARD + BONUS), ("CSV-2", "V"): "0.00"}
    assert rows[-1][1] == "total" and rows[-1][-1] == cny(run["total_fen"])
    zh = csv_rows(daemon, "/v1/payout-runs/2025-10?detail=graduates&lang=zh")
    assert_zh_same_cells(rows, zh, ["期间", "孵化器代码", "孵化器名称", "类别", "所属期间", "企业编号",
                                    "企业名称", "统一社会信用代码", "毕业日期", "高新技术企业",
                                    "符合条件", "原因", "奖励金额（元）"])


def test_payout_csv_bad_query(city, daemon, sql):
    city.incubator("Q1")
    city.run("2025-10")
    for q in ("lang=fr", "detail=lines", "lang=", "x=1"):
        r = daemon.request("GET", f"/v1/payout-runs/2025-10?{q}", token=daemon.admin_token,
                           headers={"Accept": "text/csv"})
        assert_problem(r, 400)


def test_incubator_reads_its_own_approved_lines(city, daemon):
    city.incubator("OWN")
    city.incubator("OTHER")
    tok = city.api.post("/v1/incubators/OWN/tokens", {"name": "erp"}).json()["token"]
    own = Api(daemon, tok)
    city.run("2025-10")
    assert own.get("/v1/incubators/OWN/payouts").json()["items"] == []
    city.approve("2025-10")
    items = own.get("/v1/incubators/OWN/payouts").json()["items"]
    assert [i["period"] for i in items] == ["2025-10"] and items[0]["reason"] == "no_data"
    assert_problem(own.get("/v1/incubators/OTHER/payouts"), 403)
    assert_problem(own.get("/v1/payout-runs/2025-10"), 403)


def previous_month(t=None):
    y, m = time.localtime(t)[:2]
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


SCHEDULE = "[schedule]\ntimezone = UTC\npayout_day = 1\npayout_hour = 0\npayout_enabled = true"


def open_incubator_long_ago(sql, code="OLD"):
    """An incubator the schedule has something to compute for (written before
    any daemon starts, so that its start-up run sees it)."""
    sql.execute("INSERT INTO incubators (code, name, level, kind, opened_on) "
                "VALUES (%s, '旧孵化器', 'municipal', 'comprehensive', '2020-01-01')", (code,))
    sql.execute("INSERT INTO incubator_areas (incubator_id, valid, disposable_area_m2) "
                "SELECT id, daterange('2020-01-01', NULL), 1000 FROM incubators WHERE code = %s",
                (code,))


def test_missed_run_is_computed_at_start_by_one_of_two_daemons(pg, db, workdir, sql):
    open_incubator_long_ago(sql)
    # Due on the 1st at 00:00 UTC: whatever today is, last month's run is due.
    a = start_daemon(pg, db, workdir, SCHEDULE)
    b = start_daemon(pg, db, workdir, SCHEDULE)
    try:
        period = previous_month(time.time())
        wait_for(lambda: sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 1,
                 timeout=15, what="the scheduled run")
        time.sleep(1.5)  # both daemons have had their chance
        rows = sql.execute("SELECT to_char(period, 'YYYY-MM'), status, computed_by "
                           "FROM payout_runs").fetchall()
        assert rows == [(period, "draft", "schedule")]
        audits = sql.execute("SELECT count(*) FROM audit_log WHERE summary LIKE "
                             "'computed payout run % on schedule%'").fetchone()[0]
        assert audits == 1
        logs = a.log() + b.log()
        assert logs.count(f"payout run {period} draft:") == 1
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


# libfaketime itself, preloaded into the daemon: the faketime command runs its
# program as a child, which a signal to the command would not reach.
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.mark.skipif(not os.path.exists(FAKETIME), reason="libfaketime is not installed")
def test_two_daemons_racing_at_the_scheduled_time_make_one_run(pg, db, workdir, sql):
    # Both clocks start two seconds before 2027-03-01 00:00 UTC; the February run
    # becomes due while both run. (A run for January exists, so start-up catch-up
    # has nothing to do.)
    open_incubator_long_ago(sql)
    sql.execute("INSERT INTO payout_runs (period, status, policy_version, computed_at, "
                "computed_by, total_fen) VALUES ('2027-01-01', 'draft', 1, now(), 'x', 0)")
    env = dict(os.environ, LD_PRELOAD=preload(FAKETIME), FAKETIME="@2027-02-28 23:59:58",
               FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1", TZ="UTC")
    daemons = [start_daemon(pg, db, workdir, SCHEDULE, env=env) for _ in range(2)]
    try:
        wait_for(lambda: sql.execute(
            "SELECT count(*) FROM payout_runs WHERE period = '2027-02-01'").fetchone()[0] == 1,
            timeout=15, what="the February run")
        time.sleep(1.5)
        assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 2
    finally:
        for d in daemons:
            assert d.stop() == 0


def test_computation_emits_an_event_and_the_job_logs_vetoes(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, SCHEDULE)
    try:
        api = Api(d, d.admin_token)
        City(api).incubator("QUIET")  # no data: vetoed
        period = previous_month(time.time())
        wait_for(lambda: sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0],
                 timeout=15, what="a payout run")
        log = wait_for(lambda: "vetoed=QUIET" in d.log() and d.log(), timeout=15,
                       what="the payout job's summary")
        assert f"payout run {period} draft: 1 incubators, total 0.00 CNY, 1 vetoed" in log
        assert f"payout run {period}: incubator QUIET vetoed: no occupancy data" in log
        events = sql.execute("SELECT type, payload FROM outbox "
                             "WHERE type = 'payout_run.computed'").fetchall()
        assert len(events) == 1
        data = events[0][1]["data"]
        assert data == {"period": period, "status": "draft", "total_fen": 0, "vetoed": ["QUIET"]}
        # A manual recomputation and an approval are events too (a review is not).
        assert api.post("/v1/payout-runs", {"period": period}).status == 200
        assert admin_token(d, "reviewer").post(f"/v1/payout-runs/{period}/review").status == 200
        assert api.post(f"/v1/payout-runs/{period}/approve").status == 200
        statuses = [tuple(r) for r in sql.execute(
            "SELECT type, payload->'data'->>'status' FROM outbox "
            "WHERE type LIKE 'payout_run.%' ORDER BY id").fetchall()]
        assert statuses == [("payout_run.computed", "draft"), ("payout_run.computed", "draft"),
                            ("payout_run.approved", "approved")]
    finally:
        assert d.stop() == 0


def test_nothing_is_computed_before_the_first_incubator(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, SCHEDULE)
    try:
        wait_for(lambda: "no incubator was open then; nothing to compute" in d.log(),
                 timeout=15, what="the payout job's log line")
        assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 0
    finally:
        assert d.stop() == 0


def test_schedule_can_be_switched_off(pg, db, workdir, sql):
    open_incubator_long_ago(sql)
    d = start_daemon(pg, db, workdir, SCHEDULE.replace("payout_enabled = true",
                                                       "payout_enabled = false"))
    try:
        time.sleep(2.5)  # the start-up catch-up would have run by now
        assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 0
        # Switched on by SIGHUP, the missed run is computed.
        with open(d.config_path, "a") as f:
            f.write("")
        text = open(d.config_path).read().replace("payout_enabled = false",
                                                   "payout_enabled = true")
        open(d.config_path, "w").write(text)
        d.kill(signal.SIGHUP)
        wait_for(lambda: sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0],
                 timeout=15, what="a payout run")
    finally:
        assert d.stop() == 0


# ---- four eyes, the order of approvals, token names ----

def run_row(sql, period):
    return sql.execute("SELECT * FROM payout_runs WHERE period = %s", (period + "-01",)).fetchone()


def assert_post_refused(daemon, path, sample, other_token):
    """The refusals every POST with a JSON body shares: malformed JSON, a
    duplicate key, not JSON, too large, another scope's token, no valid token."""
    admin = daemon.admin_token
    key = next(iter(sample))
    assert_problem(daemon.request("POST", path, token=admin, body='{"%s": ' % key), 400)
    assert_problem(daemon.request("POST", path, token=admin,
                                  body='{"%s": 1, "%s": 2}' % (key, key)), 400)
    assert_problem(daemon.request("POST", path, token=admin, body="x=1",
                                  content_type="text/plain"), 415)
    assert_problem(daemon.request("POST", path, token=admin, body=b"x" * (MAX_BODY_BYTES + 1)),
                   413)
    assert_problem(Api(daemon, other_token).post(path, sample), 403)
    assert_problem(Api(daemon, "ikd_" + "x" * 43).post(path, sample), 401)


def test_four_eyes_each_action_records_its_own_name(city, daemon, sql):
    computer, reviewer, approver = (admin_token(daemon, n) for n in ("clerk", "checker", "head"))
    city.incubator("FE")
    city.tenant("FE", "A")
    city.snapshot("FE", "2025-10-01", {"A": 6000})
    city.graduate("FE", "A", "2025-10-10")
    assert computer.post("/v1/payout-runs", {"period": "2025-10"}).status == 201
    # No review yet: refused, and nothing moved.
    before = run_row(sql, "2025-10")
    p = assert_problem(approver.post("/v1/payout-runs/2025-10/approve"), 409)
    assert "review" in p["detail"]
    assert run_row(sql, "2025-10") == before
    run = reviewer.post("/v1/payout-runs/2025-10/review", {"note": "核对无误"}).json()
    assert (run["status"], run["computed_by"], run["reviewed_by"], run["review_note"]) == \
        ("draft", "clerk", "checker", "核对无误")
    assert run["reviewed_at"] is not None and run["approved_by"] is None
    # A second review, by anyone, would overwrite the first: refused.
    assert_problem(approver.post("/v1/payout-runs/2025-10/review", {"note": "x"}), 409)
    # The reviewer may not approve what it reviewed.
    before = run_row(sql, "2025-10")
    p = assert_problem(reviewer.post("/v1/payout-runs/2025-10/approve"), 409)
    assert "checker" in p["detail"]
    assert run_row(sql, "2025-10") == before
    done = approver.post("/v1/payout-runs/2025-10/approve").json()
    assert (done["status"], done["computed_by"], done["computed_at"], done["reviewed_by"],
            done["reviewed_at"], done["review_note"], done["approved_by"]) == \
        ("approved", "clerk", run["computed_at"], "checker", run["reviewed_at"], "核对无误",
         "head")
    assert done["total_fen"] == REWARD
    assert_problem(reviewer.post("/v1/payout-runs/2025-10/review"), 409)


def test_recomputing_clears_the_review(city):
    city.incubator("RC")
    city.run("2025-10")
    reviewed = city.review("2025-10", note="ok")
    assert reviewed["reviewed_by"] == "test-reviewer"
    again = city.run("2025-10", expect=(200,)).json()
    assert (again["reviewed_by"], again["reviewed_at"], again["review_note"]) == (None, None, None)
    assert_problem(city.api.post("/v1/payout-runs/2025-10/approve"), 409)


def test_approval_refused_when_its_recomputation_changes_an_amount(city, sql):
    city.incubator("CH")
    city.incubator("SAME")
    for ext in ("A", "B"):
        city.tenant("CH", ext)
    city.snapshot("CH", "2025-10-01", {"A": 3000, "B": 3000})
    city.snapshot("SAME", "2025-10-01", {})
    city.graduate("CH", "A", "2025-10-10")
    city.run("2025-10")
    reviewed = city.review("2025-10")
    assert reviewed["total_fen"] == REWARD
    # A graduation arrives between review and approval: the reviewed figure is stale.
    city.graduate("CH", "B", "2025-10-20")
    p = assert_problem(city.api.post("/v1/payout-runs/2025-10/approve"), 409)
    assert p["errors"] == [{"field": "lines[CH].amount_fen",
                            "message": f"was {REWARD // 100}.00 CNY, "
                                       f"now {2 * REWARD // 100}.00 CNY"}]
    run = city.api.get("/v1/payout-runs/2025-10").json()
    assert (run["status"], run["reviewed_by"], run["total_fen"], run["computed_by"]) == \
        ("draft", None, 2 * REWARD, "test-admin")
    assert line(run, "CH")["amount_fen"] == 2 * REWARD
    # Reviewed again, the new figures are approved.
    assert city.approve("2025-10")["total_fen"] == 2 * REWARD


def test_four_eyes_off_keeps_one_step_approval(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir, "[payouts]\nfour_eyes = false")
    api = Api(d, d.admin_token)
    City(api).incubator("ONE")
    assert api.post("/v1/payout-runs", {"period": "2025-10"}).status == 201
    run = api.post("/v1/payout-runs/2025-10/approve").json()
    assert (run["status"], run["computed_by"], run["reviewed_by"], run["approved_by"]) == \
        ("approved", "test-admin", None, "test-admin")


def test_no_gaps_in_either_direction(city, sql):
    city.incubator("GAP", opened="2025-01-01")
    city.run("2025-08")
    city.run("2025-10")
    city.approve("2025-08")
    # October has a run, September none: approving October would skip September.
    city.review("2025-10")
    before = run_row(sql, "2025-10")
    p = assert_problem(city.api.post("/v1/payout-runs/2025-10/approve"), 409)
    assert "2025-09" in p["detail"]
    assert run_row(sql, "2025-10") == before
    city.run("2025-09")
    city.approve("2025-09")
    assert city.api.post("/v1/payout-runs/2025-10/approve").status == 200
    # Backwards: nothing before an approved month, computed or approved.
    for period in ("2025-07", "2025-01"):
        p = assert_problem(city.api.post("/v1/payout-runs", {"period": period}), 409)
        assert "2025-10" in p["detail"]
    assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == 3


def test_an_earlier_draft_cannot_be_approved_after_a_later_month(city, sql):
    # A draft of an earlier month made before the later one was approved (by
    # the history starting later) stays a draft: no approval out of order.
    city.incubator("OLDRUN", opened="2025-01-01")
    city.run("2025-09")
    city.approve("2025-09")
    p = assert_problem(city.api.post("/v1/payout-runs", {"period": "2025-08"}), 409)
    assert "2025-09" in p["detail"]
    assert [r[0] for r in sql.execute("SELECT to_char(period, 'YYYY-MM') FROM payout_runs")] \
        == ["2025-09"]


def test_review_bad_input(city, daemon, sql, unchanged):
    city.incubator("RV")
    tok = city.api.post("/v1/incubators/RV/tokens", {"name": "erp"}).json()["token"]
    city.run("2025-10")
    before = run_row(sql, "2025-10")
    review = "/v1/payout-runs/2025-10/review"
    with unchanged():
        assert_problem(city.reviewer.post(review, {"note": 5}), 422, "note")
        assert_problem(city.reviewer.post(review, {"note": ""}), 422, "note")
        assert_problem(city.reviewer.post(review, {"note": "x" * 1001}), 422, "note")
        assert_problem(city.reviewer.post(review, {"note": "ok", "by": "me"}), 422, "by")
        assert_post_refused(daemon, review, {"note": "ok"}, tok)
        assert_problem(city.reviewer.post("/v1/payout-runs/2025-09/review", {}), 404)
        assert_problem(city.reviewer.post("/v1/payout-runs/2025-13/review", {}), 404)
        assert_problem(Api(daemon, tok).post("/v1/payout-runs/2025-10/approve"), 403)
        assert_problem(city.api.post("/v1/payout-runs/2025-10/approve", {"four_eyes": False}),
                       422, "four_eyes")
    assert run_row(sql, "2025-10") == before


def test_token_names_are_unique_among_unrevoked_tokens(city, daemon, sql, unchanged):
    city.incubator("TN-1")
    city.incubator("TN-2")
    first = city.api.post("/v1/incubators/TN-1/tokens", {"name": "erp"})
    assert first.status == 201
    with unchanged():
        p = assert_problem(city.api.post("/v1/incubators/TN-1/tokens", {"name": "erp"}), 409)
        assert "erp" in p["detail"]
    # Another incubator's tokens, and admin tokens, are other name spaces.
    assert city.api.post("/v1/incubators/TN-2/tokens", {"name": "erp"}).status == 201
    assert run_cli(daemon.config_path, "token", "create", "--admin", "erp").returncode == 0
    # A revoked token's name is free again.
    assert city.api.delete(f"/v1/tokens/{first.json()['id']}").status == 204
    assert city.api.post("/v1/incubators/TN-1/tokens", {"name": "erp"}).status == 201
    # The command line: the admin name in use is refused, the incubator's too.
    with unchanged():
        p = run_cli(daemon.config_path, "token", "create", "--admin", "test-admin", check=False)
        assert p.returncode != 0 and "test-admin" in p.stderr and p.stdout == ""
        p = run_cli(daemon.config_path, "token", "create", "--incubator", "TN-2", "erp",
                    check=False)
        assert p.returncode != 0 and "erp" in p.stderr and p.stdout == ""
    names = sql.execute("SELECT coalesce(i.code, '-'), t.name FROM tokens t LEFT JOIN incubators i "
                        "ON i.id = t.incubator_id WHERE t.revoked_at IS NULL "
                        "ORDER BY 1, 2").fetchall()
    assert len(names) == len(set(names))


# ---- late graduations, clawbacks, prior payouts ----

def adjustments(run, code):
    return [(a["kind"], a["for_period"], a["external_id"], a["amount_fen"], a["reason"])
            for a in line(run, code)["adjustments"]]


def revoke(api, inc, ext, reason="毕业材料不实"):
    r = api.post(f"/v1/incubators/{inc}/tenants/{ext}/graduation/revoke", {"reason": reason})
    assert r.status == 200, r
    return r.json()


def test_late_graduation_paid_next_under_its_own_period_veto(city):
    city.incubator("LATE")
    city.incubator("VET")
    for ext in ("A", "B", "C"):
        city.tenant("LATE", ext)
    city.tenant("VET", "G")
    city.tenant("VET", "H")
    city.snapshot("LATE", "2025-09-01", {"A": 3000, "B": 3000})
    city.snapshot("VET", "2025-09-01", {"G": 3000})          # 0.3 in September: vetoed
    city.graduate("LATE", "A", "2025-09-10")
    sept = city.run("2025-09").json()
    assert line(sept, "LATE")["amount_fen"] == REWARD and line(sept, "VET")["vetoed"]
    city.approve("2025-09")
    # Recorded after September's approval, dated in September: accepted.
    city.graduate("LATE", "B", "2025-09-20")
    city.graduate("VET", "G", "2025-09-25")
    city.snapshot("VET", "2025-10-01", {"H": 6000})           # 0.6 in October
    octo = city.run("2025-10").json()
    assert adjustments(octo, "LATE") == [("late_graduation", "2025-09", "B", REWARD, None)]
    lt = line(octo, "LATE")
    assert (lt["base_fen"], lt["adjustments_fen"], lt["amount_fen"]) == (0, REWARD, REWARD)
    # September's veto decides G's reward, though VET is fine in October.
    assert line(octo, "VET")["vetoed"] is False
    assert adjustments(octo, "VET") == [("late_graduation", "2025-09", "G", 0, "veto")]
    assert octo["total_fen"] == REWARD
    # A draft of November made now carries B as well; only one approved run may.
    nov = city.run("2025-11").json()
    assert adjustments(nov, "LATE") == [("late_graduation", "2025-09", "B", REWARD, None)]
    city.approve("2025-10")
    city.review("2025-11")
    p = assert_problem(city.api.post("/v1/payout-runs/2025-11/approve"), 409)
    assert {"field": "lines[LATE].amount_fen",
            "message": f"was {REWARD // 100}.00 CNY, now 0.00 CNY"} in p["errors"]
    nov = city.approve("2025-11")
    assert adjustments(nov, "LATE") == [] and nov["total_fen"] == 0
    # The approved September run never changed.
    assert [g["external_id"] for g in line(city.api.get("/v1/payout-runs/2025-09").json(),
                                           "LATE")["graduates"]] == ["A"]


def test_late_graduation_takes_the_cap_of_its_own_year(city):
    cap = 13_000_000
    capped_incubator(city, "CAPL", cap, 5)
    city.graduate("CAPL", "T0", "2024-11-05")
    city.graduate("CAPL", "T1", "2024-11-06")
    city.run("2024-11")
    city.approve("2024-11")                          # 2024: 10,000,000 paid
    city.run("2024-12")
    city.approve("2024-12")                          # nothing in December
    city.graduate("CAPL", "T2", "2024-12-20")        # late, for 2024
    city.graduate("CAPL", "T3", "2025-01-05")
    jan = city.run("2025-01").json()
    # 2024's cap has 13,000,000 - 10,000,000 = 3,000,000 left for T2's 5,000,000;
    # T3 is paid under 2025's fresh cap.
    assert adjustments(jan, "CAPL") == [("late_graduation", "2024-12", "T2",
                                          cap - 2 * REWARD, "cap")]
    ln = line(jan, "CAPL")
    assert (ln["base_fen"], ln["cap_remaining_fen"], ln["amount_fen"]) == \
        (REWARD, cap, REWARD + cap - 2 * REWARD)


def test_clawback_makes_a_negative_line_carried_once(city, sql):
    city.incubator("CLAW")
    for ext in ("A", "B", "C"):
        city.tenant("CLAW", ext)
    city.snapshot("CLAW", "2025-09-01", {"A": 2000, "B": 2000, "C": 2000})
    city.graduate("CLAW", "A", "2025-09-10")
    city.run("2025-09")
    city.approve("2025-09")                       # A paid 5,000,000 on September's line
    city.graduate("CLAW", "B", "2025-09-20")      # late
    city.run("2025-10")
    city.approve("2025-10")                       # B paid 5,000,000 as an adjustment
    # Both graduations are found false.
    tenant = revoke(city.api, "CLAW", "A")
    assert (tenant["status"], tenant["graduated_on"], tenant["graduation_basis"]) == \
        ("incubating", None, None)
    r = city.api.post("/v1/incubators/CLAW/tenants/B/exit",
                      {"exited_on": "2025-11-05", "reason": "relocated"})
    assert r.status == 200, r
    assert revoke(city.api, "CLAW", "B")["status"] == "exited"
    nov = city.run("2025-11").json()
    assert adjustments(nov, "CLAW") == [("clawback", "2025-09", "A", -REWARD, "毕业材料不实"),
                                        ("clawback", "2025-09", "B", -REWARD, "毕业材料不实")]
    ln = line(nov, "CLAW")
    assert (ln["base_fen"], ln["adjustments_fen"], ln["amount_fen"]) == (0, -2 * REWARD,
                                                                         -2 * REWARD)
    assert nov["total_fen"] == -2 * REWARD
    city.approve("2025-11")
    dec = city.run("2025-12").json()
    assert adjustments(dec, "CLAW") == [] and dec["total_fen"] == 0
    # The revocations keep what they undid.
    rows = sql.execute("SELECT graduated_on::text, graduation_basis, revoked_by "
                       "FROM graduation_revocations ORDER BY id").fetchall()
    assert rows == [("2025-09-10", "investment", "test-admin"),
                    ("2025-09-20", "investment", "test-admin")]
    # A is incubating again; graduating again (in a month not yet approved), it
    # earns its reward again, the first one having been recovered.
    city.graduate("CLAW", "A", "2025-12-10")
    dec = city.run("2025-12").json()
    assert line(dec, "CLAW")["graduates"][0]["eligible"] is True


def test_clawback_on_a_capped_line_recovers_what_the_graduate_changed(city):
    cap = 8_000_000
    capped_incubator(city, "CAPC", cap, 2, since="2025-09")
    city.graduate("CAPC", "T0", "2025-09-10")
    city.graduate("CAPC", "T1", "2025-09-11")
    sept = city.run("2025-09").json()
    assert line(sept, "CAPC")["amount_fen"] == cap          # 10,000,000 capped at 8,000,000
    city.approve("2025-09")
    revoke(city.api, "CAPC", "T0")
    # Without T0 the line would have paid min(5,000,000, 8,000,000): T0 made 3,000,000.
    octo = city.run("2025-10").json()
    assert adjustments(octo, "CAPC") == [("clawback", "2025-09", "T0", -(cap - REWARD),
                                           "毕业材料不实")]
    city.approve("2025-10")
    revoke(city.api, "CAPC", "T1")
    nov = city.run("2025-11").json()
    assert adjustments(nov, "CAPC") == [("clawback", "2025-09", "T1", -REWARD, "毕业材料不实")]


def test_revoke_bad_input(city, daemon, sql, unchanged):
    city.incubator("RVK")
    city.incubator("OTHER")
    city.tenant("RVK", "A")
    city.tenant("RVK", "N")
    city.graduate("RVK", "A", "2025-09-10")
    tok = city.api.post("/v1/incubators/RVK/tokens", {"name": "erp"}).json()["token"]
    path = "/v1/incubators/RVK/tenants/A/graduation/revoke"
    state = lambda: (sql.execute("SELECT status, graduated_on FROM tenants "
                                 "WHERE external_id = 'A'").fetchone(),
                     sql.execute("SELECT count(*) FROM graduation_revocations").fetchone())
    before = state()
    with unchanged():
        assert_problem(city.api.post(path, {}), 422, "reason")
        assert_problem(city.api.post(path, {"reason": ""}), 422, "reason")
        assert_problem(city.api.post(path, {"reason": 5}), 422, "reason")
        assert_problem(city.api.post(path, {"reason": "x" * 1001}), 422, "reason")
        assert_problem(city.api.post(path, {"reason": "x", "amount_fen": 1}), 422, "amount_fen")
        assert_post_refused(daemon, path, {"reason": "x"}, tok)
        assert_problem(city.api.post("/v1/incubators/RVK/tenants/NOPE/graduation/revoke",
                                     {"reason": "x"}), 404)
        assert_problem(city.api.post("/v1/incubators/NOPE/tenants/A/graduation/revoke",
                                     {"reason": "x"}), 404)
        assert_problem(city.api.post("/v1/incubators/OTHER/tenants/A/graduation/revoke",
                                     {"reason": "x"}), 404)
        assert_problem(city.api.post("/v1/incubators/RVK/tenants/N/graduation/revoke",
                                     {"reason": "x"}), 409)
    assert state() == before
    revoke(city.api, "RVK", "A")
    with unchanged():
        assert_problem(city.api.post(path, {"reason": "again"}), 409)


def test_prior_payouts_take_the_cap_and_mark_the_rewarded(city):
    city.incubator("PRI")
    known = city.tenant("PRI", "X")     # rewarded before the history started
    city.tenant("PRI", "Y")
    city.tenant("PRI", "Z")
    city.snapshot("PRI", "2025-10-01", {"X": 2000, "Y": 2000, "Z": 2000})
    r = city.api.post("/v1/incubators/PRI/prior-payouts", {
        "year": 2025, "amount_fen": CAP - REWARD, "graduates": [known],
        "note": "2025年1-9月线下已拨付"})
    assert r.status == 201, r
    prior = r.json()
    assert r.header("Location") == "/v1/incubators/PRI/prior-payouts"
    assert (prior["incubator"], prior["year"], prior["amount_fen"], prior["graduates"],
            prior["created_by"]) == ("PRI", 2025, CAP - REWARD, [known], "test-admin")
    for ext in ("X", "Y", "Z"):
        city.graduate("PRI", ext, "2025-10-15")
    octo = city.run("2025-10").json()
    ln = line(octo, "PRI")
    assert {g["external_id"]: g["reason"] for g in ln["graduates"]} == \
        {"X": "already_rewarded", "Y": None, "Z": None}
    # Two eligible (10,000,000) against what the prior payout left of the cap.
    assert (ln["base_fen"], ln["cap_remaining_fen"], ln["amount_fen"], ln["reason"]) == \
        (2 * REWARD, REWARD, REWARD, "cap")
    # Once a run of 2025 is approved, 2025's prior payouts (and earlier ones,
    # which the approved run rests on too) are frozen.
    city.approve("2025-10")
    for year in (2025, 2024):
        p = assert_problem(city.api.post("/v1/incubators/PRI/prior-payouts", {
            "year": year, "amount_fen": 1, "graduates": []}), 409)
        assert "2025-10" in p["detail"]
    listed = city.api.get("/v1/incubators/PRI/prior-payouts").json()
    assert listed == {"items": [prior], "next_cursor": None}


def test_prior_payout_bad_input(city, daemon, sql, unchanged):
    city.incubator("PB")
    tok = city.api.post("/v1/incubators/PB/tokens", {"name": "erp"}).json()["token"]
    path = "/v1/incubators/PB/prior-payouts"
    good = {"year": 2025, "amount_fen": 100, "graduates": [credit_code(1)], "note": "x"}
    count = lambda: sql.execute("SELECT count(*) FROM prior_payouts").fetchone()[0]
    this_year = int(time.strftime("%Y"))
    with unchanged():
        for field, value in (("year", "2025"), ("year", 1899), ("year", this_year + 1),
                             ("amount_fen", 1.5), ("amount_fen", -1), ("amount_fen", 10**15 + 1),
                             ("amount_fen", "100"), ("graduates", credit_code(1)),
                             ("note", ""), ("note", 7)):
            assert_problem(city.api.post(path, dict(good, **{field: value})), 422, field)
        assert_problem(city.api.post(path, dict(good, graduates=["91230100MA1B2C3D4X"])), 422,
                       "graduates[0]")
        assert_problem(city.api.post(path, dict(good, graduates=[credit_code(1)] * 2)), 422,
                       "graduates[1]")
        for missing in ("year", "amount_fen", "graduates"):
            assert_problem(city.api.post(path, {k: v for k, v in good.items() if k != missing}),
                           422, missing)
        assert_problem(city.api.post(path, dict(good, paid_on="2025-01-01")), 422, "paid_on")
        assert_post_refused(daemon, path, good, tok)
        assert_problem(Api(daemon, tok).get(path), 403)
        assert_problem(city.api.post("/v1/incubators/NOPE/prior-payouts", good), 404)
        assert_problem(city.api.get("/v1/incubators/NOPE/prior-payouts"), 404)
        assert_problem(city.api.get(path + "?limit=0"), 400)
        assert_problem(city.api.get(path + "?cursor=%%%"), 400)
    assert count() == 0
