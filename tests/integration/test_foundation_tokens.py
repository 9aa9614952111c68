"""Tokens end to end: creation shows the secret once, scope, the list without
secrets, last_used_at, revocation at the next request here and within a
second at another daemon on the same database (LISTEN/NOTIFY)."""

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

from harness import assert_problem, create_incubator, create_token, run_cli, wait_for


def test_create_returns_the_secret_once(admin, sql):
    create_incubator(admin)
    r = admin.post("/v1/incubators/HRB-001/tokens", {"name": "erp-sync"})
    assert r.status == 201, r
    t = r.json()
    assert set(t) >= {"id", "name", "token", "created_at"}
    assert t["name"] == "erp-sync" and t["incubator"] == "HRB-001"
    assert re.fullmatch(r"ikd_[A-Za-z0-9_-]{43}", t["token"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["created_at"])
    # Only the SHA-256 of the text is stored.
    stored = sql.execute("SELECT hash FROM tokens WHERE id = %s", (t["id"],)).fetchone()[0]
    assert bytes(stored) == hashlib.sha256(t["token"].encode()).digest()
    dump = json.dumps(sql.execute("SELECT json_agg(x) FROM (SELECT * FROM tokens) x")
                      .fetchone()[0])
    assert t["token"] not in dump
    # Never shown again: not in the list, not in a read.
    listed = admin.get("/v1/incubators/HRB-001/tokens")
    assert t["token"] not in listed.text
    assert all("token" not in i and "hash" not in i for i in listed.json()["items"])
    # Two creations never share a secret.
    assert create_token(admin, "HRB-001", "erp-sync-2")["token"] != t["token"]


def test_incubator_token_scope(daemon, admin):
    create_incubator(admin, "HRB-001")
    create_incubator(admin, "HRB-002")
    token = create_token(admin, "HRB-001")["token"]
    r = daemon.request("GET", "/v1/incubators/HRB-001", token=token)
    assert r.status == 200 and r.json()["code"] == "HRB-001"
    for path in ("/v1/incubators/HRB-002", "/v1/incubators/NOPE", "/v1/incubators",
                 "/v1/audit", "/v1/incubators/HRB-001/tokens"):
        assert_problem(daemon.request("GET", path, token=token), 403)
    assert_problem(daemon.request("PATCH", "/v1/incubators/HRB-001", token=token,
                                  json_body={"name": "mine"}), 403)


def test_token_names_are_validated(admin, unchanged):
    create_incubator(admin)
    with unchanged():
        for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"),
                            ({"name": "x", "admin": True}, "admin")):
            assert_problem(admin.post("/v1/incubators/HRB-001/tokens", body), 422, field=field)


def test_list_shows_last_used_at(daemon, admin):
    create_incubator(admin)
    used = create_token(admin, "HRB-001", "used")
    unused = create_token(admin, "HRB-001", "unused")

    def listed():
        return {i["name"]: i for i in admin.get("/v1/incubators/HRB-001/tokens").json()["items"]}
    assert listed()["used"]["last_used_at"] is None
    assert daemon.request("GET", "/v1/incubators/HRB-001", token=used["token"]).status == 200
    items = listed()
    assert items["used"]["last_used_at"] is not None
    assert items["used"]["last_used_at"] >= used["created_at"]
    assert items["unused"]["last_used_at"] is None
    assert [i["id"] for i in admin.get("/v1/incubators/HRB-001/tokens").json()["items"]] == \
        [used["id"], unused["id"]]
    # Paged like every list.
    page = admin.get("/v1/incubators/HRB-001/tokens?limit=1").json()
    assert [i["name"] for i in page["items"]] == ["used"] and page["next_cursor"]
    page = admin.get(f"/v1/incubators/HRB-001/tokens?limit=1&cursor={page['next_cursor']}").json()
    assert [i["name"] for i in page["items"]] == ["unused"] and page["next_cursor"] is None


def test_revocation_takes_effect_at_the_next_request(daemon, admin, sql):
    create_incubator(admin)
    t = create_token(admin, "HRB-001")
    daemon.wait_listening()
    # Used twice, so the second answer came from the token cache.
    for _ in range(2):
        assert daemon.request("GET", "/v1/incubators/HRB-001", token=t["token"]).status == 200
    r = admin.delete(f"/v1/tokens/{t['id']}")
    assert r.status == 204 and r.body == b""
    p = assert_problem(daemon.request("GET", "/v1/incubators/HRB-001", token=t["token"]), 401)
    assert "revoked" in p["detail"] or "unknown" in p["detail"]
    listed = admin.get("/v1/incubators/HRB-001/tokens").json()["items"][0]
    assert listed["revoked_at"] is not None
    # Revoking again changes nothing and is not audited twice.
    audits = sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert admin.delete(f"/v1/tokens/{t['id']}").status == 204
    assert sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audits
    assert_problem(admin.delete("/v1/tokens/999999"), 404)


def test_admin_can_revoke_admin_tokens_from_the_cli(daemon, admin, sql):
    other = run_cli(daemon.config_path, "token", "create", "--admin", "second").stdout.strip()
    daemon.wait_listening()
    for _ in range(2):
        assert daemon.request("GET", "/v1/incubators", token=other).status == 200
    token_id = sql.execute("SELECT id FROM tokens WHERE name = 'second'").fetchone()[0]
    run_cli(daemon.config_path, "token", "revoke", str(token_id))
    # Another process revoked it: the daemon hears it by NOTIFY, within a second.
    started = time.monotonic()
    wait_for(lambda: daemon.request("GET", "/v1/incubators", token=other).status == 401, 1.0,
             "the revoked token to be refused")
    assert time.monotonic() - started < 1.0
    assert daemon.request("GET", "/v1/incubators", token=admin.token).status == 200


def test_revocation_at_another_daemon_within_a_second(pg, db, workdir, daemons):
    first = daemons(pg, db, workdir)
    second = daemons(pg, db, workdir)
    a1 = first.admin_token
    r = first.request("POST", "/v1/incubators", token=a1,
                      json_body={"code": "HRB-001", "name": "x", "level": "district",
                                 "kind": "maker_space", "disposable_area_m2": 100})
    assert r.status == 201, r
    t = first.request("POST", "/v1/incubators/HRB-001/tokens", token=a1,
                      json_body={"name": "erp"}).json()
    first.wait_listening()
    # The first daemon has the token in its cache.
    for _ in range(3):
        assert first.request("GET", "/v1/incubators/HRB-001", token=t["token"]).status == 200
    # The second daemon revokes it.
    assert second.request("DELETE", f"/v1/tokens/{t['id']}", token=second.admin_token).status \
        == 204
    started = time.monotonic()
    while first.request("GET", "/v1/incubators/HRB-001", token=t["token"]).status == 200:
        assert time.monotonic() - started < 1.0, "the first daemon still accepts the token"
        time.sleep(0.02)
    assert time.monotonic() - started < 1.0
    assert_problem(first.request("GET", "/v1/incubators/HRB-001", token=t["token"]), 401)
    # The cache lost only that token.
    assert first.request("GET", "/v1/incubators", token=a1).status == 200


def test_revocation_committed_during_a_lookup(pg, db, daemon, admin, sql):
    """A revocation that commits while a request's token lookup waits on it.

    The lookup must not let the revoked token through, nor leave it in the
    cache: the next requests are refused."""
    create_incubator(admin)
    t = create_token(admin, "HRB-001")
    daemon.wait_listening()
    with pg.connect(db, autocommit=False) as revoker, ThreadPoolExecutor(1) as pool:
        # Revoked (and notified) in a transaction that holds the token's row...
        revoker.execute("UPDATE tokens SET revoked_at = now(), revoked_by = 'test' "
                        "WHERE id = %s", (t["id"],))
        revoker.execute("SELECT pg_notify('incubatord_tokens', %s)", (str(t["id"]),))
        # ...while the daemon's first lookup of the token waits for that row.
        pending = pool.submit(daemon.request, "GET", "/v1/incubators/HRB-001", token=t["token"])
        wait_for(lambda: sql.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%token_lookup%'").fetchone()[0] == 1, 5, "the lookup to wait")
        revoker.commit()
        assert_problem(pending.result(10), 401)
    for _ in range(3):
        assert_problem(daemon.request("GET", "/v1/incubators/HRB-001", token=t["token"]), 401)
