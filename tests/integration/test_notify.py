"""Delivery of the outbox: retries with the same event id, crashes, several
daemons on one database, giving up, draining, https, metrics, and events that
are not alerts. Retry delays are scaled down by configuration
(webhook.retry_initial_ms = 100, retry_max_ms = 400) so each test runs in
seconds.
"""

import collections
import datetime
import json
import os
import re
import signal
import ssl
import subprocess
import time

import pytest

from alerting import (SECRET, Listener, Receiver, days, log_events, make_incubator, outbox,
                      put_tenant, settle, snapshot, today, undelivered, uscc, verify_signature,
                      wait_until, webhook_config)
from conftest import start_daemon
from harness import Api


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def breach(api, code, n):
    """An incubator whose share falls to 0.40 today: one alert.firing event."""
    t = today()
    make_incubator(api, code, t - days(10))
    put_tenant(api, code, "T-1", uscc(n), t - days(300), tech_on=t - days(200))
    snapshot(api, code, t, {"T-1": 4000})


# A column of the only delivery of the configuration's webhook.
WEBHOOK_DELIVERY = ("SELECT d.{} FROM deliveries d JOIN channels c ON c.id = d.channel_id "
                    "WHERE c.from_config")


def request_id_of(req):
    return req["headers"]["X-Incubatord-Event-Id"]


def metric(daemon, name, labels=""):
    text = daemon.request("GET", "/metrics").text
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_a_receiver_failing_three_times_gets_the_event_four_times_with_one_id(
        pg, db, sql, workdir, receiver):
    receiver.statuses = [500, 500, 500]
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    try:
        breach(Api(d, d.admin_token), "HRB-R", 1)
        settle(sql)
        reqs = receiver.requests
        assert len(reqs) == 4
        [event] = outbox(sql)
        assert event["webhook"] == "delivered" and event["attempts"] == 4
        assert {request_id_of(r) for r in reqs} == {event["id"]}
        assert {r["body"] for r in reqs} == {reqs[0]["body"]}
        assert json.loads(reqs[0]["body"])["id"] == event["id"]
        stamps = [verify_signature(r) for r in reqs]
        assert stamps == sorted(stamps)
        # Backoff with jitter: at least half of 100, 200, 400 ms between attempts.
        gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
        assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195, gaps
        log = d.log()
        assert len(re.findall(rf"webhook: event {event['id']} attempt \d failed: HTTP 500", log)) == 3
        assert f"webhook: event {event['id']} delivered: HTTP 200" in log
        # A wrong secret would not verify.
        with pytest.raises(AssertionError):
            verify_signature(reqs[0], secret=SECRET + "x")
    finally:
        d.stop()


def run_snapshot_in_sql(sql, code, as_of, areas):
    """A snapshot committed through api.run, the entry point the daemon calls."""
    ctx = {"request_id": "sql", "method": "PUT", "path": f"/v1/incubators/{code}/occupancy",
           "today": str(today()), "token_name": "test", "admin": True,
           "now": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    args = {"code": code, "as_of": str(as_of), "public_service_area_m2": "0.00",
            "tenants": [{"external_id": k, "area_m2": f"{v:.2f}"} for k, v in areas.items()]}
    status = sql.execute("SELECT status FROM api.run('occupancy_put', %s::jsonb, %s::jsonb)",
                         (json.dumps(ctx), json.dumps(args))).fetchone()[0]
    assert status == 200


def test_an_event_committed_while_the_daemon_dies_is_delivered_after_restart(
        pg, db, sql, workdir, receiver):
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    listener = Listener(pg, db)
    try:
        api = Api(d, d.admin_token)
        t = today()
        make_incubator(api, "HRB-K", t - days(10))
        put_tenant(api, "HRB-K", "T-1", uscc(2), t - days(300), tech_on=t - days(200))
        settle(sql)
        assert outbox(sql) == []

        # Committed while the daemon cannot run, then the daemon is killed.
        d.kill(signal.SIGSTOP)
        run_snapshot_in_sql(sql, "HRB-K", t, {"T-1": 4000})
        d.kill(signal.SIGKILL)
        d.proc.wait()
        [event] = outbox(sql)
        assert undelivered(sql) == 1 and receiver.requests == []
        assert event["id"] not in d.log()

        d.start()
        settle(sql)
        assert [request_id_of(r) for r in receiver.requests] == [event["id"]]
        assert [e["event_id"] for e in log_events(d)] == [event["id"]]
        wait_until(lambda: listener.poll(), what="the NOTIFY")
        assert listener.poll() == [event["id"]]
    finally:
        listener.close()
        d.stop()


def test_a_delivery_cut_by_sigkill_is_sent_again_after_the_lease(pg, db, sql, workdir, receiver):
    receiver.hang()
    d = start_daemon(pg, db, workdir, webhook_config(receiver, timeout_ms=1000))
    try:
        breach(Api(d, d.admin_token), "HRB-L", 3)
        assert receiver.arrived.wait(10)
        d.kill(signal.SIGKILL)  # the POST is in flight, its outcome never recorded
        d.proc.wait()
        receiver.unhang()
        [event] = outbox(sql)
        assert event["webhook"] == "pending" and event["attempts"] == 0
        claimed = sql.execute("SELECT claimed_until > now() FROM channels "
                              "WHERE from_config").fetchone()[0]
        assert claimed

        d.start()
        # The lease (twice the attempt's limit plus 5 s) runs out first; a
        # loaded machine may take a while more to start and claim again.
        settle(sql, timeout=45)
        reqs = receiver.requests
        assert [request_id_of(r) for r in reqs] == [event["id"], event["id"]]
        for r in reqs:
            verify_signature(r)
        assert outbox(sql)[0]["webhook"] == "delivered"
    finally:
        d.stop()


def test_an_expired_claim_of_a_dead_daemon_is_delivered(sql, pg, db, workdir, receiver):
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    try:
        with pg.connect(db) as c, c.transaction():
            c.execute("SELECT api.emit('{}'::jsonb, 'test.claimed', '{\"n\": 1}'::json, 'info', "
                      "'event=test.claimed')")
            c.execute("UPDATE outbox SET local_claimed_by = 'dead:1:0', "
                      "local_claimed_until = now() + interval '2 seconds'")
            c.execute("UPDATE channels SET claimed_by = 'dead:1:0', "
                      "claimed_until = now() + interval '2 seconds' WHERE from_config")
        time.sleep(1)
        assert undelivered(sql) == 1 and receiver.requests == []
        settle(sql, timeout=15)
        assert len(receiver.requests) == 1
        assert [e["event"] for e in log_events(d)] == ["test.claimed"]
    finally:
        d.stop()


def test_two_daemons_on_one_database_deliver_each_event_once(pg, db, sql, workdir, receiver):
    d1 = start_daemon(pg, db, workdir, webhook_config(receiver))
    d2 = start_daemon(pg, db, workdir, webhook_config(receiver))
    listener = Listener(pg, db)
    try:
        apis = [Api(d1, d1.admin_token), Api(d2, d2.admin_token)]
        for i in range(8):
            breach(apis[i % 2], f"HRB-{i}", 100 + i)
        for i in range(0, 8, 2):
            snapshot(apis[(i + 1) % 2], f"HRB-{i}", today(), {"T-1": 7000})  # replaces today's
        # And a burst written in one transaction, which both daemons hear of at once.
        sql.execute("SELECT api.emit('{}'::jsonb, 'test.burst', json_build_object('n', g), "
                    "'info', 'event=test.burst n=' || g) FROM generate_series(1, 150) g")
        settle(sql, timeout=60)
        ids = [e["id"] for e in outbox(sql)]
        assert len(ids) == 8 + 4 + 150 == len(set(ids))

        hooks = collections.Counter(request_id_of(r) for r in receiver.requests)
        assert set(hooks) == set(ids) and set(hooks.values()) == {1}
        lines = log_events(d1) + log_events(d2)
        logged = collections.Counter(e["event_id"] for e in lines)
        assert set(logged) == set(ids) and set(logged.values()) == {1}
        wait_until(lambda: len(listener.poll()) >= len(ids), what="every NOTIFY")
        time.sleep(0.2)
        notified = collections.Counter(listener.poll())
        assert set(notified) == set(ids) and set(notified.values()) == {1}
        # The webhook saw the events in outbox order.
        assert [request_id_of(r) for r in receiver.requests] == ids
        print(f"\nsyslog lines: daemon 1 {len(log_events(d1))}, daemon 2 {len(log_events(d2))}")
    finally:
        listener.close()
        d1.stop()
        d2.stop()


def test_a_webhook_failing_past_the_retry_window_is_given_up_and_logged(
        pg, db, sql, workdir, receiver):
    receiver.default = 503
    d = start_daemon(pg, db, workdir, webhook_config(receiver, retry_for_s=2))
    try:
        breach(Api(d, d.admin_token), "HRB-G", 4)
        settle(sql, timeout=20)
        [event] = outbox(sql)
        assert event["webhook"] == "failed" and event["attempts"] >= 3
        assert len(receiver.requests) == event["attempts"]
        error = sql.execute(WEBHOOK_DELIVERY.format("last_error")).fetchone()[0]
        assert error.startswith("HTTP 503")
        assert re.search(rf"err: webhook: event {event['id']} given up after "
                         rf"{event['attempts']} attempts", d.log())
        # Given up: no more attempts.
        time.sleep(1)
        assert len(receiver.requests) == event["attempts"]
        wait_until(lambda: metric(d, "incubatord_outbox_failed", '{channel="webhook"}') == 1,
                   what="the failed gauge")
        assert metric(d, "incubatord_webhook_deliveries_total",
                      '{outcome="failed"}') == event["attempts"]
    finally:
        d.stop()


def test_metrics_show_open_alerts_by_rule_and_the_backlog(pg, db, sql, workdir, receiver):
    receiver.default = 500
    d = start_daemon(pg, db, workdir, webhook_config(receiver, retry_initial_ms=60000))
    try:
        api = Api(d, d.admin_token)
        # HRB-N opened 40 days ago and was registered before the registration
        # day was recorded, so stale_data counts from its opening.
        make_incubator(api, "HRB-N", today() - days(40))
        sql.execute("UPDATE incubators SET registered_on = NULL WHERE code = 'HRB-N'")
        breach(api, "HRB-M", 5)
        # Any change that evaluates HRB-N finds it stale.
        r = api.patch("/v1/incubators/HRB-N", {"disposable_area_m2": 10000,
                                               "effective_on": str(today())})
        assert r.status == 200, r
        wait_until(lambda: len(receiver.requests) >= 1, what="a first attempt")
        wait_until(lambda: metric(d, "incubatord_outbox_undelivered", '{channel="webhook"}') == 2,
                   what="the backlog gauge")
        assert metric(d, "incubatord_alerts_open", '{rule="space_share_breach"}') == 1
        assert metric(d, "incubatord_alerts_open", '{rule="stale_data"}') == 1
        assert metric(d, "incubatord_alerts_open", '{rule="overdue_tenant"}') == 0
        # syslog and NOTIFY are delivered by their own claims, which a busy
        # machine may run after the webhook's first attempt.
        wait_until(lambda: metric(d, "incubatord_outbox_undelivered", '{channel="syslog"}') == 0,
                   what="syslog's backlog to empty")
        wait_until(lambda: metric(d, "incubatord_outbox_undelivered", '{channel="notify"}') == 0,
                   what="NOTIFY's backlog to empty")
        assert metric(d, "incubatord_webhook_deliveries_total", '{outcome="failed"}') == 1
        assert metric(d, "incubatord_notifications_total", '{channel="syslog"}') == 2
        assert metric(d, "incubatord_outbox_oldest_undelivered_seconds") >= 0
        wait_until(lambda: metric(d, "incubatord_job_last_success", '{job="alert_sweep"}') == 1,
                   what="the first sweep's gauge")
    finally:
        d.stop()


def test_without_a_webhook_syslog_and_notify_are_delivered(pg, db, sql, daemon):
    listener = Listener(pg, db)
    breach(Api(daemon, daemon.admin_token), "HRB-W", 6)
    settle(sql)
    [event] = outbox(sql)
    assert event["webhook"] == "none"
    assert [e["event_id"] for e in log_events(daemon)] == [event["id"]]
    wait_until(lambda: listener.poll(), what="the NOTIFY")
    assert listener.poll() == [event["id"]]
    listener.close()


def test_any_module_can_emit_an_event_through_the_outbox(pg, db, sql, workdir, receiver):
    d = start_daemon(pg, db, workdir, webhook_config(receiver))
    try:
        data = {"period": "2026-10", "status": "draft", "total_fen": 14000000,
                "vetoed": ["HRB-009"]}
        ctx = {"now": "2026-11-01T02:00:05Z"}
        event_id = sql.execute(
            "SELECT api.emit(%s::jsonb, 'payout_run.computed', %s::json, 'notice', "
            "'event=payout_run.computed period=2026-10 total_fen=14000000')::text",
            (json.dumps(ctx), json.dumps(data))).fetchone()[0]
        settle(sql)
        [req] = receiver.requests
        verify_signature(req)
        assert json.loads(req["body"]) == {"id": event_id, "type": "payout_run.computed",
                                           "occurred_at": "2026-11-01T02:00:05Z", "data": data}
        [line] = log_events(d)
        assert line == {"event": "payout_run.computed", "period": "2026-10",
                        "total_fen": "14000000", "event_id": event_id, "level": "notice"}
    finally:
        d.stop()


def test_sigterm_waits_for_a_delivery_in_flight(pg, db, sql, workdir, receiver):
    receiver.hang()
    d = start_daemon(pg, db, workdir, webhook_config(receiver, timeout_ms=8000))
    breach(Api(d, d.admin_token), "HRB-D", 7)
    assert receiver.arrived.wait(10)
    d.kill(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None  # still draining
    receiver.unhang()
    assert d.proc.wait(5) == 0
    d.log_file.close()
    [event] = outbox(sql)
    assert event["webhook"] == "delivered" and event["attempts"] == 1
    assert f"webhook: event {event['id']} delivered" in d.log()


def make_certificates(directory):
    """A CA, a server certificate for localhost signed by it, and one for another name."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=directory, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=incubatord test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")
    for name, san in (("good", "DNS:localhost"), ("bad", "DNS:elsewhere.example")):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")


def tls_context(directory, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(directory, f"{name}.pem"),
                        os.path.join(directory, f"{name}.key"))
    return ctx


def first_failure(sql):
    """The last error of the only webhook delivery, once an attempt failed."""
    wait_until(lambda: sql.execute(WEBHOOK_DELIVERY.format("attempts")).fetchone()[0] >= 1,
               what="a failed attempt")
    return sql.execute(WEBHOOK_DELIVERY.format("last_error")).fetchone()[0]


def test_https_webhook_verifies_the_certificate_and_the_host_name(pg, db, sql, workdir):
    make_certificates(workdir)
    good = Receiver(tls=tls_context(workdir, "good"))
    bad = Receiver(tls=tls_context(workdir, "bad"))
    ca = os.path.join(workdir, "ca.pem")
    d = start_daemon(pg, db, workdir, webhook_config(bad, ca_file=ca, retry_initial_ms=300))
    try:
        breach(Api(d, d.admin_token), "HRB-T", 8)
        error = first_failure(sql)
        assert "certificate" in error and "host name" in error, error
        assert bad.requests == []

        # The right receiver, by a reload: delivered over TLS, verified against ca_file.
        d.write_config(webhook_config(good, ca_file=ca, retry_initial_ms=300))
        d.kill(signal.SIGHUP)
        settle(sql, timeout=15)
        [req] = good.requests
        verify_signature(req)
        assert req["headers"]["Host"] == f"localhost:{good.port}"
        assert outbox(sql)[0]["webhook"] == "delivered"
    finally:
        d.stop()
        good.stop()
        bad.stop()


def test_https_without_the_ca_is_refused(pg, db, sql, workdir):
    make_certificates(workdir)
    good = Receiver(tls=tls_context(workdir, "good"))
    d = start_daemon(pg, db, workdir, webhook_config(good, retry_initial_ms=60000))
    try:
        breach(Api(d, d.admin_token), "HRB-U", 9)
        error = first_failure(sql)
        assert "certificate" in error, error
        assert good.requests == []
    finally:
        d.stop()
        good.stop()
