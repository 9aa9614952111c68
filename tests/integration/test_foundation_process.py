"""The daemon as a process and an HTTP server: SIGTERM drains in-flight
requests, SIGHUP reloads (or keeps a broken file out), the connection cap,
the per-request deadline, answers on connections that close, and /metrics.

Requests are made slow for real: the test locks the incubators table in a
transaction of its own, so the daemon's statements wait on PostgreSQL."""

import contextlib
import json
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (MAX_BODY_BYTES, Api, assert_problem, create_incubator, create_token, incubator_body,
                     wait_for)


def slow_config(**keys):
    """extra_config text: [server] and [database] keys as given."""
    server = {k: v for k, v in keys.items() if k in ("request_timeout_ms", "shutdown_timeout_ms",
                                                     "max_connections", "max_body_bytes")}
    database = {k: v for k, v in keys.items() if k not in server}
    text = "[server]\n" + "".join(f"{k} = {v}\n" for k, v in server.items())
    return text + "[database]\n" + "".join(f"{k} = {v}\n" for k, v in database.items())


def ready_with_incubator(d):
    """Registers HRB-001 and puts the admin token in the daemon's cache (its
    lookup reads the incubators table, which the tests lock)."""
    r = d.request("POST", "/v1/incubators", token=d.admin_token, json_body=incubator_body())
    assert r.status == 201, r
    d.wait_listening()
    assert d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token).status == 200
    # The jobs that run at start-up (the alert sweep reads incubators) are done:
    # with a pool of one connection, a job waiting for the test's lock would
    # hold it and keep the requests the test sends out of the database.
    d.wait_startup_jobs()


class TableLock:
    """Holds ACCESS EXCLUSIVE on incubators in a transaction of its own."""

    def __init__(self, pg, db):
        self.conn = pg.connect(db, autocommit=False)
        self.conn.execute("LOCK TABLE incubators IN ACCESS EXCLUSIVE MODE")

    def waiting(self):
        """Backends waiting for the lock. (The daemon's jobs read incubators too:
        ready_with_incubator waits until their start-up runs are over. A
        backend's query text cannot tell them apart: while a statement waits
        for a lock taken before it is reported, it shows the previous one.)"""
        with self.conn.cursor() as c:
            c.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                      "'incubators'::regclass")
            return c.fetchone()[0]

    def release(self):
        self.conn.rollback()
        self.conn.close()


@contextlib.contextmanager
def held_requests(pg, db, d, n, workers=None):
    """Sends n GETs of HRB-001 that the daemon cannot finish: the test holds a
    lock on incubators until the block ends (or calls lock.release()).
    Yields (lock, futures, pool); pool takes more work while the lock is held."""
    lock = TableLock(pg, db)
    with ThreadPoolExecutor(workers or n) as pool:
        try:
            futures = [pool.submit(d.request, "GET", "/v1/incubators/HRB-001",
                                   token=d.admin_token, timeout=30) for _ in range(n)]
            if n:
                wait_for(lambda: lock.waiting() == 1, 10, "a request to wait for the lock")
            yield lock, futures, pool
        finally:
            if not lock.conn.closed:
                lock.release()


def raw_exchange(port, request, rcvbuf=None, read_delay=0, timeout=10):
    """Sends raw bytes; reads until the server closes. Returns (head, body)."""
    with socket.socket() as s:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(request)
        time.sleep(read_delay)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


# ---- SIGTERM ----

def test_sigterm_finishes_in_flight_requests(pg, db, workdir, daemons, sql):
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=20000, shutdown_timeout_ms=20000,
                                             pool_size=1))
    ready_with_incubator(d)
    with held_requests(pg, db, d, 3, workers=4) as (lock, gets, pool):
        post = pool.submit(d.request, "POST", "/v1/incubators", token=d.admin_token,
                           json_body=incubator_body("HRB-002"), timeout=30)
        # All four are in the daemon (one on the connection, three queued).
        wait_for(lambda: d.metrics()["incubatord_http_requests_in_flight"] == 5, 10,
                 "four requests in flight")
        d.kill(signal.SIGTERM)
        d.wait_log("shutdown: SIGTERM received; finishing 4 request(s)")
        # No new connection is accepted, and the daemon waits for the four.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
        time.sleep(0.3)
        assert d.proc.poll() is None
        assert not any(f.done() for f in gets + [post])
        lock.release()
        for f in gets:
            r = f.result(30)
            assert r.status == 200, r
            assert r.json()["code"] == "HRB-001"
            assert r.header("Connection") == "close"
        r = post.result(30)
        assert r.status == 201 and r.json()["code"] == "HRB-002", r
    assert d.proc.wait(15) == 0
    assert "incubatord stopped" in d.log()
    assert sql.execute("SELECT count(*) FROM incubators WHERE code = 'HRB-002'").fetchone()[0] == 1


def test_sigterm_when_idle_exits_at_once(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir)
    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 3
    assert "shutdown: SIGTERM received; finishing 0 request(s)" in d.log()


def test_sigterm_with_idle_keep_alive_connections(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir)
    idle = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        http_get(s)
        assert read_answer(s)[0] == 200
        idle.append(s)
    # Idle keep-alive clients do not hold the daemon up, nor crash it on the way out.
    assert d.stop() == 0
    for s in idle:
        assert s.recv(1) == b""
        s.close()


def test_sigterm_gives_up_after_the_shutdown_timeout(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=20000, shutdown_timeout_ms=300,
                                             pool_size=1))
    ready_with_incubator(d)
    with held_requests(pg, db, d, 1) as (lock, (stuck,), pool):
        started = time.monotonic()
        d.kill(signal.SIGTERM)
        assert d.proc.wait(10) == 0
        assert time.monotonic() - started < 5
        assert re.search(r"shutdown: 1 request\(s\).* still [a-z ]+ after 300 ms; exiting",
                         d.log()), d.log()[-2000:]
        # The client is not left hanging: a 503, or its connection closed unanswered.
        try:
            r = stuck.result(10)
        except (ConnectionError, OSError):
            pass
        else:
            assert_problem(r, 503)


def test_second_sigterm_exits_now(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=20000, shutdown_timeout_ms=20000,
                                             pool_size=1))
    ready_with_incubator(d)
    with held_requests(pg, db, d, 1):
        d.kill(signal.SIGTERM)
        d.wait_log("shutdown: SIGTERM received")
        d.kill(signal.SIGTERM)
        assert d.proc.wait(5) == 1
        assert "second SIGTERM, exiting without waiting" in d.log()


def test_full_queue_is_refused_at_once(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=20000, pool_size=1,
                                             max_queue=1))
    ready_with_incubator(d)
    # One request on the connection, one in the queue: the queue is full.
    with held_requests(pg, db, d, 2):
        wait_for(lambda: d.metrics()["incubatord_db_queue_length"] == 1, 10, "a queued request")
        started = time.monotonic()
        r = d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token)
        assert time.monotonic() - started < 2  # not after the 20 s request timeout
        p = assert_problem(r, 503)
        assert "waiting" in p["detail"] and r.header("Retry-After")
        # What needs no database is served meanwhile.
        assert d.request("GET", "/healthz").status == 200


# ---- SIGHUP ----

def test_sighup_with_a_broken_file_keeps_the_running_configuration(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir)
    ready_with_incubator(d)
    with open(d.config_path, "a") as f:
        f.write("[server]\nmax_body_bytes = lots\n")
    line = sum(1 for _ in open(d.config_path))
    d.kill(signal.SIGHUP)
    log = d.wait_log("keeping the running configuration")
    reload_line = [x for x in log.splitlines() if "reload:" in x][-1]
    assert f"{d.config_path}:{line}:" in reload_line
    assert "[server] max_body_bytes" in reload_line and "lots" in reload_line
    # Still running, still serving, on the old settings.
    assert d.proc.poll() is None
    assert d.request("GET", "/healthz").status == 200
    assert d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token).status == 200
    r = d.request("POST", "/v1/incubators", token=d.admin_token,
                  json_body=incubator_body("HRB-002", name="x" * 100))
    assert r.status == 201, r
    # A file that does not parse at all is kept out the same way.
    with open(d.config_path, "w") as f:
        f.write("[server\n")
    d.kill(signal.SIGHUP)
    wait_for(lambda: d.log().count("keeping the running configuration") == 2, 5,
             "the second refusal")
    assert d.request("GET", "/healthz").status == 200


def test_sighup_applies_a_reloadable_change(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir)
    ready_with_incubator(d)
    body = json.dumps(incubator_body("HRB-002", name="x" * 150)).encode()
    body += b" " * (3000 - len(body))
    d.write_config("[server]\nmax_body_bytes = 2048\n")
    d.kill(signal.SIGHUP)
    d.wait_log("[server] max_body_bytes reloaded")
    d.wait_log("reload: configuration")
    p = assert_problem(d.request("POST", "/v1/incubators", token=d.admin_token, body=body), 413)
    assert "2048" in p["detail"]
    # Back up again: the same body is accepted.
    d.write_config("[server]\nmax_body_bytes = 4096\n")
    d.kill(signal.SIGHUP)
    wait_for(lambda: d.log().count("[server] max_body_bytes reloaded") == 2, 5, "the reload")
    assert d.request("POST", "/v1/incubators", token=d.admin_token, body=body).status == 201


def test_sighup_names_keys_that_need_a_restart(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir)
    old_port = d.port
    d.write_config("[server]\nlisten = 127.0.0.1:1\n[database]\npool_size = 7\n[log]\nlevel = info\n")
    d.kill(signal.SIGHUP)
    log = d.wait_log("reload: configuration")
    assert "[server] listen changed but takes effect only after a restart" in log
    assert "[database] pool_size changed but takes effect only after a restart" in log
    assert "[log] level reloaded" in log
    # Still on the old address, with the old pool.
    assert d.request("GET", "/healthz").status == 200 and d.port == old_port
    metrics = d.metrics()
    assert metrics['incubatord_db_pool_connections{state="configured"}'] == 4


# ---- connections ----

def http_get(sock, path="/healthz"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def read_answer(sock):
    """Reads one keep-alive answer (status, body) of a Content-Length response."""
    f = sock.makefile("rb")
    status = int(f.readline().split()[1])
    length = 0
    for line in iter(f.readline, b"\r\n"):
        k, v = line.decode().split(":", 1)
        if k.lower() == "content-length":
            length = int(v)
    return status, f.read(length)


def test_connection_cap(pg, db, workdir, daemons):
    d = daemons(pg, db, workdir, "[server]\nmax_connections = 2\n")
    s1 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s2 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    for s in (s1, s2):
        http_get(s)
        assert read_answer(s)[0] == 200
    # A third connection is served: the longest idle kept-alive one (s1) makes room.
    s3 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    http_get(s3)
    assert read_answer(s3)[0] == 200
    assert s1.recv(1) == b""
    http_get(s2)
    assert read_answer(s2)[0] == 200
    for s in (s1, s2, s3):
        s.close()
    assert d.metrics()['incubatord_http_connections_cut_total{reason="evicted_idle"}'] >= 1
    # Two connections inside a request (sending their bodies) cannot be pushed
    # out: a newcomer is told 503, and the next ones wait in the backlog...
    post = (b"POST /v1/incubators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{")
    b1 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    b2 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    b1.sendall(post)
    b2.sendall(post)
    time.sleep(0.3)
    s4 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    http_get(s4)
    assert read_answer(s4)[0] == 503
    d.wait_log("2 connections open (server.max_connections), each inside a request")
    s5 = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    http_get(s5)
    s5.settimeout(1.0)
    with pytest.raises(socket.timeout):
        s5.recv(1)
    # ...until one of them is done.
    b1.sendall(b"}")
    assert read_answer(b1)[0] == 401
    s5.settimeout(5)
    assert read_answer(s5)[0] == 200
    for s in (b1, b2, s4, s5):
        s.close()
    # And the daemon keeps working.
    for _ in range(5):
        assert d.request("GET", "/healthz").status == 200
    assert d.request("GET", "/v1/incubators", token=d.admin_token).status == 200


def test_http_1_0_and_connection_close_get_their_answers(daemon, admin):
    create_incubator(admin)
    head, body = raw_exchange(daemon.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert head.startswith("HTTP/1.0 200") and json.loads(body) == {"status": "ok"}
    head, body = raw_exchange(daemon.port, (
        "GET /v1/incubators/HRB-001 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {admin.token}\r\n\r\n").encode())
    assert head.startswith("HTTP/1.1 200") and json.loads(body)["code"] == "HRB-001"
    head, body = raw_exchange(daemon.port, b"GET /nope HTTP/1.0\r\n\r\n")
    assert head.startswith("HTTP/1.0 404") and json.loads(body)["status"] == 404
    head, body = raw_exchange(daemon.port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert head.startswith("HTTP/1.0 200") and b"incubatord_build_info" in body


def test_chunked_bodies_and_expect_continue(daemon, admin, sql):
    head = ("POST /v1/incubators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {admin.token}\r\n")
    body = json.dumps(incubator_body("HRB-CH")).encode()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode()
                  + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        assert read_answer(s)[0] == 201
        # Chunked past max_body_bytes: the same problem+json 413.
        big = b" " * (MAX_BODY_BYTES + 1)
        s.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode()
                  + b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
        status, answer = read_answer(s)
        assert status == 413 and json.loads(answer)["status"] == 413
    body = json.dumps(incubator_body("HRB-EX")).encode()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as s:
        s.sendall((head + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n")
                  .encode())
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 100")
        assert f.readline() == b"\r\n"
        s.sendall(body)
        assert read_answer(s)[0] == 201
    assert sql.execute("SELECT count(*) FROM incubators").fetchone()[0] == 2


def test_large_answer_to_a_slow_reader_then_close(daemon, admin, sql):
    # About 400 KB of JSON: more than the socket takes at once.
    sql.execute("INSERT INTO incubators (code, name, level, kind, opened_on) "
                "SELECT 'C-' || lpad(g::text, 4, '0'), repeat('孵', 200), 'district', "
                "'maker_space', '2024-01-01' FROM generate_series(1, 500) g")
    head, body = raw_exchange(daemon.port, (
        "GET /v1/incubators?limit=500 HTTP/1.0\r\n"
        f"Authorization: Bearer {admin.token}\r\n\r\n").encode(), rcvbuf=4096, read_delay=0.5,
        timeout=20)
    assert head.startswith("HTTP/1.0 200"), head
    page = json.loads(body)
    assert len(page["items"]) == 500 and page["items"][-1]["code"] == "C-0500"
    assert len(body) > 300000


def test_client_gone_while_its_request_waits(pg, db, workdir, daemons):
    """The answer of a request whose client left is still made once, then dropped."""
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=20000, pool_size=1))
    ready_with_incubator(d)
    lock = TableLock(pg, db)
    try:
        clients = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(f"GET /v1/incubators/HRB-001 HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {d.admin_token}\r\n\r\n".encode())
            clients.append(s)
        wait_for(lambda: lock.waiting() == 1, 10, "a request to wait")
        for s in clients:
            s.close()
        # evhttp does not read while a request is being served: the requests
        # stay in flight, to be answered (into the void) once they can be.
        time.sleep(0.3)
        assert d.metrics()["incubatord_http_requests_in_flight"] == 4
    finally:
        lock.release()
    wait_for(lambda: d.metrics()["incubatord_http_requests_in_flight"] == 1, 10,
             "the three requests to finish")
    wait_for(lambda: d.metrics()["incubatord_http_connections_open"] == 1, 10,
             "the clients' connections to be closed")
    assert d.log().count('"GET /v1/incubators/HRB-001" 200') == 4
    assert d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token).status == 200
    assert d.stop() == 0


def test_client_gone_during_a_large_answer(daemon, admin, sql):
    sql.execute("INSERT INTO incubators (code, name, level, kind, opened_on) "
                "SELECT 'C-' || lpad(g::text, 4, '0'), repeat('孵', 200), 'district', "
                "'maker_space', '2024-01-01' FROM generate_series(1, 500) g")
    for _ in range(5):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", daemon.port))
            s.sendall(f"GET /v1/incubators?limit=500 HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {admin.token}\r\n\r\n".encode())
            s.recv(100)  # the answer has started; leave in the middle of it
    wait_for(lambda: daemon.metrics()["incubatord_http_connections_open"] == 1, 10,
             "the abandoned connections to be closed")
    assert daemon.request("GET", "/v1/incubators?limit=1", token=admin.token).status == 200


# ---- the request deadline ----

def test_request_deadline_when_no_connection_is_free(pg, db, workdir, daemons, sql):
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=500, pool_size=1,
                                             statement_timeout_ms=60000))
    ready_with_incubator(d)
    cold = create_token(Api(d, d.admin_token), "HRB-001")["token"]  # never used: not cached

    def timed(method, path, token, body=None):
        started = time.monotonic()
        r = d.request(method, path, token=token, json_body=body, timeout=30)
        return r, time.monotonic() - started

    with held_requests(pg, db, d, 0, workers=5) as (lock, _, pool):
        futures = [pool.submit(timed, "GET", "/v1/incubators/HRB-001", d.admin_token)
                   for _ in range(3)]
        futures.append(pool.submit(timed, "POST", "/v1/incubators", d.admin_token,
                                   incubator_body("HRB-009")))
        futures.append(pool.submit(timed, "GET", "/v1/incubators/HRB-001", cold))
        for f in futures:
            r, took = f.result(30)
            p = assert_problem(r, 503)
            assert p["type"].endswith(":unavailable")
            assert r.header("Retry-After") and int(r.header("Retry-After")) >= 1
            # About the request timeout; never the client's own 30 s.
            assert 0.4 <= took < 3.0, took
    # Once the lock is gone the daemon serves again by itself.
    wait_for(lambda: d.request("GET", "/v1/incubators/HRB-001", token=d.admin_token).status
             == 200, 10, "the daemon to serve again")
    assert sql.execute("SELECT count(*) FROM incubators WHERE code = 'HRB-009'").fetchone()[0] \
        == 0


def test_a_write_answered_503_is_not_committed_later(pg, db, workdir, daemons, sql):
    """A write whose deadline passed while it waited in PostgreSQL was answered
    503 ("retry"): it must not be committed afterwards behind the client's back."""
    d = daemons(pg, db, workdir, slow_config(request_timeout_ms=500, pool_size=2,
                                             statement_timeout_ms=60000))
    ready_with_incubator(d)
    lock = TableLock(pg, db)
    try:
        r = d.request("POST", "/v1/incubators", token=d.admin_token,
                      json_body=incubator_body("HRB-LATE"), timeout=30)
        assert_problem(r, 503)
        # The dropped statement's backend notices that its client is gone and
        # stops waiting (without the check it waited for the lock, then committed).
        wait_for(lambda: lock.waiting() == 0, 5, "the abandoned statement to end")
    finally:
        lock.release()
    assert sql.execute("SELECT count(*) FROM incubators WHERE code = 'HRB-LATE'").fetchone()[0] \
        == 0
    assert sql.execute("SELECT count(*) FROM audit_log WHERE summary LIKE '%HRB-LATE%'")\
        .fetchone()[0] == 0


# ---- /metrics ----

def test_metrics(daemon, admin):
    daemon.wait_startup_jobs()
    create_incubator(admin)
    for _ in range(3):
        assert admin.get("/v1/incubators/HRB-001").status == 200
    assert admin.get("/v1/incubators/NOPE").status == 404
    for _ in range(2):
        assert daemon.request("GET", "/nope").status == 404
    # The new incubator's first alert is being delivered in the background:
    # its statements use a pool connection for a moment.
    daemon.wait_startup_jobs()
    r = daemon.request("GET", "/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    text = r.text
    m = daemon.metrics()
    by_route = 'incubatord_http_requests_total{route="GET /v1/incubators/{code}",status="%s"}'
    assert m[by_route % 200] == 3 and m[by_route % 404] == 1
    assert m['incubatord_http_requests_total{route="POST /v1/incubators",status="201"}'] == 1
    assert m['incubatord_http_requests_total{route="unmatched",status="404"}'] == 2
    # The latency histogram: cumulative buckets ending in +Inf = count.
    hist = "incubatord_http_request_duration_seconds"
    route = 'route="GET /v1/incubators/{code}"'
    buckets = [(k, v) for k, v in m.items() if k.startswith(f"{hist}_bucket{{{route}")]
    assert len(buckets) == 14 and buckets[-1][0].endswith('le="+Inf"}')
    values = [v for _, v in buckets]
    assert values == sorted(values) and values[-1] == 4
    assert m[f"{hist}_count{{{route}}}"] == 4 and m[f"{hist}_sum{{{route}}}"] > 0
    # The pool and the queue.
    assert m['incubatord_db_pool_connections{state="configured"}'] == 4
    assert 1 <= m['incubatord_db_pool_connections{state="connected"}'] <= 4
    assert m['incubatord_db_pool_connections{state="busy"}'] == 0
    assert m["incubatord_db_queue_length"] == 0
    assert m['incubatord_db_queries_total{outcome="submitted"}'] >= 5
    assert m["incubatord_db_listen_up"] == 1 and m["incubatord_schema_ready"] == 1
    assert m["incubatord_http_requests_in_flight"] == 1  # this one
    assert m["incubatord_http_connections_open"] >= 1
    assert m["incubatord_start_time_seconds"] <= time.time()
    # Every metric has its HELP and TYPE.
    for name in ("incubatord_http_requests_total", hist, "incubatord_db_pool_connections",
                 "incubatord_db_queue_length", "incubatord_build_info"):
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text
    assert f"# TYPE {hist} histogram" in text
