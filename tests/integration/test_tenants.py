"""Tenants: the profile PUT (create 201 / update 200 / no-op), reading and
listing, the dates and credit-code rules, warnings, frozen history, scope, and
every kind of bad input, each refused with its documented status, a
problem+json naming the field, and the database left as it was."""

import calendar
import datetime
import threading

import pytest

from harness import MAX_BODY_BYTES, assert_problem
from ingestlib import (PUBLISHED_CODES, USCC_CHARSET, Unchanged, audit_count, dumps,  # noqa: F401
                       freeze_until, hrb, iso, other, put_tenant, raw_put, refuse_all, tenant_body, today, uscc)

PATH = "/v1/incubators/HRB-001/tenants"


def add_months(d, months):
    """PostgreSQL's date + interval 'n months': the same day, or the month's last."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return datetime.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


# ---- create, read, update ----

def test_create_returns_201_with_location_and_the_tenant(hrb, sql):
    body = tenant_body(1)
    r = hrb.put(f"{PATH}/T-0001", body)
    assert r.status == 201, r
    assert r.header("Location") == f"{PATH}/T-0001"
    t = r.json()
    for k, v in body.items():
        assert t[k] == v, k
    assert t["external_id"] == "T-0001"
    assert t["incubator"] == "HRB-001"
    assert t["status"] == "incubating"
    assert t["graduated_on"] is None and t["graduation_basis"] is None
    assert t["exited_on"] is None and t["exit_reason"] is None
    assert t["area_m2"] == 0
    # admitted 2025-06-01 + 48 months (electronic_information is not an extended field)
    assert t["incubation_limit_on"] == "2029-06-01"
    assert t["warnings"] == []
    assert hrb.get(f"{PATH}/T-0001").json() == t
    row = sql.execute("SELECT name, credit_code, founded_on, admitted_on, field, status "
                      "FROM tenants WHERE external_id = 'T-0001'").fetchone()
    assert row == (body["name"], body["credit_code"], datetime.date(2024, 3, 1),
                   datetime.date(2025, 6, 1), "electronic_information", "incubating")
    assert sql.execute("SELECT year, revenue_fen FROM tenant_revenues").fetchall() == [
        (2025, 320000000)]
    assert sql.execute("SELECT summary FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0] \
        == f"admitted tenant T-0001 ({body['credit_code']})"


def test_update_returns_200_and_replaces_the_whole_profile(hrb, sql):
    assert put_tenant(hrb, "T-0001").status == 201
    body = tenant_body(1, name="新名字科技有限公司", field="biomedicine",
                       annual_revenue_fen={"2024": 1, "2025": 2})
    # Optional fields left out become null.
    for k in ("tech_certified_on", "founder_origin", "listed_on"):
        del body[k]
    r = hrb.put(f"{PATH}/T-0001", body)
    assert r.status == 200, r
    assert r.header("Location") is None
    t = r.json()
    assert t["name"] == "新名字科技有限公司"
    assert t["field"] == "biomedicine"
    assert t["tech_certified_on"] is None and t["founder_origin"] is None
    assert t["listed_on"] is None
    assert t["annual_revenue_fen"] == {"2024": 1, "2025": 2}
    # biomedicine has the extended limit: 60 months
    assert t["incubation_limit_on"] == "2030-06-01"
    assert sql.execute("SELECT year, revenue_fen FROM tenant_revenues ORDER BY year").fetchall() \
        == [(2024, 1), (2025, 2)]
    body["annual_revenue_fen"] = None
    assert hrb.put(f"{PATH}/T-0001", body).json()["annual_revenue_fen"] is None
    assert sql.execute("SELECT count(*) FROM tenant_revenues").fetchone()[0] == 0
    assert sql.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1


def test_same_profile_again_is_a_no_op(hrb, sql):
    body = tenant_body(1, high_tech_certified_on="2025-10-01", listed_on="2025-11-01")
    assert hrb.put(f"{PATH}/T-0001", body).status == 201
    before = sql.execute("SELECT * FROM tenants").fetchall()
    audits = audit_count(sql)
    # The same document, keys in another order: 200, nothing written.
    reordered = dict(reversed(list(body.items())))
    r = hrb.put(f"{PATH}/T-0001", reordered)
    assert r.status == 200, r
    assert r.header("Location") is None
    assert sql.execute("SELECT * FROM tenants").fetchall() == before  # updated_at too
    assert audit_count(sql) == audits
    # No revenue and an empty revenue map are the same profile.
    body["annual_revenue_fen"] = None
    assert hrb.put(f"{PATH}/T-0001", body).status == 200
    audits = audit_count(sql)
    body["annual_revenue_fen"] = {}
    assert hrb.put(f"{PATH}/T-0001", body).status == 200
    assert audit_count(sql) == audits
    # One changed field is a change.
    body["name"] = "另一个名字"
    assert hrb.put(f"{PATH}/T-0001", body).status == 200
    assert audit_count(sql) == audits + 1


def test_concurrent_first_puts_of_one_tenant_make_one_tenant(hrb, sql):
    results = []

    def put():
        results.append(put_tenant(hrb, "T-RACE", 7).status)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 7 + [201]
    assert sql.execute("SELECT count(*) FROM tenants").fetchone()[0] == 1
    assert sql.execute("SELECT count(*) FROM audit_log WHERE summary LIKE '%T-RACE%'") \
        .fetchone()[0] == 1


def test_get_unknown_tenant_is_404(hrb, other):
    assert put_tenant(other, "T-0001").status == 201
    assert_problem(hrb.get(f"{PATH}/T-0001"), 404)  # it is HRB-002's tenant
    assert_problem(hrb.get(f"{PATH}/T-NOPE"), 404)
    assert_problem(hrb.get(f"{PATH}/-bad-id"), 404)
    assert_problem(hrb.get(f"{PATH}/" + "A" * 65), 404)


# ---- listing ----

def test_list_filters_by_status_and_pages_in_external_id_order(hrb):
    ids = [f"T-{i:02d}" for i in (5, 1, 9, 3, 7, 2, 8)]
    for n, ext in enumerate(ids):
        assert put_tenant(hrb, ext, n).status == 201
    assert hrb.post(f"{PATH}/T-03/graduation", {
        "graduated_on": "2025-10-01", "basis": "investment",
        "evidence": {"investment_total_fen": 500000000}}).status == 200
    assert hrb.post(f"{PATH}/T-08/exit", {"exited_on": "2025-10-02",
                                          "reason": "closed"}).status == 200
    got = hrb.get(PATH).json()
    assert [t["external_id"] for t in got["items"]] == sorted(ids)
    assert got["next_cursor"] is None
    by_status = {s: [t["external_id"] for t in hrb.get(f"{PATH}?status={s}").json()["items"]]
                 for s in ("incubating", "graduated", "exited")}
    assert by_status == {"incubating": ["T-01", "T-02", "T-05", "T-07", "T-09"],
                         "graduated": ["T-03"], "exited": ["T-08"]}
    # Pages of 2, following next_cursor to the end.
    seen, cursor = [], None
    while True:
        q = f"{PATH}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = hrb.get(q).json()
        assert len(page["items"]) <= 2
        seen += [t["external_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids)
    page = hrb.get(f"{PATH}?status=incubating&limit=3").json()
    assert [t["external_id"] for t in page["items"]] == ["T-01", "T-02", "T-05"]
    page = hrb.get(f"{PATH}?status=incubating&limit=3&cursor={page['next_cursor']}").json()
    assert [t["external_id"] for t in page["items"]] == ["T-07", "T-09"]
    assert page["next_cursor"] is None


@pytest.mark.parametrize("query,field", [
    ("status=alive", "status"), ("status=", "status"), ("limit=0", "limit"),
    ("limit=501", "limit"), ("limit=x", "limit"), ("cursor=***", "cursor"),
    ("cursor=bm90LWEta2V5", None), ("sort=name", "sort"), ("status=exited&status=exited", "status"),
])
def test_list_with_a_bad_query_is_400(hrb, query, field):
    if query.startswith("cursor=bm90"):
        # a well-formed cursor this API never issued still decodes: it just names a key
        assert hrb.get(f"{PATH}?{query}").status == 200
        return
    assert_problem(hrb.get(f"{PATH}?{query}"), 400, field)


# ---- dates and credit codes ----

def test_dates_after_tomorrow_are_422_and_tomorrow_is_accepted(hrb, sql):
    tomorrow = today() + datetime.timedelta(days=1)
    later = tomorrow + datetime.timedelta(days=1)
    for f in ("founded_on", "admitted_on", "tech_certified_on", "high_tech_certified_on",
              "listed_on"):
        body = tenant_body(1, **{f: iso(later)})
        if f == "founded_on":
            body["admitted_on"] = iso(later)
        with Unchanged(sql):
            p = assert_problem(hrb.put(f"{PATH}/T-0001", body), 422, f)
        assert "tomorrow" in p["errors"][0]["message"]
    body = tenant_body(1, founded_on=iso(tomorrow), admitted_on=iso(tomorrow),
                       tech_certified_on=iso(tomorrow), high_tech_certified_on=iso(tomorrow),
                       listed_on=iso(tomorrow))
    assert hrb.put(f"{PATH}/T-0001", body).status == 201


def test_admission_before_founding_is_422(hrb, sql):
    with Unchanged(sql):
        assert_problem(put_tenant(hrb, "T-0001", founded_on="2025-06-02",
                                  admitted_on="2025-06-01"), 422, "admitted_on")
    # the same day is fine
    assert put_tenant(hrb, "T-0001", founded_on="2025-06-01", admitted_on="2025-06-01").status \
        == 201


def test_published_credit_codes_are_accepted(hrb):
    for n, code in enumerate(PUBLISHED_CODES):
        r = put_tenant(hrb, f"P-{n}", n, credit_code=code)
        assert r.status == 201, r
        assert r.json()["credit_code"] == code


def test_every_single_character_corruption_of_a_credit_code_is_422(hrb, sql):
    code = PUBLISHED_CODES[0]
    corruptions = [code[:i] + c + code[i + 1:]
                   for i in range(18) for c in USCC_CHARSET if c != code[i]]
    assert len(corruptions) == 18 * 30
    # characters outside the alphabet, and lower case
    corruptions += [code[:i] + c + code[i + 1:] for i in (0, 8, 17) for c in "IOSVZ*a"]
    corruptions += [code.lower(), code[:8] + code[8:].lower(), code[:-1], code + "0", "", " " + code[1:]]
    with Unchanged(sql):
        for bad in corruptions:
            r = put_tenant(hrb, "T-0001", credit_code=bad)
            assert r.status == 422, (bad, r)
            assert [e["field"] for e in r.json()["errors"]] == ["credit_code"], (bad, r)


# ---- the bad-input matrix ----

VALID = tenant_body(1)


def with_(**over):
    b = dict(VALID)
    b.update(over)
    return b


def without(key):
    b = dict(VALID)
    del b[key]
    return b


BAD_PUTS = [
    # (case id, body: dict (sent as JSON) or bytes (sent as is), status, field)
    ("malformed", b'{"name": "x", ', 400, None),
    ("trailing-garbage", dumps(VALID).encode() + b"}", 400, None),
    ("not-utf8", b'{"name": "\xff\xfe"}', 400, None),
    ("duplicate-key", dumps(VALID)[:-1].encode() + b', "name": "again"}', 400, "name"),
    ("array-body", b"[]", 422, "(body)"),
    ("string-body", b'"x"', 422, "(body)"),
    ("empty-body", b"", 400, None),
    ("name-number", with_(name=5), 422, "name"),
    ("name-empty", with_(name=""), 422, "name"),
    ("name-blank", with_(name="   "), 422, "name"),
    ("name-too-long", with_(name="名" * 201), 422, "name"),
    ("name-control", with_(name="a\u0007b"), 422, "name"),
    ("credit-number", with_(credit_code=913501), 422, "credit_code"),
    ("credit-lower", with_(credit_code=PUBLISHED_CODES[0].lower()), 422, "credit_code"),
    ("credit-check", with_(credit_code=PUBLISHED_CODES[0][:-1] + "X"), 422, "credit_code"),
    ("founded-number", with_(founded_on=20240301), 422, "founded_on"),
    ("founded-feb30", with_(founded_on="2026-02-30"), 422, "founded_on"),
    ("founded-month13", with_(founded_on="2026-13-01"), 422, "founded_on"),
    ("founded-short", with_(founded_on="2024-3-1"), 422, "founded_on"),
    ("founded-datetime", with_(founded_on="2024-03-01T00:00:00Z"), 422, "founded_on"),
    ("admitted-feb30", with_(admitted_on="2026-02-30"), 422, "admitted_on"),
    ("admitted-month13", with_(admitted_on="2026-13-01"), 422, "admitted_on"),
    ("admitted-1899", with_(admitted_on="1899-12-31"), 422, "admitted_on"),
    ("tech-feb30", with_(tech_certified_on="2026-02-30"), 422, "tech_certified_on"),
    ("high-tech-month13", with_(high_tech_certified_on="2026-13-01"), 422,
     "high_tech_certified_on"),
    ("listed-bool", with_(listed_on=True), 422, "listed_on"),
    ("field-wrong", with_(field="software"), 422, "field"),
    ("field-case", with_(field="Biomedicine"), 422, "field"),
    ("field-null", with_(field=None), 422, "field"),
    ("origin-wrong", with_(founder_origin="alien"), 422, "founder_origin"),
    ("origin-number", with_(founder_origin=1), 422, "founder_origin"),
    ("revenue-array", with_(annual_revenue_fen=[1]), 422, "annual_revenue_fen"),
    ("revenue-year", with_(annual_revenue_fen={"25": 1}), 422, "annual_revenue_fen.25"),
    ("revenue-string", with_(annual_revenue_fen={"2025": "1"}), 422, "annual_revenue_fen.2025"),
    ("revenue-real", with_(annual_revenue_fen={"2025": 1.5}), 422, "annual_revenue_fen.2025"),
    ("revenue-negative", with_(annual_revenue_fen={"2025": -1}), 422, "annual_revenue_fen.2025"),
    ("revenue-nan-like", with_(annual_revenue_fen={"2025": "NaN"}), 422,
     "annual_revenue_fen.2025"),
    ("unknown-field", with_(status="graduated"), 422, "status"),
    ("unknown-external-id", with_(external_id="T-0001"), 422, "external_id"),
    ("unknown-case", with_(Name="x"), 422, "Name"),
    ("missing-name", without("name"), 422, "name"),
    ("missing-credit", without("credit_code"), 422, "credit_code"),
    ("missing-founded", without("founded_on"), 422, "founded_on"),
    ("missing-admitted", without("admitted_on"), 422, "admitted_on"),
    ("missing-field", without("field"), 422, "field"),
    ("null-name", with_(name=None), 422, "name"),
    ("admitted-before-founded", with_(admitted_on="2024-02-29"), 422, "admitted_on"),
    ("tech-before-founded", with_(tech_certified_on="2024-02-29"), 422, "tech_certified_on"),
]


@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
def test_bad_put_is_refused_and_changes_nothing(hrb, sql, existing):
    if existing:
        assert put_tenant(hrb, "T-0001").status == 201
    refuse_all(hrb, sql, "PUT", f"{PATH}/T-0001", BAD_PUTS)


def test_body_limit_is_413_one_byte_over_and_not_at_it(hrb, sql):
    limit = MAX_BODY_BYTES
    head = b'{"name": "'
    at_limit = head + b"x" * (limit - len(head) - 2) + b'"}'
    assert len(at_limit) == limit
    with Unchanged(sql):
        # Read, parsed and refused for what it says (a name that long), not for its size.
        assert_problem(raw_put(hrb, f"{PATH}/T-0001", at_limit), 422, "name")
        over = head + b"x" * (limit - len(head) - 1) + b'"}'
        assert len(over) == limit + 1
        assert_problem(raw_put(hrb, f"{PATH}/T-0001", over), 413)


def test_wrong_media_type_is_415(hrb, sql):
    with Unchanged(sql):
        r = hrb.daemon.request("PUT", f"{PATH}/T-0001", token=hrb.token,
                               body=dumps(VALID), content_type="text/plain")
        assert_problem(r, 415)
        r = hrb.daemon.request("PUT", f"{PATH}/T-0001", token=hrb.token,
                               body=dumps(VALID), content_type=None)
        assert_problem(r, 415)


# ---- scope ----

def test_scope_of_incubator_tokens(admin, hrb, other, sql):
    assert put_tenant(other, "T-0001").status == 201
    with Unchanged(sql):
        for path in ("/v1/incubators/HRB-002/tenants/T-0001", "/v1/incubators/HRB-404/tenants/T-0001"):
            assert_problem(hrb.put(path, VALID), 403)
            assert_problem(hrb.get(path), 403)
            assert_problem(hrb.post(path + "/graduation", {"graduated_on": "2025-10-01",
                                                            "basis": "high_tech"}), 403)
            assert_problem(hrb.post(path + "/exit", {"exited_on": "2025-10-01",
                                                      "reason": "closed"}), 403)
        assert_problem(hrb.get("/v1/incubators/HRB-002/tenants"), 403)
        assert_problem(hrb.get("/v1/incubators/HRB-404/tenants"), 403)
        # no token, an unknown token, a revoked token
        for token in (None, "not-a-token", "Bearer"):
            r = hrb.daemon.request("PUT", f"{PATH}/T-0009", token=token, json_body=VALID)
            assert_problem(r, 401)
            assert r.header("WWW-Authenticate").startswith("Bearer")
        r = hrb.daemon.request("GET", PATH, headers={"Authorization": "Basic eDp5"})
        assert_problem(r, 401)
        for method, path, body in (
                ("GET", f"{PATH}/T-0009", None), ("GET", PATH, None),
                ("POST", f"{PATH}/T-0009/graduation", {"graduated_on": "2025-10-01",
                                                       "basis": "high_tech"}),
                ("POST", f"{PATH}/T-0009/exit", {"exited_on": "2025-10-01", "reason": "closed"})):
            assert_problem(hrb.daemon.request(method, path, json_body=body), 401)
    # The admin may do everything, and finds what does not exist.
    assert admin.put(f"{PATH}/T-0009", VALID).status == 201
    assert admin.get("/v1/incubators/HRB-002/tenants/T-0001").status == 200
    assert_problem(admin.put("/v1/incubators/HRB-404/tenants/T-0001", VALID), 404)
    assert_problem(admin.get("/v1/incubators/HRB-404/tenants"), 404)
    # Revoked: fails from the next request on.
    assert admin.delete(f"/v1/tokens/{hrb.token_id}").status == 204
    assert_problem(hrb.get(PATH), 401)


# ---- warnings ----

def test_warnings_are_shown_stored_and_never_reject(hrb, other, sql):
    t = today()
    # entry_age: founded more than 24 months before admission (the boundary is not).
    r = put_tenant(hrb, "T-AGE", 1, founded_on="2022-01-01", admitted_on="2024-01-02")
    assert r.status == 201
    assert [w["code"] for w in r.json()["warnings"]] == ["entry_age"]
    assert put_tenant(hrb, "T-AGE-OK", 2, founded_on="2022-01-01",
                      admitted_on="2024-01-01").json()["warnings"] == []
    # The warnings of the moment are kept in the audit record of the write.
    details = sql.execute("SELECT details FROM audit_log WHERE summary LIKE '%%T-AGE %%'") \
        .fetchone()[0]
    assert [w["code"] for w in details["warnings"]] == ["entry_age"]

    # overdue: still incubating after admission + 48 months (60 for biomedicine).
    admitted = add_months(t, -49)
    r = put_tenant(hrb, "T-OLD", 3, founded_on=iso(admitted), admitted_on=iso(admitted))
    assert r.json()["incubation_limit_on"] == iso(add_months(admitted, 48))
    assert [w["code"] for w in r.json()["warnings"]] == ["overdue"]
    r = put_tenant(hrb, "T-OLD-BIO", 4, founded_on=iso(admitted), admitted_on=iso(admitted),
                   field="biomedicine")
    assert r.json()["incubation_limit_on"] == iso(add_months(admitted, 60))
    assert r.json()["warnings"] == []
    # On the limit day itself it is not overdue yet.
    admitted = add_months(t, -48)
    if add_months(admitted, 48) == t:
        assert put_tenant(hrb, "T-EDGE", 5, founded_on=iso(admitted),
                          admitted_on=iso(admitted)).json()["warnings"] == []

    # duplicate_enterprise: one credit code incubating at two incubators at once.
    code = uscc(99)
    assert put_tenant(hrb, "T-DUP", 99).json()["warnings"] == []
    r = put_tenant(other, "X-DUP", 99)
    assert r.status == 201
    assert [w["code"] for w in r.json()["warnings"]] == ["duplicate_enterprise"]
    assert "HRB-001" in r.json()["warnings"][0]["message"]
    got = hrb.get(f"{PATH}/T-DUP").json()
    assert [w["code"] for w in got["warnings"]] == ["duplicate_enterprise"]
    assert code in got["warnings"][0]["message"]
    # Once one of them has left incubation, neither warns.
    assert other.post("/v1/incubators/HRB-002/tenants/X-DUP/exit",
                      {"exited_on": "2025-07-01", "reason": "relocated"}).status == 200
    assert hrb.get(f"{PATH}/T-DUP").json()["warnings"] == []
    assert other.get("/v1/incubators/HRB-002/tenants/X-DUP").json()["warnings"] == []

    # Several at once, in code order.
    admitted = add_months(t, -50)
    founded = add_months(admitted, -30)
    r = put_tenant(other, "X-ALL", 98, founded_on=iso(founded), admitted_on=iso(admitted))
    assert put_tenant(hrb, "T-ALL", 98, founded_on=iso(founded), admitted_on=iso(admitted)) \
        .status == 201
    codes = [w["code"] for w in hrb.get(f"{PATH}/T-ALL").json()["warnings"]]
    assert codes == ["duplicate_enterprise", "entry_age", "overdue"]


# ---- frozen history ----

@pytest.mark.parametrize("field,old,new,status", [
    ("founded_on", "2024-03-01", "2024-03-02", 409),        # old date frozen
    ("founded_on", "2024-03-01", "2024-03-01", 200),        # unchanged: fine
    ("admitted_on", "2025-06-01", "2025-11-01", 409),       # old frozen, new not
    ("admitted_on", "2025-06-01", "2025-10-31", 409),       # both frozen
    ("tech_certified_on", "2025-09-01", None, 409),
    ("tech_certified_on", None, "2025-10-31", 409),         # new on the frozen day
    ("tech_certified_on", None, "2025-11-01", 200),         # new after it
    ("tech_certified_on", "2025-11-02", "2025-11-01", 200),  # both after it
    ("tech_certified_on", "2025-11-02", "2025-10-15", 409),  # new before it
    ("high_tech_certified_on", None, "2025-10-01", 409),
    ("high_tech_certified_on", "2025-12-01", None, 200),
])
def test_frozen_history_dates(hrb, sql, field, old, new, status):
    body = tenant_body(1, **{field: old})
    assert hrb.put(f"{PATH}/T-0001", body).status == 201
    freeze_until(sql, "2025-10-31")
    body[field] = new
    body["name"] = "改个名字"
    if status == 409:
        with Unchanged(sql):
            p = assert_problem(hrb.put(f"{PATH}/T-0001", body), 409)
        assert "2025-10-31" in p["detail"]
    else:
        r = hrb.put(f"{PATH}/T-0001", body)
        assert r.status == 200, r
        assert r.json()[field] == new


def test_frozen_history_allows_creation_and_other_fields(hrb, sql):
    freeze_until(sql, "2025-10-31")
    assert put_tenant(hrb, "T-0001", founded_on="2020-01-01", admitted_on="2020-02-01",
                      tech_certified_on="2021-01-01").status == 201
    r = put_tenant(hrb, "T-0001", founded_on="2020-01-01", admitted_on="2020-02-01",
                   tech_certified_on="2021-01-01", name="新名", field="aerospace",
                   listed_on="2025-01-01", annual_revenue_fen={"2023": 5})
    assert r.status == 200, r
    assert r.json()["field"] == "aerospace"


# ---- profile changes after a status change ----

def test_profile_dates_must_stay_consistent_with_graduation_and_exit(hrb, sql):
    assert put_tenant(hrb, "T-G", 1, high_tech_certified_on="2025-10-01").status == 201
    assert hrb.post(f"{PATH}/T-G/graduation", {"graduated_on": "2025-10-15",
                                               "basis": "high_tech"}).status == 200
    with Unchanged(sql):
        assert_problem(put_tenant(hrb, "T-G", 1, high_tech_certified_on="2025-10-16"), 422,
                       "high_tech_certified_on")
        assert_problem(put_tenant(hrb, "T-G", 1, high_tech_certified_on=None), 422,
                       "high_tech_certified_on")
        assert_problem(put_tenant(hrb, "T-G", 1, high_tech_certified_on="2025-10-01",
                                  admitted_on="2025-10-16"), 422, "admitted_on")
    r = put_tenant(hrb, "T-G", 1, high_tech_certified_on="2025-10-15")
    assert r.status == 200 and r.json()["status"] == "graduated"
    assert put_tenant(hrb, "T-X", 2).status == 201
    assert hrb.post(f"{PATH}/T-X/exit", {"exited_on": "2025-08-01",
                                         "reason": "expelled"}).status == 200
    with Unchanged(sql):
        assert_problem(put_tenant(hrb, "T-X", 2, admitted_on="2025-08-02"), 422, "admitted_on")
    # A profile change leaves the status alone.
    r = put_tenant(hrb, "T-X", 2, name="退出后改名")
    assert r.status == 200
    assert (r.json()["status"], r.json()["exited_on"]) == ("exited", "2025-08-01")
