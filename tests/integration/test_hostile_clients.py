"""Hostile clients: slow heads (slowloris), slow bodies, idle keep-alive
connections, clients that never read their answers, header floods, and
many connections from one address. Under 2,000 of them a normal client is
still served within its timeout, the daemon's memory stays bounded, and
what was cut is counted in /metrics and summed up in the log."""

import os
import selectors
import socket
import time

import rawhttp
from harness import assert_problem, wait_for

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def served(d, token=None, timeout=2.0):
    """A normal client's request: (status, seconds), or (None, seconds) when it failed."""
    started = time.monotonic()
    try:
        r = d.request("GET", "/v1/incubators" if token else "/healthz", token=token,
                      timeout=timeout)
        return r.status, time.monotonic() - started
    except OSError:
        return None, time.monotonic() - started


def test_a_head_must_arrive_within_header_timeout_however_it_trickles(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config="[server]\nheader_timeout_s = 2\n")
    s = rawhttp.connect(d.port, timeout=10)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100
    sent = rawhttp.trickle(s, head, 0.2)  # one byte every 0.2 s: the idle timer never fires
    elapsed = time.monotonic() - started
    assert sent < len(head) and 1.5 < elapsed < 4, (sent, elapsed)
    a = rawhttp.Reader(s).answer()
    assert a is None or (a.status == 408 and rawhttp.is_problem(a)), a
    s.close()
    # A connection that sends nothing at all is cut at the same deadline.
    s = rawhttp.connect(d.port, timeout=10)
    started = time.monotonic()
    a = rawhttp.Reader(s).answer()
    assert 1.5 < time.monotonic() - started < 4
    assert a is None or (a.status == 408 and rawhttp.is_problem(a)), a
    s.close()
    m = d.metrics()
    assert m['incubatord_http_connections_cut_total{reason="header_timeout"}'] >= 2
    assert d.request("GET", "/healthz").status == 200


def test_a_body_must_arrive_within_body_timeout(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config="[server]\nbody_timeout_s = 2\n")
    s = rawhttp.connect(d.port, timeout=10)
    s.sendall(b"POST /v1/incubators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Authorization: Bearer " + d.admin_token.encode() + b"\r\n"
              b"Content-Length: 1000\r\n\r\n")
    started = time.monotonic()
    sent = rawhttp.trickle(s, b"{" + b" " * 998 + b"}", 0.1)
    assert sent < 1000 and 1.5 < time.monotonic() - started < 4
    a = rawhttp.Reader(s).answer()
    assert a is None or (a.status == 408 and rawhttp.is_problem(a)), a
    s.close()
    m = d.metrics()
    assert m['incubatord_http_connections_cut_total{reason="body_timeout"}'] >= 1


def test_max_connections_per_ip(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config="[server]\nmax_connections_per_ip = 20\n")
    held = [rawhttp.connect(d.port, source="127.0.0.5") for _ in range(20)]
    # The 21st from that address is refused; another address is served.
    time.sleep(0.2)
    a, r = rawhttp.exchange(d.port, HEALTHZ, source="127.0.0.5", timeout=5)
    assert a is not None and a.status == 503 and rawhttp.is_problem(a), a
    assert r.closed_soon()
    a, _ = rawhttp.exchange(d.port, HEALTHZ, source="127.0.0.6")
    assert a.status == 200
    for s in held:
        s.close()
    # Once they are gone, the address is welcome again.
    wait_for(lambda: rawhttp.exchange(d.port, HEALTHZ, source="127.0.0.5")[0].status == 200,
             5, "the address to be let in again")
    m = d.metrics()
    assert m['incubatord_http_connections_cut_total{reason="per_ip_limit"}'] >= 1
    log = d.wait_log("max_connections_per_ip")
    assert "127.0.0.5" in log


class Crowd:
    """Hostile connections from several loopback addresses, driven by one selector."""

    def __init__(self, port, sources):
        self.port = port
        self.sources = sources
        self.sel = selectors.DefaultSelector()
        self.conns = []  # [sock, kind, bytes_to_trickle]
        self.opened = 0

    def open(self, kind, n, first=b"", trickle=b""):
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            if kind == "never_reads":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind((self.sources[self.opened % len(self.sources)], 0))
            self.opened += 1
            try:
                s.connect((("127.0.0.1"), self.port))
            except BlockingIOError:
                pass
            self.conns.append([s, kind, first, trickle])

    def step(self):
        """Sends each connection's next bytes: its first request at once, then one byte."""
        alive = 0
        for c in self.conns:
            s, kind, first, trickle = c
            if s is None:
                continue
            try:
                if first:
                    n = s.send(first)
                    c[2] = first[n:]
                elif trickle:
                    s.send(trickle[:1])
                    c[3] = trickle[1:]
                if kind == "idle":
                    try:
                        s.recv(65536)
                    except BlockingIOError:
                        pass
                alive += 1
            except (BlockingIOError, InterruptedError):
                alive += 1
            except OSError:
                s.close()
                c[0] = None
        return alive

    def reopen_closed(self):
        """A persistent attacker reconnects what the daemon cut."""
        dead = [c for c in self.conns if c[0] is None]
        self.conns = [c for c in self.conns if c[0] is not None]
        for kind in ("slowloris", "idle", "never_reads", "flood"):
            n = sum(1 for c in dead if c[1] == kind)
            if n:
                self.open(kind, n, *PLAN[kind][1:])
        return len(dead)

    def close(self):
        for c in self.conns:
            if c[0] is not None:
                c[0].close()


FLOOD = (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"f" * 300)
                                                for i in range(99)))
PLAN = {
    # kind: (count, first bytes, bytes trickled one per step)
    "slowloris": (1000, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-a: b\r\n" * 400),
    "idle": (400, HEALTHZ, b""),
    "never_reads": (300, b"".join([b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"] * 50), b""),
    "flood": (300, FLOOD, FLOOD * 4),
}


def test_a_normal_client_is_served_under_2000_hostile_connections(daemons, pg, db, workdir):
    d = daemons(pg, db, workdir, extra_config="[server]\nheader_timeout_s = 5\n")
    sources = [f"127.0.0.{i}" for i in range(2, 12)]  # 10 addresses, 200 each
    crowd = Crowd(d.port, sources)
    rss_before = rss_kib(d.proc.pid)
    for kind, (n, first, trickle) in PLAN.items():
        crowd.open(kind, n, first, trickle)
    assert crowd.opened == 2000
    latencies, failures, rss_peak, reconnected = [], [], 0, 0
    started = time.monotonic()
    while time.monotonic() - started < 20:
        crowd.step()
        reconnected += crowd.reopen_closed()
        for token in (None, d.admin_token):
            status, seconds = served(d, token)
            latencies.append(seconds)
            if status != 200:
                failures.append((round(time.monotonic() - started, 1), status, seconds))
        rss_peak = max(rss_peak, rss_kib(d.proc.pid))
        time.sleep(0.3)
    assert d.metrics()["incubatord_http_connections_open"] <= 1024
    crowd.close()
    latencies.sort()
    print(f"hostile: {len(latencies)} normal requests, max {latencies[-1] * 1000:.0f} ms, "
          f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, failures {failures}, "
          f"RSS {rss_before // 1024} -> peak {rss_peak // 1024} MiB, "
          f"{reconnected} hostile connections cut and reopened")
    assert not failures
    assert latencies[-1] < 2.0
    assert rss_peak - rss_before < 200 * 1024, "memory grew by more than 200 MiB"
    m = d.metrics()
    cut = {k: v for k, v in m.items() if k.startswith("incubatord_http_connections_cut_total")}
    assert sum(cut.values()) >= 1000, cut
    assert "connections cut" in d.log()
    assert "BEV_OPT_CLOSE_ON_FREE" not in d.log()
    # Afterwards everything is back to normal.
    wait_for(lambda: d.metrics()["incubatord_http_connections_open"] <= 2, 15,
             "the hostile connections to be gone")
    assert_problem(d.request("GET", "/v1/nowhere", token=d.admin_token), 404)
