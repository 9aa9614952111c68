#!/usr/bin/python3
"""How fast do notifications reach people, against PostgreSQL's own limit?

1. Deliveries per second to a local robot (a WeCom-style robot answering
   {"errcode": 0}, an asyncio server on loopback) with 1, 10 and 100
   channels: EVENTS events are written in one transaction, each with a
   delivery per channel; the time from the commit to the last delivery
   recorded gives deliveries/s. Each channel sends one message at a time (in
   outbox order), so one channel measures the round trip claim -> HTTP ->
   record, and many channels the daemon's parallelism (32 channels at once).
   PostgreSQL's limit for the same bookkeeping, in the same run: pgbench
   claiming and recording one message of one channel per transaction
   (api.outbox_claim_channels then api.outbox_channel_done, in one
   statement, no HTTP) on a copy of the same data, 8 clients. Ratio: daemon
   deliveries/s over pgbench's messages/s (targets: 100 channels >= 0.5, one
   channel >= 0.2: one channel waits for its round trip by design).
2. Commit-to-delivery latency under the ingest benchmark's load: while wrk
   pushes occupancy snapshots (bench_ingest's workload, 16 connections), an
   event is committed every 100 ms to one robot channel; the time from each
   commit to the robot receiving it, p50 and p99 (target p99 < 1 s).

Run it with `ctest -C bench -L bench --output-on-failure` in the build
directory, or directly with INCUBATORD_BIN set. Environment: BENCH_EVENTS
(2000), BENCH_SECONDS (15), BENCH_STRICT (unset; 1: exit 1 when a target is
missed).
"""

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402
import bench_ingest  # noqa: E402
from benchlib import machine  # noqa: E402
from harness import PG_BIN, Daemon, PgCluster, run_cli  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
STRICT = os.environ.get("BENCH_STRICT") == "1"
CHANNEL_COUNTS = (1, 10, 100)
RATIO_TARGETS = {1: 0.2, 10: 0.4, 100: 0.5}
P99_TARGET_MS = 1000.0
PGBENCH_CLIENTS = 8

PGBENCH_SCRIPT = """\
SELECT api.outbox_channel_done('pgbench', c.channel_id,
           ARRAY(SELECT (i->>'id')::bigint FROM json_array_elements(c.items) i),
           true, true, NULL, 100, 86400)
  FROM api.outbox_claim_channels('pgbench', 60000, 1, 200, 60000) c
 WHERE c.channel_id IS NOT NULL;
"""

EVENT_ID = re.compile(rb"\\u4e8b\\u4ef6\\u7f16\\u53f7\\uff1a([0-9a-f-]{36})|"
                      rb"\xe4\xba\x8b\xe4\xbb\xb6\xe7\xbc\x96\xe5\x8f\xb7\xef\xbc\x9a([0-9a-f-]{36})")


class FastRobot:
    """A robot on loopback that takes every message: an asyncio HTTP/1.1
    server in a thread, answering {"errcode":0,"errmsg":"ok"}; it notes when
    each event id arrived."""

    def __init__(self):
        self.arrived = {}
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        robot = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                self.t, self.buf = transport, b""

            def data_received(self, data):
                self.buf += data
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                m = re.search(rb"(?i)content-length:\s*(\d+)", self.buf[:head_end])
                length = int(m.group(1)) if m else 0
                if len(self.buf) < head_end + 4 + length:
                    return
                body = self.buf[head_end + 4:head_end + 4 + length]
                now = time.monotonic()
                robot.count += 1
                for a, b in EVENT_ID.findall(body):
                    robot.arrived.setdefault((a or b).decode(), now)
                out = b'{"errcode":0,"errmsg":"ok"}'
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(out), out))
                self.t.close()

        server = self.loop.run_until_complete(
            self.loop.create_server(Proto, "127.0.0.1", 0, backlog=1024))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=bench"


def add_channels(conn, robot, n, events=None):
    """n WeCom channels on the robot, at the API's highest rate (1000 a minute),
    taking the events listed (None: all)."""
    conn.execute("DELETE FROM channels WHERE NOT from_config")
    conn.execute("INSERT INTO channels (name, kind, url, min_severity, max_per_minute, events) "
                 "SELECT 'bench-' || g, 'wecom', %s, 'info', 1000, %s "
                 "FROM generate_series(1, %s) g", (robot.url, events, n))


def emit_events(conn, n):
    """n payout events in one transaction (every channel takes them)."""
    with conn.transaction():
        conn.execute("SELECT api.emit('{}'::jsonb, 'payout_run.computed', json_build_object("
                     "'period', '2000-01', 'status', 'draft', 'total_fen', g, "
                     "'vetoed', '[]'::json), 'notice', 'event=bench') FROM generate_series(1, %s) g",
                     (n,))


def pending(conn):
    return conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]


def daemon_rate(pg, workdir, db, robot, channels):
    """Deliveries/s of the daemon: EVENTS events x channels deliveries."""
    d = Daemon(workdir, pg.conninfo(db), extra_config="[log]\nlevel = notice")
    d.start()
    try:
        with pg.connect(db) as conn:
            add_channels(conn, robot, channels)
            events = max(EVENTS // channels, 50) if channels > 1 else EVENTS // 4
            start = time.monotonic()
            emit_events(conn, events)
            while pending(conn) > 0:
                time.sleep(0.05)
                if time.monotonic() - start > 600:
                    raise AssertionError("deliveries did not finish:\n" + d.log()[-3000:])
            took = time.monotonic() - start
            done = conn.execute("SELECT count(*) FROM deliveries "
                                "WHERE state = 'delivered'").fetchone()[0]
        assert d.stop() == 0, d.log()[-3000:]
    finally:
        d.stop()
    return done / took, done, took


def pgbench_rate(pg, workdir, db, robot, channels):
    """PostgreSQL's limit: claim and record one message per transaction, no HTTP."""
    with pg.connect(db) as conn:
        add_channels(conn, robot, channels)
        emit_events(conn, max(EVENTS, 200 * channels))
    script = os.path.join(workdir, "bench_channels.sql")
    with open(script, "w") as f:
        f.write(PGBENCH_SCRIPT)
    with pg.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM deliveries "
                              "WHERE state = 'delivered'").fetchone()[0]
        start = time.monotonic()
        benchlib.run_pgbench(pg, db, script, 5, PGBENCH_CLIENTS, 2, {})
        took = time.monotonic() - start
        after = conn.execute("SELECT count(*) FROM deliveries "
                             "WHERE state = 'delivered'").fetchone()[0]
    # Transactions that found every channel leased by another client claim
    # nothing: only recorded deliveries count.
    return (after - before) / took


def latency_under_ingest(pg, workdir, robot):
    """Commit-to-delivery of events written every 100 ms while wrk pushes snapshots."""
    wrk_script, _ = bench_ingest.prepare(pg, workdir)
    db = "bench_channels_ingest"
    pg.create_database(db, template=bench_ingest.TEMPLATE)
    d = Daemon(workdir, pg.conninfo(db), extra_config="[log]\nlevel = notice")
    d.start()
    committed = {}
    stop = threading.Event()

    def writer():
        with pg.connect(db) as conn:
            # Only these events: the snapshots' own alerts go to no channel here.
            add_channels(conn, robot, 1, ["payout_run.computed"])
            while not stop.is_set():
                event = conn.execute(
                    "SELECT api.emit('{}'::jsonb, 'payout_run.computed', json_build_object("
                    "'period', '2000-01', 'status', 'draft', 'total_fen', 1, 'vetoed', "
                    "'[]'::json), 'notice', 'event=bench')::text").fetchone()[0]
                committed[event] = time.monotonic()  # autocommit: committed on return
                time.sleep(0.1)

    t = threading.Thread(target=writer)
    try:
        wrk(d, wrk_script, 0, 2)  # warm-up
        t.start()
        rps, refused = wrk(d, wrk_script, bench_ingest.MAIN_START, SECONDS)
        stop.set()
        t.join()
        deadline = time.monotonic() + 60
        while any(e not in robot.arrived for e in committed) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert d.stop() == 0, d.log()[-3000:]
    finally:
        stop.set()
        d.stop()
    # An event that did not arrive within 60 s of the load's end counts as
    # infinitely late.
    lat = sorted((robot.arrived[e] - at) * 1000 if e in robot.arrived else float("inf")
                 for e, at in committed.items())
    return rps, refused, statistics.median(lat), lat[max(int(len(lat) * 0.99) - 1, 0)], len(lat)


def wrk(daemon, script, start, seconds):
    """bench_ingest's wrk load; returns (requests/s, answers that were not 2xx).
    Here the load is the background, not the measure: a busy machine's 503s
    are reported, not fatal."""
    out = subprocess.run(["wrk", f"-t{bench_ingest.THREADS}", f"-c{bench_ingest.CONNECTIONS}",
                          f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{daemon.port}",
                          "--", str(start)], check=True, capture_output=True, text=True).stdout
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            int(refused.group(1)) if refused else 0)


def main():
    for tool in ("wrk", os.path.join(PG_BIN, "pgbench")):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (scripts/test installs wrk and PostgreSQL)")
            return 1
    pg = PgCluster()
    workdir = tempfile.mkdtemp(prefix="incubatord-bench-channels-")
    os.chmod(workdir, 0o755)
    robot = FastRobot()
    ok = True
    rows = []
    try:
        pg.start()
        pg.create_database("bench_channels_template")
        cfg = os.path.join(workdir, "migrate.conf")
        with open(cfg, "w") as f:
            f.write(f"[database]\nconninfo = {pg.conninfo('bench_channels_template')}\n"
                    "[log]\nsyslog = false\n")
        run_cli(cfg, "migrate")
        for n in CHANNEL_COUNTS:
            pg.create_database(f"bench_d{n}", template="bench_channels_template")
            rate, done, took = daemon_rate(pg, workdir, f"bench_d{n}", robot, n)
            pg.create_database(f"bench_p{n}", template="bench_channels_template")
            tps = pgbench_rate(pg, workdir, f"bench_p{n}", robot, n)
            ratio = rate / tps
            met = ratio >= RATIO_TARGETS[n]
            ok = ok and met
            rows.append((n, rate, done, took, tps, ratio, met))
            print(f"{n:3d} channel(s): daemon {rate:.0f} deliveries/s ({done} in {took:.1f} s), "
                  f"pgbench claim+record {tps:.0f}/s, ratio {ratio:.2f} (target >= "
                  f"{RATIO_TARGETS[n]}: {'met' if met else 'MISSED'})")
        rps, refused, p50, p99, count = latency_under_ingest(pg, workdir, robot)
        lat_ok = p99 < P99_TARGET_MS
        ok = ok and lat_ok
    finally:
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"machine:        {machine()}")
    print(f"deliveries:     WeCom-style robot on loopback (asyncio), one connection per "
          f"message; pgbench {PGBENCH_CLIENTS} clients, Unix socket")
    print(f"under ingest:   {rps:.0f} snapshots/s (bench_ingest's load, "
          f"{bench_ingest.CONNECTIONS} connections; {refused} answers not 2xx) while {count} "
          f"events were committed, one every 100 ms")
    print(f"commit->robot:  p50 {p50:.1f} ms, p99 {p99:.1f} ms (inf: not within 60 s of the "
          f"load's end; target p99 < "
          f"{P99_TARGET_MS:.0f} ms: {'met' if lat_ok else 'MISSED'})")
    print(f"host load:      {os.getloadavg()[0]:.1f} (1-minute load average at the end)")
    return 1 if STRICT and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
