"""Rate limits (API.md 1.1): each token may make [server]
rate_limit_per_minute requests a minute with bursts of rate_limit_burst, per
daemon (a token bucket); beyond it 429 rate-limited with Retry-After (whole
seconds, at least 1), counted in /metrics by token name; /healthz, /readyz,
/metrics and /console/ are never limited; SIGHUP changes the limits."""

import signal
import time

from conftest import start_daemon
from harness import Api, assert_problem, wait_for
from ingestlib import register

LIMITED = "[server]\nrate_limit_per_minute = 60\nrate_limit_burst = 5"


def limited_metric(d, token, incubator="HRB-001"):
    return d.metrics().get(
        'incubatord_rate_limited_total{token="%s",incubator="%s"}' % (token, incubator), 0)


def test_burst_then_refill(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, LIMITED)
    try:
        admin = Api(d, d.admin_token)
        hrb = register(admin)  # two requests of the admin's five
        d.wait_startup_jobs()
        # The burst: five at once, then 429 until the bucket refills.
        start = time.monotonic()
        ok = 0
        while (r := hrb.get("/v1/incubators/HRB-001")).status == 200 and ok < 50:
            ok += 1
        # Five at once, and one more for each second the five took (a busy machine).
        assert 5 <= ok <= 5 + int(time.monotonic() - start) + 1, ok
        p = assert_problem(r, 429)
        assert p["type"] == "urn:incubatord:problem:rate-limited"
        assert r.header("Retry-After") == "1"
        assert "60 requests a minute" in p["detail"]
        # Writes are limited alike, and nothing is written.
        audits = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        assert_problem(hrb.put("/v1/incubators/HRB-001/tenants/T-1", {}), 429)
        assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audits
        assert limited_metric(d, "erp-sync") == 2
        # Another token has a bucket of its own.
        assert admin.get("/v1/incubators").status == 200
        # One request a second comes back: one, not two.
        time.sleep(1.05)
        assert hrb.get("/v1/incubators/HRB-001").status == 200
        assert_problem(hrb.get("/v1/incubators/HRB-001"), 429)
        assert limited_metric(d, "erp-sync") == 3
        # Health, readiness, metrics and the console's page are never limited.
        for _ in range(20):
            for path in ("/healthz", "/readyz", "/metrics", "/console/"):
                assert d.request("GET", path).status == 200, path
        lines = [line for line in d.request("GET", "/metrics").text.splitlines()
                 if "incubatord_rate_limited_total" in line]
        assert "# TYPE incubatord_rate_limited_total counter" in lines
    finally:
        assert d.stop() == 0


def test_retry_after_follows_the_rate(pg, db, workdir):
    d = start_daemon(pg, db, workdir, "[server]\nrate_limit_per_minute = 6\nrate_limit_burst = 1")
    try:
        admin = Api(d, d.admin_token)
        assert admin.get("/v1/incubators").status == 200
        r = admin.get("/v1/incubators")
        assert_problem(r, 429)
        # One request every 10 s: the next is 9 or 10 s away.
        assert int(r.header("Retry-After")) in (9, 10)
        assert limited_metric(d, "test-admin", "") == 1
    finally:
        assert d.stop() == 0


def test_limits_reload_on_sighup(pg, db, workdir):
    d = start_daemon(pg, db, workdir, "[server]\nrate_limit_per_minute = 60\nrate_limit_burst = 2")
    try:
        admin = Api(d, d.admin_token)
        for _ in range(2):
            assert admin.get("/v1/incubators").status == 200
        assert_problem(admin.get("/v1/incubators"), 429)
        # 6000 a minute: one request every 10 ms.
        d.write_config("[server]\nrate_limit_per_minute = 6000\nrate_limit_burst = 3")
        d.kill(signal.SIGHUP)
        d.wait_log("rate_limit_per_minute")
        time.sleep(0.1)
        statuses = [admin.get("/v1/incubators").status for _ in range(3)]
        assert statuses == [200, 200, 200], statuses
        # No limit at all.
        d.write_config("[server]\nrate_limit_per_minute = 0")
        d.kill(signal.SIGHUP)
        wait_for(lambda: d.log().count("rate_limit_per_minute") >= 2, what="the second reload")
        assert all(admin.get("/v1/incubators").status == 200 for _ in range(150))
    finally:
        assert d.stop() == 0


def test_a_burst_of_100_at_600_a_minute(pg, db, workdir):
    d = start_daemon(pg, db, workdir, "[server]\nrate_limit_per_minute = 600\n"
                                      "rate_limit_burst = 100")
    try:
        admin = Api(d, d.admin_token)
        start = time.monotonic()
        ok = 0
        while True:
            r = admin.get("/v1/policy")
            if r.status != 200:
                break
            ok += 1
            assert ok <= 1000, "never limited"
        elapsed = time.monotonic() - start
        assert_problem(r, 429)
        assert r.header("Retry-After") == "1"
        # The burst, and one more for every 100 ms the burst took to send.
        assert 100 <= ok <= 100 + int(elapsed * 10) + 1, (ok, elapsed)
    finally:
        assert d.stop() == 0


def test_the_defaults_are_600_a_minute_and_bursts_of_100(workdir):
    import os
    from harness import run_cli
    path = os.path.join(workdir, "plain.conf")
    with open(path, "w") as f:
        f.write("[log]\nsyslog = false\n")
    out = run_cli(path, "check-config", "--print").stdout
    assert "rate_limit_per_minute = 600\n" in out and "rate_limit_burst = 100\n" in out
