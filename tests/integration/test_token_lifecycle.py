"""Tokens that expire and are rotated (API.md 1.1 "Tokens"): expires_in_days
and expires_at, the expired 401 with error_description="token expired",
rotation with and without a grace period, the token_expiring alert 14 days
ahead, the command line's --expires-in-days and its options in any order.

The daemon judges expiry by its own clock, which it passes to SQL: a daemon
whose clock is moved (libfaketime, preloaded) sees the token as it will be
then, while a daemon on the real clock, on the same database, does not."""

import datetime
import hashlib
import json
import os
import re
import subprocess

import pytest

from conftest import start_daemon
from harness import BIN, MAX_BODY_BYTES, Api, assert_problem, preload, run_cli, wait_for
from ingestlib import register
from test_dry_run import assert_same, db_snapshot

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
needs_faketime = pytest.mark.skipif(not os.path.exists(FAKETIME),
                                    reason="libfaketime is not installed")
EXPIRED = 'error_description="token expired"'


def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def later(pg, db, workdir, offset, extra=""):
    """Another daemon on the same database whose clock runs `offset` ahead ("+21d")."""
    env = dict(os.environ, LD_PRELOAD=preload(FAKETIME), FAKETIME=offset,
               FAKETIME_DONT_FAKE_MONOTONIC="1")
    return start_daemon(pg, db, workdir, extra, env=env)


def make(admin, name, days=None, code="HRB-001"):
    body = {"name": name}
    if days is not None:
        body["expires_in_days"] = days
    r = admin.post(f"/v1/incubators/{code}/tokens", body)
    assert r.status == 201, r
    return r.json()


def get(daemon, token):
    return daemon.request("GET", "/v1/incubators/HRB-001", token=token)


def alerts(sql, subject):
    return sql.execute("SELECT state, severity, value, message FROM alerts "
                       "WHERE rule = 'token_expiring' AND subject = %s ORDER BY id",
                       (subject,)).fetchall()


def test_expires_in_days_sets_expires_at(admin, sql):
    register(admin)
    t = make(admin, "erp-30", 30)
    assert t["expires_in_days"] == 30
    assert ts(t["expires_at"]) - ts(t["created_at"]) == datetime.timedelta(days=30)
    never = make(admin, "erp-never")
    assert never["expires_at"] is None and never["expires_in_days"] is None
    listed = {i["name"]: i for i in admin.get("/v1/incubators/HRB-001/tokens").json()["items"]}
    assert listed["erp-30"]["expires_at"] == t["expires_at"]
    assert listed["erp-never"]["expires_at"] is None
    assert all(i["replaced_by"] is None for i in listed.values())
    summary = sql.execute("SELECT summary FROM audit_log WHERE summary LIKE %s",
                          ("%erp-30%",)).fetchone()[0]
    assert f"expiring at {t['expires_at']}" in summary
    # The bounds: 1 and 3650 days.
    assert make(admin, "one-day", 1)["expires_in_days"] == 1
    assert make(admin, "ten-years", 3650)["expires_in_days"] == 3650


def test_bad_expiries_are_422_and_change_nothing(admin, sql):
    register(admin)
    before = db_snapshot(sql)
    for bad in (0, -1, 3651, "30", 1.5, True, None, [30], {"days": 30}):
        r = admin.post("/v1/incubators/HRB-001/tokens", {"name": "x", "expires_in_days": bad})
        assert_problem(r, 422, "expires_in_days")
    assert_same(before, db_snapshot(sql))


def test_the_clock_is_passed_to_the_lookup(admin, sql):
    """api.token_lookup judges nothing by the database's clock: it returns when
    the token expires and records its use at the caller's time, unless the
    token had expired by then."""
    register(admin)
    t = make(admin, "erp", 10)
    expires = ts(t["expires_at"])
    h = hashlib.sha256(t["token"].encode()).digest()
    before = expires - datetime.timedelta(seconds=1)
    row = sql.execute("SELECT id, expires_at FROM api.token_lookup(%s, %s)", (h, before)).fetchone()
    assert row == (t["id"], int(expires.timestamp()))
    assert sql.execute("SELECT last_used_at FROM tokens WHERE id = %s",
                       (t["id"],)).fetchone()[0] == before
    after = expires + datetime.timedelta(days=1)
    assert sql.execute("SELECT id FROM api.token_lookup(%s, %s)", (h, after)).fetchone()[0] \
        == t["id"]
    # An expired use is not recorded as a use.
    assert sql.execute("SELECT last_used_at FROM tokens WHERE id = %s",
                       (t["id"],)).fetchone()[0] == before


@needs_faketime
def test_an_expired_token_is_401_token_expired(pg, db, workdir, daemon, admin, sql):
    register(admin)
    t = make(admin, "erp", 20)
    forever = make(admin, "forever")
    assert get(daemon, t["token"]).status == 200
    b = later(pg, db, workdir, "+21d")
    try:
        for _ in range(2):  # the database's answer, then the cache's
            r = get(b, t["token"])
            p = assert_problem(r, 401)
            assert "expired" in p["detail"]
            auth = r.header("WWW-Authenticate")
            assert 'error="invalid_token"' in auth and EXPIRED in auth, auth
        assert get(b, forever["token"]).status == 200
        # Unknown and revoked tokens are not "expired".
        r = get(b, "ikd_" + "A" * 43)
        assert_problem(r, 401)
        assert EXPIRED not in r.header("WWW-Authenticate")
        # On the real clock it still works.
        assert get(daemon, t["token"]).status == 200
        # A day before its expiry it works there too.
        c = later(pg, db, workdir, "+19d")
        try:
            assert get(c, t["token"]).status == 200
        finally:
            assert c.stop() == 0
    finally:
        assert b.stop() == 0


def test_rotation_without_grace(daemon, admin, sql):
    register(admin)
    old = make(admin, "erp-push", 90)
    assert get(daemon, old["token"]).status == 200  # now in the cache
    r = admin.post(f"/v1/tokens/{old['id']}/rotate", {"grace_hours": 0})
    assert r.status == 201, r
    new = r.json()
    assert re.fullmatch(r"ikd_[A-Za-z0-9_-]{43}", new["token"]) and new["token"] != old["token"]
    assert (new["name"], new["incubator"], new["expires_in_days"]) == ("erp-push", "HRB-001", 90)
    assert ts(new["expires_at"]) - ts(new["created_at"]) == datetime.timedelta(days=90)
    assert new["id"] != old["id"] and new["replaced_by"] is None
    # The old one fails from the next request on, at this daemon, cache or not.
    r = get(daemon, old["token"])
    assert_problem(r, 401)
    assert EXPIRED in r.header("WWW-Authenticate")
    assert get(daemon, new["token"]).status == 200
    listed = {i["id"]: i for i in admin.get("/v1/incubators/HRB-001/tokens").json()["items"]}
    assert listed[old["id"]]["replaced_by"] == new["id"]
    assert ts(listed[old["id"]]["expires_at"]) <= ts(new["created_at"]) + \
        datetime.timedelta(seconds=1)
    assert "token" not in listed[new["id"]]
    summary = sql.execute("SELECT summary FROM audit_log WHERE summary LIKE 'rotated%'") \
        .fetchone()[0]
    assert f"rotated token {old['id']} \"erp-push\" into token {new['id']}" in summary
    # A token is rotated once; the new one can be rotated in turn.
    p = assert_problem(admin.post(f"/v1/tokens/{old['id']}/rotate", {"grace_hours": 0}), 409)
    assert str(new["id"]) in p["detail"]
    # The name is the successor's: another token may not take it ...
    assert_problem(admin.post("/v1/incubators/HRB-001/tokens", {"name": "erp-push"}), 409)
    newer = admin.post(f"/v1/tokens/{new['id']}/rotate", {"grace_hours": 1}).json()
    assert_problem(admin.post("/v1/incubators/HRB-001/tokens", {"name": "erp-push"}), 409)
    # ... until the successor is revoked (the rotated ones do not hold it).
    assert admin.delete(f"/v1/tokens/{newer['id']}").status == 204
    assert make(admin, "erp-push")["name"] == "erp-push"
    # A revoked token cannot be rotated; an unknown one does not exist.
    gone = make(admin, "gone")
    assert admin.delete(f"/v1/tokens/{gone['id']}").status == 204
    assert_problem(admin.post(f"/v1/tokens/{gone['id']}/rotate", {"grace_hours": 0}), 409)
    assert_problem(admin.post("/v1/tokens/999999/rotate", {"grace_hours": 0}), 404)


def test_a_token_that_never_expires_rotates_into_one_that_never_expires(admin):
    register(admin)
    old = make(admin, "forever")
    new = admin.post(f"/v1/tokens/{old['id']}/rotate", {"grace_hours": 168}).json()
    assert new["expires_at"] is None and new["expires_in_days"] is None
    listed = {i["id"]: i for i in admin.get("/v1/incubators/HRB-001/tokens").json()["items"]}
    # The old one expires at the end of the grace period.
    assert ts(listed[old["id"]]["expires_at"]) - ts(new["created_at"]) in (
        datetime.timedelta(hours=168), datetime.timedelta(hours=168, seconds=1))


def test_admin_tokens_rotate_too(daemon, admin, sql):
    p = run_cli(daemon.config_path, "token", "create", "--admin", "bureau-2")
    secret = p.stdout.strip()
    token_id = sql.execute("SELECT id FROM tokens WHERE name = 'bureau-2'").fetchone()[0]
    r = admin.post(f"/v1/tokens/{token_id}/rotate", {"grace_hours": 0})
    assert r.status == 201 and r.json()["incubator"] is None
    assert_problem(daemon.request("GET", "/v1/incubators", token=secret), 401)
    assert daemon.request("GET", "/v1/incubators", token=r.json()["token"]).status == 200


@needs_faketime
def test_rotation_with_grace(pg, db, workdir, daemon, admin):
    register(admin)
    old = make(admin, "erp-push", 30)
    new = admin.post(f"/v1/tokens/{old['id']}/rotate", {"grace_hours": 24}).json()
    # Both work now ...
    assert get(daemon, old["token"]).status == 200
    assert get(daemon, new["token"]).status == 200
    # ... 23 hours on too ...
    b = later(pg, db, workdir, "+23h")
    try:
        assert get(b, old["token"]).status == 200
        assert get(b, new["token"]).status == 200
    finally:
        assert b.stop() == 0
    # ... and 25 hours on only the new one.
    c = later(pg, db, workdir, "+25h")
    try:
        r = get(c, old["token"])
        assert_problem(r, 401)
        assert EXPIRED in r.header("WWW-Authenticate")
        assert get(c, new["token"]).status == 200
    finally:
        assert c.stop() == 0


def test_another_daemon_hears_of_a_rotation(pg, db, workdir, daemons, daemon, admin):
    register(admin)
    old = make(admin, "erp-push")
    b = daemons(pg, db, workdir)
    b.wait_listening()
    assert get(b, old["token"]).status == 200  # cached at b
    assert admin.post(f"/v1/tokens/{old['id']}/rotate", {"grace_hours": 0}).status == 201
    wait_for(lambda: get(b, old["token"]).status == 401, timeout=1,
             what="the other daemon to refuse the rotated token")


def test_token_expiring_alert_at_creation_and_on_rotation(admin, sql):
    register(admin)
    t = make(admin, "erp-soon", 10)
    later_one = make(admin, "erp-later", 20)
    [(state, severity, value, message)] = alerts(sql, "erp-soon")
    assert (state, severity, value) == ("firing", "info", 10)
    assert f"HRB-001 的访问令牌 {t['id']}“erp-soon”将于 {t['expires_at']} 到期，还剩 10 天" in message
    assert alerts(sql, "erp-later") == []
    listed = admin.get("/v1/alerts?rule=token_expiring").json()["items"]
    assert [(a["incubator"], a["subject"], a["severity"]) for a in listed] == \
        [("HRB-001", "erp-soon", "info")]
    events = sql.execute("SELECT payload FROM outbox WHERE type = 'alert.firing' "
                         "AND payload->'data'->>'rule' = 'token_expiring'").fetchall()
    assert len(events) == 1 and events[0][0]["data"]["subject"] == "erp-soon"
    # Rotated into a token of 10 days again, it is still expiring (one alert, same name).
    new = admin.post(f"/v1/tokens/{t['id']}/rotate", {"grace_hours": 0}).json()
    [(state, _, _, message)] = alerts(sql, "erp-soon")
    assert state == "firing" and f"访问令牌 {new['id']}“erp-soon”" in message
    # Revoked, it resolves.
    assert admin.delete(f"/v1/tokens/{new['id']}").status == 204
    assert [a[0] for a in alerts(sql, "erp-soon")] == ["resolved"]
    assert sql.execute("SELECT count(*) FROM outbox WHERE type = 'alert.resolved' "
                       "AND payload->'data'->>'subject' = 'erp-soon'").fetchone()[0] == 1
    assert later_one["expires_in_days"] == 20


@needs_faketime
def test_token_expiring_alert_14_days_ahead_by_the_sweep(pg, db, workdir, daemon, admin, sql):
    register(admin)
    t = make(admin, "erp-push", 20)
    assert alerts(sql, "erp-push") == []
    sweep = "[schedule]\nalert_sweep_seconds = 1"
    b = later(pg, db, workdir, "+5d", sweep)  # 15 days left: not yet
    try:
        b.wait_startup_jobs()
        assert alerts(sql, "erp-push") == []
    finally:
        assert b.stop() == 0
    b = later(pg, db, workdir, "+7d", sweep)  # 13 days left
    try:
        wait_for(lambda: alerts(sql, "erp-push"), timeout=10, what="the token_expiring alert")
        [(state, severity, value, message)] = alerts(sql, "erp-push")
        assert (state, severity, value) == ("firing", "info", 13)
        assert "还剩 13 天：请轮换" in message
    finally:
        assert b.stop() == 0
    b = later(pg, db, workdir, "+21d", sweep)  # expired, neither rotated nor revoked
    try:
        wait_for(lambda: "到期：请轮换" in alerts(sql, "erp-push")[0][3], timeout=10,
                 what="the alert to say the token expired")
        [(state, _, value, _)] = alerts(sql, "erp-push")
        assert (state, value) == ("firing", 0)
        # Rotated (an expired token may be), the alert resolves.
        b_admin = Api(b, b.admin_token)
        assert b_admin.post(f"/v1/tokens/{t['id']}/rotate", {"grace_hours": 0}).status == 201
        assert [a[0] for a in alerts(sql, "erp-push")] == ["resolved"]
    finally:
        assert b.stop() == 0


def test_rotate_bad_input_matrix(daemon, admin, sql):
    hrb = register(admin)
    t = make(admin, "erp-push", 30)
    path = f"/v1/tokens/{t['id']}/rotate"
    before = db_snapshot(sql)
    for body, field in (({}, "grace_hours"), ({"grace_hours": -1}, "grace_hours"),
                        ({"grace_hours": 169}, "grace_hours"), ({"grace_hours": "24"}, "grace_hours"),
                        ({"grace_hours": 2.5}, "grace_hours"), ({"grace_hours": None}, "grace_hours"),
                        ({"grace_hours": True}, "grace_hours"),
                        ({"grace_hours": 1, "name": "x"}, "name"), ([], "(body)"), (24, "(body)")):
        assert_problem(admin.post(path, body), 422, field)
    for raw in (b"{", b'{"grace_hours": 1, "grace_hours": 2}', b"\xff"):
        assert_problem(daemon.request("POST", path, token=admin.token, body=raw), 400)
    assert_problem(daemon.request("POST", path, token=admin.token, body=b'{"grace_hours": 1}',
                                  content_type="text/plain"), 415)
    big = json.dumps({"grace_hours": 1, "pad": "x" * (MAX_BODY_BYTES + 10)})
    assert_problem(daemon.request("POST", path, token=admin.token, body=big), 413)
    assert_problem(daemon.request("POST", path, json_body={"grace_hours": 1}), 401)
    assert_problem(daemon.request("POST", path, token="ikd_" + "B" * 43,
                                  json_body={"grace_hours": 1}), 401)
    # An incubator's token may not rotate, not even its own.
    assert_problem(hrb.post(path, {"grace_hours": 1}), 403)
    for bad_id in ("0", "abc", "-1", "1" * 19):
        assert_problem(admin.post(f"/v1/tokens/{bad_id}/rotate", {"grace_hours": 1}), 404)
    assert_problem(admin.get(path), 405)
    assert_same(before, db_snapshot(sql))
    assert get(daemon, t["token"]).status == 200


CLI_ORDERS = [
    ["token", "create", "--admin", "{name}", "-c", "{conf}"],
    ["token", "create", "--admin", "{name}", "--config", "{conf}", "--expires-in-days", "30"],
    ["-c", "{conf}", "token", "create", "--expires-in-days", "30", "--admin", "{name}"],
    ["token", "-c", "{conf}", "create", "--admin={name}", "--expires-in-days=30"],
    ["token", "create", "--incubator", "HRB-001", "{name}", "-c", "{conf}"],
    ["--expires-in-days", "7", "token", "create", "{name}", "--incubator", "HRB-001",
     "--config={conf}"],
]


@pytest.mark.parametrize("n", range(len(CLI_ORDERS)))
def test_cli_options_anywhere(daemon, admin, sql, n):
    register(admin)
    name = f"cli-{n}"
    args = [a.format(name=name, conf=daemon.config_path) for a in CLI_ORDERS[n]]
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    secret = p.stdout.strip()
    assert re.fullmatch(r"ikd_[A-Za-z0-9_-]{43}", secret)
    days = sql.execute("SELECT expires_in_days, incubator_id IS NULL, "
                       "expires_at - created_at FROM tokens WHERE name = %s",
                       (name,)).fetchone()
    want = int(args[args.index("--expires-in-days") + 1]) if "--expires-in-days" in args else \
        next((int(a.split("=")[1]) for a in args if a.startswith("--expires-in-days=")), None)
    assert days[0] == want
    assert days[1] == ("--admin" in args or any(a.startswith("--admin=") for a in args))
    if want:
        assert abs(days[2] - datetime.timedelta(days=want)) < datetime.timedelta(seconds=5)
        assert "expiring at" in p.stderr
    path = "/v1/incubators" if days[1] else "/v1/incubators/HRB-001"
    assert daemon.request("GET", path, token=secret).status == 200


def test_cli_bad_expiry_exits_2(daemon, sql):
    before = sql.execute("SELECT count(*) FROM tokens").fetchone()[0]
    for args in (["--expires-in-days", "0"], ["--expires-in-days", "3651"],
                 ["--expires-in-days", "x"], ["--expires-in-days", ""],
                 ["--expires-in-days"]):
        p = subprocess.run([BIN, "token", "create", "--admin", "x", "-c", daemon.config_path,
                            *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and p.stdout == "", (args, p)
        assert p.stderr.startswith("incubatord: ")
    for args in (["migrate", "--expires-in-days", "3"], ["token", "revoke", "1", "--admin", "x"],
                 ["--incubator", "HRB-001", "version"]):
        p = subprocess.run([BIN, *args, "-c", daemon.config_path], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and "usage: incubatord" in p.stderr, (args, p)
    assert sql.execute("SELECT count(*) FROM tokens").fetchone()[0] == before
