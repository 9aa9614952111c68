"""The console's two reads, GET /v1/reports/overview and GET
/v1/incubators/{code}/space-share/daily, over a generated city, against
values computed here from the fixture's own data (each day's share by brute
force over the occupancy intervals, as exact fractions; the tenant counts
from the tenants' dates; the open alerts read from the table), and their
bad-input matrix.
"""

import datetime as dt
import os
import sys
from decimal import Decimal
from fractions import Fraction

import pytest

from alerting import sweep
from harness import MAX_BODY_BYTES, Api, assert_problem, create_token
from test_reports_city import day_share, dec, half_up

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import city as citygen  # noqa: E402

THRESHOLD = Fraction(1, 2)
WARNING = Fraction(55, 100)


def status_of(share):
    if share is None:
        return "no_data"
    return "breach" if share < THRESHOLD else "warning" if share < WARNING else "ok"


@pytest.fixture
def town(pg, db, daemon, admin, sql):
    c = citygen.generate(citygen.Params(incubators=8, tenants=300, years=4, snapshot_days=5,
                                        seed=1111, today=citygen.bureau_today()))
    citygen.load(sql, c)
    r = admin.post("/v1/incubators", {"code": "Z-EMPTY", "name": "空孵化器", "level": "unrated",
                                      "kind": "maker_space", "district": "松北区",
                                      "disposable_area_m2": 100, "public_service_area_m2": 0})
    assert r.status == 201, r
    # The city's alerts as the sweep finds them today, so that some are open.
    sweep(sql, c.today)
    return c


def expected_item(inc, on, alerts):
    ts = inc.tenants

    def ended(t):
        return t.graduated_on or t.exited_on

    def exit_from_incubation(t):
        return t.exited_on if t.graduated_on is None else None
    start12 = citygen.add_months(on.replace(day=1), -11)
    g12 = sum(1 for t in ts if t.graduated_on and start12 <= t.graduated_on <= on)
    x12 = sum(1 for t in ts if exit_from_incubation(t) and start12 <= t.exited_on <= on)
    share = day_share(inc, on)
    snaps = [s[0] for s in inc.snapshots if s[0] <= on]
    return {
        "incubator": inc.code, "name": inc.name, "district": inc.district, "level": inc.level,
        "kind": inc.kind, "share": half_up(share), "status": status_of(share),
        "threshold": Decimal("0.5"), "warning_threshold": Decimal("0.55"),
        "last_snapshot_on": max(snaps).isoformat() if snaps else None,
        "incubating": sum(1 for t in ts if t.admitted_on <= on and
                          (ended(t) is None or ended(t) > on)),
        "open_alerts": alerts.get(inc.code, {"critical": 0, "warning": 0, "info": 0}),
        "trailing_12m_graduation_rate": half_up(Fraction(g12, g12 + x12)) if g12 + x12 else None,
    }


def open_alerts(sql):
    counts = {}
    for code, severity, n in sql.execute(
            "SELECT i.code, a.severity, count(*) FROM alerts a JOIN incubators i"
            " ON i.id = a.incubator_id WHERE a.state = 'firing' GROUP BY 1, 2"):
        counts.setdefault(code, {"critical": 0, "warning": 0, "info": 0})[severity] = n
    return counts


def test_overview_matches_an_independent_computation(town, admin, sql):
    alerts = open_alerts(sql)
    days = [town.today, town.today - dt.timedelta(days=200), town.today - dt.timedelta(days=700),
            min(i.opened_on for i in town.incubators)]
    statuses = set()
    for on in days:
        got = dec(admin.get(f"/v1/reports/overview?on={on}"))
        assert got["on"] == on.isoformat()
        opened = sorted((i for i in town.incubators if i.opened_on <= on), key=lambda i: i.code)
        want = [expected_item(i, on, alerts) for i in opened]
        items = [x for x in got["items"] if x["incubator"] != "Z-EMPTY"]
        assert items == want, on
        statuses |= {x["status"] for x in items}
    # The comparison covered every status, not only easy ones.
    assert statuses == {"ok", "warning", "breach", "no_data"}, statuses
    # Default: today; the incubator registered over the API has no data yet.
    today = dec(admin.get("/v1/reports/overview"))
    assert today["on"] == town.today.isoformat()
    empty = next(x for x in today["items"] if x["incubator"] == "Z-EMPTY")
    assert empty["share"] is None and empty["status"] == "no_data"
    assert empty["last_snapshot_on"] is None and empty["incubating"] == 0
    # The overview's share and status are space-share?on= of that day.
    for x in today["items"]:
        one = dec(admin.get(f"/v1/incubators/{x['incubator']}/space-share?on={town.today}"))
        assert (one["share"], one["status"], one["threshold"]) == \
            (x["share"], x["status"], x["threshold"])


def test_overview_before_any_incubator_is_empty(daemon, admin):
    assert dec(admin.get("/v1/reports/overview?on=2001-01-01")) == {"on": "2001-01-01",
                                                                   "items": []}


def test_daily_series_matches_an_independent_computation(town, admin):
    seen = set()
    for inc in town.incubators:
        first = max(inc.opened_on - dt.timedelta(days=20), town.today - dt.timedelta(days=1099))
        got = dec(admin.get(f"/v1/incubators/{inc.code}/space-share/daily"
                            f"?from={first}&to={town.today}"))
        assert (got["incubator"], got["from"], got["to"]) == \
            (inc.code, first.isoformat(), town.today.isoformat())
        want = []
        d = first
        while d <= town.today:
            s = day_share(inc, d)
            want.append({"on": d.isoformat(), "share": half_up(s), "threshold": Decimal("0.5"),
                         "warning_threshold": Decimal("0.55"), "status": status_of(s)})
            d += dt.timedelta(days=1)
        assert got["items"] == want, inc.code
        seen |= {x["status"] for x in want}
    assert seen == {"ok", "warning", "breach", "no_data"}


def test_daily_series_equals_space_share_of_each_day(town, admin):
    inc = next(i for i in town.incubators if i.profile == "hovering")
    first = town.today - dt.timedelta(days=40)
    got = dec(admin.get(f"/v1/incubators/{inc.code}/space-share/daily?from={first}"))
    assert got["to"] == town.today.isoformat() and len(got["items"]) == 41
    for x in got["items"]:
        one = dec(admin.get(f"/v1/incubators/{inc.code}/space-share?on={x['on']}"))
        assert {k: one[k] for k in ("on", "share", "threshold", "warning_threshold",
                                    "status")} == x


def test_daily_series_defaults_to_the_last_365_days(town, admin):
    code = town.incubators[0].code
    got = dec(admin.get(f"/v1/incubators/{code}/space-share/daily"))
    assert got["to"] == town.today.isoformat()
    assert got["from"] == (town.today - dt.timedelta(days=364)).isoformat()
    assert len(got["items"]) == 365
    to = town.today - dt.timedelta(days=30)
    got = dec(admin.get(f"/v1/incubators/{code}/space-share/daily?to={to}"))
    assert got["from"] == (to - dt.timedelta(days=364)).isoformat() and len(got["items"]) == 365
    one = dec(admin.get(f"/v1/incubators/{code}/space-share/daily?from={to}&to={to}"))
    assert len(one["items"]) == 1


def test_daily_series_follows_the_policy_of_each_month(town, admin):
    inc = town.incubators[0]
    nxt = citygen.add_months(town.today.replace(day=1), 1)
    body = dict(admin.get("/v1/policy").json())
    for k in ("version", "created_at", "created_by"):
        body.pop(k, None)
    body.update(effective_from=nxt.strftime("%Y-%m"), veto_threshold=0.6)
    r = admin.post("/v1/policy", body)
    assert r.status == 201, r
    last = nxt + dt.timedelta(days=2)
    got = dec(admin.get(f"/v1/incubators/{inc.code}/space-share/daily"
                        f"?from={nxt - dt.timedelta(days=2)}&to={last}"))
    assert [x["threshold"] for x in got["items"]] == [Decimal("0.5")] * 2 + [Decimal("0.6")] * 3
    assert [x["warning_threshold"] for x in got["items"]][-1] == Decimal("0.65")


BAD_RANGES = [
    ("from=2024-02-30", 400, "from"), ("from=x", 400, "from"), ("to=2024-1-01", 400, "to"),
    ("from=", 400, "from"), ("on=2024-01-01", 400, "on"),
    ("from=2024-01-01&from=2024-01-02", 400, "from"),
    ("from=2024-01-02&to=2024-01-01", 422, "from"),
    ("from=2021-01-01&to=2024-01-06", 422, "to"),       # 1,100 days + 1
    ("from=2001-01-01", 422, "to"),                     # to defaults to today
]


@pytest.mark.parametrize("query,status,field", BAD_RANGES)
def test_bad_daily_ranges(town, admin, query, status, field, unchanged):
    code = town.incubators[0].code
    with unchanged():
        assert_problem(admin.get(f"/v1/incubators/{code}/space-share/daily?{query}"),
                       status, field)


def test_daily_series_at_its_limit(town, admin):
    code = town.incubators[0].code
    got = dec(admin.get(f"/v1/incubators/{code}/space-share/daily"
                        "?from=2021-01-01&to=2024-01-05"))
    assert len(got["items"]) == 1100


def test_bad_overview_queries(town, admin, unchanged):
    with unchanged():
        for q, field in [("on=2024-02-30", "on"), ("on=x", "on"), ("on=", "on"),
                         ("period=2024-01", "period"), ("on=2024-01-01&on=2024-01-02", "on")]:
            assert_problem(admin.get(f"/v1/reports/overview?{q}"), 400, field)
        r = admin.post("/v1/reports/overview", {})
        assert_problem(r, 405)
        assert "GET" in r.header("Allow")
        assert_problem(town_request(admin, "GET", "/v1/reports/overview",
                                    body=b"x" * (MAX_BODY_BYTES + 1)), 413)


def town_request(api, method, path, **kw):
    return api.daemon.request(method, path, token=api.token, **kw)


def test_scope(town, daemon, admin):
    a, b = town.incubators[0].code, town.incubators[1].code
    own = Api(daemon, create_token(admin, a)["token"])
    assert dec(own.get(f"/v1/incubators/{a}/space-share/daily"))["incubator"] == a
    assert_problem(own.get(f"/v1/incubators/{b}/space-share/daily"), 403)
    assert_problem(own.get("/v1/incubators/NOPE/space-share/daily"), 403)
    assert_problem(own.get("/v1/reports/overview"), 403)
    assert_problem(admin.get("/v1/incubators/NOPE/space-share/daily"), 404)
    assert_problem(admin.get("/v1/incubators/-bad/space-share/daily"), 404)
    for path in ("/v1/reports/overview", f"/v1/incubators/{a}/space-share/daily"):
        assert_problem(daemon.request("GET", path), 401)
        assert_problem(Api(daemon, "x" * 43).get(path), 401)
