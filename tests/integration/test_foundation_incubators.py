"""The incubator endpoints of issue 2 item 9 end to end: PATCH with area
history, the paginated list, the audit log, and Idempotency-Key."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

from harness import assert_problem, create_incubator, create_token, incubator_body, wait_for


def areas(sql, code="HRB-001"):
    return [(str(lo), str(hi) if hi else None, str(a)) for lo, hi, a in sql.execute(
        "SELECT lower(valid), upper(valid), disposable_area_m2 FROM incubator_areas a "
        "JOIN incubators i ON i.id = a.incubator_id WHERE i.code = %s ORDER BY lower(valid)",
        (code,)).fetchall()]


def audit_rows(sql):
    return sql.execute("SELECT count(*) FROM audit_log").fetchone()[0]


# ---- PATCH ----

def test_patch_name_and_profile(admin, sql):
    before = create_incubator(admin)
    rows = audit_rows(sql)
    r = admin.patch("/v1/incubators/HRB-001", {"name": "新名字", "level": "national",
                                               "kind": "maker_space", "district": None})
    assert r.status == 200, r
    got = r.json()
    assert (got["name"], got["level"], got["kind"], got["district"]) == \
        ("新名字", "national", "maker_space", None)
    assert got["updated_at"] >= before["updated_at"] and got["created_at"] == before["created_at"]
    # What is not in the patch stays; the read agrees with the answer.
    assert got["disposable_area_m2"] == 12000 and got["opened_on"] == "2024-01-01"
    assert admin.get("/v1/incubators/HRB-001").json() == got
    assert audit_rows(sql) == rows + 1
    summary = sql.execute("SELECT summary FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "HRB-001" in summary and "name" in summary and "district" in summary
    # No area history was touched by a profile change.
    assert areas(sql) == [("2024-01-01", None, "12000.00")]


def test_patch_area_keeps_history(admin, sql):
    create_incubator(admin)
    r = admin.patch("/v1/incubators/HRB-001",
                    {"disposable_area_m2": 15000.5, "effective_on": "2025-01-01"})
    assert r.status == 200, r
    assert r.json()["disposable_area_m2"] == 15000.5  # in force today
    assert areas(sql) == [("2024-01-01", "2025-01-01", "12000.00"),
                          ("2025-01-01", None, "15000.50")]
    assert admin.patch("/v1/incubators/HRB-001", {"disposable_area_m2": 16000,
                                                  "effective_on": "2025-06-01"}).status == 200
    assert areas(sql) == [("2024-01-01", "2025-01-01", "12000.00"),
                          ("2025-01-01", "2025-06-01", "15000.50"),
                          ("2025-06-01", None, "16000.00")]
    # A change from a day in the future leaves today's area as it is.
    r = admin.patch("/v1/incubators/HRB-001", {"disposable_area_m2": 17000,
                                               "effective_on": "2999-01-01"})
    assert r.status == 200 and r.json()["disposable_area_m2"] == 16000
    assert areas(sql)[-2:] == [("2025-06-01", "2999-01-01", "16000.00"),
                               ("2999-01-01", None, "17000.00")]
    # The same day as the incubator opened replaces the whole history from there.
    assert admin.patch("/v1/incubators/HRB-001", {"disposable_area_m2": 9000,
                                                  "effective_on": "2024-01-01"}).status == 200
    assert areas(sql) == [("2024-01-01", None, "9000.00")]


def test_patch_area_needs_effective_on(admin, sql, unchanged):
    create_incubator(admin)
    with unchanged():
        p = assert_problem(admin.patch("/v1/incubators/HRB-001", {"disposable_area_m2": 15000}),
                           422, field="effective_on")
        assert "required" in p["errors"][0]["message"]
        assert_problem(admin.patch("/v1/incubators/HRB-001", {"effective_on": "2025-01-01"}),
                       422, field="effective_on")
        assert_problem(admin.patch("/v1/incubators/HRB-001",
                                   {"disposable_area_m2": 15000, "effective_on": "2023-12-31"}),
                       422, field="effective_on")
        assert_problem(admin.patch("/v1/incubators/HRB-001",
                                   {"disposable_area_m2": 15000, "effective_on": "2025-02-30"}),
                       422, field="effective_on")
        assert_problem(admin.patch("/v1/incubators/HRB-001",
                                   {"disposable_area_m2": 0, "effective_on": "2025-01-01"}),
                       422, field="disposable_area_m2")
        assert_problem(admin.patch("/v1/incubators/HRB-001", {}), 422, field="(body)")
        assert_problem(admin.patch("/v1/incubators/HRB-001", {"name": None}), 422, field="name")
        assert_problem(admin.patch("/v1/incubators/HRB-001", {"code": "HRB-002"}), 422,
                       field="code")
        assert_problem(admin.patch("/v1/incubators/HRB-001", {"opened_on": "2020-01-01"}), 422,
                       field="opened_on")
    assert areas(sql) == [("2024-01-01", None, "12000.00")]


# ---- GET list ----

def test_list_pages_in_code_order(admin):
    codes = ["b-2", "A-1", "C-3", "a-0", "D-4", "0-x"]
    for code in codes:
        create_incubator(admin, code)
    seen, cursor, pages = [], None, 0
    while True:
        r = admin.get("/v1/incubators?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [i["code"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(codes)  # byte order, stable
    assert pages == 3
    # The default page holds them all, with the whole incubator object.
    page = admin.get("/v1/incubators").json()
    assert [i["code"] for i in page["items"]] == sorted(codes) and page["next_cursor"] is None
    assert set(page["items"][0]) == {"code", "name", "level", "kind", "district", "opened_on",
                                     "closed_on", "disposable_area_m2", "public_service_area_m2",
                                     "created_at", "updated_at"}
    # A page that ends exactly at the last item says there is no next one.
    page = admin.get("/v1/incubators?limit=6").json()
    assert len(page["items"]) == 6 and page["next_cursor"] is None


def test_list_rejects_bogus_cursors(admin):
    create_incubator(admin)
    for cursor in ("!!", "AAAA", "____", "%FF", "A" * 201):
        r = admin.get(f"/v1/incubators?cursor={cursor}")
        assert r.status == 400, (cursor, r)
        assert_problem(r, 400, field="cursor")
    # An empty list is a page too.
    assert admin.get("/v1/incubators?cursor=enp6").json() == {"items": [], "next_cursor": None}


# ---- audit ----

def test_audit_records_each_accepted_write_newest_first(daemon, admin, sql):
    create_incubator(admin, "HRB-001")
    create_incubator(admin, "HRB-002")
    assert admin.patch("/v1/incubators/HRB-001", {"name": "x"}).status == 200
    token = create_token(admin, "HRB-002", "erp")
    assert admin.delete(f"/v1/tokens/{token['id']}").status == 204
    # Refused writes and reads leave no trace.
    assert admin.post("/v1/incubators", incubator_body("HRB-001")).status == 409
    assert admin.patch("/v1/incubators/HRB-001", {}).status == 422
    assert admin.get("/v1/incubators").status == 200

    items = admin.get("/v1/audit").json()["items"]
    assert len(items) == sql.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 6
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    newest = items[:5]
    assert [(i["method"], i["path"], i["incubator"]) for i in newest] == [
        ("DELETE", f"/v1/tokens/{token['id']}", "HRB-002"),
        ("POST", "/v1/incubators/HRB-002/tokens", "HRB-002"),
        ("PATCH", "/v1/incubators/HRB-001", "HRB-001"),
        ("POST", "/v1/incubators", "HRB-002"),
        ("POST", "/v1/incubators", "HRB-001"),
    ]
    assert all(i["token_name"] == "test-admin" for i in newest)
    assert all(i["summary"] and i["at"].endswith("Z") for i in items)
    # The oldest: the admin token the test made on the command line.
    assert items[-1]["method"] == "CLI" and items[-1]["incubator"] is None
    assert items[-1]["token_name"].startswith("cli:")
    # The secret of the token never reaches the audit log.
    assert token["token"] not in json.dumps(
        sql.execute("SELECT json_agg(a) FROM audit_log a").fetchone()[0])

    # Filtered by incubator; paged.
    only = admin.get("/v1/audit?incubator=HRB-001").json()["items"]
    assert [(i["method"], i["incubator"]) for i in only] == [("PATCH", "HRB-001"),
                                                            ("POST", "HRB-001")]
    first = admin.get("/v1/audit?limit=2").json()
    assert [i["id"] for i in first["items"]] == [i["id"] for i in items[:2]]
    second = admin.get(f"/v1/audit?limit=2&cursor={first['next_cursor']}").json()
    assert [i["id"] for i in second["items"]] == [i["id"] for i in items[2:4]]
    assert_problem(admin.get("/v1/audit?incubator=NOPE"), 404)
    assert_problem(admin.get("/v1/audit?cursor=enp6"), 400, field="cursor")


def test_audit_log_is_append_only(admin, sql):
    create_incubator(admin)
    import psycopg
    for statement in ("UPDATE audit_log SET summary = 'x'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        try:
            sql.execute(statement)
        except psycopg.errors.RaiseException as e:
            assert "append-only" in str(e)
        else:
            raise AssertionError(f"{statement} was allowed")


# ---- Idempotency-Key ----

def test_idempotent_replay(daemon, admin, sql):
    key = {"Idempotency-Key": "create-HRB-001-attempt"}
    first = admin.post("/v1/incubators", incubator_body(), headers=key)
    assert first.status == 201 and first.header("Idempotent-Replayed") is None
    counts = (sql.execute("SELECT count(*) FROM incubators").fetchone()[0], audit_rows(sql))
    for _ in range(2):
        again = admin.post("/v1/incubators", incubator_body(), headers=key)
        assert again.status == 201, again
        assert again.header("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        assert again.header("Location") == first.header("Location") == "/v1/incubators/HRB-001"
    # Nothing new was created or audited.
    assert (sql.execute("SELECT count(*) FROM incubators").fetchone()[0], audit_rows(sql)) \
        == counts
    # Without the key, the same request is a new one: a conflict.
    assert admin.post("/v1/incubators", incubator_body()).status == 409


def test_idempotency_key_with_another_body_or_path(admin, sql, unchanged):
    key = {"Idempotency-Key": "k1"}
    assert admin.post("/v1/incubators", incubator_body(), headers=key).status == 201
    with unchanged():
        p = assert_problem(admin.post("/v1/incubators", incubator_body("HRB-002"), headers=key),
                           409)
        assert "Idempotency-Key" in p["detail"]
        # A single byte of difference in the body counts.
        body = json.dumps(incubator_body()).encode() + b" "
        assert_problem(admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                            body=body, headers=key), 409)
        assert_problem(admin.post("/v1/incubators/HRB-001/tokens", {"name": "x"}, headers=key),
                       409)


def test_idempotency_keys_belong_to_their_token(daemon, admin, sql):
    from harness import Api, run_cli
    other = Api(daemon, run_cli(daemon.config_path, "token", "create", "--admin",
                                "other-admin").stdout.strip())
    key = {"Idempotency-Key": "shared-key"}
    assert admin.post("/v1/incubators", incubator_body("HRB-001"), headers=key).status == 201
    r = other.post("/v1/incubators", incubator_body("HRB-002"), headers=key)
    assert r.status == 201 and r.header("Idempotent-Replayed") is None


def test_refusals_are_not_replayed(admin, sql):
    """Only 2xx answers are stored (API.md 1.1): a refused request wrote
    nothing, so its retry with the same key is carried out again."""
    create_incubator(admin)
    key = {"Idempotency-Key": "dup"}
    first = admin.post("/v1/incubators", incubator_body(), headers=key)
    assert first.status == 409 and first.header("Idempotent-Replayed") is None
    again = admin.post("/v1/incubators", incubator_body(), headers=key)
    assert again.status == 409 and again.header("Idempotent-Replayed") is None
    assert again.json()["detail"] == first.json()["detail"]
    assert sql.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0] == 0
    # With the cause gone (another code), the same key makes the incubator.
    r = admin.post("/v1/incubators", incubator_body(code="HRB-002"), headers=key)
    assert r.status == 201 and r.header("Idempotent-Replayed") is None


def test_bad_idempotency_keys(admin, unchanged):
    with unchanged():
        for key in ("k" * 256, "k" * 300, "", "tab\there", "é", "nul\x01"):
            r = admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                     json_body=incubator_body(),
                                     headers={"Idempotency-Key": key.encode("utf-8")})
            assert r.status == 400, (key, r)
            assert "Idempotency-Key" in assert_problem(r, 400)["detail"]
    # 255 printable characters are a key; the space (0x20) is a printable ASCII character.
    r = admin.post("/v1/incubators", incubator_body(), headers={"Idempotency-Key": "k" * 255})
    assert r.status == 201, r
    r = admin.post("/v1/incubators", incubator_body(code="HRB-002"),
                   headers={"Idempotency-Key": "with space"})
    assert r.status == 201, r


def test_replayed_token_creation_shows_no_secret(admin, sql):
    create_incubator(admin)
    key = {"Idempotency-Key": "tok"}
    first = admin.post("/v1/incubators/HRB-001/tokens", {"name": "erp"}, headers=key)
    assert first.status == 201 and first.json()["token"].startswith("ikd_")
    again = admin.post("/v1/incubators/HRB-001/tokens", {"name": "erp"}, headers=key)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert "token" not in again.json() and again.json()["id"] == first.json()["id"]
    assert sql.execute("SELECT count(*) FROM tokens WHERE name = 'erp'").fetchone()[0] == 1
    # The stored answer never held the secret either.
    stored = sql.execute("SELECT body FROM idempotency_keys").fetchone()[0]
    assert first.json()["token"] not in stored


def test_idempotency_key_while_its_first_request_runs(pg, db, admin, sql):
    """A retry that arrives while the first request still runs gets a 409 at once."""
    key = {"Idempotency-Key": "slow"}
    # The token is known (cached) before the table is locked: its lookup reads incubators too.
    admin.daemon.wait_listening()
    assert admin.get("/v1/incubators").status == 200
    with pg.connect(db, autocommit=False) as blocker, ThreadPoolExecutor(1) as pool:
        # The registration waits for this lock; the retry's key check does not.
        blocker.execute("LOCK TABLE incubators IN ACCESS EXCLUSIVE MODE")
        first = pool.submit(admin.post, "/v1/incubators", incubator_body(), headers=key)
        wait_for(lambda: sql.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
            "'incubators'::regclass").fetchone()[0] == 1, 5, "the first request to wait")
        started = time.monotonic()
        retry = admin.post("/v1/incubators", incubator_body(), headers=key)
        assert time.monotonic() - started < 2
        p = assert_problem(retry, 409)
        assert "still being processed" in p["detail"]
        blocker.rollback()
        assert first.result(10).status == 201
    # Once the first is done, the retry is a replay.
    again = admin.post("/v1/incubators", incubator_body(), headers=key)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
