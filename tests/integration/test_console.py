"""The console in a real browser (headless chromium through Selenium) against
the real daemon loaded with a synthetic city: signing in and out, the
overview against the API, sorting and filtering, an incubator's chart with
its threshold line, acknowledging an alert, reviewing and approving a payout
run with two administrators, the CSV, the printable statement on A4, an
incubator's token kept to its own incubator, a 401 and a 403, the English
switch; and in every test no browser console error (a CSP violation is one)
and the token in sessionStorage and nowhere else. Each view is saved as a
screenshot under the build folder (console-screenshots/)."""

import csv
import datetime as dt
import io
import json
import os
import sys
from decimal import Decimal

import pytest

from alerting import sweep
from browser import Browser, media_box, pdf_pages
from harness import Api, Daemon, run_cli, unique_name

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
import city as citygen  # noqa: E402

SOURCE = os.environ.get("INCUBATORD_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOCS = os.environ.get("INCUBATORD_CONSOLE_DOCS")   # set to refresh docs/console-*.png


class Town:
    pass


@pytest.fixture(scope="module")
def town(pg, tmp_path_factory):
    """One daemon and city for the module (loading a city takes a while)."""
    t = Town()
    t.db = unique_name("console")
    pg.create_database(t.db, template="incubatord_template")
    workdir = str(tmp_path_factory.mktemp("console"))
    os.chmod(workdir, 0o755)
    t.daemon = Daemon(workdir, pg.conninfo(t.db))
    t.tokens = {name: run_cli(t.daemon.config_path, "token", "create", "--admin", name)
                .stdout.strip() for name in ("finance-a", "finance-b")}
    t.daemon.start()
    t.admin = Api(t.daemon, t.tokens["finance-a"])
    t.admin_b = Api(t.daemon, t.tokens["finance-b"])
    t.city = citygen.generate(citygen.Params(incubators=12, tenants=420, years=3, snapshot_days=5,
                                             seed=20151, today=citygen.bureau_today()))
    with pg.connect(t.db) as sql:
        citygen.load(sql, t.city)
        sweep(sql, t.city.today)
    t.codes = sorted(i.code for i in t.city.incubators)
    t.incubator = next(i for i in t.city.incubators if i.profile == "hovering")
    r = t.admin.post(f"/v1/incubators/{t.incubator.code}/tokens", {"name": "erp"})
    assert r.status == 201, r
    t.incubator_token = r.json()["token"]
    t.incubator_token_id = r.json()["id"]
    # A draft payout run of last month, for the payout views.
    t.period = citygen.add_months(t.city.today.replace(day=1), -1).strftime("%Y-%m")
    first_period = min(i.opened_on for i in t.city.incubators).strftime("%Y-%m")
    t.period = max(t.period, first_period)
    r = t.admin.post("/v1/payout-runs", {"period": t.period})
    assert r.status in (200, 201), r
    yield t
    t.daemon.stop()
    pg.drop_database(t.db)


@pytest.fixture
def browser(town):
    b = Browser(f"http://127.0.0.1:{town.daemon.port}")
    yield b
    try:
        errors = b.errors()
        allowed = getattr(b, "allowed_errors", ())
        unexpected = [e for e in errors if not any(a in e["message"] for a in allowed)]
        assert unexpected == [], f"browser console errors: {unexpected}"
    finally:
        b.close()


def shot(b, name, docs_scale=None):
    """A screenshot of the whole page as a test artefact; with
    INCUBATORD_CONSOLE_DOCS=DIR, also the window, scaled, as DIR/console-NAME.png
    (how docs/console.md's pictures are made)."""
    b.screenshot(name)
    if DOCS and docs_scale:
        b.screenshot(name, full=False, scale=docs_scale,
                     path=os.path.join(DOCS, f"console-{name}.png"))


@pytest.fixture
def admin_page(town, browser):
    """The browser signed in with the first admin token."""
    browser.sign_in(town.tokens["finance-a"])
    return browser


def assert_token_only_in_session_storage(b, token):
    st = b.storage()
    assert token in st["session"].values()
    assert token not in json.dumps(st["local"]) and token not in st["cookie"]
    assert token not in st["url"]
    cookies = b.driver.get_cookies()
    assert all(token not in json.dumps(c) for c in cookies)


def api_overview(town):
    r = town.admin.get("/v1/reports/overview")
    assert r.status == 200
    return json.loads(r.body, parse_float=Decimal)


def pct(share):
    if share is None:
        return "—"
    bp = int((Decimal(share) * 10000).to_integral_value())
    return f"{bp // 100}.{bp % 100:02d}%"


STATUS_WORDS = {"breach": "低于否决线", "warning": "预警", "ok": "正常", "no_data": "无数据"}


def table_rows(b):
    return b.js("""return [...document.querySelectorAll('#overview-table tbody tr')].map(tr => ({
        code: tr.dataset.code, status: tr.dataset.status,
        share: tr.querySelector('[data-col=share] .share-value').textContent,
        word: tr.querySelector('[data-col=status]').textContent.trim(),
        cells: [...tr.children].map(td => td.textContent.trim())}))""")


def test_sign_in_overview_matches_the_api(town, browser):
    b = browser
    b.open()
    b.wait_for("#signin-form")
    assert "#/signin" in b.driver.current_url
    assert b.find("html").get_attribute("lang") == "zh-CN"
    shot(b, "signin", docs_scale=0.5)
    b.sign_in(town.tokens["finance-a"])
    assert "#/overview" in b.driver.current_url
    b.wait_for("#overview-table tbody tr")
    want = api_overview(town)["items"]
    rows = table_rows(b)
    assert [r["code"] for r in sorted(rows, key=lambda r: r["code"])] == town.codes
    by_code = {r["code"]: r for r in rows}
    for item in want:
        row = by_code[item["incubator"]]
        assert row["share"] == pct(item["share"]), item
        assert row["status"] == item["status"]
        assert STATUS_WORDS[item["status"]] in row["word"]   # the word, not only a colour
    assert {r["status"] for r in rows} >= {"ok", "breach"}
    assert b.find("#who-scope").text == "管理员"
    assert_token_only_in_session_storage(b, town.tokens["finance-a"])
    shot(b, "overview", docs_scale=0.6)
    # Reloading keeps the session (sessionStorage survives a reload).
    b.driver.refresh()
    b.wait_for("#overview-table tbody tr")
    assert "#/overview" in b.driver.current_url


def test_sort_and_filter(town, admin_page):
    b = admin_page
    b.wait_for("#overview-table tbody tr")
    b.click('button[data-sort="share"]')
    rows = table_rows(b)
    shares = [Decimal(r["share"].rstrip("%")) for r in rows if r["share"] != "—"]
    assert shares == sorted(shares) and len(shares) > 3
    assert [r["share"] for r in rows][-1:] == ["—"] or "—" not in [r["share"] for r in rows]
    assert b.find('th[aria-sort="ascending"] button[data-sort="share"]')
    b.click('button[data-sort="share"]')
    desc = [Decimal(r["share"].rstrip("%")) for r in table_rows(b) if r["share"] != "—"]
    assert desc == sorted(desc, reverse=True)
    # Filter by status, then by district: the URL keeps them, a reload too.
    want = api_overview(town)["items"]
    b.js("""const s = document.querySelector('#filter-status'); s.value = 'breach';
            s.dispatchEvent(new Event('change'))""")
    rows = table_rows(b)
    assert {r["code"] for r in rows} == {x["incubator"] for x in want if x["status"] == "breach"}
    assert "status=breach" in b.driver.current_url
    district = want[0]["district"]
    b.js("""const s = document.querySelector('#filter-status'); s.value = '';
            s.dispatchEvent(new Event('change'));
            const d = document.querySelector('#filter-district'); d.value = arguments[0];
            d.dispatchEvent(new Event('change'))""", district)
    rows = table_rows(b)
    assert {r["code"] for r in rows} == {x["incubator"] for x in want if x["district"] == district}
    b.driver.refresh()
    b.wait_for("#overview-table tbody tr")
    assert {r["code"] for r in table_rows(b)} == \
        {x["incubator"] for x in want if x["district"] == district}
    for f, value in (("level", want[0]["level"]), ("kind", want[0]["kind"])):
        b.click("#filter-reset")
        b.js("""const s = document.querySelector('#filter-' + arguments[0]); s.value = arguments[1];
                s.dispatchEvent(new Event('change'))""", f, value)
        assert {r["code"] for r in table_rows(b)} == \
            {x["incubator"] for x in want if x[f] == value}, f
    # Nothing matches: an empty state that says what to do.
    b.find("#filter-q").send_keys("没有这个孵化器")
    assert "没有符合筛选条件的孵化器" in b.find("#overview-table .empty").text
    b.click("#filter-reset")
    assert len(table_rows(b)) == len(town.codes)


def test_incubator_view_draws_the_chart_with_its_lines(town, browser):
    b = browser
    code = town.incubator.code
    b.sign_in(town.tokens["finance-a"])
    b.go(f"#/incubators/{code}")
    b.wait_for("#share-chart svg.chart")
    b.wait_idle()
    threshold = b.find('#share-chart path[data-line="threshold"]').get_attribute("d")
    share = b.find('#share-chart path[data-line="share"]').get_attribute("d")
    warning = b.find('#share-chart path[data-line="warning"]').get_attribute("d")
    assert threshold.count("L") == 364 and share.startswith("M") and warning.count("L") == 364
    # The threshold line is flat at 50%, the warning line above it.
    ys = {float(p.split(",")[1]) for p in threshold[1:].split("L")}
    wy = {float(p.split(",")[1]) for p in warning[1:].split("L")}
    assert len(ys) == 1 and len(wy) == 1 and wy.pop() < ys.pop()
    series = town.admin.get(f"/v1/incubators/{code}/space-share/daily").json()["items"]
    below = sum(1 for x in series if x["status"] == "breach")
    assert f"低于否决线 {below} 天" in b.find("#chart-summary").text
    # Monthly averages are the API's metrics, one row per month of the range.
    months = b.all("#monthly tbody tr")
    assert len(months) in (12, 13)
    first = months[0].get_attribute("data-period")
    m = json.loads(town.admin.get(f"/v1/incubators/{code}/metrics?period={first}").body,
                   parse_float=Decimal)
    assert months[0].find_element("css selector", '[data-col="average"]').text == \
        pct(m["space_share"]["average"])
    # Tenants with their warnings; alerts; payout lines (none approved yet).
    assert b.all("#tenants tbody tr") or b.all("#tenants .empty")
    b.click("#only-warned")
    n_tenants = len(town.admin.get(f"/v1/incubators/{code}/tenants?status=incubating&limit=500")
                    .json()["items"])
    assert len(b.all("#tenants tbody tr")) in (n_tenants, 0) or b.all("#tenants .empty")
    assert b.all("#incubator-alerts tbody tr") or b.all("#incubator-alerts .empty")
    assert b.all("#incubator-payouts .empty")
    shot(b, "incubator", docs_scale=0.6)
    # Another range: three years, 1,100 days.
    b.click('button[data-days="1100"]')
    b.wait(lambda: b.find('#share-chart path[data-line="threshold"]').get_attribute("d")
           .count("L") == 1099, what="the three-year chart")
    assert "days=1100" in b.driver.current_url


def test_acknowledge_an_alert_and_read_it_back(town, admin_page):
    b = admin_page
    b.go("#/alerts")
    b.wait_for("#alerts-table tbody tr")
    b.screenshot("alerts")
    button = b.wait_for("button[data-ack]")
    alert_id = button.get_attribute("data-ack")
    button.click()
    dialog = b.wait_for("dialog.confirm[open]")
    # A note is required.
    dialog.find_element("css selector", "[data-confirm]").click()
    assert "请填写" in b.find("dialog.confirm .field-error").text
    note = "已电话联系孵化器，要求本周内补报场地数据。"
    b.find("#dlg-note").send_keys(note)
    b.click("dialog.confirm [data-confirm]")
    b.wait(lambda: not b.all("dialog.confirm"), what="the dialog to close")
    b.wait(lambda: b.all(f'tr[data-alert="{alert_id}"] .ack'), what="the acknowledgement")
    got = [a for a in town.admin.get("/v1/alerts?state=all&limit=500").json()["items"]
           if str(a["id"]) == alert_id][0]
    assert got["acknowledged"] and got["acknowledgement"]["note"] == note
    assert got["acknowledgement"]["by"] == "finance-a"
    assert note in b.find(f'tr[data-alert="{alert_id}"]').text


def four_eyes(town):
    """Whether the daemon approves in two steps (the review route exists)."""
    return town.admin.get(f"/v1/payout-runs/{town.period}/review").status == 405


def test_payouts_review_approve_csv_and_statement(town, admin_page):
    b = admin_page
    b.go("#/payouts")
    b.wait_for(f'tr[data-period="{town.period}"]')
    b.screenshot("payouts")
    b.click(f'tr[data-period="{town.period}"] a')
    b.wait_for("#run-lines tbody tr")
    run = town.admin.get(f"/v1/payout-runs/{town.period}").json()
    assert len(b.all("#run-lines tbody tr")) == len(run["lines"])
    # Every reason is on the page: each line's and each graduate's.
    text = b.find("#run-lines").text
    reasons = {"veto": "月均占比低于否决线", "no_data": "当期无场地数据", "cap": "已达年度上限",
               "not_tech": "毕业时不是科技型企业", "entry_age": "入孵时成立时间超限",
               "already_rewarded": "已获得过毕业奖励"}
    for line in run["lines"]:
        if line["reason"]:
            assert reasons[line["reason"]] in text
        for g in line["graduates"]:
            assert g["external_id"] in text
            if g["reason"]:
                assert reasons[g["reason"]] in text
    shot(b, "payout-run", docs_scale=0.6)

    # The CSV, fetched with the token in a header and saved by the browser.
    b.click("#csv")
    path = b.wait_download(".csv")
    data = open(path, "rb").read()
    assert data[:3] == b"\xef\xbb\xbf"
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))
    assert len(rows) == 1 + len(run["lines"]) + 1  # the header, a row per line, the total row
    # The page is in Chinese, so is the file: the API's own Chinese export.
    zh = town.admin.get(f"/v1/payout-runs/{town.period}?lang=zh",
                        headers={"Accept": "text/csv"})
    assert zh.status == 200 and data == zh.body
    assert "孵化器代码" in rows[0] and "incubator" not in rows[0], rows[0]

    # Cancelling a confirmation changes nothing.
    step = "#review" if four_eyes(town) else "#approve"
    b.click(step)
    b.wait_for("dialog.confirm[open]")
    b.click("dialog.confirm button.secondary")
    assert town.admin.get(f"/v1/payout-runs/{town.period}").json()["status"] == "draft"

    if four_eyes(town):
        b.click("#review")
        b.wait_for("dialog.confirm[open]")
        b.find("#dlg-note").send_keys("数据与台账核对一致。")
        b.click("dialog.confirm [data-confirm]")
        b.wait(lambda: b.all('[data-run-status="reviewed"]'), what="the review")
        assert town.admin.get(f"/v1/payout-runs/{town.period}").json()["reviewed_by"] == \
            "finance-a"
        b.sign_out()
        b.sign_in(town.tokens["finance-b"])
        b.go(f"#/payouts/{town.period}")
        b.wait_for("#approve")
    b.click("#approve")
    b.wait_for("dialog.confirm[open]")
    assert "不可撤销" in b.find("dialog.confirm").text
    b.click("dialog.confirm [data-confirm]")
    b.wait(lambda: b.all('#run-facts [data-run-status="approved"]'), what="the approval")
    after = town.admin.get(f"/v1/payout-runs/{town.period}").json()
    assert after["status"] == "approved"
    approver = "finance-b" if four_eyes(town) else "finance-a"
    assert after["approved_by"] == approver
    assert not b.all("#approve") and not b.all("#review")

    # The statement of a line with graduates (or the first), printed on A4.
    line = next((l for l in after["lines"] if l["graduates"]), after["lines"][0])
    b.go(f"#/payouts/{town.period}/statement/{line['incubator']}")
    sheet = b.wait_for("#statement")
    text = sheet.text
    assert "孵化器后补助奖励核定表" in text and "已批准" in text
    assert f"第 {after['policy_version']} 版" in text and approver in text
    assert after["computed_by"] in text
    amount = line["amount_fen"]
    assert f"{amount // 100:,}.{amount % 100:02d}" in text
    for g in line["graduates"]:
        assert g["credit_code"] in text
    shot(b, "statement", docs_scale=0.5)
    pdf = b.pdf()
    open(os.path.join(os.path.dirname(b.screenshot("statement")), "statement.pdf"), "wb").write(pdf)
    assert pdf.startswith(b"%PDF") and pdf_pages(pdf) == 1, pdf_pages(pdf)
    box = media_box(pdf)
    assert abs(box[2] - 595) < 2 and abs(box[3] - 842) < 2, box     # A4 in points
    b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not b.find("#top").is_displayed() and not b.find(".sheet-tools").is_displayed()
    assert sheet.is_displayed()
    b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    # The approved line is now on the incubator's page too.
    b.go(f"#/incubators/{line['incubator']}")
    b.wait_for(f'#incubator-payouts tr[data-period="{town.period}"]')


def test_incubator_token_sees_only_its_incubator(town, browser):
    b = browser
    code = town.incubator.code
    other = next(c for c in town.codes if c != code)
    b.sign_in(town.incubator_token, code=code)
    assert f"#/incubators/{code}" in b.driver.current_url
    b.wait_for("#share-chart svg.chart")
    b.wait_idle()
    assert b.find("#who-scope").text == f"孵化器 {code}"
    navs = [a.get_attribute("data-nav") for a in b.all("#nav a")]
    assert navs == [f"incubators/{code}", "alerts"]
    assert not b.all("button[data-ack]") and not b.all("#approve") and not b.all("#review")
    b.screenshot("incubator-token")
    for fragment, words in ((f"#/incubators/{other}", f"只能查看本孵化器（{code}）"),
                            ("#/overview", "仅供管理员"), ("#/payouts", "仅供管理员"),
                            (f"#/payouts/{town.period}", "仅供管理员"), ("#/plan", "仅供管理员")):
        b.go(fragment)
        err = b.wait_for(".error")
        assert words in err.text and "403" in err.text, fragment
    b.go("#/alerts")
    b.wait_idle()
    assert {r.get_attribute("data-alert") for r in b.all("#alerts-table tbody tr")} <= \
        {str(a["id"]) for a in town.admin.get(f"/v1/alerts?incubator={code}&limit=500")
         .json()["items"]}
    assert not b.all("button[data-ack]")
    assert_token_only_in_session_storage(b, town.incubator_token)
    # A wrong incubator code at sign-in is refused in words.
    b.sign_out()
    b.click("#kind-incubator")
    b.find("#code").send_keys(other)
    b.find("#token").send_keys(town.incubator_token)
    b.click("#signin-submit")
    b.wait(lambda: "不属于该孵化器" in b.find("#signin-message").text, what="the refusal")
    b.allowed_errors = ["status of 403"]


def test_sign_out_forgets_and_401_returns_to_sign_in(town, browser):
    b = browser
    r = town.admin.post(f"/v1/incubators/{town.incubator.code}/tokens", {"name": "to-revoke"})
    token, token_id = r.json()["token"], r.json()["id"]
    b.sign_in(token, code=town.incubator.code)
    b.sign_out()
    st = b.storage()
    assert token not in json.dumps(st) and "已退出" in b.find("#signin-message").text
    b.go(f"#/incubators/{town.incubator.code}")
    b.wait_for("#signin-form")
    # Revoked while signed in: the next call is a 401, back to sign-in with a message.
    b.sign_in(token, code=town.incubator.code)
    assert town.admin.delete(f"/v1/tokens/{token_id}").status == 204
    b.go("#/alerts")
    b.wait(lambda: b.all("#signin-form"), what="the sign-in page")
    assert "登录已失效" in b.find("#signin-message").text
    assert token not in json.dumps(b.storage())
    b.allowed_errors = ["status of 401"]


def test_plan_view(town, admin_page):
    b = admin_page
    b.go("#/plan")
    b.wait_for("table.plan tbody tr")
    plan = town.admin.get("/v1/reports/plan-progress").json()
    rows = b.all("table.plan tbody tr")
    assert [r.get_attribute("data-key") for r in rows] == [i["key"] for i in plan["items"]]
    for r, item in zip(rows, plan["items"]):
        assert r.get_attribute("data-met") == str(item["met"]).lower()
        assert f"{item['actual']:,}" in r.text and f"{item['target']:,}" in r.text
        assert ("已完成" if item["met"] else "未完成") in r.text
    b.screenshot("plan")


def test_english_switch_and_tablet(town, admin_page):
    b = admin_page
    b.wait_for("#overview-table tbody tr")
    b.click("#lang-switch")
    b.wait(lambda: b.find("#nav a").text == "Overview", what="English labels")
    assert b.find("html").get_attribute("lang") == "en"
    assert "Below veto line" in b.wait_for("#overview-cards").text
    st = b.storage()
    assert st["local"] == {"incubatord.lang": "en"}
    b.driver.refresh()
    b.wait_for("#overview-table tbody tr")
    assert b.find("#nav a").text == "Overview"
    b.screenshot("overview-en")
    b.click("#lang-switch")
    b.wait(lambda: b.find("#nav a").text == "总览", what="Chinese labels")
    # A tablet in portrait: the page fits its width (tables scroll inside their box).
    b.driver.set_window_size(820, 1180)
    b.go(f"#/incubators/{town.incubator.code}")
    b.wait_for("#share-chart svg.chart")
    b.wait_idle()
    width = b.js("return document.documentElement.scrollWidth")
    assert width <= b.js("return window.innerWidth"), width
    b.screenshot("incubator-tablet")
