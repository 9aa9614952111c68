"""Every figure of the reports over a generated city, month after month,
against values computed here in Python from the same fixture data: each
day's share by brute force over the occupancy intervals (no sweep, no SQL),
as exact fractions, and the tenant counts from the tenants' dates.
"""

import csv
import datetime as dt
import io
import json
import os
import sys
from decimal import Decimal
from fractions import Fraction

import pytest

from harness import Api, assert_problem, run_cli

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import city as citygen  # noqa: E402

EXTENDED = ("biomedicine", "modern_agriculture", "integrated_circuit")
THRESHOLD = Fraction(1, 2)


def half_up(x):
    """An exact fraction rounded half-up to 4 decimals, as a Decimal."""
    if x is None:
        return None
    q = (x.numerator * 20000 + x.denominator) // (2 * x.denominator)
    return Decimal(q) / Decimal(10000)


def in_force(history, d):
    for start, stop, value in history:
        if start <= d and (stop is None or d < stop):
            return value
    return None


def day_share(inc, d):
    """share(d) of API.md, by brute force; None without data."""
    if not inc.snapshots or inc.snapshots[0][0] > d:
        return None
    disposable = in_force(inc.areas, d)
    if disposable is None:
        return None
    tech = 0
    for t in inc.tenants:
        certified = [x for x in (t.tech_certified_on, t.high_tech_certified_on) if x]
        if not certified or min(certified) > d:
            continue
        for start, stop, area in t.occupancy:
            if start <= d and (stop is None or d < stop):
                tech += area
    return Fraction(tech + (in_force(inc.public_service, d) or 0), disposable)


def months(first, last):
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield dt.date(y, m, 1)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def month_end(first, today):
    nxt = citygen.add_months(first, 1)
    return min(nxt - dt.timedelta(days=1), today)


def limit_on(t):
    return citygen.add_months(t.admitted_on, 60 if t.field in EXTENDED else 48)


def expected_metrics(inc, first, last):
    shares = []
    d = first
    while d <= last:
        s = day_share(inc, d)
        if s is not None:
            shares.append(s)
        d += dt.timedelta(days=1)
    avg = sum(shares) / len(shares) if shares else None

    def exit_from_incubation(t):
        return t.exited_on if t.graduated_on is None else None

    def ended(t):
        return t.graduated_on or t.exited_on

    ts = inc.tenants
    start12 = citygen.add_months(first, -11)
    g = sum(1 for t in ts if t.graduated_on and first <= t.graduated_on <= last)
    x = sum(1 for t in ts if exit_from_incubation(t) and first <= t.exited_on <= last)
    g12 = sum(1 for t in ts if t.graduated_on and start12 <= t.graduated_on <= last)
    x12 = sum(1 for t in ts if exit_from_incubation(t) and start12 <= t.exited_on <= last)
    at_end = [t for t in ts if t.admitted_on <= last and (ended(t) is None or ended(t) > last)]
    return {
        "incubator": inc.code,
        "period": first.strftime("%Y-%m"),
        "through": last.isoformat(),
        "policy_version": 1,
        "days": (last - first).days + 1,
        "days_with_data": len(shares),
        "space_share": {
            "average": half_up(avg),
            "min": half_up(min(shares)) if shares else None,
            "max": half_up(max(shares)) if shares else None,
            "days_below_threshold": sum(1 for s in shares if s < THRESHOLD),
            "threshold": Decimal("0.5"),
            "average_below_threshold": (avg < THRESHOLD) if shares else None,
        },
        "tenants": {
            "incubating_at_start": sum(1 for t in ts if t.admitted_on < first and
                                       (ended(t) is None or ended(t) >= first)),
            "admitted": sum(1 for t in ts if first <= t.admitted_on <= last),
            "graduated": g,
            "exited": x,
            "incubating_at_end": len(at_end),
            "overdue": sum(1 for t in at_end if last > limit_on(t)),
        },
        "graduation_rate": half_up(Fraction(g, g + x)) if g + x else None,
        "trailing_12m_graduation_rate": half_up(Fraction(g12, g12 + x12)) if g12 + x12 else None,
    }


@pytest.fixture
def town(pg, db, daemon, admin, sql):
    params = citygen.Params(incubators=8, tenants=300, years=5.5, snapshot_days=5,
                            seed=4242, today=citygen.bureau_today())
    c = citygen.generate(params)
    citygen.load(sql, c)
    return c


def dec(r):
    assert r.status == 200, r
    return json.loads(r.body, parse_float=Decimal)


def test_city_covers_what_the_figures_need(town):
    # The fixture has what the other tests rely on; if it stops having it,
    # they would pass without testing anything.
    incs = {i.profile: i for i in town.incubators}
    assert {"hovering", "no_data", "late_data", "new"} <= set(incs)
    assert any(len(i.areas) > 1 for i in town.incubators)
    ts = [t for i in town.incubators for t in i.tenants]
    assert {t.graduation_basis for t in ts} >= {"high_tech", "investment", "revenue",
                                                "acquired_or_listed"}
    assert any(t.exited_on and not t.graduated_on for t in ts)
    assert any(t.exited_on and t.graduated_on for t in ts)
    assert any(t.tech_certified_on and t.tech_certified_on > t.admitted_on for t in ts)
    assert any(t.field in EXTENDED for t in ts)


def test_monthly_reports_match_an_independent_computation(town, admin):
    checked = below = with_data = 0
    first_month = min(i.opened_on for i in town.incubators)
    for first in months(first_month, town.today):
        last = month_end(first, town.today)
        report = dec(admin.get(f"/v1/reports/monthly?period={first:%Y-%m}"))
        assert report["period"] == f"{first:%Y-%m}" and report["through"] == last.isoformat()
        opened = [i for i in town.incubators if i.opened_on <= last]
        assert [x["incubator"] for x in report["items"]] == sorted(i.code for i in opened)
        by_code = {x["incubator"]: x for x in report["items"]}
        for inc in opened:
            want = expected_metrics(inc, first, last)
            assert by_code[inc.code] == want, (inc.code, first)
            t = want["tenants"]
            assert (t["incubating_at_start"] + t["admitted"] - t["graduated"] - t["exited"]
                    == t["incubating_at_end"])
            checked += 1
            below += want["space_share"]["days_below_threshold"]
            with_data += want["days_with_data"] > 0
    # The comparison covered real figures, not empty ones.
    assert checked > 200 and below > 0 and with_data > 150


def test_leap_february_and_the_current_month(town, admin):
    inc = next(i for i in town.incubators if i.profile == "hovering")
    for first in (dt.date(2024, 2, 1), town.today.replace(day=1)):
        last = month_end(first, town.today)
        got = dec(admin.get(f"/v1/incubators/{inc.code}/metrics?period={first:%Y-%m}"))
        assert got == expected_metrics(inc, first, last)
    feb = dec(admin.get(f"/v1/incubators/{inc.code}/metrics?period=2024-02"))
    assert feb["days"] == 29


def test_csv_matches_json(town, admin):
    period = citygen.add_months(town.today.replace(day=1), -2).strftime("%Y-%m")
    js = dec(admin.get(f"/v1/reports/monthly?period={period}"))
    r = admin.get(f"/v1/reports/monthly?period={period}", headers={"Accept": "text/csv"})
    assert r.status == 200 and r.body[:3] == b"\xef\xbb\xbf"
    rows = list(csv.DictReader(io.StringIO(r.body[3:].decode("utf-8"), newline="")))
    names = {i.code: i.name for i in town.incubators}
    assert [x["incubator"] for x in rows] == [x["incubator"] for x in js["items"]]
    for row, item in zip(rows, js["items"]):
        assert row["name"] == names[row["incubator"]]

        def same(text, value):
            return text == "" if value is None else Decimal(text) == Decimal(value)
        s, t = item["space_share"], item["tenants"]
        assert same(row["share_average"], s["average"]) and same(row["share_min"], s["min"])
        assert same(row["share_max"], s["max"])
        assert int(row["days_below_threshold"]) == s["days_below_threshold"]
        assert row["vetoed"] == ("yes" if item["days_with_data"] == 0
                                 or s["average_below_threshold"] else "no")
        for k in t:
            assert int(row[k]) == t[k]
        assert same(row["graduation_rate"], item["graduation_rate"])
        assert same(row["trailing_12m_graduation_rate"], item["trailing_12m_graduation_rate"])
    assert any('"' in row["name"] for row in rows)


def expected_cohort(tenants, year, today):
    ts = [t for t in tenants if t.admitted_on.year == year]

    def happened(d):
        return d is not None and d <= today
    graduated = sum(1 for t in ts if happened(t.graduated_on) and t.graduated_on <= limit_on(t))
    late = sum(1 for t in ts if happened(t.graduated_on) and t.graduated_on > limit_on(t))
    exited = sum(1 for t in ts if t.graduated_on is None and happened(t.exited_on))
    incubating = [t for t in ts if not happened(t.graduated_on or t.exited_on)]
    return {"admitted": len(ts), "graduated": graduated, "graduated_late": late,
            "exited": exited, "incubating": len(incubating),
            "overdue": sum(1 for t in incubating if today > limit_on(t)),
            "graduation_rate": half_up(Fraction(graduated, len(ts))) if ts else None}


def test_cohorts_match_an_independent_computation(town, admin):
    everyone = [t for i in town.incubators for t in i.tenants]
    late = 0
    for year in range(min(i.opened_on for i in town.incubators).year, town.today.year + 1):
        got = dec(admin.get(f"/v1/reports/cohorts?admitted_year={year}"))
        want = expected_cohort(everyone, year, town.today)
        assert {k: got[k] for k in want} == want, year
        late += want["graduated_late"]
        for inc in town.incubators[:3]:
            got = dec(admin.get(f"/v1/reports/cohorts?admitted_year={year}&incubator={inc.code}"))
            assert {k: got[k] for k in want} == expected_cohort(inc.tenants, year, town.today)
    assert late > 0


def test_plan_progress_matches_an_independent_computation(town, admin, sql):
    start = min(i.opened_on for i in town.incubators)
    window = (start.replace(month=1, day=1), dt.date(town.today.year + 1, 12, 31))
    r = admin.put("/v1/plans/city-window", {
        "from": window[0].isoformat(), "to": window[1].isoformat(),
        "targets": {"incubators": 8, "new_tech_enterprises": 60, "revenue_over_5m": 50,
                    "revenue_over_20m": 10, "listed": 5, "new_high_tech": 40}})
    assert r.status == 201, r
    ts = [t for i in town.incubators for t in i.tenants]
    for as_of in (town.today, town.today - dt.timedelta(days=400)):
        upto = min(window[1], as_of)

        def inside(d):
            return d is not None and window[0] <= d <= upto

        def revenue(min_fen):
            return len({t.credit_code for t in ts for y, v in t.revenues.items()
                        if v >= min_fen and window[0].year <= y <= upto.year})
        want = {
            "incubators": sum(1 for i in town.incubators if i.opened_on <= as_of),
            "new_tech_enterprises": len({t.credit_code for t in ts if inside(t.tech_from)}),
            "revenue_over_5m": revenue(500000000),
            "revenue_over_20m": revenue(2000000000),
            "listed": len({t.credit_code for t in ts if inside(t.listed_on)}),
            "new_high_tech": len({t.credit_code for t in ts if inside(t.high_tech_certified_on)}),
        }
        got = dec(admin.get(f"/v1/reports/plan-progress?as_of={as_of}&plan=city-window"))
        assert {i["key"]: i["actual"] for i in got["items"]} == want
        targets = {"incubators": 8, "new_tech_enterprises": 60, "revenue_over_5m": 50,
                   "revenue_over_20m": 10, "listed": 5, "new_high_tech": 40}
        assert {i["key"]: i["met"] for i in got["items"]} == \
            {k: want[k] >= targets[k] for k in want}
    assert all(v > 0 for v in want.values())


def test_incubator_metrics_of_one_incubator_equal_its_report_line(town, admin):
    period = citygen.add_months(town.today.replace(day=1), -1).strftime("%Y-%m")
    report = dec(admin.get(f"/v1/reports/monthly?period={period}"))
    for item in report["items"]:
        one = dec(admin.get(f"/v1/incubators/{item['incubator']}/metrics?period={period}"))
        assert one == item
    assert_problem(admin.get("/v1/incubators/C-0099/metrics?period=" + period), 404)


def expected_annual(town, year, rewards):
    """The yearly report of API.md by brute force: every figure from the
    fixture's dates and each day's share, pooled over incubator-days for the
    districts and the city."""
    first, today = dt.date(year, 1, 1), town.today
    through = min(dt.date(year, 12, 31), today)

    def tech_on(t, d):
        return any(x is not None and x <= d for x in (t.tech_certified_on,
                                                      t.high_tech_certified_on))

    def figures(incs):
        shares, g, tg, x, months_, vetoed = [], 0, 0, 0, 0, 0
        for inc in incs:
            d = first
            while d <= through:
                s = day_share(inc, d)
                if s is not None:
                    shares.append(s)
                d += dt.timedelta(days=1)
            for t in inc.tenants:
                if t.graduated_on and first <= t.graduated_on <= through:
                    g += 1
                    tg += tech_on(t, t.graduated_on)
                if t.graduated_on is None and t.exited_on and first <= t.exited_on <= through:
                    x += 1
            for m in months(first, dt.date(year, 12, 1)):
                end = citygen.add_months(m, 1) - dt.timedelta(days=1)
                if end >= today or inc.opened_on > end:
                    continue
                months_ += 1
                ms = [day_share(inc, m + dt.timedelta(days=k)) for k in range((end - m).days + 1)]
                ms = [s for s in ms if s is not None]
                vetoed += not ms or sum(ms) / len(ms) < THRESHOLD
        return {"tech_graduates": tg, "graduates": g, "exits": x,
                "graduation_rate": half_up(Fraction(g, g + x)) if g + x else None,
                "share_average": half_up(sum(shares) / len(shares)) if shares else None,
                "days_with_data": len(shares), "months": months_, "months_vetoed": vetoed,
                "rewards_approved_fen": sum(rewards.get(i.code, 0) for i in incs)}

    opened = sorted((i for i in town.incubators if i.opened_on <= through), key=lambda i: i.code)
    districts = sorted({i.district for i in opened})
    return {
        "year": year, "through": through.isoformat(),
        "items": [dict({"incubator": i.code, "name": i.name, "district": i.district},
                       **figures([i])) for i in opened],
        "districts": [dict({"district": d, "incubators": sum(i.district == d for i in opened)},
                           **figures([i for i in opened if i.district == d]))
                      for d in districts],
        "city": dict({"incubators": len(opened)}, **figures(opened)),
    }


def test_annual_report_matches_a_brute_force_computation(town, admin, daemon):
    # Last year's runs, approved, so that rewards are not all zero.
    last_year = town.today.year - 1
    reviewer = Api(daemon, run_cli(daemon.config_path, "token", "create", "--admin",
                                   "annual-reviewer").stdout.strip())
    rewards = {}
    for month in range(1, 13):
        period = f"{last_year}-{month:02d}"
        assert admin.post("/v1/payout-runs", {"period": period}).status == 201
        assert reviewer.post(f"/v1/payout-runs/{period}/review").status == 200
        for ln in dec(admin.post(f"/v1/payout-runs/{period}/approve"))["lines"]:
            rewards[ln["incubator"]] = rewards.get(ln["incubator"], 0) + ln["amount_fen"]
    assert any(rewards.values()), "the runs pay something"
    for year in (last_year, town.today.year):
        got = dec(admin.get(f"/v1/reports/annual?year={year}"))
        want = expected_annual(town, year, rewards if year == last_year else {})
        assert got == want, year
    full = expected_annual(town, last_year, rewards)
    assert full["city"]["months_vetoed"] > 0 and full["city"]["graduates"] > 0
    assert len(full["districts"]) > 1
    # The CSV: the same figures, incubators, then districts, then the city.
    r = admin.get(f"/v1/reports/annual?year={last_year}", headers={"Accept": "text/csv"})
    assert r.status == 200 and r.body[:3] == b"\xef\xbb\xbf"
    rows = list(csv.DictReader(io.StringIO(r.body[3:].decode("utf-8"), newline="")))
    expected_rows = ([("incubator", i) for i in full["items"]]
                     + [("district", d) for d in full["districts"]] + [("city", full["city"])])
    assert len(rows) == len(expected_rows)
    for row, (level, item) in zip(rows, expected_rows):
        assert row["level"] == level and row["year"] == str(last_year)
        assert row["incubator"] == (item.get("incubator") or "")
        assert row["district"] == (item.get("district") or "")
        for k in ("tech_graduates", "graduates", "exits", "days_with_data", "months",
                  "months_vetoed"):
            assert int(row[k]) == item[k], (level, k)
        for k in ("graduation_rate", "share_average"):
            assert row[k] == ("" if item[k] is None else f"{item[k]:.4f}"), (level, k)
        assert Decimal(row["rewards_approved_cny"]) * 100 == item["rewards_approved_fen"]
    zh = admin.get(f"/v1/reports/annual?year={last_year}&lang=zh", headers={"Accept": "text/csv"})
    zh_rows = list(csv.reader(io.StringIO(zh.body[3:].decode("utf-8"), newline="")))
    assert zh_rows[0][:4] == ["年度", "截至", "层级", "孵化器代码"]
    assert [r[2] for r in zh_rows[1:]] == [{"incubator": "孵化器", "district": "区县",
                                            "city": "全市"}[lvl] for lvl, _ in expected_rows]


def test_annual_report_bad_input(admin, daemon, sql):
    from harness import Api as Client
    before = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    next_year = dt.date.today().year + 1
    for q in ("", "year=20x5", "year=25", f"year={next_year}x", "year=2025&lang=fr",
              "year=2025&x=1", "year=1899"):
        assert_problem(admin.get(f"/v1/reports/annual?{q}"), 400)
    assert_problem(admin.get(f"/v1/reports/annual?year={next_year + 1}"), 422, "year")
    tok = admin.post("/v1/incubators", {
        "code": "AN-1", "name": "n", "level": "municipal", "kind": "comprehensive",
        "disposable_area_m2": 100})
    assert tok.status == 201
    inc_token = admin.post("/v1/incubators/AN-1/tokens", {"name": "t"}).json()["token"]
    assert_problem(Client(daemon, inc_token).get("/v1/reports/annual?year=2025"), 403)
    assert_problem(Client(daemon, "ikd_" + "x" * 43).get("/v1/reports/annual?year=2025"), 401)
    assert_problem(admin.call("POST", "/v1/reports/annual?year=2025", {}), 405)
    # Reads write nothing: only the two setup writes above were audited.
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before + 2


def test_the_demo_city_has_a_current_plan(town, admin):
    y = town.today.year
    r = dec(admin.get("/v1/reports/plan-progress"))
    assert (r["plan"], r["from"], r["to"]) == (f"{y - 1}-{y + 1}", f"{y - 1}-01-01",
                                               f"{y + 1}-12-31")
    actual = {i["key"]: i["actual"] for i in r["items"]}
    assert actual["incubators"] == len(town.incubators)
    assert actual["new_tech_enterprises"] > 0 and not all(i["met"] for i in r["items"])
    # The seed's plan is there too.
    assert dec(admin.get("/v1/reports/plan-progress?plan=2015-2017"))["to"] == "2017-12-31"
