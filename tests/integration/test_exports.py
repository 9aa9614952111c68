"""Exports a finance office can file: file names (Content-Disposition), the
CSV forms of alerts and tenants compared cell by cell with their JSON (times
in the bureau's zone with its offset), and 406 for Accept: text/csv where a
route has no CSV form."""

import csv
import datetime as dt
import io
import time

from harness import Api, assert_problem, run_cli
from test_payouts import credit_code


def get_csv(daemon, path, token=None, lang=None):
    headers = {"Accept": "text/csv"}
    if lang:
        headers["Accept-Language"] = lang
    r = daemon.request("GET", path, token=token or daemon.admin_token, headers=headers)
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/csv; charset=utf-8" and r.body[:3] == b"\xef\xbb\xbf"
    return r, list(csv.reader(io.StringIO(r.body[3:].decode("utf-8"), newline="")))


def incubator(admin, code, area=1000):
    r = admin.post("/v1/incubators", {
        "code": code, "name": f"孵化器 {code}", "level": "municipal", "kind": "comprehensive",
        "district": "南岗区", "opened_on": "2024-01-01", "disposable_area_m2": area,
        "public_service_area_m2": 0})
    assert r.status == 201, r


def tenant(admin, code, ext, credit, tech="2024-01-01"):
    r = admin.put(f"/v1/incubators/{code}/tenants/{ext}", {
        "name": f"企业 {ext}", "credit_code": credit, "founded_on": "2023-06-01",
        "admitted_on": "2024-01-01", "field": "other", "tech_certified_on": tech})
    assert r.status == 201, r


CODES = [credit_code(n) for n in (701, 702, 703)]


def test_file_names_say_what_they_are(admin, daemon):
    incubator(admin, "FN-1")
    reviewer = Api(daemon, run_cli(daemon.config_path, "token", "create", "--admin",
                                   "fn-reviewer").stdout.strip())
    assert admin.post("/v1/payout-runs", {"period": "2025-10"}).status == 201
    r, _ = get_csv(daemon, "/v1/payout-runs/2025-10")
    assert r.header("Content-Disposition") == 'attachment; filename="payout-2025-10-draft.csv"'
    assert reviewer.post("/v1/payout-runs/2025-10/review").status == 200
    assert admin.post("/v1/payout-runs/2025-10/approve").status == 200
    r, _ = get_csv(daemon, "/v1/payout-runs/2025-10")
    assert r.header("Content-Disposition") == 'attachment; filename="payout-2025-10-approved.csv"'
    r, _ = get_csv(daemon, "/v1/payout-runs/2025-10?detail=graduates&lang=zh")
    assert r.header("Content-Disposition") == \
        'attachment; filename="payout-2025-10-approved-graduates.csv"'
    for path, name in (("/v1/reports/monthly?period=2025-10", "report-monthly-2025-10.csv"),
                       ("/v1/reports/annual?year=2025", "report-annual-2025.csv"),
                       ("/v1/reports/plan-progress?plan=2015-2017&as_of=2017-12-31",
                        "plan-progress-2015-2017-2017-12-31.csv"),
                       ("/v1/incubators/FN-1/tenants", None),
                       ("/v1/alerts?state=all", None)):
        r, _ = get_csv(daemon, path)
        got = r.header("Content-Disposition")
        if name is None:
            assert got.startswith('attachment; filename="') and got.endswith('.csv"'), got
        else:
            assert got == f'attachment; filename="{name}"'
    # JSON answers are not attachments.
    assert admin.get("/v1/payout-runs/2025-10").header("Content-Disposition") is None


def test_tenants_csv_matches_the_json(admin, daemon):
    incubator(admin, "TC-1")
    tenant(admin, "TC-1", "A", CODES[0])
    tenant(admin, "TC-1", "B", CODES[1], tech=None)
    assert admin.put("/v1/incubators/TC-1/occupancy", {
        "as_of": "2025-01-01", "public_service_area_m2": 0,
        "tenants": [{"external_id": "A", "area_m2": 420.5}]}).status == 200
    assert admin.post("/v1/incubators/TC-1/tenants/A/graduation", {
        "graduated_on": "2025-06-01", "basis": "acquired_or_listed",
        "evidence": {"event": "并购"}}).status == 200
    items = admin.get("/v1/incubators/TC-1/tenants").json()["items"]
    _, rows = get_csv(daemon, "/v1/incubators/TC-1/tenants")
    head = rows[0]
    assert head[:4] == ["external_id", "name", "credit_code", "status"]
    assert len(rows) == 1 + len(items)
    for row, item in zip(rows[1:], items):
        cells = dict(zip(head, row))
        for k in head:
            if k == "warnings":
                assert cells[k] == ";".join(w["code"] for w in item["warnings"])
            elif item[k] is None:
                assert cells[k] == ""
            else:
                assert cells[k] == str(item[k]), k
    _, zh = get_csv(daemon, "/v1/incubators/TC-1/tenants?status=graduated", lang="zh")
    assert zh[0][:4] == ["企业编号", "企业名称", "统一社会信用代码", "状态"]
    assert [r_[0] for r_ in zh[1:]] == ["A"] and zh[1][3] == "已毕业"
    # An incubator's own token gets its own tenants' CSV, not another's.
    tok = admin.post("/v1/incubators/TC-1/tokens", {"name": "erp"}).json()["token"]
    _, own = get_csv(daemon, "/v1/incubators/TC-1/tenants", token=tok)
    assert own == rows
    incubator(admin, "TC-2")
    r = daemon.request("GET", "/v1/incubators/TC-2/tenants", token=tok,
                       headers={"Accept": "text/csv"})
    assert_problem(r, 403)


def test_alerts_csv_in_the_bureaus_time(admin, daemon):
    incubator(admin, "AL-1")
    tenant(admin, "AL-1", "A", CODES[2])
    today = time.strftime("%Y-%m-%d")
    # 100 of 1000 m2 today: below the veto threshold, an alert fires.
    assert admin.put("/v1/incubators/AL-1/occupancy", {
        "as_of": today, "public_service_area_m2": 0,
        "tenants": [{"external_id": "A", "area_m2": 100}]}).status == 200
    alerts = admin.get("/v1/alerts?state=all").json()["items"]
    assert any(a["rule"] == "space_share_breach" for a in alerts)
    _, rows = get_csv(daemon, "/v1/alerts?state=all")
    head = rows[0]
    assert head == ["id", "rule", "severity", "incubator", "name", "subject", "state",
                    "acknowledged", "started_at", "resolved_at", "value", "threshold", "message"]
    assert len(rows) == 1 + len(alerts)
    for row, a in zip(rows[1:], alerts):
        cells = dict(zip(head, row))
        assert (cells["id"], cells["rule"], cells["severity"], cells["incubator"], cells["state"],
                cells["message"]) == (str(a["id"]), a["rule"], a["severity"], a["incubator"],
                                      a["state"], a["message"])
        # Asia/Shanghai, the default zone: UTC + 8 hours, said with the offset.
        for k in ("started_at", "resolved_at"):
            if a[k] is None:
                assert cells[k] == ""
                continue
            utc = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00"))
            local = utc.astimezone(dt.timezone(dt.timedelta(hours=8)))
            assert cells[k] == local.isoformat() and cells[k].endswith("+08:00")
        if a["rule"] == "space_share_breach":
            assert cells["value"] == "0.1000" and cells["threshold"] == "0.5000"
    _, zh = get_csv(daemon, "/v1/alerts?state=all&lang=zh")
    assert zh[0][:3] == ["编号", "规则", "级别"]
    breach = next(r_ for r_ in zh[1:] if r_[3] == "AL-1" and r_[1].startswith("科技企业场地占比低于"))
    assert breach[2] == "严重" and breach[6] == "告警中" and breach[7] == "否"


def test_accept_csv_where_there_is_no_csv_is_406(admin, daemon, sql):
    incubator(admin, "NA-1")
    before = sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0]
    for method, path, body in (("GET", "/v1/incubators", None),
                               ("GET", "/v1/incubators/NA-1", None),
                               ("GET", "/v1/payout-runs", None),
                               ("GET", "/v1/policy", None),
                               ("POST", "/v1/payout-runs", {"period": "2025-10"}),
                               ("GET", "/healthz", None)):
        r = daemon.request(method, path, token=daemon.admin_token, json_body=body,
                           headers={"Accept": "text/csv"})
        p = assert_problem(r, 406)
        assert p["type"] == "urn:incubatord:problem:not-acceptable"
    assert sql.execute("SELECT count(*) FROM payout_runs").fetchone()[0] == before
    # Anything that also takes JSON gets JSON.
    for accept in ("text/csv, application/json", "text/csv;q=0.9, */*;q=0.1",
                   "application/*", "application/problem+json, text/csv"):
        r = daemon.request("GET", "/v1/incubators", token=daemon.admin_token,
                           headers={"Accept": accept})
        assert r.status == 200 and r.header("Content-Type").startswith("application/json"), r
    # A route with a CSV form gives it.
    r = daemon.request("GET", "/v1/reports/monthly?period=2025-10", token=daemon.admin_token,
                       headers={"Accept": "text/csv"})
    assert r.status == 200 and r.header("Content-Type") == "text/csv; charset=utf-8"
