"""An HTTP-level fuzzer against the real daemon (the ASan build under
scripts/test --sanitize): well-formed requests to every route, with a token,
mutated byte by byte, field by field and framing by framing, sent from many
connections at once. Whatever arrives:

- the daemon stays up (a /healthz between batches is answered at once, and it
  exits cleanly at the end with no sanitizer report);
- every answer is well-formed HTTP/1.x that a client can frame;
- every 4xx and 5xx is problem+json, nothing is a 500, and every answer has
  X-Request-Id and X-Content-Type-Options: nosniff.

The run is bounded: INCUBATORD_HTTP_FUZZ_REQUESTS requests (1000 unless set),
seeded by INCUBATORD_HTTP_FUZZ_SEED (printed, so that a failure can be
replayed)."""

import concurrent.futures
import glob
import os
import random
import socket
import time

import pytest

import rawhttp
from harness import create_incubator, create_token

FUZZ_DIR = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "fuzz_validate")
CONFIG = "[server]\nheader_timeout_s = 1\nbody_timeout_s = 1\nmax_body_bytes = 65536\n"

PARAMS = {"{code}": "HRB-001", "{external_id}": "T-1", "{id}": "1", "{period}": "2026-10"}

GETS = ["/healthz", "/readyz", "/metrics", "/v1/incubators", "/v1/incubators/HRB-001",
        "/v1/incubators/HRB-001/tenants?limit=2", "/v1/incubators/HRB-001/tenants/T-1",
        "/v1/incubators/HRB-001/occupancy?on=2026-11-01", "/v1/policy",
        "/v1/payout-runs", "/v1/audit?limit=5", "/v1/reports/monthly?period=2026-10",
        "/v1/alerts?rule=veto", "/v1/incubators/HRB-001/metrics?period=2026-10",
        "/v1/incubators/HRB-001/tokens", "/nowhere", "/v1/tokens/1"]

TOKENS = [b"\r\n", b"\n", b"\r", b"\x00", b" ", b"\t", b":", b"%", b"%00", b"%zz", b"?", b"&",
          b"=", b"/", b"..", b"\xff", b"\xe5\xad\xb5", b"{", b"}", b"[", b'"', b"\\u0000",
          b"1e999", b"-1", b"9223372036854775808", b"null", b"HTTP/1.0", b"HTTP/0.9",
          b"HTTP/2.0", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
          b"Content-Length: 99999999999\r\n", b"Transfer-Encoding: chunked\r\n",
          b"Transfer-Encoding: gzip\r\n", b"Expect: 100-continue\r\n", b"Expect: nothing\r\n",
          b"Connection: close\r\n", b"Connection: keep-alive\r\n", b"Host: \r\n",
          b"X-Request-Id: ../../etc\r\n", b"Idempotency-Key: \x01\r\n",
          b"Content-Type: text/plain\r\n", b"Accept: text/csv\r\n", b"0\r\n\r\n",
          b"zz\r\n", b"GET / HTTP/1.1\r\n\r\n"]
METHODS = [b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS", b"TRACE",
           b"CONNECT", b"get", b"FOO", b"G\x00T", b"", b"POST /v1/incubators"]


def seeds(admin_token, incubator_token):
    """Well-formed requests: every GET above, and every body the validator's seeds hold."""
    out = []
    for path in GETS:
        for token in (admin_token, incubator_token):
            out.append((b"GET", path.encode(), token.encode(), b""))
    for name in sorted(glob.glob(os.path.join(FUZZ_DIR, "*"))):
        with open(name, "rb") as f:
            first, _, body = f.read().partition(b"\n")
        method, _, pattern = first.decode().partition(" ")
        for k, v in PARAMS.items():
            pattern = pattern.replace(k, v)
        out.append((method.encode(), pattern.encode(), admin_token.encode(), body))
    return out


def build(method, path, token, body, headers=b"", chunked=False):
    head = (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token + b"\r\n" + headers)
    if body or method in (b"POST", b"PUT", b"PATCH"):
        head += b"Content-Type: application/json\r\n"
        if chunked:
            head += b"Transfer-Encoding: chunked\r\n"
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        else:
            head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def mutate_bytes(rng, data, rounds):
    data = bytearray(data)
    for _ in range(rounds):
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(TOKENS)
        elif op == 2 and data:
            del data[at:at + rng.randrange(1, 16)]
        elif op == 3:
            span = data[at:at + rng.randrange(1, 32)]
            data[at:at] = span * rng.randrange(1, 4)
        elif op == 4:
            data[at:at] = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 8)))
        elif op == 5 and data:
            data = data[:at]
    return bytes(data)


def fuzz_case(rng, seed_list):
    method, path, token, body = rng.choice(seed_list)
    kind = rng.randrange(8)
    if kind == 0:  # the body only: the head stays well-formed
        body = mutate_bytes(rng, body or b"{}", rng.randrange(1, 6))
        return build(method, path, token, body)
    if kind == 1:  # another method, or a wrong one
        return build(rng.choice(METHODS), path, token, body)
    if kind == 2:  # chunked
        return build(method, path, token, body, chunked=True)
    if kind == 3:  # the path and query
        return build(method, mutate_bytes(rng, path, rng.randrange(1, 4)), token, body)
    if kind == 4:  # a header flood or a huge header
        n = rng.choice([1, 50, 101, 300])
        headers = b"".join(b"X-F%d: %s\r\n" % (i, b"a" * rng.choice([1, 100, 400]))
                           for i in range(n))
        if rng.random() < 0.3:
            headers += b"X-Big: " + b"b" * rng.choice([32 * 1024, 40000]) + b"\r\n"
        return build(method, path, token, body, headers=headers)
    if kind == 5:  # two requests in one write, the second mutated (no HEAD: no body to frame)
        method = b"GET" if method == b"HEAD" else method
        return build(b"GET", b"/healthz", token, b"") + mutate_bytes(
            rng, build(method, path, token, body), rng.randrange(1, 4))
    return mutate_bytes(rng, build(method, path, token, body), rng.randrange(1, 8))


def check_answer(a, sent, head_request):
    where = f"answer {a!r} to {sent[:300]!r}"
    assert a.status != 500, where
    assert a.header("X-Content-Type-Options") == "nosniff", where
    assert a.header("X-Request-Id"), where
    if a.status >= 400 and head_request:
        assert a.header("Content-Type") == "application/problem+json", where
        assert int(a.header("Content-Length")) > 0, where
    elif a.status >= 400:
        assert rawhttp.is_problem(a), where


def run_one(port, data):
    """Sends one fuzzed input; returns the statuses of the answers it got."""
    s = rawhttp.connect(port, timeout=6)
    statuses = []
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = rawhttp.Reader(s)
        while True:
            try:
                head_request = data.startswith(b"HEAD ") and not statuses
                a = r.answer(head_request=head_request)
            except socket.timeout:
                # Keep-alive and nothing more to answer: only once something was answered,
                # or when what was sent holds no request at all.
                assert statuses or not data.strip(), f"no answer within 6 s to {data[:300]!r}"
                assert not r.buf, f"half an answer {r.buf[:200]!r} to {data[:300]!r}"
                return statuses
            if a is None:
                return statuses
            check_answer(a, data, head_request)
            statuses.append(a.status)
            r.sock.settimeout(2)
    finally:
        s.close()


@pytest.fixture
def fuzzed(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config=CONFIG)
    from harness import Api
    admin = Api(d, d.admin_token)
    create_incubator(admin)
    token = create_token(admin, "HRB-001")["token"]
    return d, seeds(d.admin_token, token)


def test_mutated_requests_get_well_formed_answers(fuzzed):
    d, seed_list = fuzzed
    n = int(os.environ.get("INCUBATORD_HTTP_FUZZ_REQUESTS", "1000"))
    seed = int(os.environ.get("INCUBATORD_HTTP_FUZZ_SEED", str(random.randrange(1 << 30))))
    print(f"HTTP fuzz: {n} requests, INCUBATORD_HTTP_FUZZ_SEED={seed}")
    rng = random.Random(seed)
    cases = [fuzz_case(rng, seed_list) for _ in range(n)]
    counts = {}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool:
        for batch in range(0, n, 250):
            futures = [pool.submit(run_one, d.port, c) for c in cases[batch:batch + 250]]
            for f in futures:
                for status in f.result():
                    counts[status] = counts.get(status, 0) + 1
            assert d.proc.poll() is None, "the daemon died:\n" + d.log()[-3000:]
            t = time.monotonic()
            assert d.request("GET", "/healthz", timeout=2).status == 200
            assert time.monotonic() - t < 2
    print(f"HTTP fuzz: {n} requests in {time.monotonic() - started:.0f} s, answers {counts}")
    assert sum(counts.values()) >= n // 2
    assert "BEV_OPT_CLOSE_ON_FREE" not in d.log()
