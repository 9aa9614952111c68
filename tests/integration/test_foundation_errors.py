"""API.md's error table, every status produced for real by the real daemon,
each as problem+json (503 is in test_foundation_database.py), and bad input
never changing the database."""

import json
import socket

from harness import (HARD_BODY_BYTES, INCUBATOR, MAX_BODY_BYTES, assert_problem, create_incubator, create_token, incubator_body,
                     run_cli)

ADMIN_ENDPOINTS = [
    ("POST", "/v1/incubators", INCUBATOR),
    ("GET", "/v1/incubators", None),
    ("PATCH", "/v1/incubators/HRB-001", {"name": "x"}),
    ("POST", "/v1/incubators/HRB-001/tokens", {"name": "x"}),
    ("GET", "/v1/incubators/HRB-001/tokens", None),
    ("DELETE", "/v1/tokens/1", None),
    ("GET", "/v1/audit", None),
]


def problem_type(p):
    return p["type"].rsplit(":", 1)[1]


# ---- 400 ----

MALFORMED_JSON = [
    b"{", b"", b"{\"code\": }", b"{} x", b"[1,]", b"{\"code\": \"HRB-001\",}", b"nul",
    b"{\"name\": \"\xff\xfe\"}", b"{\"a\": 1e99999}", b"{'code': 'x'}", b"\xef\xbb\xbf{}",
]


def test_400_malformed_json(admin, unchanged):
    with unchanged():
        for body in MALFORMED_JSON:
            r = admin.daemon.request("POST", "/v1/incubators", token=admin.token, body=body)
            assert r.status == 400, (body, r)
            assert problem_type(assert_problem(r, 400)) == "bad-request"


def test_400_duplicate_key(admin, unchanged):
    text = json.dumps(incubator_body())[:-1] + ', "code": "HRB-002"}'
    nested = b'{"name": "x", "as_of": {"a": 1, "a": 2}}'
    with unchanged():
        p = assert_problem(admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                                body=text), 400)
        assert "duplicate" in p["detail"] and "code" in p["detail"]
        assert_problem(admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                            body=nested), 400)


BAD_QUERIES = [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"), ("limit=", "limit"),
    ("limit=1.5", "limit"), ("limit=-1", "limit"), ("bogus=1", "bogus"),
    ("limit=1&limit=2", "limit"), ("cursor=%21%21", "cursor"), ("cursor=" + "A" * 201, "cursor"),
]


def test_400_bad_query_parameter(admin):
    for query, field in BAD_QUERIES:
        r = admin.get(f"/v1/incubators?{query}")
        assert r.status == 400, (query, r)
        assert problem_type(assert_problem(r, 400, field=field)) == "bad-request"
    assert admin.get("/v1/incubators?limit=500").status == 200
    assert admin.get("/v1/incubators?limit=1").status == 200


def test_400_query_on_a_route_without_query(admin):
    create_incubator(admin)
    assert_problem(admin.get("/v1/incubators/HRB-001?verbose=1"), 400, field="verbose")
    assert_problem(admin.get("/v1/audit?incubator=-x"), 400, field="incubator")


def test_400_malformed_query_string(admin):
    assert_problem(admin.get("/v1/incubators?%zz"), 400)


# ---- 401 ----

def assert_401(r, presented):
    p = assert_problem(r, 401)
    assert problem_type(p) == "unauthorized"
    challenge = r.header("WWW-Authenticate")
    assert challenge is not None and challenge.startswith("Bearer"), r.headers
    assert ('error="invalid_token"' in challenge) == presented, challenge
    return p


def test_401_without_token(daemon, unchanged):
    with unchanged():
        for method, path, body in ADMIN_ENDPOINTS + [("GET", "/v1/incubators/HRB-001", None)]:
            assert_401(daemon.request(method, path, json_body=body), presented=False)


def test_401_bad_tokens(daemon, admin, unchanged):
    create_incubator(admin)
    inc = create_token(admin, "HRB-001")
    revoked = create_token(admin, "HRB-001", "old")
    assert admin.delete(f"/v1/tokens/{revoked['id']}").status == 204
    well_formed_unknown = "ikd_" + "A" * 43
    with unchanged():
        for path in ("/v1/incubators", "/v1/incubators/HRB-001"):
            assert_401(daemon.request("GET", path, headers={"Authorization": "Basic YTpi"}),
                       presented=False)
            assert_401(daemon.request("GET", path, headers={"Authorization": "Bearer"}),
                       presented=False)
            for bad in ("x", "ikd_short", daemon.admin_token + "A", daemon.admin_token[:-1],
                        well_formed_unknown, revoked["token"],
                        daemon.admin_token.replace("ikd_", "IKD_")):
                assert_401(daemon.request("GET", path, token=bad), presented=True)
        # A write with a bad token is refused before anything else is looked at.
        assert_401(daemon.request("POST", "/v1/incubators", token=well_formed_unknown,
                                  json_body=incubator_body("HRB-009")), presented=True)
    # The good ones still work: the 401s were about the tokens.
    assert daemon.request("GET", "/v1/incubators/HRB-001", token=inc["token"]).status == 200
    assert daemon.request("GET", "/v1/incubators", token=daemon.admin_token).status == 200


# ---- 403 ----

def test_403_incubator_token_on_admin_endpoints(daemon, admin, unchanged):
    create_incubator(admin)
    token = create_token(admin, "HRB-001")["token"]
    with unchanged():
        for method, path, body in ADMIN_ENDPOINTS:
            p = assert_problem(daemon.request(method, path, token=token, json_body=body), 403)
            assert problem_type(p) == "forbidden"


def test_403_incubator_token_on_another_incubator(daemon, admin, unchanged):
    create_incubator(admin, "HRB-001")
    create_incubator(admin, "HRB-002")
    a = create_token(admin, "HRB-001")["token"]
    assert daemon.request("GET", "/v1/incubators/HRB-001", token=a).status == 200
    with unchanged():
        # B exists, B does not exist, B differs only in case: 403 all the same,
        # so a token cannot probe which incubators exist.
        for other in ("HRB-002", "NOPE", "hrb-001"):
            p = assert_problem(daemon.request("GET", f"/v1/incubators/{other}", token=a), 403)
            assert problem_type(p) == "forbidden"


# ---- 404 ----

# "/" is the console's (a redirect to /console/, see test_console_files.py).
UNKNOWN_ROUTES = ["/nope", "/v1", "/v1/nope", "/v1/incubators/", "/v1/incubators/HRB-001/nope",
                  "/v1/incubators/-bad", "/v1/tokens/abc", "/v1/tokens/0", "/healthz/",
                  "/v1/incubators/" + "H" * 33]


def test_404_unknown_route(daemon):
    for path in UNKNOWN_ROUTES:
        # The route is looked up before the token: none is needed to learn it is not there.
        for token in (None, daemon.admin_token):
            r = daemon.request("GET", path, token=token)
            assert r.status == 404, (path, r)
            assert problem_type(assert_problem(r, 404)) == "not-found"


def test_404_unknown_incubator_and_token(admin, unchanged):
    with unchanged():
        for r in (admin.get("/v1/incubators/NOPE"),
                  admin.patch("/v1/incubators/NOPE", {"name": "x"}),
                  admin.post("/v1/incubators/NOPE/tokens", {"name": "x"}),
                  admin.get("/v1/incubators/NOPE/tokens"),
                  admin.get("/v1/audit?incubator=NOPE"),
                  admin.delete("/v1/tokens/999999")):
            p = assert_problem(r, 404)
            assert problem_type(p) == "not-found"


def test_404_code_is_case_sensitive_in_paths(admin):
    create_incubator(admin, "HRB-001")
    assert admin.get("/v1/incubators/HRB-001").status == 200
    assert_problem(admin.get("/v1/incubators/hrb-001"), 404)


# ---- 405 ----

NOT_ALLOWED = [
    ("DELETE", "/v1/incubators", "POST, GET, HEAD"),
    ("PUT", "/v1/incubators", "POST, GET, HEAD"),
    ("PUT", "/v1/incubators/HRB-001", "GET, PATCH, HEAD"),
    ("DELETE", "/v1/incubators/HRB-001", "GET, PATCH, HEAD"),
    ("PATCH", "/v1/incubators/HRB-001/tokens", "POST, GET, HEAD"),
    ("GET", "/v1/tokens/7", "DELETE"),
    ("POST", "/v1/audit", "GET, HEAD"),
    ("POST", "/healthz", "GET, HEAD"),
    ("OPTIONS", "/v1/incubators", "POST, GET, HEAD"),
    ("TRACE", "/metrics", "GET, HEAD"),
]


def test_405_with_allow(daemon):
    for method, path, allow in NOT_ALLOWED:
        for token in (None, daemon.admin_token):
            r = daemon.request(method, path, token=token)
            assert r.status == 405, (method, path, r)
            assert problem_type(assert_problem(r, 405)) == "method-not-allowed"
            assert r.header("Allow") == allow, (method, path, r.headers)


def test_head_is_get_without_a_body(daemon, admin):
    create_incubator(admin)
    r = daemon.request("HEAD", "/healthz")
    assert r.status == 200 and r.body == b""
    r = daemon.request("HEAD", "/v1/incubators/HRB-001", token=admin.token)
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Type") == "application/json"
    r = daemon.request("HEAD", "/v1/incubators/HRB-001")
    assert r.status == 401 and r.body == b""


def test_connect_is_answered_with_an_end(daemon):
    # evhttp sends no Content-Length to CONNECT by itself: the client must
    # still see where the answer ends, not wait for the idle timeout.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=3) as s:
        s.sendall(b"CONNECT /v1/incubators HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        status = f.readline()
        assert status.split()[1] in (b"404", b"405"), status
        headers = {}
        for line in iter(f.readline, b"\r\n"):
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = f.read(int(headers["content-length"]))
        assert json.loads(body)["status"] in (404, 405)


# ---- 409 ----

def test_409_duplicate_code(admin, sql, unchanged):
    create_incubator(admin, "HRB-001")
    with unchanged():
        for code in ("HRB-001", "hrb-001", "Hrb-001"):
            p = assert_problem(admin.post("/v1/incubators", incubator_body(code)), 409)
            assert problem_type(p) == "conflict"
            assert "HRB-001" in p["detail"] or code in p["detail"]
    assert sql.execute("SELECT code FROM incubators").fetchall() == [("HRB-001",)]


# ---- 413 ----

def test_413_one_byte_over_the_limit(admin, unchanged):
    limit = MAX_BODY_BYTES
    with unchanged():
        r = admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                 body=b" " * (limit + 1))
        p = assert_problem(r, 413)
        assert problem_type(p) == "too-large"
        assert str(limit) in p["detail"]
    # Exactly at the limit it is read: valid JSON padded with spaces is accepted.
    body = json.dumps(incubator_body("HRB-413")).encode()
    r = admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                             body=body + b" " * (limit - len(body)))
    assert r.status == 201, r


def test_413_before_the_token_is_checked(daemon, unchanged):
    with unchanged():
        assert_problem(daemon.request("POST", "/v1/incubators", body=b"x" * (MAX_BODY_BYTES + 1)),
                       413)


def test_413_far_beyond_the_limit(daemon, admin, unchanged):
    # evhttp refuses this one itself, past its own limit: a bare 413, but a 413.
    with unchanged():
        r = daemon.request("POST", "/v1/incubators", token=admin.token,
                           body=b"x" * (HARD_BODY_BYTES + 1), timeout=30)
        assert r.status == 413, r
    assert admin.get("/v1/incubators").status == 200


# ---- 415 ----

def test_415_not_json(admin, unchanged):
    with unchanged():
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "application/jsonx", "application/json-patch+json", "json",
                             "text/json", None):
            r = admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                     body=json.dumps(INCUBATOR), content_type=content_type)
            assert r.status == 415, (content_type, r)
            assert problem_type(assert_problem(r, 415)) == "unsupported-media-type"
        # PATCH bodies too.
        create = admin.daemon.request("PATCH", "/v1/incubators/HRB-001", token=admin.token,
                                      body='{"name": "x"}', content_type="text/plain")
        assert_problem(create, 415)


def test_json_media_type_variants_accepted(admin):
    for i, content_type in enumerate(["application/json; charset=utf-8", "APPLICATION/JSON",
                                      "application/json ;charset=UTF-8"]):
        r = admin.daemon.request("POST", "/v1/incubators", token=admin.token,
                                 body=json.dumps(incubator_body(f"HRB-{i}")),
                                 content_type=content_type)
        assert r.status == 201, (content_type, r)


# ---- 422 ----

FIELD_ERRORS = [
    ({"code": None}, "code"),
    ({"code": "-HRB"}, "code"),
    ({"code": "H" * 33}, "code"),
    ({"code": 1}, "code"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": ["x"]}, "name"),
    ({"level": "county"}, "level"),
    ({"kind": "incubator"}, "kind"),
    ({"district": 5}, "district"),
    ({"opened_on": "2026-02-30"}, "opened_on"),
    ({"opened_on": "2026-13-01"}, "opened_on"),
    ({"opened_on": "26-01-01"}, "opened_on"),
    ({"disposable_area_m2": 0}, "disposable_area_m2"),
    ({"disposable_area_m2": -5}, "disposable_area_m2"),
    ({"disposable_area_m2": 10000000.01}, "disposable_area_m2"),
    ({"disposable_area_m2": 12000.005}, "disposable_area_m2"),
    ({"disposable_area_m2": 12000.000000001}, "disposable_area_m2"),
    ({"disposable_area_m2": "12000"}, "disposable_area_m2"),
    ({"disposable_area_m2": None}, "disposable_area_m2"),
    ({"public_service_area_m2": -0.01}, "public_service_area_m2"),
    ({"public_service_area_m2": 1.234}, "public_service_area_m2"),
    ({"public_service_area_m2": 12000.01}, "public_service_area_m2"),  # more than disposable
    ({"nmae": "typo"}, "nmae"),
    ({"extra": None}, "extra"),
]


def test_422_each_field_error_names_the_field(admin, unchanged):
    with unchanged():
        for changes, field in FIELD_ERRORS:
            body = incubator_body("HRB-422")
            for k, v in changes.items():
                if v is None and k in ("code", "disposable_area_m2"):
                    del body[k]
                else:
                    body[k] = v
            r = admin.post("/v1/incubators", body)
            assert r.status == 422, (changes, r)
            p = assert_problem(r, 422, field=field)
            assert problem_type(p) == "validation"
            # Only that field is named, with a message.
            assert [e["field"] for e in p["errors"]] == [field], (changes, p)
            assert p["errors"][0]["message"]


def test_422_every_error_at_once(admin, unchanged):
    with unchanged():
        p = assert_problem(admin.post("/v1/incubators", {
            "code": "", "name": 1, "level": "x", "kind": None, "opened_on": "2026-02-30",
            "disposable_area_m2": 0.001, "public_service_area_m2": -1, "colour": "red"}), 422)
    fields = sorted(e["field"] for e in p["errors"])
    assert fields == sorted(["code", "name", "level", "kind", "opened_on", "disposable_area_m2",
                             "public_service_area_m2", "colour"])
    assert p["detail"] == "8 fields are invalid"


def test_422_body_not_an_object(admin, unchanged):
    with unchanged():
        for body in (b"[]", b"1", b"\"x\"", b"null", b"true", b"[{}]"):
            r = admin.daemon.request("POST", "/v1/incubators", token=admin.token, body=body)
            assert r.status == 422, (body, r)
            assert_problem(r, 422, field="(body)")


def test_areas_stored_exactly(admin, sql):
    create_incubator(admin, "HRB-A", disposable_area_m2=12000.05, public_service_area_m2=0)
    got = admin.get("/v1/incubators/HRB-A").json()
    assert got["disposable_area_m2"] == 12000.05 and got["public_service_area_m2"] == 0
    assert sql.execute("SELECT disposable_area_m2::text FROM incubator_areas").fetchone()[0] \
        == "12000.05"


# ---- the whole table, no HTML, no 500 ----

def test_no_html_and_no_500_for_bad_input(daemon, admin):
    create_incubator(admin)
    inc = create_token(admin, "HRB-001")["token"]
    attempts = [
        ("GET", "/x", None, None), ("POST", "/healthz", None, None),
        ("GET", "/v1/incubators", "ikd_x", None), ("GET", "/v1/incubators", inc, None),
        ("POST", "/v1/incubators", daemon.admin_token, b"{"),
        ("POST", "/v1/incubators", daemon.admin_token, b"{\"a\":1}"),
        ("PATCH", "/v1/incubators/HRB-001", daemon.admin_token, b"{}"),
        ("PATCH", "/v1/incubators/HRB-001", daemon.admin_token, b"{\"name\": null}"),
        ("GET", "/v1/incubators?cursor=AAAA", daemon.admin_token, None),
        ("GET", "/v1/audit?cursor=____", daemon.admin_token, None),
        ("DELETE", "/v1/tokens/999999999999999999", daemon.admin_token, None),
    ]
    for method, path, token, body in attempts:
        r = daemon.request(method, path, token=token, body=body)
        assert 400 <= r.status < 500, (method, path, r)
        assert r.header("Content-Type") == "application/problem+json", (method, path, r)
        assert "<html" not in r.text.lower()
        assert_problem(r, r.status)
    # Every answer above was logged with its 4xx status, none with 5xx (the
    # readiness probes of the start-up aside).
    for line in daemon.log().splitlines():
        if '"' in line and "ms bytes=" in line and "/readyz" not in line:
            status = line.split('" ', 1)[1].split()[0]
            assert not status.startswith("5"), line


def test_cli_tokens_are_accepted_by_the_api(daemon, admin):
    create_incubator(admin)
    token = run_cli(daemon.config_path, "token", "create", "--incubator", "HRB-001",
                    "cli-made").stdout.strip()
    assert daemon.request("GET", "/v1/incubators/HRB-001", token=token).status == 200
    assert_problem(daemon.request("GET", "/v1/incubators", token=token), 403)


def test_request_ids(daemon):
    r = daemon.request("GET", "/nope", headers={"X-Request-Id": "lb-1234abcd"})
    assert r.header("X-Request-Id") == "lb-1234abcd"
    assert assert_problem(r, 404)["request_id"] == "lb-1234abcd"
    assert "req=lb-1234abcd " in daemon.log()
    # An unusable id (too short, too long, odd characters) is replaced by one of ours.
    for given in ("short", "x" * 33, "has space 123", "semi;colon;123"):
        r = daemon.request("GET", "/nope", headers={"X-Request-Id": given})
        ours = r.header("X-Request-Id")
        assert ours != given and len(ours) == 16 and int(ours, 16) >= 0
        assert assert_problem(r, 404)["request_id"] == ours
