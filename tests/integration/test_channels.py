"""Notification channels: the API (create, read with secrets hidden, change,
delete, test, deliveries, the bad-input matrix), routing by district,
severity and rule, robots that refuse or are down, the rate limit and its
digests, crashes and two daemons, and e-mail, against local robots that
verify every signature as their vendors document it (robots.py) and an SMTP
server.
"""

import datetime
import json
import re
import signal
import time

import pytest

from alerting import (days, make_incubator, put_tenant, snapshot, sweep, today, uscc,
                      wait_for_startup_sweep, wait_until, webhook_config, Receiver)
from conftest import start_daemon
from harness import MAX_BODY_BYTES, Api, assert_problem
from robots import Mailbox, Robot, robot_config

SECRET = "SEC9f0d1c2b3a4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789ab"
PUBLIC_URL = "https://kj.example.gov.cn/"


@pytest.fixture
def robots():
    made = []

    def make(kind, secret=None):
        r = Robot(kind, secret)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


@pytest.fixture
def mailbox():
    m = Mailbox()
    yield m
    m.stop()


def channel(api, name, kind, **fields):
    r = api.post("/v1/channels", {"name": name, "kind": kind, **fields})
    assert r.status == 201, r
    return r.json()


def deliveries(api, channel_id):
    r = api.get(f"/v1/channels/{channel_id}/deliveries")
    assert r.status == 200, r
    return r.json()["items"]


def breach(api, code, n, district=None):
    """An incubator whose share falls to 0.40 today: one critical alert."""
    t = today()
    make_incubator(api, code, t - days(10))
    if district:
        assert api.patch(f"/v1/incubators/{code}", {"district": district}).status == 200
    put_tenant(api, code, "T-1", uscc(n), t - days(300), tech_on=t - days(200))
    snapshot(api, code, t, {"T-1": 4000})


def warning(api, code, n):
    """An incubator whose share is 0.52 today: one warning alert."""
    t = today()
    make_incubator(api, code, t - days(10))
    put_tenant(api, code, "T-1", uscc(n), t - days(300), tech_on=t - days(200))
    snapshot(api, code, t, {"T-1": 5200})


# ---- the API ----

def test_channels_are_created_read_changed_and_deleted_with_secrets_hidden(
        pg, db, sql, workdir, robots):
    ding = robots("dingtalk", SECRET)
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        r = api.post("/v1/channels", {
            "name": "bureau-duty", "kind": "dingtalk", "url": ding.url, "secret": SECRET,
            "min_severity": "warning", "districts": ["南岗区"], "max_per_minute": 20})
        assert r.status == 201, r
        c = r.json()
        assert r.header("Location") == f"/v1/channels/{c['id']}"
        assert c["secret_set"] is True and "secret" not in c
        assert c["url"] == f"http://127.0.0.1:{ding.port}/robot/send?access_token=****"
        assert c["districts"] == ["南岗区"] and c["rules"] is None and c["enabled"] is True
        assert c["source"] == "api" and c["max_per_minute"] == 20

        # Defaults: min_severity warning, the robots' rate 20 a minute, email's 60.
        w = channel(api, "wecom-group", "wecom", url=robots("wecom").url)
        assert w["min_severity"] == "warning" and w["max_per_minute"] == 20
        assert w["secret_set"] is False and w["url"].endswith("key=****")
        m = channel(api, "mail", "email", to=["duty@kj.example.gov.cn"])
        assert m["max_per_minute"] == 60 and m["to"] == ["duty@kj.example.gov.cn"]
        f = channel(api, "feishu", "feishu", url=robots("feishu").url, secret="s")
        assert f["url"].endswith("/hook/****")

        listed = api.get("/v1/channels").json()
        names = [x["name"] for x in listed["items"]]
        assert names == ["webhook", "bureau-duty", "wecom-group", "mail", "feishu"]
        assert listed["items"][0]["source"] == "config" and listed["items"][0]["enabled"] is False
        page = api.get("/v1/channels?limit=2").json()
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = api.get(f"/v1/channels?limit=10&cursor={page['next_cursor']}").json()
        assert [x["name"] for x in rest["items"]] == names[2:]

        r = api.patch(f"/v1/channels/{c['id']}", {"enabled": False, "min_severity": "critical"})
        assert r.status == 200, r
        assert r.json()["enabled"] is False and r.json()["min_severity"] == "critical"
        assert r.json()["districts"] == ["南岗区"]  # absent fields stay
        # The configuration's webhook cannot be changed or deleted here.
        assert_problem(api.patch("/v1/channels/1", {"enabled": True}), 409)
        assert_problem(api.delete("/v1/channels/1"), 409)

        assert api.delete(f"/v1/channels/{w['id']}").status == 204
        assert_problem(api.get(f"/v1/channels/{w['id']}"), 404)
        assert_problem(api.delete(f"/v1/channels/{w['id']}"), 404)

        # No answer and no log line ever shows a secret or a robot's key.
        everything = json.dumps([api.get(f"/v1/channels/{x}").json()
                                 for x in (c["id"], f["id"])]) + d.log()
        assert SECRET not in everything and f"tok{ding.port}" not in everything
    finally:
        d.stop()


def test_the_webhook_of_the_configuration_shows_as_a_channel(pg, db, sql, workdir):
    receiver = Receiver()
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    try:
        api = Api(d, d.admin_token)
        [c] = api.get("/v1/channels").json()["items"]
        assert c["name"] == "webhook" and c["source"] == "config" and c["enabled"] is True
        assert c["url"].startswith(f"http://127.0.0.1:{receiver.port}/hooks/incubatord?src=")
        r = api.post(f"/v1/channels/{c['id']}/test")
        assert r.status == 200, r
        [req] = receiver.requests
        assert json.loads(req["body"])["type"] == "channel.test"
    finally:
        d.stop()
        receiver.stop()


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(pg, db, sql, workdir,
                                                                   robots):
    ding = robots("dingtalk")
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        api.post("/v1/incubators", {"code": "HRB-X", "name": "孵化器", "level": "municipal",
                                    "kind": "comprehensive", "opened_on": "2020-01-01",
                                    "disposable_area_m2": 100, "public_service_area_m2": 0})
        good = channel(api, "ok", "dingtalk", url=ding.url)
        count = lambda: sql.execute("SELECT count(*), max(updated_at) FROM channels").fetchone()
        before = count()
        base = {"name": "x", "kind": "dingtalk", "url": ding.url}
        cases = [
            ({**base, "kind": "slack"}, "kind"),
            ({**base, "url": "ftp://example.com/x"}, "url"),
            ({**base, "url": "javascript:alert(1)"}, "url"),
            ({**base, "url": "http://"}, "url"),
            ({**base, "url": 42}, "url"),
            ({**base, "name": ""}, "name"),
            ({**base, "name": "x" * 101}, "name"),
            ({**base, "max_per_minute": 0}, "max_per_minute"),
            ({**base, "max_per_minute": "20"}, "max_per_minute"),
            ({**base, "min_severity": "fatal"}, "min_severity"),
            ({**base, "enabled": "yes"}, "enabled"),
            ({**base, "rules": ["no_such_rule"]}, "rules[0]"),
            ({**base, "events": ["alert.exploded"]}, "events[0]"),
            ({**base, "incubators": ["HRB-X", "NOPE-1"]}, "incubators[1]"),
            ({**base, "incubators": ["bad code!"]}, "incubators[0]"),
            ({**base, "districts": [""]}, "districts[0]"),
            ({**base, "colour": "red"}, "colour"),
            ({"name": "m", "kind": "email", "to": ["not-an-address"]}, "to[0]"),
            ({"name": "m", "kind": "email", "to": ["a@b.cn", "x@@y.cn"]}, "to[1]"),
            ({"name": "m", "kind": "email", "to": [f"u{i}@kj.example.cn" for i in range(51)]},
             "to"),
            ({"name": "m", "kind": "email", "to": []}, "to"),
            ({"name": "m", "kind": "email"}, "to"),
            ({"name": "m", "kind": "email", "to": ["a@b.cn"], "url": ding.url}, "url"),
            ({"name": "w", "kind": "wecom", "url": ding.url, "secret": "s"}, "secret"),
            ({"name": "m", "kind": "email", "to": ["a@b.cn"], "secret": "s"}, "secret"),
            ({"name": "h", "kind": "webhook", "url": ding.url}, "secret"),
            ({"name": "d", "kind": "dingtalk"}, "url", "POST only: a patch keeps the url"),
            ({"name": "d", "kind": "dingtalk", "url": ding.url, "to": ["a@b.cn"]}, "to"),
            ({"kind": "dingtalk", "url": ding.url}, "name"),
        ]
        for body, field, *post_only in cases:
            assert_problem(api.post("/v1/channels", body), 422, field)
            if field != "name" and not post_only:  # a patch may leave the name out
                assert_problem(api.patch(f"/v1/channels/{good['id']}",
                                         {k: v for k, v in body.items() if k != "name"}), 422)
        assert_problem(api.post("/v1/channels", {**base, "name": "ok"}), 409)
        assert_problem(api.patch(f"/v1/channels/{good['id']}", {"secret": None, "kind": "wecom",
                                                               "to": ["a@b.cn"]}), 422, "to")
        assert_problem(d.request("POST", "/v1/channels", token=d.admin_token,
                                 body='{"name": "x", "kind":'), 400)
        assert_problem(d.request("POST", "/v1/channels", token=d.admin_token,
                                 body='{"name": "x", "name": "y"}'), 400)
        assert_problem(d.request("POST", "/v1/channels", token=d.admin_token,
                                 body='{"name": "x"}', content_type="text/plain"), 415)
        assert_problem(d.request("POST", "/v1/channels", token=d.admin_token,
                                 body='{"name": "' + "x" * MAX_BODY_BYTES + '"}'), 413)
        assert_problem(api.post("/v1/channels", [base]), 422, "(body)")
        assert_problem(d.request("GET", "/v1/channels"), 401)
        assert_problem(d.request("GET", "/v1/channels", token="nope"), 401)
        r = api.post("/v1/incubators/HRB-X/tokens", {"name": "erp"})
        token = r.json()["token"]
        for method, path in [("GET", "/v1/channels"), ("POST", "/v1/channels"),
                             ("GET", f"/v1/channels/{good['id']}"),
                             ("PATCH", f"/v1/channels/{good['id']}"),
                             ("DELETE", f"/v1/channels/{good['id']}"),
                             ("POST", f"/v1/channels/{good['id']}/test"),
                             ("GET", f"/v1/channels/{good['id']}/deliveries")]:
            assert_problem(d.request(method, path, token=token,
                                     json_body=base if method in ("POST", "PATCH") else None),
                           403)
        assert_problem(api.get("/v1/channels/999"), 404)
        assert_problem(api.get("/v1/channels/abc"), 404)
        assert_problem(api.patch("/v1/channels/999", {"enabled": False}), 404)
        assert_problem(api.post("/v1/channels/999/test"), 404)
        assert_problem(api.get("/v1/channels/999/deliveries"), 404)
        assert_problem(api.get("/v1/channels?limit=0"), 400)
        assert_problem(api.get(f"/v1/channels/{good['id']}/deliveries?cursor=%%%"), 400)
        assert count() == before
        assert ding.messages == []
    finally:
        d.stop()


def test_a_test_message_reports_what_the_robot_answered(pg, db, sql, workdir, robots,
                                                        mailbox):
    ding, feishu = robots("dingtalk", SECRET), robots("feishu", SECRET)
    d = start_daemon(pg, db, workdir, robot_config(mailbox))
    try:
        api = Api(d, d.admin_token)
        c = channel(api, "duty", "dingtalk", url=ding.url, secret=SECRET)
        r = api.post(f"/v1/channels/{c['id']}/test")
        assert r.status == 200, r
        assert r.json() == {"delivered": True, "status": 200,
                            "response": '{"errcode": 0, "errmsg": "ok"}'}
        [m] = ding.messages
        assert "测试消息" in m["text"] and "duty" in m["text"]

        ding.refuse = 1
        p = assert_problem(api.post(f"/v1/channels/{c['id']}/test"), 502)
        assert "errcode 310000: keywords not in content" in p["detail"], p

        wrong = channel(api, "wrong-secret", "feishu", url=feishu.url, secret="not-it")
        p = assert_problem(api.post(f"/v1/channels/{wrong['id']}/test"), 502)
        assert "code 19021" in p["detail"], p
        right = channel(api, "right-secret", "feishu", url=feishu.url, secret=SECRET)
        assert api.post(f"/v1/channels/{right['id']}/test").status == 200

        feishu.down()
        p = assert_problem(api.post(f"/v1/channels/{right['id']}/test"), 502)
        assert "could not be reached" in p["detail"], p

        mail = channel(api, "mail", "email", to=["duty@kj.example.gov.cn"])
        r = api.post(f"/v1/channels/{mail['id']}/test")
        assert r.status == 200, r
        assert r.json()["status"] == 250
        [msg] = mailbox.messages
        assert msg["to"] == ["duty@kj.example.gov.cn"]
        assert msg["message"]["Subject"].startswith("测试消息")
        assert deliveries(api, c["id"]) == []  # a test is not an event
    finally:
        d.stop()


# ---- routing ----

def test_a_breach_reaches_the_channels_of_its_district_and_no_others(
        pg, db, sql, workdir, robots):
    nangang, daoli, every = robots("dingtalk", SECRET), robots("wecom"), robots("feishu", SECRET)
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        channel(api, "nangang", "dingtalk", url=nangang.url, secret=SECRET, districts=["南岗区"])
        channel(api, "daoli", "wecom", url=daoli.url, districts=["道里区"])
        channel(api, "city", "feishu", url=every.url, secret=SECRET)
        breach(api, "HRB-NG", 1, district="南岗区")
        wait_until(lambda: len(nangang.messages) == 1 and len(every.messages) == 1,
                   what="the breach on its district's channel and the city's")
        time.sleep(0.5)
        assert daoli.messages == []
        [m] = nangang.messages
        text = m["text"]
        assert m["title"].startswith("【严重】科技企业场地占比低于一票否决线")
        assert "孵化器 HRB-NG（HRB-NG）" in text
        assert "40.00%（一票否决线 50.00%）" in text
        assert f"{PUBLIC_URL}console/#/incubators/HRB-NG" in text
        # The time is the bureau's: today's date there, as the alert started.
        assert re.search(r"开始时间\*\*：" + str(today()) + r" \d\d:\d\d", text), text
        assert "科技企业场地占比低于一票否决线" in every.messages[0]["text"]

        # The alert's message in the API is Chinese too.
        [a] = api.get("/v1/alerts").json()["items"]
        assert "科技企业场地占比" in a["message"] and "一票否决线" in a["message"], a
    finally:
        d.stop()


def test_min_severity_and_rules_filters(pg, db, sql, workdir, robots):
    critical, stale, everything = robots("wecom"), robots("wecom"), robots("wecom")
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        wait_for_startup_sweep(d)
        channel(api, "critical", "wecom", url=critical.url, min_severity="critical")
        channel(api, "stale", "wecom", url=stale.url, rules=["stale_data"],
                min_severity="info")
        channel(api, "all", "wecom", url=everything.url, min_severity="info")
        warning(api, "HRB-W", 1)        # space_share_warning (warning)
        breach(api, "HRB-B", 2)         # space_share_breach (critical)
        # stale_data (warning): its latest snapshot is 40 days old (share 0.6).
        make_incubator(api, "HRB-S", today() - days(80))
        snapshot(api, "HRB-S", today() - days(40), {}, public_service=6000)
        wait_until(lambda: len(everything.messages) == 3, what="three alerts on the open channel")
        time.sleep(0.5)
        assert len(critical.messages) == 1 and "HRB-B" in critical.texts()[0]
        assert len(stale.messages) == 1 and "数据超过35天未更新" in stale.texts()[0]
        for m in everything.messages:
            assert len(m["body"]["markdown"]["content"].encode()) <= 4096
    finally:
        d.stop()


# ---- failures ----

def test_a_refusing_robot_is_retried_and_its_error_shown_in_deliveries(
        pg, db, sql, workdir, robots):
    ding = robots("dingtalk", SECRET)
    ding.refuse = 2
    d = start_daemon(pg, db, workdir, robot_config(retry_initial_ms=1000, retry_max_ms=1000))
    try:
        api = Api(d, d.admin_token)
        c = channel(api, "duty", "dingtalk", url=ding.url, secret=SECRET)
        breach(api, "HRB-R", 1)
        wait_until(lambda: len(ding.refusals) >= 1, what="a refusal")
        wait_until(lambda: deliveries(api, c["id"])[0]["attempts"] >= 1, what="the attempt")
        [item] = deliveries(api, c["id"])
        assert item["state"] == "pending" and item["type"] == "alert.firing"
        assert item["last_error"] == "errcode 310000: keywords not in content", item
        assert item["last_attempt_at"].endswith("Z")
        wait_until(lambda: len(ding.messages) == 1, what="the third attempt taken")
        wait_until(lambda: deliveries(api, c["id"])[0]["state"] == "delivered", what="recorded")
        [item] = deliveries(api, c["id"])
        assert item["attempts"] == 3 and item["last_error"] is None
        # The event id is the same in every attempt.
        ids = {re.search(r"事件编号：(\S+)", Robot.text_of(e["body"])).group(1)
               for e in ding.refusals + ding.messages}
        assert len(ids) == 1
        metrics = d.request("GET", "/metrics").text
        assert 'incubatord_channel_refusals_total{channel="duty"} 2' in metrics
    finally:
        d.stop()


def test_a_robot_that_is_down_gets_every_event_afterwards(pg, db, sql, workdir, robots):
    feishu, other = robots("feishu", SECRET), robots("wecom")
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        c = channel(api, "down", "feishu", url=feishu.url, secret=SECRET, max_per_minute=100)
        channel(api, "up", "wecom", url=other.url)
        feishu.down()
        for i in range(3):
            breach(api, f"HRB-D{i}", i + 1)
        # One robot being down holds back no other.
        wait_until(lambda: len(other.messages) == 3, what="the other robot's messages")
        wait_until(lambda: all(x["attempts"] >= 3 for x in deliveries(api, c["id"])[-1:]),
                   what="attempts against the robot that is down")
        head = deliveries(api, c["id"])[-1]
        assert "connection refused" in head["last_error"], head
        time.sleep(3)  # down for a while: several backoff steps
        feishu.up()
        wait_until(lambda: len(feishu.messages) == 3, what="every event after the robot is up")
        codes = [re.search(r"HRB-D\d", m["text"]).group(0) for m in feishu.messages]
        assert codes == ["HRB-D0", "HRB-D1", "HRB-D2"]  # in outbox order
        wait_until(lambda: all(x["state"] == "delivered" for x in deliveries(api, c["id"])),
                   what="the deliveries recorded")
    finally:
        d.stop()


def test_fifty_alerts_on_a_channel_of_five_a_minute_arrive_as_digests_naming_all(
        pg, db, sql, workdir, robots):
    ding = robots("dingtalk", SECRET)
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        wait_for_startup_sweep(d)
        t = today()
        for i in range(50):
            make_incubator(api, f"HRB-{i:03d}", t - days(10))
        c = channel(api, "five", "dingtalk", url=ding.url, secret=SECRET, max_per_minute=5)
        # One sweep 40 days on: fifty stale_data alerts in one transaction
        # (one batch, not cut after the sweep's usual ten transitions).
        later = t + days(40)
        sweep(sql, later, now=datetime.datetime.now(datetime.timezone.utc), max_events=1000)
        wait_until(lambda: all(x["state"] == "delivered"
                               for x in deliveries(api, c["id"])) and ding.messages,
                   timeout=30, what="every delivery")
        items = api.get(f"/v1/channels/{c['id']}/deliveries?limit=100").json()["items"]
        assert len(items) == 50
        assert len(ding.messages) <= 5, [m["title"] for m in ding.messages]
        named = set()
        for m in ding.messages:
            named |= set(re.findall(r"HRB-\d{3}", m["text"]))
        assert named == {f"HRB-{i:03d}" for i in range(50)}
        digests = [m for m in ding.messages if m["title"].startswith("通知汇总")]
        assert digests and sum(x["digest"] for x in items) >= 46
    finally:
        d.stop()


def test_sigkill_between_commit_and_delivery_delivers_after_restart(
        pg, db, sql, workdir, robots):
    wecom = robots("wecom")
    d = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d, d.admin_token)
        c = channel(api, "duty", "wecom", url=wecom.url)
        d.kill(signal.SIGKILL)
        d.proc.wait()
        # Committed while no daemon runs: only the outbox knows of it.
        make = sql.execute("SELECT api.emit('{}'::jsonb, 'alert.firing', json_build_object("
                           "'rule', 'space_share_breach', 'severity', 'critical', "
                           "'incubator', 'HRB-K', 'value', 0.3, 'threshold', 0.5, "
                           "'started_at', '2026-11-26T08:00:00Z', 'message', ''), "
                           "'alert', 'event=alert.firing')::text").fetchone()[0]
        assert [x["state"] for x in []] == []
        d.start()
        wait_until(lambda: len(wecom.messages) == 1, what="the delivery after the restart")
        assert make in wecom.messages[0]["text"]
        assert deliveries(api, c["id"])[0]["state"] == "delivered"
    finally:
        d.stop()


def test_two_daemons_deliver_each_delivery_once(pg, db, sql, workdir, robots):
    ding = robots("dingtalk", SECRET)
    d1 = start_daemon(pg, db, workdir, robot_config())
    d2 = start_daemon(pg, db, workdir, robot_config())
    try:
        api = Api(d1, d1.admin_token)
        channel(api, "duty", "dingtalk", url=ding.url, secret=SECRET, max_per_minute=1000)
        with pg.connect(db) as c:
            for i in range(30):
                c.execute("SELECT api.emit('{}'::jsonb, 'payout_run.computed', "
                          "json_build_object('period', %s::text, 'status', 'draft', "
                          "'total_fen', 100,"
                          " 'vetoed', '[]'::json), 'notice', 'event=payout_run.computed')",
                          (f"2000-{i % 12 + 1:02d}",))
        wait_until(lambda: sql.execute("SELECT count(*) FROM deliveries "
                                       "WHERE state = 'delivered'").fetchone()[0] == 30,
                   what="thirty deliveries")
        time.sleep(0.5)
        ids = [re.search(r"事件编号：(\S+)", m["text"]).group(1) for m in ding.messages]
        singles = [i for i, m in zip(ids, ding.messages) if not m["title"].startswith("通知汇总")]
        assert len(set(singles)) == len(singles) == 30
    finally:
        d1.stop()
        d2.stop()


# ---- e-mail ----

def test_an_alert_by_mail_is_utf8_plain_and_html(pg, db, sql, workdir, mailbox):
    d = start_daemon(pg, db, workdir, robot_config(mailbox))
    try:
        api = Api(d, d.admin_token)
        channel(api, "mail", "email", to=["duty@kj.example.gov.cn", "chief@kj.example.gov.cn"])
        breach(api, "HRB-M", 1)
        wait_until(lambda: len(mailbox.messages) == 1, what="the mail")
        [m] = mailbox.messages
        msg = m["message"]
        assert m["from"] == "incubatord@kj.example.gov.cn"
        assert m["to"] == ["duty@kj.example.gov.cn", "chief@kj.example.gov.cn"]
        assert msg["Subject"] == "【严重】科技企业场地占比低于一票否决线：孵化器 HRB-M"
        assert b"=?UTF-8?B?" in m["raw"]  # RFC 2047, not raw UTF-8 in the header
        assert msg["Date"].endswith("+0800")
        assert re.fullmatch(r"<[0-9a-f-]{36}\.\d+@kj\.example\.gov\.cn>", msg["Message-ID"])
        assert msg.get_content_type() == "multipart/alternative"
        plain = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "40.00%（一票否决线 50.00%）" in plain
        assert f'<a href="{PUBLIC_URL}console/#/incubators/HRB-M">' in html
    finally:
        d.stop()
