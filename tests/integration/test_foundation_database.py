"""PostgreSQL going away and coming back under a running daemon (503 with
Retry-After, /healthz and /metrics still served, recovery without a restart),
and a daemon started before its database. Each test has a cluster of its own."""

import time

from harness import Daemon, assert_problem, incubator_body, run_cli, wait_for

REQUEST_TIMEOUT_S = 2.0


def start_on(cluster, workdir, wait_ready=True):
    d = Daemon(workdir, cluster.conninfo(cluster.dbname),
               extra_config=f"[server]\nrequest_timeout_ms = {int(REQUEST_TIMEOUT_S * 1000)}\n")
    d.admin_token = run_cli(d.config_path, "token", "create", "--admin", "a").stdout.strip() \
        if wait_ready else None
    d.start(wait_ready=wait_ready)
    return d


def assert_unavailable(r):
    p = assert_problem(r, 503)
    assert p["type"] == "urn:incubatord:problem:unavailable"
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, r.headers
    return p


def timed(call):
    started = time.monotonic()
    r = call()
    return r, time.monotonic() - started


def test_database_stops_and_comes_back(private_pg, workdir):
    d = start_on(private_pg, workdir)
    try:
        r = d.request("POST", "/v1/incubators", token=d.admin_token, json_body=incubator_body())
        assert r.status == 201, r
        d.wait_listening()
        assert d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token).status == 200
        pid = d.proc.pid

        private_pg.stop()
        # /readyz says so at once; the API answers 503 within the request timeout,
        # with a token the daemon has cached and with one it has never seen.
        wait_for(lambda: d.request("GET", "/readyz").status == 503, REQUEST_TIMEOUT_S + 3,
                 "/readyz to say 503")
        assert_problem(d.request("GET", "/readyz"), 503)
        for call in (lambda: d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token),
                     lambda: d.request("GET", "/v1/incubators", token=d.admin_token),
                     lambda: d.request("POST", "/v1/incubators", token=d.admin_token,
                                       json_body=incubator_body("HRB-002")),
                     lambda: d.request("GET", "/v1/incubators", token="ikd_" + "B" * 43)):
            r, took = timed(call)
            assert_unavailable(r)
            assert took < REQUEST_TIMEOUT_S + 1, took
        # What does not need the database goes on.
        assert d.request("GET", "/healthz").status == 200
        metrics = d.metrics()
        assert metrics['incubatord_db_pool_connections{state="connected"}'] == 0
        assert metrics["incubatord_db_listen_up"] == 0
        assert d.request("GET", "/nope").status == 404
        assert_problem(d.request("GET", "/v1/incubators"), 401)  # no token: no database needed
        assert d.proc.poll() is None

        private_pg.start()
        started = time.monotonic()
        wait_for(lambda: d.request("GET", "/readyz").status == 200, 5,
                 "/readyz 200 within 5 s of the database's return")
        assert time.monotonic() - started < 5
        r = d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token)
        assert r.status == 200 and r.json()["code"] == "HRB-001"
        r = d.request("POST", "/v1/incubators", token=d.admin_token,
                      json_body=incubator_body("HRB-002"))
        assert r.status == 201, r
        # The same process all along, and it says what happened.
        assert d.proc.pid == pid and d.proc.poll() is None
        log = d.log()
        assert "db: connection lost" in log or "db: cannot connect" in log
        assert "db: connected to PostgreSQL" in log.rsplit("connection lost", 1)[-1]
        # The LISTEN connection is back too: revocations are heard again.
        d.wait_listening()
    finally:
        assert d.stop() == 0


def test_daemon_starts_before_its_database(private_pg, workdir):
    private_pg.stop()
    d = Daemon(workdir, private_pg.conninfo(private_pg.dbname))
    try:
        d.start(wait_ready=False)  # listening, healthy, not ready
        assert d.request("GET", "/healthz").status == 200
        assert_problem(d.request("GET", "/readyz"), 503)
        r, took = timed(lambda: d.request("GET", "/v1/incubators", token="ikd_" + "C" * 43))
        assert_unavailable(r)
        assert took < 6
        private_pg.start()
        wait_for(lambda: d.request("GET", "/readyz").status == 200, 5, "/readyz 200")
        token = run_cli(d.config_path, "token", "create", "--admin", "late").stdout.strip()
        assert d.request("GET", "/v1/incubators", token=token).status == 200
    finally:
        assert d.stop() == 0


def test_cli_with_the_database_down(private_pg, workdir):
    private_pg.stop()
    cfg = f"{workdir}/down.conf"
    with open(cfg, "w") as f:
        f.write(f"[database]\nconninfo = {private_pg.conninfo(private_pg.dbname)}\n"
                "[log]\nsyslog = false\n")
    for args in (("migrate",), ("token", "create", "--admin", "x"), ("token", "revoke", "1")):
        started = time.monotonic()
        p = run_cli(cfg, *args, check=False, timeout=30)
        assert p.returncode == 1, (args, p)
        assert p.stdout == ""
        assert "unavailable" in p.stderr or "connect" in p.stderr, p.stderr
        assert time.monotonic() - started < 15
