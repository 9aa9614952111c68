"""Metrics and reports on small incubators built through the API, with every
expected figure worked out by hand in the comments (docs/policy.md walks
through the same March 2024 example).

HRB-001 (opened 2018-01-01, disposable 1000 m², public service 100 m²):
  A  tech since 2023, 200 m² from 2024-02-01, 250 m² from 2024-02-29, 300 m² from 2024-03-11
  B  not tech until its certification on 2024-03-16, 100 m² from 2024-02-01
  C  tech since 2023, 100 m² from 2024-02-01, exits 2024-03-21
  the disposable area drops to 800 m² from 2024-03-26
  D  admitted 2024-03-05; E graduates 2024-03-20; F exits 2024-02-10 (never occupies)
  G  admitted 2019-01-15, field other: limit 2023-01-15, still incubating (overdue)
  H  admitted 2019-06-10, biomedicine: limit 2024-06-10, still incubating
  I  admitted 2020-03-31, field other: limit 2024-03-31, still incubating

March 2024, day by day ((tech + public service) / disposable):
  1-10   (250 A + 100 C + 100) / 1000 = 0.45   (below 0.5)
  11-15  (300 A + 100 C + 100) / 1000 = 0.50   (not below: exact comparison)
  16-20  (300 + 100 B + 100 C + 100) / 1000 = 0.60
  21-25  (300 + 100 B + 100) / 1000 = 0.50
  26-31  (300 + 100 B + 100) / 800 = 0.625
  average = (10*0.45 + 5*0.5 + 5*0.6 + 5*0.5 + 6*0.625) / 31 = 16.25 / 31 = 0.524193... -> 0.5242
February 2024 (29 days): 1-28 (200 + 100 + 100) / 1000 = 0.4; 29: (250 + 100 + 100) / 1000 = 0.45;
  average = (28*0.4 + 0.45) / 29 = 11.65 / 29 = 0.401724... -> 0.4017
January 2024: no snapshot yet: no data.
"""

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest

from harness import MAX_BODY_BYTES, Api, assert_problem

BUREAU_TZ = "Asia/Shanghai"


def today():
    from zoneinfo import ZoneInfo
    return dt.datetime.now(ZoneInfo(BUREAU_TZ)).date()


def dec(r):
    """The JSON body with numbers as Decimal, so 0.5242 is compared exactly."""
    return json.loads(r.body, parse_float=Decimal)


def ok(r, status=200):
    assert r.status == status, r
    return r


def incubator(api, code, opened, disposable, public_service, name=None):
    ok(api.post("/v1/incubators", {
        "code": code, "name": name or f"哈尔滨{code}孵化器", "level": "municipal",
        "kind": "comprehensive", "district": "南岗区", "opened_on": opened,
        "disposable_area_m2": disposable, "public_service_area_m2": public_service}), 201)


_serial = [0]


def credit_code(n=None):
    """A valid Unified Social Credit Code (GB 32100-2015 check character)."""
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    if n is None:
        _serial[0] += 1
        n = _serial[0]
    first = f"91230103MA{n:07d}"
    total = sum(charset.index(c) * pow(3, i, 31) for i, c in enumerate(first))
    return first + charset[(31 - total % 31) % 31]


def tenant(api, code, ext, admitted, field="other", tech=None, high_tech=None, founded=None,
           revenue=None, listed=None, uscc=None):
    body = {"name": f"哈尔滨{ext}科技有限公司", "credit_code": uscc or credit_code(),
            "founded_on": founded or min(d for d in (admitted, tech, high_tech) if d),
            "admitted_on": admitted, "field": field,
            "tech_certified_on": tech, "high_tech_certified_on": high_tech}
    if revenue:
        body["annual_revenue_fen"] = revenue
    if listed:
        body["listed_on"] = listed
    ok(api.put(f"/v1/incubators/{code}/tenants/{ext}", body), 201)


def snapshot(api, code, as_of, public_service, areas):
    ok(api.put(f"/v1/incubators/{code}/occupancy", {
        "as_of": as_of, "public_service_area_m2": public_service,
        "tenants": [{"external_id": k, "area_m2": v} for k, v in areas.items()]}))


def graduate(api, code, ext, on):
    ok(api.post(f"/v1/incubators/{code}/tenants/{ext}/graduation", {
        "graduated_on": on, "basis": "investment",
        "evidence": {"investment_total_fen": 600000000}}))


def leave(api, code, ext, on):
    ok(api.post(f"/v1/incubators/{code}/tenants/{ext}/exit", {"exited_on": on,
                                                               "reason": "relocated"}))


@pytest.fixture
def town(daemon, admin):
    """HRB-001 and HRB-002 as the module's docstring says, built through the API."""
    incubator(admin, "HRB-001", "2018-01-01", 1000, 100)
    for ext, admitted, field, tech in [("A", "2023-06-01", "other", "2023-01-01"),
                                       ("B", "2023-06-01", "other", "2024-03-16"),
                                       ("C", "2023-06-01", "other", "2023-01-01"),
                                       ("D", "2024-03-05", "other", None),
                                       ("E", "2024-01-10", "other", None),
                                       ("F", "2024-01-05", "other", None),
                                       ("G", "2019-01-15", "other", None),
                                       ("H", "2019-06-10", "biomedicine", None),
                                       ("I", "2020-03-31", "other", None)]:
        tenant(admin, "HRB-001", ext, admitted, field, tech)
    leave(admin, "HRB-001", "F", "2024-02-10")
    snapshot(admin, "HRB-001", "2024-02-01", 100, {"A": 200, "B": 100, "C": 100})
    snapshot(admin, "HRB-001", "2024-02-29", 100, {"A": 250, "B": 100, "C": 100})
    snapshot(admin, "HRB-001", "2024-03-11", 100, {"A": 300, "B": 100, "C": 100})
    graduate(admin, "HRB-001", "E", "2024-03-20")
    leave(admin, "HRB-001", "C", "2024-03-21")
    ok(admin.patch("/v1/incubators/HRB-001", {"disposable_area_m2": 800,
                                              "effective_on": "2024-03-26"}))

    # HRB-002: the 2019 cohort. Limits: 48 months for "other", 60 for biomedicine
    # and modern agriculture (the policy's extended fields).
    incubator(admin, "HRB-002", "2018-06-01", 5000, 500, name='松北区"智谷",创新中心')
    tenant(admin, "HRB-002", "J", "2019-02-01")                  # limit 2023-02-01
    graduate(admin, "HRB-002", "J", "2023-01-31")                # within it
    tenant(admin, "HRB-002", "K", "2019-02-01")                  # limit 2023-02-01
    graduate(admin, "HRB-002", "K", "2023-02-02")                # late
    tenant(admin, "HRB-002", "L", "2019-02-01", "biomedicine")   # limit 2024-02-01
    graduate(admin, "HRB-002", "L", "2023-06-01")                # late under 48, within 60
    tenant(admin, "HRB-002", "M", "2019-03-01", "modern_agriculture")  # limit 2024-03-01
    graduate(admin, "HRB-002", "M", "2024-03-02")                # late even under 60
    tenant(admin, "HRB-002", "N", "2019-05-01")
    leave(admin, "HRB-002", "N", "2020-05-01")                   # exited from incubation
    tenant(admin, "HRB-002", "O", "2019-07-01", "integrated_circuit")  # limit 2024-07-01
    graduate(admin, "HRB-002", "O", "2024-07-01")                # on the limit day: within
    leave(admin, "HRB-002", "O", "2024-08-01")                   # a graduate leaving: no exit
    return admin


def metrics(api, code, period):
    return dec(ok(api.get(f"/v1/incubators/{code}/metrics?period={period}")))


def test_share_with_changes_in_the_middle_of_the_month(town):
    m = metrics(town, "HRB-001", "2024-03")
    assert m["incubator"] == "HRB-001" and m["period"] == "2024-03"
    assert m["days"] == 31 and m["days_with_data"] == 31
    s = m["space_share"]
    assert s["average"] == Decimal("0.5242")
    assert s["min"] == Decimal("0.45") and s["max"] == Decimal("0.625")
    assert s["days_below_threshold"] == 10       # 0.50 on days 11-15 and 21-25 is not below
    assert s["threshold"] == Decimal("0.5")
    assert s["average_below_threshold"] is False


def test_tenant_counts_and_graduation_rates(town):
    m = metrics(town, "HRB-001", "2024-03")
    # At the start: A B C E G H I (F exited in February). Admitted D; graduated E;
    # exited C. At the end: A B D G H I. Overdue on 2024-03-31: G only (H's limit
    # is in June, I's is 2024-03-31 itself, not passed).
    assert m["tenants"] == {"incubating_at_start": 7, "admitted": 1, "graduated": 1,
                            "exited": 1, "incubating_at_end": 6, "overdue": 1}
    t = m["tenants"]
    assert (t["incubating_at_start"] + t["admitted"] - t["graduated"] - t["exited"]
            == t["incubating_at_end"])
    assert m["graduation_rate"] == Decimal("0.5")                       # 1 / (1 + 1)
    # April 2023 - March 2024: graduated E; exited F (February) and C: 1 / 3.
    assert m["trailing_12m_graduation_rate"] == Decimal("0.3333")


def test_leap_february_and_a_month_without_data(town):
    feb = metrics(town, "HRB-001", "2024-02")
    assert feb["days"] == 29 and feb["days_with_data"] == 29
    assert feb["space_share"]["average"] == Decimal("0.4017")
    assert feb["space_share"]["min"] == Decimal("0.4")
    assert feb["space_share"]["max"] == Decimal("0.45")
    assert feb["space_share"]["days_below_threshold"] == 29
    assert feb["space_share"]["average_below_threshold"] is True
    # February: F exited, nobody graduated: 0 / (0 + 1) = 0.
    assert feb["graduation_rate"] == 0
    assert feb["tenants"]["exited"] == 1

    jan = metrics(town, "HRB-001", "2024-01")
    assert jan["days"] == 31 and jan["days_with_data"] == 0
    assert jan["space_share"] == {"average": None, "min": None, "max": None,
                                  "days_below_threshold": 0, "threshold": Decimal("0.5"),
                                  "average_below_threshold": None}
    # January: nobody graduated or exited: no rate, not zero.
    assert jan["graduation_rate"] is None
    assert jan["tenants"]["graduated"] == 0 and jan["tenants"]["exited"] == 0


def test_zero_denominators(town):
    # HRB-002 in May 2019: nothing ended then, nor in the 12 months before.
    m = metrics(town, "HRB-002", "2019-05")
    assert m["graduation_rate"] is None and m["trailing_12m_graduation_rate"] is None
    assert m["days_with_data"] == 0 and m["space_share"]["average"] is None
    # A month before the incubator opened: all zero, nothing divided by zero.
    m = metrics(town, "HRB-002", "2017-01")
    assert m["tenants"] == {"incubating_at_start": 0, "admitted": 0, "graduated": 0,
                            "exited": 0, "incubating_at_end": 0, "overdue": 0}


def test_exact_average_at_the_threshold_is_not_below(daemon, admin):
    # April 2025 (30 days): days 1-15 at 100/300 = 1/3, days 16-30 at 400/600 = 2/3
    # (the disposable area doubles on the 16th). Exactly 0.5 on average: a sum of
    # rounded thirds would land a hair below it.
    incubator(admin, "EX-1", "2025-01-01", 300, 0)
    tenant(admin, "EX-1", "T1", "2025-01-01", tech="2025-01-01")
    snapshot(admin, "EX-1", "2025-04-01", 0, {"T1": 100})
    ok(admin.patch("/v1/incubators/EX-1", {"disposable_area_m2": 600,
                                           "effective_on": "2025-04-16"}))
    snapshot(admin, "EX-1", "2025-04-16", 0, {"T1": 400})
    s = metrics(admin, "EX-1", "2025-04")["space_share"]
    assert s["average"] == Decimal("0.5")
    assert s["average_below_threshold"] is False
    assert s["days_below_threshold"] == 15
    assert s["min"] == Decimal("0.3333") and s["max"] == Decimal("0.6667")


def test_current_month_is_counted_up_to_today(daemon, admin):
    t = today()
    incubator(admin, "NOW-1", "2020-01-01", 1000, 250)
    snapshot(admin, "NOW-1", "2020-01-01", 250, {})
    period = t.strftime("%Y-%m")
    m = metrics(admin, "NOW-1", period)
    if today() != t:
        pytest.skip("the day changed during the test")
    assert m["days"] == t.day and m["days_with_data"] == t.day
    assert m["through"] == t.isoformat()
    assert m["space_share"]["average"] == Decimal("0.25")
    # Next month has not started: 422 naming the period.
    nxt = (t.replace(day=1) + dt.timedelta(days=32)).strftime("%Y-%m")
    assert_problem(admin.get(f"/v1/incubators/NOW-1/metrics?period={nxt}"), 422, "period")
    assert_problem(admin.get(f"/v1/reports/monthly?period={nxt}"), 422, "period")


def test_monthly_report_json(town):
    r = dec(ok(town.get("/v1/reports/monthly?period=2024-03")))
    assert r["period"] == "2024-03" and r["through"] == "2024-03-31"
    assert [i["incubator"] for i in r["items"]] == ["HRB-001", "HRB-002"]
    assert r["items"][0] == metrics(town, "HRB-001", "2024-03")
    assert r["items"][1] == metrics(town, "HRB-002", "2024-03")
    # M graduated on 2024-03-02 at HRB-002: 1 / (1 + 0).
    assert r["items"][1]["graduation_rate"] == 1
    # An incubator opened after the period is not in it.
    r = dec(ok(town.get("/v1/reports/monthly?period=2018-03")))
    assert [i["incubator"] for i in r["items"]] == ["HRB-001"]


def test_monthly_report_csv(town):
    r = ok(town.get("/v1/reports/monthly?period=2024-03", headers={"Accept": "text/csv"}))
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert r.body.startswith(b"\xef\xbb\xbf")
    text = r.body[3:].decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["incubator", "name", "period", "through", "days", "days_with_data",
                       "share_average", "share_min", "share_max", "days_below_threshold",
                       "threshold", "vetoed", "incubating_at_start", "admitted", "graduated",
                       "exited", "incubating_at_end", "overdue", "graduation_rate",
                       "trailing_12m_graduation_rate"]
    assert len(rows) == 3
    one = dict(zip(rows[0], rows[1]))
    assert one["incubator"] == "HRB-001" and one["name"] == "哈尔滨HRB-001孵化器"
    # Ratios with exactly 4 decimals, as the API rounds them.
    assert one["share_average"] == "0.5242" and one["share_min"] == "0.4500"
    assert one["threshold"] == "0.5000" and one["vetoed"] == "no"
    assert one["days_below_threshold"] == "10" and one["overdue"] == "1"
    assert one["graduation_rate"] == "0.5000"
    assert one["trailing_12m_graduation_rate"] == "0.3333"
    two = dict(zip(rows[0], rows[2]))
    assert two["vetoed"] == "yes"  # no data in the month
    # The name with a quote and a comma survives RFC 4180 quoting intact...
    assert two["name"] == '松北区"智谷",创新中心'
    assert '"松北区""智谷"",创新中心"' in text
    # ...and a missing figure is an empty field.
    assert two["share_average"] == "" and two["days_with_data"] == "0"
    # In Chinese: the same columns in the same order, headed in Chinese.
    zh = ok(town.get("/v1/reports/monthly?period=2024-03&lang=zh",
                     headers={"Accept": "text/csv"}))
    zh_rows = list(csv.reader(io.StringIO(zh.body[3:].decode("utf-8"), newline="")))
    assert zh_rows[0][:3] == ["孵化器代码", "孵化器名称", "期间"]
    assert zh_rows[0][rows[0].index("vetoed")] == "一票否决"
    assert len(zh_rows[0]) == len(rows[0]) and len(zh_rows) == len(rows)
    for en_row, zh_row in zip(rows[1:], zh_rows[1:]):
        for name, en_cell, zh_cell in zip(rows[0], en_row, zh_row):
            assert zh_cell == {"yes": "是", "no": "否"}.get(en_cell, en_cell) \
                if name == "vetoed" else zh_cell == en_cell
    # Without Accept: text/csv, the same report is JSON.
    r = town.get("/v1/reports/monthly?period=2024-03")
    assert r.header("Content-Type") == "application/json"


def cohort(api, year, code=None, token=None):
    q = f"/v1/reports/cohorts?admitted_year={year}" + (f"&incubator={code}" if code else "")
    return dec(ok(api.get(q)))


def test_cohorts_limits_48_and_60_months(town):
    c = cohort(town, 2019, "HRB-002")
    # J within 48; K a day late; L late under 48 but within 60 (biomedicine);
    # M late under 60; O on its 60-month limit day; N exited.
    assert c["admitted"] == 6
    assert (c["graduated"], c["graduated_late"], c["exited"], c["incubating"]) == (3, 2, 1, 0)
    assert c["graduation_rate"] == Decimal("0.5")
    assert c["incubator"] == "HRB-002" and c["admitted_year"] == 2019

    city = cohort(town, 2019)
    # City-wide adds G and H of HRB-001, both still incubating and past their limits.
    assert city["admitted"] == 8 and city["incubating"] == 2 and city["overdue"] == 2
    assert (city["graduated"] + city["graduated_late"] + city["exited"] + city["incubating"]
            == city["admitted"])
    assert city["graduation_rate"] == Decimal("0.375")
    assert city["incubator"] is None

    empty = cohort(town, 2010)
    assert empty["admitted"] == 0 and empty["graduation_rate"] is None


def incubator_token(api, code):
    return ok(api.post(f"/v1/incubators/{code}/tokens", {"name": "erp"}), 201).json()["token"]


def test_scope_of_incubator_tokens(town):
    own = Api(town.daemon, incubator_token(town, "HRB-001"))
    assert ok(own.get("/v1/incubators/HRB-001/metrics?period=2024-03")).json()["incubator"] \
        == "HRB-001"
    assert_problem(own.get("/v1/incubators/HRB-002/metrics?period=2024-03"), 403)
    assert_problem(own.get("/v1/incubators/NOPE/metrics?period=2024-03"), 403)
    assert_problem(own.get("/v1/reports/monthly?period=2024-03"), 403)
    assert_problem(own.get("/v1/reports/plan-progress"), 403)
    # Cohorts: only its own incubator, named explicitly.
    assert cohort(own, 2019, "HRB-001")["admitted"] == 2
    assert_problem(own.get("/v1/reports/cohorts?admitted_year=2019"), 403)
    assert_problem(own.get("/v1/reports/cohorts?admitted_year=2019&incubator=HRB-002"), 403)
    assert_problem(own.get("/v1/reports/cohorts?admitted_year=2019&incubator=hrb-001"), 403)
    # No token, a wrong token.
    assert_problem(town.daemon.request("GET", "/v1/reports/monthly?period=2024-03"), 401)
    assert_problem(Api(town.daemon, "x" * 43).get("/v1/reports/cohorts?admitted_year=2019"), 401)


@pytest.mark.parametrize("query,field", [
    ("period=2024-13", "period"), ("period=2024-3", "period"), ("period=24-03", "period"),
    ("period=2024-03-01", "period"), ("period=", "period"), ("", "period"),
    ("period=2024-03&period=2024-04", "period"), ("period=2024-03&foo=1", "foo"),
])
def test_bad_period_is_400(town, query, field):
    for path in ("/v1/incubators/HRB-001/metrics", "/v1/reports/monthly"):
        assert_problem(town.get(f"{path}?{query}"), 400, field)


def test_bad_report_queries(town):
    assert_problem(town.get("/v1/incubators/NOPE/metrics?period=2024-03"), 404)
    assert_problem(town.get("/v1/incubators/HRB-001/metrics?period=2999-01"), 422, "period")
    for q, status, field in [("admitted_year=19", 400, "admitted_year"),
                             ("admitted_year=abcd", 400, "admitted_year"),
                             ("", 400, "admitted_year"),
                             ("admitted_year=2019&incubator=-bad", 400, "incubator"),
                             ("admitted_year=2019&x=1", 400, "x"),
                             (f"admitted_year={today().year + 1}", 422, "admitted_year")]:
        assert_problem(town.get(f"/v1/reports/cohorts?{q}"), status, field)
    assert_problem(town.get("/v1/reports/cohorts?admitted_year=2019&incubator=NOPE"), 404)
    tomorrow = (today() + dt.timedelta(days=2)).isoformat()
    for q, status, field in [("as_of=2024-02-30", 400, "as_of"), ("as_of=x", 400, "as_of"),
                             ("on=2024-01-01", 400, "on"), (f"as_of={tomorrow}", 422, "as_of")]:
        assert_problem(town.get(f"/v1/reports/plan-progress?{q}"), status, field)
    # Reports are reads: the method is checked, and a body is no way around the limits.
    assert_problem(town.daemon.request("GET", "/v1/reports/monthly?period=2024-03",
                                       token=town.token, body=b"x" * (MAX_BODY_BYTES + 1)), 413)
    r = town.post("/v1/reports/monthly?period=2024-03", {})
    assert_problem(r, 405)
    assert "GET" in r.header("Allow")


def test_plan_progress(daemon, admin, sql):
    # HRB-P opened 2015-06-01, inside the default plan window 2015-01-01 .. 2017-12-31.
    incubator(admin, "HRB-P", "2015-06-01", 3000, 300)
    incubator(admin, "HRB-Q", "2018-03-01", 3000, 300)
    shared = credit_code(9000001)
    tenant(admin, "HRB-P", "P", "2015-07-01", tech="2016-05-01", high_tech="2017-03-01",
           listed="2017-06-01", uscc=shared,
           revenue={"2016": 600000000, "2017": 2500000000})
    # The same enterprise at a second incubator: counted once.
    tenant(admin, "HRB-Q", "P2", "2018-03-01", tech="2016-06-01", uscc=shared,
           founded="2015-07-01")
    tenant(admin, "HRB-P", "Q", "2015-07-01", tech="2014-12-31", founded="2014-01-01",
           revenue={"2015": 500000000, "2018": 3000000000})   # exactly 5 million in 2015
    tenant(admin, "HRB-P", "R", "2015-07-01", tech="2018-01-01", high_tech="2018-01-01",
           listed="2018-02-01", revenue={"2017": 499999999})

    r = dec(ok(admin.get("/v1/reports/plan-progress?as_of=2017-12-31")))
    assert (r["as_of"], r["from"], r["to"]) == ("2017-12-31", "2015-01-01", "2017-12-31")
    got = {i["key"]: (i["target"], i["actual"], i["met"]) for i in r["items"]}
    assert got == {"incubators": (60, 1, False), "new_tech_enterprises": (1000, 1, False),
                   "revenue_over_5m": (600, 2, False), "revenue_over_20m": (100, 1, False),
                   "listed": (30, 1, False), "new_high_tech": (120, 1, False)}
    assert [i["key"] for i in r["items"]] == list(got)
    for i in r["items"]:
        zh, en = i["description"].split(" / ")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh) and en.isascii()

    # Mid-window: only what was dated by then.
    r = dec(ok(admin.get("/v1/reports/plan-progress?as_of=2016-12-31")))
    got = {i["key"]: i["actual"] for i in r["items"]}
    assert got == {"incubators": 1, "new_tech_enterprises": 1, "revenue_over_5m": 2,
                   "revenue_over_20m": 0, "listed": 0, "new_high_tech": 0}

    # A later plan with a window over 2018 and small targets: `met` is
    # actual >= target. It takes over for the days of its window.
    r = admin.put("/v1/plans/2018-2020", {
        "from": "2018-01-01", "to": "2020-12-31",
        "targets": {"incubators": 2, "new_tech_enterprises": 2, "revenue_over_5m": 1,
                    "revenue_over_20m": 2, "listed": 1, "new_high_tech": 1}})
    assert r.status == 201, r
    r = dec(ok(admin.get("/v1/reports/plan-progress?as_of=2020-06-30")))
    assert (r["plan"], r["from"], r["to"]) == ("2018-2020", "2018-01-01", "2020-12-31")
    got = {i["key"]: (i["target"], i["actual"], i["met"]) for i in r["items"]}
    # R: certified and high-tech 2018-01-01, listed 2018-02-01; Q: 30 million in 2018.
    assert got == {"incubators": (2, 2, True), "new_tech_enterprises": (2, 1, False),
                   "revenue_over_5m": (1, 1, True), "revenue_over_20m": (2, 1, False),
                   "listed": (1, 1, True), "new_high_tech": (1, 1, True)}
    # The seed's plan by its id, on the same day; a day in no window: the latest plan.
    r = dec(ok(admin.get("/v1/reports/plan-progress?as_of=2020-06-30&plan=2015-2017")))
    assert (r["plan"], r["from"]) == ("2015-2017", "2015-01-01")
    assert dec(ok(admin.get("/v1/reports/plan-progress?as_of=2014-06-30")))["plan"] \
        == "2018-2020"
    assert dec(ok(admin.get("/v1/reports/plan-progress?as_of=2016-06-30")))["plan"] \
        == "2015-2017"

    # Without as_of: today.
    r = dec(ok(admin.get("/v1/reports/plan-progress")))
    assert r["as_of"] == today().isoformat()


def test_reports_change_nothing(town, sql):
    before = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    ok(town.get("/v1/reports/monthly?period=2024-03"))
    ok(town.get("/v1/reports/monthly?period=2024-03", headers={"Accept": "text/csv"}))
    ok(town.get("/v1/reports/cohorts?admitted_year=2019"))
    ok(town.get("/v1/reports/plan-progress"))
    assert_problem(town.get("/v1/reports/monthly?period=2999-01"), 422)
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


PLAN = {"from": "2026-01-01", "to": "2028-12-31",
        "targets": {"incubators": 80, "new_tech_enterprises": 1500, "revenue_over_5m": 700,
                    "revenue_over_20m": 150, "listed": 40, "new_high_tech": 200}}


def test_plans_are_their_own_resource(daemon, admin, sql):
    seed = dec(ok(admin.get("/v1/plans/2015-2017")))
    assert (seed["from"], seed["to"], seed["targets"]) == (
        "2015-01-01", "2017-12-31",
        {"incubators": 60, "new_tech_enterprises": 1000, "revenue_over_5m": 600,
         "revenue_over_20m": 100, "listed": 30, "new_high_tech": 120})
    policies = sql.execute("SELECT count(*) FROM policies").fetchone()[0]
    r = admin.put("/v1/plans/2026-2028", PLAN)
    assert r.status == 201 and r.header("Location") == "/v1/plans/2026-2028"
    created = r.json()
    assert created["created_by"] == created["updated_by"] == "test-admin"
    # The same document again changes nothing: no write, no audit.
    audits = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert dec(ok(admin.put("/v1/plans/2026-2028", PLAN))) == dec(ok(admin.get(
        "/v1/plans/2026-2028")))
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audits
    # A target changes; the reward policy does not.
    changed = dict(PLAN, targets=dict(PLAN["targets"], listed=45))
    again = dec(ok(admin.put("/v1/plans/2026-2028", changed)))
    assert again["targets"]["listed"] == 45 and again["created_at"] == created["created_at"]
    assert sql.execute("SELECT count(*) FROM policies").fetchone()[0] == policies
    listed = dec(ok(admin.get("/v1/plans?limit=1")))
    assert [p["id"] for p in listed["items"]] == ["2015-2017"]
    rest = dec(ok(admin.get(f"/v1/plans?limit=1&cursor={listed['next_cursor']}")))
    assert [p["id"] for p in rest["items"]] == ["2026-2028"] and rest["next_cursor"] is None
    # Plan progress as CSV, in both languages.
    r = ok(admin.get("/v1/reports/plan-progress?plan=2026-2028&as_of=2026-06-30",
                     headers={"Accept": "text/csv"}))
    rows = list(csv.reader(io.StringIO(r.body[3:].decode("utf-8"), newline="")))
    js = dec(ok(admin.get("/v1/reports/plan-progress?plan=2026-2028&as_of=2026-06-30")))
    assert rows[0] == ["plan", "from", "to", "as_of", "key", "description", "target", "actual",
                       "met"]
    assert [r_[4:] for r_ in rows[1:]] == [[i["key"], i["description"], str(i["target"]),
                                            str(i["actual"]), "yes" if i["met"] else "no"]
                                           for i in js["items"]]
    zh = ok(admin.get("/v1/reports/plan-progress?plan=2026-2028&as_of=2026-06-30&lang=zh",
                      headers={"Accept": "text/csv"}))
    zh_rows = list(csv.reader(io.StringIO(zh.body[3:].decode("utf-8"), newline="")))
    assert zh_rows[0][:3] == ["计划", "起始日期", "截止日期"] and len(zh_rows) == len(rows)
    assert [x[-1] for x in zh_rows[1:]] == [{"yes": "是", "no": "否"}[x[-1]] for x in rows[1:]]


def test_plan_bad_input(daemon, admin, sql):
    from harness import Api as Client
    incubator(admin, "HRB-PL", "2020-01-01", 3000, 300)
    tok = admin.post("/v1/incubators/HRB-PL/tokens", {"name": "t"}).json()["token"]
    before = sql.execute("SELECT row_to_json(p)::text FROM plans p ORDER BY id").fetchall()
    audits = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    path = "/v1/plans/2015-2017"
    bad = [({**PLAN, "from": "2026-02-30"}, "from"), ({**PLAN, "to": 2028}, "to"),
           ({**PLAN, "to": "2025-12-31"}, "to"),
           ({**PLAN, "targets": dict(PLAN["targets"], listed=-1)}, "targets.listed"),
           ({**PLAN, "targets": dict(PLAN["targets"], listed=1.5)}, "targets.listed"),
           ({**PLAN, "targets": dict(PLAN["targets"], spin_offs=3)}, "targets.spin_offs"),
           ({**PLAN, "targets": {"listed": 1}}, "targets.incubators"),
           ({k: v for k, v in PLAN.items() if k != "targets"}, "targets"),
           ({**PLAN, "name": "x"}, "name")]
    for body, field in bad:
        assert_problem(admin.put(path, body), 422, field)
    assert_problem(daemon.request("PUT", path, token=daemon.admin_token, body='{"from": '), 400)
    assert_problem(daemon.request("PUT", path, token=daemon.admin_token,
                                  body='{"from": "2026-01-01", "from": "2026-01-02"}'), 400)
    assert_problem(daemon.request("PUT", path, token=daemon.admin_token, body="from=x",
                                  content_type="text/plain"), 415)
    assert_problem(daemon.request("PUT", path, token=daemon.admin_token,
                                  body=b"x" * (MAX_BODY_BYTES + 1)), 413)
    assert_problem(Client(daemon, tok).put(path, PLAN), 403)
    assert_problem(Client(daemon, tok).get(path), 403)
    assert_problem(Client(daemon, "ikd_" + "x" * 43).put(path, PLAN), 401)
    assert_problem(admin.put("/v1/plans/-bad", PLAN), 404)
    assert_problem(admin.put("/v1/plans/" + "x" * 33, PLAN), 404)
    assert_problem(admin.get("/v1/plans/2099-2101"), 404)
    assert_problem(admin.get("/v1/reports/plan-progress?plan=2099-2101"), 404)
    assert_problem(admin.get("/v1/reports/plan-progress?plan=-x"), 400, "plan")
    assert_problem(admin.get("/v1/plans?cursor=%%%"), 400)
    assert_problem(admin.call("DELETE", path), 405)
    assert sql.execute("SELECT row_to_json(p)::text FROM plans p ORDER BY id").fetchall() \
        == before
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audits
