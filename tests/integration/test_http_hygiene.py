"""HTTP hygiene (API.md, version 1.1): what every answer carries, what
HEAD answers, the malformed requests that evhttp used to answer with its
own HTML page, HTTP/0.9, libevent's own messages, and who may read /metrics.
Each defect found by probing has its regression test here."""

import signal
import socket
import time

import pytest

import rawhttp
from harness import assert_problem, create_incubator, create_token


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


# ---- HEAD: the GET's headers, its Content-Length, no body ----

def head_and_get(port, path, token=None):
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    req = b"%s " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    s = rawhttp.connect(port)
    try:
        # HEAD, then GET and HEAD again on the same kept-alive connection: a body
        # sent after a HEAD would be read as the start of the next answer.
        s.sendall(req % b"HEAD" + req % b"GET" + req % b"HEAD")
        r = rawhttp.Reader(s)
        head = r.answer(head_request=True)
        get = r.answer()
        head2 = r.answer(head_request=True)
        s.settimeout(0.5)
        try:
            extra = s.recv(100)
        except socket.timeout:
            extra = b""
        assert extra == b"" and r.buf == b"", (path, r.buf, extra)
        return head, get, head2
    finally:
        s.close()


def test_head_answers_carry_the_gets_headers_and_no_body(daemon, admin):
    create_incubator(admin)
    token = create_token(admin, "HRB-001")["token"]
    cases = [("/healthz", None), ("/readyz", None), ("/metrics", None),
             ("/v1/incubators/HRB-001", daemon.admin_token), ("/v1/incubators", token),
             ("/v1/incubators/HRB-001/tenants", token), ("/v1/policy", token),
             ("/v1/incubators/HRB-001", None), ("/v1/nowhere", daemon.admin_token),
             ("/v1/incubators/HRB-002", token), ("/v1/audit?limit=0", daemon.admin_token),
             ("/v1/tokens/1", daemon.admin_token)]
    for path, tok in cases:
        head, get, head2 = head_and_get(daemon.port, path, tok)
        assert head.status == get.status == head2.status, (path, head, get)
        assert head.header("Content-Type") == get.header("Content-Type"), path
        if path == "/metrics":  # its figures move between the two
            assert int(head.header("Content-Length")) > 1000
            continue
        assert head.header("Content-Length") == str(len(get.body)), (path, head.headers)
        assert head2.header("Content-Length") == head.header("Content-Length"), path


# ---- what evhttp answered with its own HTML page, and HTTP/0.9 ----

MALFORMED = [
    ("bad-content-length", b"POST /v1/incubators HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
     400),
    ("negative-content-length", b"POST /v1/incubators HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    ("two-content-lengths", b"POST /v1/incubators HTTP/1.1\r\nContent-Length: 2\r\n"
     b"Content-Length: 3\r\n\r\nabc", 400),
    ("bogus-chunk-size", b"POST /v1/incubators HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n", 400),
    ("chunk-extension", b"POST /v1/incubators HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2;x=y\r\n{}\r\n0\r\n\r\n", 400),
    ("huge-chunk", b"POST /v1/incubators HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffff\r\n", 413),
    ("unknown-transfer-coding", b"POST /v1/incubators HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
     501),
    ("header-over-32k", b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 40000 + b"\r\n\r\n", 431),
    ("header-flood", b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
     + b"\r\n", 431),
    ("header-without-colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400),
    ("folded-header", b"GET /healthz HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n", 400),
    ("bad-request-line", b"GET\r\n\r\n", 400),
    ("bad-target", b"GET :/h HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("two-spaces", b"GET  /healthz HTTP/1.1\r\n\r\n", 400),
    ("bad-version", b"GET /healthz HTTP/1.x\r\n\r\n", 400),
    ("http-2", b"GET /healthz HTTP/2.0\r\n\r\n", 505),
    ("http-1.7", b"GET /healthz HTTP/1.7\r\n\r\n", 505),
    ("http-0.9-line", b"GET /healthz\r\n\r\n", 400),
    ("http-0.9-version", b"GET /healthz HTTP/0.9\r\n\r\n", 505),
    ("unknown-method", b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("lower-case-method", b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("expect-other", b"POST /v1/incubators HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}",
     417),
    ("body-far-too-large", b"POST /v1/incubators HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
     413),
    ("head-with-body", b"HEAD /healthz HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody", 400),
    ("nul-in-head", b"GET /healthz HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400),
]


@pytest.mark.parametrize("case,data,status", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_requests_get_problem_json(daemon, case, data, status):
    head = data.startswith(b"HEAD ")
    a, r = rawhttp.exchange(daemon.port, data, timeout=5, head_request=head)
    assert a is not None, f"{case}: no answer"
    assert a.status == status, (case, a)
    if head:  # headers only, as to any HEAD
        assert a.header("Content-Type") == "application/problem+json"
        assert int(a.header("Content-Length")) > 0
    else:
        assert rawhttp.is_problem(a), (case, a)
    assert a.raw_head.startswith(b"HTTP/1.1 "), (case, a.raw_head)
    assert a.header("Connection") == "close" and a.header("X-Content-Type-Options") == "nosniff"
    assert a.header("X-Request-Id")
    assert r.closed_soon(), case
    assert daemon.request("GET", "/healthz").status == 200


def test_pipelined_requests_and_leading_empty_lines_still_work(daemon):
    data = (b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"PUT /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            b"GET /healthz HTTP/1.0\r\n\r\n")
    s = rawhttp.connect(daemon.port)
    s.sendall(data)
    r = rawhttp.Reader(s)
    assert [r.answer().status for _ in range(3)] == [200, 405, 200]
    assert r.closed_soon()  # HTTP/1.0 without keep-alive
    s.close()


# ---- every answer ----

def test_every_answer_says_nosniff(daemon, admin):
    for r in (daemon.request("GET", "/healthz"), daemon.request("GET", "/metrics"),
              daemon.request("GET", "/v1/incubators"), admin.get("/v1/incubators"),
              admin.post("/v1/incubators", {"code": ""}), admin.get("/v1/nowhere")):
        assert r.header("X-Content-Type-Options") == "nosniff", r.headers


def test_closed_connections_leave_no_libevent_warnings(daemon):
    # Answered and closed in every way: normal, Connection: close, HTTP/1.0,
    # evhttp's errors, the client gone first.
    for _ in range(20):
        for data in (b"GET /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.0\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", b"BAD\r\n\r\n"):
            a, r = rawhttp.exchange(daemon.port, data)
            r.sock.close()
        s = rawhttp.connect(daemon.port)
        s.sendall(b"GET /readyz HTTP/1.1\r\n\r\n")
        s.close()
    assert daemon.request("GET", "/healthz").status == 200
    time.sleep(0.3)
    log = daemon.log()
    assert "BEV_OPT_CLOSE_ON_FREE" not in log
    assert "[warn]" not in log and "[err]" not in log  # libevent's own stderr format
