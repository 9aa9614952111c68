"""HTTP hygiene (API.md, version 1.1): what every answer carries, what
HEAD answers, the malformed requests that evhttp used to answer with its
own HTML page, HTTP/0.9, libevent's own messages, and who may read /metrics.
Each defect found by probing has its regression test here."""

import signal

from harness import assert_problem


def test_metrics_allow_keeps_metrics_to_listed_addresses(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config="[server]\nmetrics_allow = 10.0.0.0/8, fd00::/8")
    r = d.request("GET", "/metrics")
    assert_problem(r, 403)
    assert "metrics_allow" in r.json()["detail"]
    assert "incubatord_build_info" not in r.text
    assert d.request("GET", "/healthz").status == 200
    # Reloaded with SIGHUP: loopback may read it now.
    d.write_config("[server]\nmetrics_allow = 127.0.0.0/8, ::1")
    d.kill(signal.SIGHUP)
    d.wait_log("[server] metrics_allow reloaded")
    r = d.request("GET", "/metrics")
    assert r.status == 200
    assert "incubatord_http_requests_total" in r.text


def test_metrics_are_public_by_default(daemon):
    assert daemon.request("GET", "/metrics").status == 200
