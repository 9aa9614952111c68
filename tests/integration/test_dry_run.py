"""Dry runs (API.md 1.1): every PUT, POST, PATCH and DELETE under /v1/ takes
?dry_run=true and gets the status and body the real request gets, with
Dry-Run: true, and keeps nothing: no row in any table, no audit, no alert,
no outbox event, no NOTIFY, no idempotency record.

The write routes are read from the route table (daemon/routes.c), so a new
route is tried here without anyone listing it: each gets the request below
if it has one (and must then succeed), else a generic one (path parameters
of existing things, an empty object as the body), whose dry run must still
answer exactly as the real request does and keep nothing."""

import datetime
import json
import os
import re

import time

import pytest

from harness import assert_problem
from ingestlib import register, tenant_body, today
from test_openapi import c_routes, read

WRITES = ("POST", "PUT", "PATCH", "DELETE")
LISTEN = ("incubatord_outbox", "incubatord_tokens", "incubatord_events")
GRAD = {"graduated_on": "2025-10-01", "basis": "investment",
        "evidence": {"investment_total_fen": 600000000}}


def previous_month(d):
    first = d.replace(day=1) - datetime.timedelta(days=1)
    return first.strftime("%Y-%m")


def next_month(d):
    return (d.replace(day=28) + datetime.timedelta(days=4)).strftime("%Y-%m")


# The delivery bookkeeping of notifications written before: the daemon
# delivers them in the background while the test runs.
DELIVERY_TABLE = re.compile(r"outbox|deliver")
DELIVERY_COLUMN = re.compile(r"state|claimed|attempt|delivered|next_attempt|last_error|lease")


def db_snapshot(sql):
    """Every table of the database, whole, but for the tokens' last_used_at
    (authentication records a token's use; that is not the write) and the
    delivery state of notifications (the daemon delivers earlier ones
    meanwhile). A row a dry run wrote into either is still seen."""
    tables = [t for (t,) in sql.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")]
    state = {}
    for t in tables:
        rows = sql.execute(f'SELECT to_jsonb(x) FROM "{t}" x').fetchall()
        items = []
        for (row,) in rows:
            if t == "tokens":
                row.pop("last_used_at", None)
            if DELIVERY_TABLE.search(t):
                row = {k: v for k, v in row.items() if not DELIVERY_COLUMN.search(k)}
            items.append(json.dumps(row, sort_keys=True))
        state[t] = sorted(items)
    return state


def assert_same(before, after):
    changed = [t for t in before if before[t] != after.get(t)]
    assert not changed and set(before) == set(after), f"changed by a dry run: {changed}"


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def masked(value, key=None):
    """An answer with what legitimately differs between two runs of one
    request blanked: ids drawn from sequences (a dry run draws one too: a
    sequence is not rolled back), timestamps, secrets, request ids."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if key in ("token", "request_id", "event_id"):
        return "*"
    if key is not None and (key == "id" or key.endswith("_id") or key == "replaced_by") \
            and isinstance(value, int):
        return "*"
    if isinstance(value, str) and TIMESTAMP.match(value):
        return "*"
    if isinstance(value, str) and key == "detail":
        return re.sub(r"\d+", "N", value)
    return value


def body_of(r):
    if not r.body:
        return None
    return masked(json.loads(r.body))


class Listener:
    """A LISTEN connection on the daemons' channels; pump() reads what has come."""

    def __init__(self, pg, db):
        self.conn = pg.connect(db)
        self.got = []
        self.conn.add_notify_handler(lambda n: self.got.append(n.channel))
        for channel in LISTEN:
            self.conn.execute(f"LISTEN {channel}")

    def pump(self):
        time.sleep(0.05)  # a NOTIFY committed before an answer reaches us a moment later
        self.conn.execute("SELECT 1")
        got, self.got = self.got, []
        return got

    def close(self):
        self.conn.close()


@pytest.fixture
def world(admin, sql):
    """An incubator with tenants, a snapshot, spare tokens and a firing alert."""
    hrb = register(admin)
    for n in (1, 2, 3):
        assert hrb.put(f"/v1/incubators/HRB-001/tenants/T-{n}", tenant_body(n)).status == 201
    r = hrb.put("/v1/incubators/HRB-001/occupancy",
                {"as_of": today().isoformat(), "public_service_area_m2": 1000,
                 "tenants": [{"external_id": "T-1", "area_m2": 500}]})
    assert r.status == 200, r
    spare = {}
    for name in ("spare-rotate", "spare-revoke", "expiring"):
        body = {"name": name}
        if name == "expiring":
            body["expires_in_days"] = 3  # raises token_expiring at once
        r = admin.post("/v1/incubators/HRB-001/tokens", body)
        assert r.status == 201, r
        spare[name] = r.json()["id"]
    alert = sql.execute("SELECT id FROM alerts WHERE rule = 'token_expiring' "
                        "AND state = 'firing'").fetchone()[0]
    return {"hrb": hrb, "spare": spare, "alert": alert}


def policy_body(admin, effective_from):
    """The policy in force, sent back as a new version: the body's fields are
    those of the route's own field table."""
    text = "".join(read(os.path.join("daemon", f)) for f in sorted(os.listdir(
        os.path.join(os.environ.get("INCUBATORD_SOURCE_DIR", "."), "daemon"))) if f.endswith(".c"))
    table = text[text.index("api_policy_create_body[] = {"):]
    table = table[:table.index("{NULL}")]
    fields = re.findall(r'\{"(\w+)"', table)
    current = admin.get("/v1/policy").json()
    body = {k: current[k] for k in fields if k in current}
    body["effective_from"] = effective_from
    return body


def examples(world, admin):
    """(method, pattern) -> (path, body, must_succeed) for the routes known here."""
    t = today()
    period = previous_month(t)
    spare = world["spare"]
    return {
        ("POST", "/v1/incubators"): (
            "/v1/incubators", {"code": "HRB-002", "name": "第二孵化器", "level": "district",
                               "kind": "maker_space", "disposable_area_m2": 800}, True),
        ("PATCH", "/v1/incubators/{code}"): (
            "/v1/incubators/HRB-001", {"name": "哈尔滨创新创业广场孵化器（新）"}, True),
        # HRB-002, made by the first route: closing it leaves HRB-001 to the others.
        ("POST", "/v1/incubators/{code}/close"): (
            "/v1/incubators/HRB-002/close", {"closed_on": t.isoformat(), "reason": "试运行"}, True),
        ("PUT", "/v1/incubators/{code}/tenants"): (
            "/v1/incubators/HRB-001/tenants",
            {"tenants": [dict(tenant_body(8), external_id="T-8"),
                         dict(tenant_body(3), external_id="T-3", name="改名")]}, True),
        ("POST", "/v1/incubators/{code}/tokens"): (
            "/v1/incubators/HRB-001/tokens", {"name": "erp-2", "expires_in_days": 7}, True),
        ("POST", "/v1/tokens/{id}/rotate"): (
            f"/v1/tokens/{spare['spare-rotate']}/rotate", {"grace_hours": 0}, True),
        ("DELETE", "/v1/tokens/{id}"): (f"/v1/tokens/{spare['spare-revoke']}", None, True),
        ("PUT", "/v1/incubators/{code}/tenants/{external_id}"): (
            "/v1/incubators/HRB-001/tenants/T-9", tenant_body(9), True),
        ("POST", "/v1/incubators/{code}/tenants/{external_id}/graduation"): (
            "/v1/incubators/HRB-001/tenants/T-1/graduation", GRAD, True),
        ("POST", "/v1/incubators/{code}/tenants/{external_id}/exit"): (
            "/v1/incubators/HRB-001/tenants/T-2/exit",
            {"exited_on": t.isoformat(), "reason": "relocated"}, True),
        ("PUT", "/v1/incubators/{code}/occupancy"): (
            "/v1/incubators/HRB-001/occupancy",
            {"as_of": t.isoformat(), "public_service_area_m2": 1000,
             "tenants": [{"external_id": "T-3", "area_m2": 300}]}, True),
        ("POST", "/v1/policy"): ("/v1/policy", policy_body(admin, next_month(t)), True),
        ("POST", "/v1/payout-runs"): ("/v1/payout-runs", {"period": period}, True),
        # Its rules (who may approve, after what) belong to the payouts; the
        # dry run need only answer as the real request does.
        ("POST", "/v1/payout-runs/{period}/approve"): (
            f"/v1/payout-runs/{period}/approve", None, False),
        ("POST", "/v1/alerts/{id}/ack"): (
            f"/v1/alerts/{world['alert']}/ack", {"note": "已知悉，正在轮换"}, True),
    }


def handler_routes():
    """The write routes served by a handler of the daemon's own, not by api.run:
    what they do is not a database transaction (a channel's test message is
    sent), so a dry run checks and does nothing, and its answer may differ."""
    text = read("daemon/routes.c")
    return set(re.findall(r'\{(POST|PUT|PATCH|DELETE),\s+"([^"]+)",[^\n]*\bNULL,\s+\.handler', text))


GENERIC_PARAMS = {"code": "HRB-001", "external_id": "T-1", "id": "1"}


def generic(pattern):
    period = previous_month(today())
    path = re.sub(r"\{(\w+)\}", lambda m: GENERIC_PARAMS.get(m.group(1), period), pattern)
    return path, {}, False


def with_query(path, query):
    return path + ("&" if "?" in path else "?") + query


def test_every_write_route_keeps_nothing_on_a_dry_run(pg, db, admin, sql, world):
    routes = [(m, p) for m, p, _ in c_routes() if m in WRITES and p.startswith("/v1/")]
    own = handler_routes()
    known = examples(world, admin)
    # The examples name routes that exist (a renamed route shows up here).
    assert set(known) <= set(routes), set(known) - set(routes)
    listener = Listener(pg, db)
    tried = []
    heard = set()
    try:
        for method, pattern in routes:
            path, body, must_succeed = known.get((method, pattern)) or generic(pattern)
            heard.update(listener.pump())
            before = db_snapshot(sql)
            dry = admin.call(method, with_query(path, "dry_run=true"), body)
            assert dry.header("Dry-Run") == "true", (method, path, dry)
            assert_same(before, db_snapshot(sql))
            assert listener.pump() == [], (method, path)
            real = admin.call(method, path, body)
            assert real.header("Dry-Run") is None
            if (method, pattern) not in own:
                assert (dry.status, body_of(dry)) == (real.status, body_of(real)), (method, path)
                assert masked(dry.header("Location")) == masked(real.header("Location"))
            if must_succeed:
                assert 200 <= real.status < 300, (method, path, real)
            tried.append((method, pattern, real.status))
        heard.update(listener.pump())
        # The real requests did write and notify: the comparisons above were not
        # between two requests that do nothing.
        assert sql.execute("SELECT count(*) FROM incubators WHERE code = 'HRB-002'") \
            .fetchone()[0] == 1
        assert {"incubatord_outbox", "incubatord_tokens"} <= heard, heard
    finally:
        listener.close()
    assert len(tried) == len(routes)


def test_a_dry_run_that_fails_answers_as_the_real_one_would(admin, sql, world):
    hrb = world["hrb"]
    cases = [
        ("PUT", "/v1/incubators/HRB-001/tenants/T-8", tenant_body(8, credit_code="X")),  # 422
        ("POST", "/v1/incubators/HRB-001/tenants/NOPE/exit",
         {"exited_on": today().isoformat(), "reason": "closed"}),  # 404
        ("POST", "/v1/incubators", dict(code="HRB-001", name="重复", level="district",
                                        kind="maker_space", disposable_area_m2=1)),  # 409
    ]
    for method, path, body in cases:
        api = admin if path == "/v1/incubators" else hrb
        before = db_snapshot(sql)
        dry = api.call(method, with_query(path, "dry_run=true"), body)
        assert_same(before, db_snapshot(sql))
        real = api.call(method, path, body)
        assert dry.status == real.status >= 400, (path, dry)
        assert dry.header("Dry-Run") == "true" and real.header("Dry-Run") is None
        assert body_of(dry) == body_of(real)
    # Refused before the database too: a bad token, another incubator's path.
    r = admin.daemon.request("PUT", "/v1/incubators/HRB-002/tenants/T-1?dry_run=true",
                             token=hrb.token, json_body=tenant_body(1))
    assert_problem(r, 403)
    assert r.header("Dry-Run") == "true"


def test_dry_runs_and_idempotency_keys(admin, sql, world):
    hrb = world["hrb"]
    path = "/v1/incubators/HRB-001/tenants/T-1/graduation"
    key = {"Idempotency-Key": "grad-1"}
    before = db_snapshot(sql)
    dry = hrb.post(with_query(path, "dry_run=true"), GRAD, headers=key)
    assert dry.status == 200 and dry.header("Idempotent-Replayed") is None
    assert_same(before, db_snapshot(sql))  # no idempotency record either
    # The key is still free: the real request runs (no replay of the dry run) ...
    real = hrb.post(path, GRAD, headers=key)
    assert real.status == 200 and real.header("Idempotent-Replayed") is None
    # ... and a dry run with it now gets the stored answer, as a retry would.
    before = db_snapshot(sql)
    again = hrb.post(with_query(path, "dry_run=true"), GRAD, headers=key)
    assert (again.status, again.body) == (200, real.body)
    assert again.header("Idempotent-Replayed") == "true" and again.header("Dry-Run") == "true"
    other = hrb.post(with_query(path, "dry_run=true"), dict(GRAD, graduated_on="2025-10-02"),
                     headers=key)
    assert_problem(other, 409)
    assert_same(before, db_snapshot(sql))


def test_the_dry_run_parameter(admin, sql, world):
    hrb = world["hrb"]
    path = "/v1/incubators/HRB-001/tenants/T-7"
    before = db_snapshot(sql)
    for query in ("dry_run=yes", "dry_run=1", "dry_run=", "dry_run=TRUE",
                  "dry_run=true&dry_run=true", "dry_run=true&dry_run=false"):
        r = hrb.put(with_query(path, query), tenant_body(7))
        assert_problem(r, 400, "dry_run")
        assert r.header("Dry-Run") is None
    # Reads take no dry_run: an unknown query parameter there.
    assert_problem(hrb.get("/v1/incubators/HRB-001/tenants/T-1?dry_run=true"), 400, "dry_run")
    assert_same(before, db_snapshot(sql))
    # dry_run=false is an ordinary write.
    r = hrb.put(with_query(path, "dry_run=false"), tenant_body(7))
    assert r.status == 201 and r.header("Dry-Run") is None
    assert sql.execute("SELECT count(*) FROM tenants WHERE external_id = 'T-7'").fetchone()[0] == 1
    # A dry run is logged as one.
    assert "dry_run" in admin.daemon.log()


def test_a_dry_run_token_is_shown_but_does_not_work(admin, sql, world):
    r = admin.post("/v1/incubators/HRB-001/tokens?dry_run=true", {"name": "would-be"})
    assert r.status == 201 and r.header("Dry-Run") == "true"
    assert_problem(admin.daemon.request("GET", "/v1/incubators/HRB-001",
                                        token=r.json()["token"]), 401)
    assert sql.execute("SELECT count(*) FROM tokens WHERE name = 'would-be'").fetchone()[0] == 0


def test_a_dry_run_revocation_or_rotation_leaves_the_token_working(admin, sql, world):
    hrb = world["hrb"]
    token_id = sql.execute("SELECT id FROM tokens WHERE hash = sha256(%s::bytea)",
                           (hrb.token.encode(),)).fetchone()[0]
    assert hrb.get("/v1/incubators/HRB-001").status == 200  # cached
    assert admin.delete(f"/v1/tokens/{token_id}?dry_run=true").status == 204
    assert admin.post(f"/v1/tokens/{token_id}/rotate?dry_run=true",
                      {"grace_hours": 0}).status == 201
    assert hrb.get("/v1/incubators/HRB-001").status == 200
    assert sql.execute("SELECT revoked_at, replaced_by FROM tokens WHERE id = %s",
                       (token_id,)).fetchone() == (None, None)


def test_api_run_rolls_back_everything_a_function_did(sql, world):
    """At the SQL level: a dry run's call wrote rows, an alert, an outbox event
    and a NOTIFY, and none of them is left."""
    before = db_snapshot(sql)
    ctx = {"request_id": "dry-sql", "method": "POST", "path": "/v1/incubators/HRB-001/tokens",
           "today": today().isoformat(), "token_name": "sql", "admin": True, "dry_run": True}
    args = {"code": "HRB-001", "name": "soon", "expires_in_days": 1,
            "hash": "\\x" + "ab" * 32}
    status, body = sql.execute("SELECT status, body FROM api.run('token_create', %s, %s)",
                               (json.dumps(ctx), json.dumps(args))).fetchone()
    assert status == 201 and body["name"] == "soon" and body["expires_in_days"] == 1
    assert_same(before, db_snapshot(sql))
    # The same call for real writes the token, its audit row, an alert and its event.
    ctx.pop("dry_run")
    status, _ = sql.execute("SELECT status, body FROM api.run('token_create', %s, %s)",
                            (json.dumps(ctx), json.dumps(args))).fetchone()
    assert status == 201
    assert sql.execute("SELECT count(*) FROM alerts WHERE rule = 'token_expiring' "
                       "AND subject = 'soon'").fetchone()[0] == 1
