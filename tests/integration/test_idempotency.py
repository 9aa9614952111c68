"""Idempotency keys on POST: a retry with the same key and body gets the
stored answer again (Idempotent-Replayed: true) and changes nothing; another
body, path or a key still in use is a 409; keys are per token and last 24 h;
only 2xx answers are stored, so a retry after a 4xx or 5xx runs again;
expired keys are cleaned up."""

import threading
import time

import psycopg

from harness import Api, assert_problem
from conftest import start_daemon
from ingestlib import Unchanged, audit_count, dumps, hrb, put_tenant, raw_post  # noqa: F401

PATH = "/v1/incubators/HRB-001/tenants"
GRAD = {"graduated_on": "2025-10-01", "basis": "investment",
        "evidence": {"investment_total_fen": 600000000}}


def post(api, path, body, key, raw=None):
    data = raw if raw is not None else dumps(body).encode()
    return raw_post(api, path, data, headers={"Idempotency-Key": key})


def test_a_retried_graduation_gets_the_same_answer_and_changes_nothing(hrb, sql):
    assert put_tenant(hrb, "T-1").status == 201
    r1 = post(hrb, f"{PATH}/T-1/graduation", GRAD, "grad-T-1")
    assert r1.status == 200, r1
    assert r1.header("Idempotent-Replayed") is None
    with Unchanged(sql):
        for _ in range(2):
            r = post(hrb, f"{PATH}/T-1/graduation", GRAD, "grad-T-1")
            assert r.status == 200
            assert r.body == r1.body
            assert r.header("Idempotent-Replayed") == "true"
    # Without the key the retry is a new request, and a conflict.
    assert_problem(hrb.post(f"{PATH}/T-1/graduation", GRAD), 409)


def test_a_key_reused_for_another_request_is_409(hrb, sql):
    for n in (1, 2):
        assert put_tenant(hrb, f"T-{n}", n).status == 201
    raw = dumps(GRAD).encode()
    assert post(hrb, f"{PATH}/T-1/graduation", None, "k1", raw=raw).status == 200
    with Unchanged(sql):
        # Another body (one byte of white space is another body) ...
        p = assert_problem(post(hrb, f"{PATH}/T-1/graduation", None, "k1", raw=raw + b" "), 409)
        assert "Idempotency-Key" in p["detail"]
        assert_problem(post(hrb, f"{PATH}/T-1/graduation", dict(GRAD, graduated_on="2025-10-02"),
                            "k1"), 409)
        # ... another path ...
        assert_problem(post(hrb, f"{PATH}/T-2/graduation", None, "k1", raw=raw), 409)
        assert_problem(post(hrb, f"{PATH}/T-1/exit", {"exited_on": "2025-11-01",
                                                       "reason": "closed"}, "k1"), 409)
    assert hrb.get(f"{PATH}/T-2").json()["status"] == "incubating"


def test_keys_belong_to_their_token(admin, hrb, sql):
    for n in (1, 2):
        assert put_tenant(hrb, f"T-{n}", n).status == 201
    assert post(hrb, f"{PATH}/T-1/exit", {"exited_on": "2025-11-01", "reason": "closed"},
                "same-key").status == 200
    # The admin's "same-key" is another key: a new request.
    r = post(admin, f"{PATH}/T-2/exit", {"exited_on": "2025-11-02", "reason": "other"},
             "same-key")
    assert r.status == 200 and r.header("Idempotent-Replayed") is None
    assert sql.execute("SELECT count(*) FROM idempotency_keys WHERE key = 'same-key'") \
        .fetchone()[0] == 2


def test_a_retry_after_a_4xx_runs_again(hrb, sql):
    """Only 2xx answers are stored (API.md 1.1): a request that failed wrote
    nothing, so its retry with the same key is carried out again."""
    # The tenant does not exist yet: 404, and nothing is kept for the key ...
    with Unchanged(sql):
        assert_problem(post(hrb, f"{PATH}/T-1/graduation", GRAD, "grad-T-1"), 404)
    assert sql.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    # ... so once the cause is fixed, the same request with the same key runs.
    assert put_tenant(hrb, "T-1").status == 201
    r1 = post(hrb, f"{PATH}/T-1/graduation", GRAD, "grad-T-1")
    assert r1.status == 200 and r1.header("Idempotent-Replayed") is None
    # Its 2xx answer is stored: replayed to a retry, 409 for another body.
    with Unchanged(sql):
        r = post(hrb, f"{PATH}/T-1/graduation", GRAD, "grad-T-1")
        assert (r.status, r.body, r.header("Idempotent-Replayed")) == (200, r1.body, "true")
        assert_problem(post(hrb, f"{PATH}/T-1/graduation", dict(GRAD, graduated_on="2025-10-02"),
                            "grad-T-1"), 409)


def test_rule_errors_and_invalid_bodies_are_not_stored(hrb, sql):
    assert put_tenant(hrb, "T-1").status == 201
    short = dict(GRAD, evidence={"investment_total_fen": 1})
    with Unchanged(sql):
        # A rule's 422, refused in SQL, twice: each time carried out, never replayed.
        for _ in range(2):
            r = post(hrb, f"{PATH}/T-1/graduation", short, "try-1")
            assert_problem(r, 422, "evidence.investment_total_fen")
            assert r.header("Idempotent-Replayed") is None
        # Bodies refused before they reach the database (bad JSON, bad fields).
        assert_problem(post(hrb, f"{PATH}/T-1/graduation", None, "try-1", raw=b"{"), 400)
        assert_problem(post(hrb, f"{PATH}/T-1/graduation", dict(GRAD, basis="x"), "try-1"), 422,
                       "basis")
    assert sql.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    # The corrected request may use the same key.
    r = post(hrb, f"{PATH}/T-1/graduation", GRAD, "try-1")
    assert r.status == 200 and r.header("Idempotent-Replayed") is None
    assert sql.execute("SELECT status FROM idempotency_keys WHERE key = 'try-1'").fetchone()[0] \
        == 200


def test_a_key_still_in_use_is_409(hrb, pg, db, sql):
    assert put_tenant(hrb, "T-1").status == 201
    blocker = psycopg.connect(pg.conninfo(db))  # not autocommit: holds its lock
    blocker.execute("SELECT * FROM tenants WHERE external_id = 'T-1' FOR UPDATE")
    first = {}

    def send():
        first["r"] = post(hrb, f"{PATH}/T-1/graduation", GRAD, "slow-key")

    t = threading.Thread(target=send)
    t.start()
    try:
        deadline = time.time() + 5
        while time.time() < deadline:  # until the first request waits on the row lock
            waiting = sql.execute("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE wait_event_type = 'Lock' AND query LIKE '%api.run%'"
                                  ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.02)
        assert waiting
        p = assert_problem(post(hrb, f"{PATH}/T-1/graduation", GRAD, "slow-key"), 409)
        assert "still being processed" in p["detail"]
    finally:
        blocker.rollback()
        blocker.close()
        t.join()
    assert first["r"].status == 200
    r = post(hrb, f"{PATH}/T-1/graduation", GRAD, "slow-key")
    assert r.status == 200 and r.header("Idempotent-Replayed") == "true"


def test_5xx_answers_are_not_stored(pg, db, workdir, sql):
    d = start_daemon(pg, db, workdir, "[database]\nstatement_timeout_ms = 300")
    try:
        admin = Api(d, d.admin_token)
        from ingestlib import register
        api = register(admin)
        assert put_tenant(api, "T-1").status == 201
        blocker = psycopg.connect(pg.conninfo(db))
        blocker.execute("SELECT * FROM tenants WHERE external_id = 'T-1' FOR UPDATE")
        try:
            r = post(api, f"{PATH}/T-1/graduation", GRAD, "k-503")
            assert_problem(r, 503)
            assert r.header("Retry-After")
        finally:
            blocker.rollback()
            blocker.close()
        assert sql.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
        r = post(api, f"{PATH}/T-1/graduation", GRAD, "k-503")
        assert r.status == 200 and r.header("Idempotent-Replayed") is None
    finally:
        d.stop()


def test_bad_keys_are_400(hrb, sql):
    assert put_tenant(hrb, "T-1").status == 201
    with Unchanged(sql):
        for key in ("", "a" * 256, "tab\there", "ключ".encode(), b"nul\x01"):
            r = hrb.daemon.request("POST", f"{PATH}/T-1/graduation", token=hrb.token,
                                   json_body=GRAD, headers={"Idempotency-Key": key})
            assert_problem(r, 400)
    assert post(hrb, f"{PATH}/T-1/graduation", GRAD, "~" * 255).status == 200
    # Printable ASCII includes the space.
    assert put_tenant(hrb, "T-2", 2).status == 201
    assert post(hrb, f"{PATH}/T-2/graduation", GRAD, "order 42 / retry").status == 200
    r = post(hrb, f"{PATH}/T-2/graduation", GRAD, "order 42 / retry")
    assert r.header("Idempotent-Replayed") == "true"


def test_keys_last_24_hours_and_are_cleaned_up(admin, hrb, sql, daemon):
    assert put_tenant(hrb, "T-1").status == 201
    assert put_tenant(hrb, "T-2", 2).status == 201
    assert post(hrb, f"{PATH}/T-1/exit", {"exited_on": "2025-11-01", "reason": "closed"},
                "old").status == 200
    assert post(hrb, f"{PATH}/T-2/exit", {"exited_on": "2025-11-01", "reason": "closed"},
                "recent").status == 200
    sql.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = 'old'")
    sql.execute("UPDATE idempotency_keys SET created_at = now() - interval '23 hours' "
                "WHERE key = 'recent'")
    # 23 hours on, a retry is still answered from the key ...
    r = post(hrb, f"{PATH}/T-2/exit", {"exited_on": "2025-11-01", "reason": "closed"}, "recent")
    assert r.status == 200 and r.header("Idempotent-Replayed") == "true"
    # ... 25 hours on, the key is free again: a new request (here a conflict, since T-1 left).
    r = post(hrb, f"{PATH}/T-1/exit", {"exited_on": "2025-11-02", "reason": "closed"}, "old")
    assert_problem(r, 409)
    assert r.header("Idempotent-Replayed") is None
    sql.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = 'old'")
    # The cleanup job runs soon after start: restart, and the expired key is gone.
    daemon.stop()
    daemon.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        keys = [k for (k,) in sql.execute("SELECT key FROM idempotency_keys ORDER BY key")]
        if keys == ["recent"]:
            break
        time.sleep(0.1)
    assert keys == ["recent"]
    assert "job idempotency_cleanup: done" in daemon.log()


def test_creations_replay_with_their_location(admin, sql):
    body = {"code": "HRB-009", "name": "九号孵化器", "level": "district",
            "kind": "maker_space", "disposable_area_m2": 1000}
    r1 = post(admin, "/v1/incubators", body, "create-9")
    assert r1.status == 201
    with Unchanged(sql):
        r = post(admin, "/v1/incubators", body, "create-9")
        assert (r.status, r.body, r.header("Location")) == (201, r1.body, "/v1/incubators/HRB-009")
        assert r.header("Idempotent-Replayed") == "true"
    # A token's secret is shown once, never in a replay.
    r1 = post(admin, "/v1/incubators/HRB-009/tokens", {"name": "erp"}, "tok-1")
    assert r1.status == 201 and "token" in r1.json()
    r = post(admin, "/v1/incubators/HRB-009/tokens", {"name": "erp"}, "tok-1")
    assert r.status == 201 and "token" not in r.json()
    assert r.json()["id"] == r1.json()["id"]
    assert sql.execute("SELECT count(*) FROM tokens WHERE name = 'erp'").fetchone()[0] == 1


def test_put_ignores_idempotency_keys(hrb, sql):
    """PUT is idempotent by its meaning; a key sent with it is not stored."""
    r = hrb.put(f"{PATH}/T-1", None, headers={"Idempotency-Key": "put-1"})
    assert r.status in (400, 415)  # no body at all
    from ingestlib import tenant_body
    assert hrb.put(f"{PATH}/T-1", tenant_body(1), headers={"Idempotency-Key": "put-1"}).status \
        == 201
    r = hrb.put(f"{PATH}/T-1", tenant_body(1, name="改"), headers={"Idempotency-Key": "put-1"})
    assert r.status == 200 and r.json()["name"] == "改"
    assert sql.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    assert audit_count(sql) >= 2
