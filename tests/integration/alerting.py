"""What the alert and notification tests observe the daemon with: a real
webhook receiver (an HTTP server thread), a LISTEN connection for NOTIFY
incubatord_events, the daemon's log parsed into its key=value event lines,
and small builders of incubators, tenants and snapshots over the API.

Expected figures are computed here, in Python, never by the SQL under test.
"""

import calendar
import datetime
import hashlib
import hmac
import json
import re
import threading
import time
import zoneinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import wait_for

BUREAU_TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
SECRET = "test-webhook-secret"


def today():
    """The daemon's "today": the date in the bureau's time zone."""
    return datetime.datetime.now(BUREAU_TZ).date()


def days(n):
    return datetime.timedelta(days=n)


def add_months(d, months):
    """PostgreSQL's date + interval 'N months': the same day, clamped to the month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return datetime.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def wait_until(predicate, timeout=15.0, what="condition"):
    """harness.wait_for, with the longer wait that deliveries and sweeps may need."""
    return wait_for(predicate, timeout=timeout, what=what)


# ---- credit codes (GB 32100-2015) ----

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc(n):
    """A valid 18-character credit code, different for each n."""
    body = f"91230103MA{n:07d}"
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARS[(31 - total % 31) % 31]


# ---- the webhook receiver ----

class Receiver:
    """An HTTP server thread that records every POST and answers as scripted:
    `statuses` are answered in order (then `default`); with `hang` set, a
    request waits until it is cleared (or hang_s passes) before answering."""

    def __init__(self, default=200, tls=None):
        self.requests = []
        self.statuses = []
        self.default = default
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.hang_s = 30
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers.items()),
                                              "body": body, "at": time.time(),
                                              "path": self.path})
                receiver.arrived.set()
                receiver.release.wait(receiver.hang_s)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                answer = b'{"ok": true}' if status < 300 else b'{"error": "try later"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # failed TLS handshakes
        self.port = self.server.server_address[1]
        self.tls = tls
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        if self.tls is not None:
            return f"https://localhost:{self.port}/hooks/incubatord?src=test"
        return f"http://127.0.0.1:{self.port}/hooks/incubatord?src=test"

    def hang(self):
        self.release.clear()

    def unhang(self):
        self.release.set()

    def events(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def verify_signature(request, secret=SECRET, tolerance_s=300):
    """Checks X-Incubatord-Signature as a receiver would: HMAC-SHA256 of
    "<t>.<raw body>" with the shared secret, and a fresh t."""
    header = request["headers"]["X-Incubatord-Signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = parts["t"]
    expected = hmac.new(secret.encode(), t.encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), header
    assert abs(time.time() - int(t)) < tolerance_s
    return int(t)


def webhook_config(receiver, **extra):
    lines = ["[webhook]", f"url = {receiver.url}", f"secret = {SECRET}",
             "retry_initial_ms = 100", "retry_max_ms = 400", "timeout_ms = 2000"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines)


# ---- NOTIFY incubatord_events ----

class Listener:
    """A LISTEN incubatord_events connection; poll() collects what arrived."""

    def __init__(self, pg, db):
        self.conn = pg.connect(db)
        self.payloads = []
        self.conn.add_notify_handler(lambda n: self.payloads.append(n.payload))
        self.conn.execute("LISTEN incubatord_events")

    def poll(self):
        self.conn.execute("SELECT 1")
        return self.payloads

    def close(self):
        self.conn.close()


# ---- the daemon's log ----

LINE = re.compile(r"incubatord\[\d+\] (\w+): (event=\S+ .*)$")


def log_events(daemon):
    """The key=value event lines of the daemon's log: dicts with "level"."""
    found = []
    for line in daemon.log().splitlines():
        m = LINE.search(line)
        if m:
            e = dict(kv.split("=", 1) for kv in m.group(2).split(" "))
            e["level"] = m.group(1)
            found.append(e)
    return found


# ---- the outbox, read back ----

def undelivered(sql):
    """Events with something pending: their syslog line, NOTIFY, or a delivery
    to an enabled channel (the configuration's webhook among them)."""
    return sql.execute(
        "SELECT count(*) FROM outbox o WHERE o.syslog_state = 'pending' "
        "OR o.notify_state = 'pending' OR EXISTS ("
        "  SELECT 1 FROM deliveries d JOIN channels c ON c.id = d.channel_id "
        "   WHERE d.outbox_id = o.id AND d.state = 'pending' AND c.enabled)").fetchone()[0]


def settle(sql, timeout=15):
    """Waits until every event is delivered (or given up) on every channel."""
    wait_until(lambda: undelivered(sql) == 0, timeout, what="the outbox to be delivered")


def outbox(sql):
    """The events, with the state of the configuration's webhook delivery
    ("none" when the event got none)."""
    rows = sql.execute("SELECT o.event_id::text, o.type, o.payload::text, "
                       "coalesce(d.state, 'none'), coalesce(d.attempts, 0) FROM outbox o "
                       "LEFT JOIN (deliveries d JOIN channels c ON c.id = d.channel_id "
                       "           AND c.from_config) ON d.outbox_id = o.id "
                       "ORDER BY o.id").fetchall()
    return [{"id": r[0], "type": r[1], "payload": json.loads(r[2]), "webhook": r[3],
             "attempts": r[4]} for r in rows]


def sweep(sql, on, now=None, batch=None, max_events=None):
    """Runs the alert sweep with an explicit today (and now) as the scheduler
    would: batch after batch, each its own transaction (of at most
    max_events transitions: by default the sweep's own cap); returns the
    summed counts as JSON text."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ctx = {"request_id": "test", "method": "JOB", "path": "alert_sweep", "today": str(on),
           "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "token_name": "scheduler", "admin": True}
    if batch:
        ctx["batch"] = batch
    if max_events:
        ctx["max_events"] = max_events
    total = {}
    while True:
        done = json.loads(sql.execute("SELECT api.job_alert_sweep(%s::jsonb)::text",
                                      (json.dumps(ctx),)).fetchone()[0])
        for k, v in done.items():
            if k != "next":
                total[k] = total.get(k, 0) + v
        if "next" not in done:
            return json.dumps(total)
        ctx["after"] = done["next"]


def alerts(sql, rule=None):
    rows = sql.execute("SELECT a.id, a.rule, i.code, a.subject, a.state, a.acknowledged "
                       "FROM alerts a JOIN incubators i ON i.id = a.incubator_id "
                       "WHERE %s::text IS NULL OR a.rule = %s ORDER BY a.id",
                       (rule, rule)).fetchall()
    return [{"id": r[0], "rule": r[1], "incubator": r[2], "subject": r[3], "state": r[4],
             "acknowledged": r[5]} for r in rows]


def events_of(sql, rule=None, type=None):
    """The outbox's alert events (payloads), optionally of one rule and type."""
    return [e for e in outbox(sql)
            if (type is None or e["type"] == type)
            and (rule is None or e["payload"]["data"].get("rule") == rule)]


# ---- data over the API ----

def make_incubator(api, code, opened_on, area=10000, public_service=0):
    r = api.post("/v1/incubators", {
        "code": code, "name": f"孵化器 {code}", "level": "municipal", "kind": "comprehensive",
        "opened_on": str(opened_on), "disposable_area_m2": area,
        "public_service_area_m2": public_service})
    assert r.status == 201, r
    return r.json()


def put_tenant(api, code, external_id, credit_code, admitted_on, field="electronic_information",
               tech_on=None, founded_on=None):
    founded = founded_on or admitted_on - days(100)
    body = {"name": f"企业 {external_id}", "credit_code": credit_code,
            "founded_on": str(founded), "admitted_on": str(admitted_on), "field": field,
            "tech_certified_on": str(tech_on) if tech_on else None}
    r = api.put(f"/v1/incubators/{code}/tenants/{external_id}", body)
    assert r.status in (200, 201), r
    return r.json()


def snapshot(api, code, as_of, areas, public_service=0):
    r = api.put(f"/v1/incubators/{code}/occupancy", {
        "as_of": str(as_of), "public_service_area_m2": public_service,
        "tenants": [{"external_id": k, "area_m2": v} for k, v in areas.items()]})
    assert r.status == 200, r
    return r.json()


def wait_for_startup_sweep(daemon):
    """The scheduler sweeps once right after start, on the real today: tests
    that sweep with dates of their own wait for it, so it cannot undo theirs."""
    wait_until(lambda: "job alert_sweep: done" in daemon.log(), what="the first alert sweep")
