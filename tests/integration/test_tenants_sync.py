"""Bulk tenant sync, PUT /v1/incubators/{code}/tenants: created / updated /
unchanged / not_listed, the same rules and stored rows as one PUT per tenant,
all or nothing with every error named, one audit row, 5,000 tenants, scope,
and the bad-input matrix with the database read back unchanged."""

import pytest

from harness import MAX_BODY_BYTES, MAX_SYNC_BODY_BYTES, assert_problem
from ingestlib import (PUBLISHED_CODES, Unchanged, audit_count, dumps, freeze_until, hrb, other,  # noqa: F401
                       put_tenant, raw_put, refuse_all, tenant_body, uscc)

PATH = "/v1/incubators/HRB-001/tenants"


def listed(n, **over):
    """The n-th tenant of a sync body: T-000n with tenant_body(n)."""
    return dict(tenant_body(n, **over), external_id=f"T-{n:04d}")


def sync(api, tenants, code="HRB-001"):
    return api.put(f"/v1/incubators/{code}/tenants", {"tenants": tenants})


def tenant_rows(sql, code="HRB-001"):
    """Each tenant of an incubator as stored, without ids and timestamps."""
    return sql.execute(
        "SELECT t.external_id, t.name, t.credit_code, t.founded_on, t.admitted_on, t.field,"
        "       t.tech_certified_on, t.high_tech_certified_on, t.founder_origin, t.listed_on,"
        "       t.status, (SELECT json_agg(json_build_array(r.year, r.revenue_fen) ORDER BY r.year)"
        "                    FROM tenant_revenues r WHERE r.tenant_id = t.id)::text"
        "  FROM tenants t JOIN incubators i ON i.id = t.incubator_id"
        " WHERE i.code = %s ORDER BY t.external_id", (code,)).fetchall()


# ---- the answer ----

def test_sync_creates_updates_and_leaves_unchanged_and_reports_the_unlisted(hrb, sql):
    r = sync(hrb, [listed(1), listed(2), listed(3)])
    assert r.status == 200, r
    assert r.json() == {"created": 3, "updated": 0, "unchanged": 0, "not_listed": []}
    assert r.header("Content-Type") == "application/json"

    audits = audit_count(sql)
    r = sync(hrb, [listed(3), listed(1), listed(2)])
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 3, "not_listed": []}
    assert audit_count(sql) == audits, "a sync that changes nothing records nothing"

    # T-0002 changes its name, T-0004 is new, T-0003 is left out (and stays).
    r = sync(hrb, [listed(1), listed(2, name="改名后的公司"), listed(4)])
    assert r.status == 200, r
    assert r.json() == {"created": 1, "updated": 1, "unchanged": 1, "not_listed": ["T-0003"]}
    t3 = hrb.get(f"{PATH}/T-0003").json()
    assert t3["status"] == "incubating", "being left out is not an exit"
    assert hrb.get(f"{PATH}/T-0002").json()["name"] == "改名后的公司"


def test_not_listed_holds_only_incubating_tenants(hrb):
    assert sync(hrb, [listed(1), listed(2), listed(3)]).status == 200
    r = hrb.post(f"{PATH}/T-0002/exit", {"exited_on": "2025-07-01", "reason": "relocated"})
    assert r.status == 200, r
    r = hrb.post(f"{PATH}/T-0003/graduation", {"graduated_on": "2025-10-01", "basis": "investment",
                                              "evidence": {"investment_total_fen": 600000000}})
    assert r.status == 200, r
    r = sync(hrb, [])
    assert r.status == 200, r
    assert r.json() == {"created": 0, "updated": 0, "unchanged": 0, "not_listed": ["T-0001"]}


def test_sync_stores_exactly_what_single_puts_store(admin, hrb, other, sql):
    bodies = [listed(1), listed(2, high_tech_certified_on="2025-10-01", founder_origin=None,
                                annual_revenue_fen=None),
              listed(3, annual_revenue_fen={"2024": 1, "2025": 2}, listed_on="2025-12-01"),
              listed(4, founded_on="2020-01-01", tech_certified_on=None)]  # entry_age
    assert sync(hrb, bodies).status == 200
    for b in bodies:
        b = dict(b)
        ext = b.pop("external_id")
        assert other.put(f"/v1/incubators/HRB-002/tenants/{ext}", b).status == 201
    assert tenant_rows(sql, "HRB-001") == tenant_rows(sql, "HRB-002")
    for n in range(1, 5):
        a = hrb.get(f"{PATH}/T-{n:04d}").json()
        b = other.get(f"/v1/incubators/HRB-002/tenants/T-{n:04d}").json()
        for x in (a, b):
            for k in ("incubator", "created_at", "updated_at", "warnings"):
                x.pop(k)
        assert a == b
    # An update by sync replaces the whole profile as a PUT does.
    assert sync(hrb, [listed(3, annual_revenue_fen=None, listed_on=None)]).json()["updated"] == 1
    t = hrb.get(f"{PATH}/T-0003").json()
    assert t["annual_revenue_fen"] is None and t["listed_on"] is None


def test_one_audit_row_with_the_warnings(hrb, sql):
    before = audit_count(sql)
    r = sync(hrb, [listed(1), listed(2, founded_on="2020-01-01")])
    assert r.status == 200, r
    assert audit_count(sql) == before + 1
    summary, details, method, path = sql.execute(
        "SELECT summary, details, method, path FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    assert (method, path) == ("PUT", PATH)
    assert "2 created" in summary
    assert details["created"] == ["T-0001", "T-0002"]
    assert [w["code"] for w in details["warnings"]["T-0002"]] == ["entry_age"]
    assert "T-0001" not in details["warnings"]


def test_warnings_are_those_of_a_single_put(admin, hrb, other):
    """A credit code incubating elsewhere is a duplicate_enterprise, as for one PUT."""
    assert put_tenant(other, "X-1", n=7).status == 201
    assert sync(hrb, [listed(7)]).status == 200
    codes = [w["code"] for w in hrb.get(f"{PATH}/T-0007").json()["warnings"]]
    assert codes == ["duplicate_enterprise"]


# ---- all or nothing ----

def test_every_error_is_named_and_nothing_is_written(hrb, sql):
    assert sync(hrb, [listed(1)]).status == 200
    bad = [listed(1, name="新名"), listed(2, credit_code=uscc(2)[:-1] + "0"),
           listed(3, founded_on="2026-02-30"), listed(4, admitted_on="2023-01-01"),
           dict(listed(5), status="incubating")]
    with Unchanged(sql):
        p = assert_problem(sync(hrb, bad), 422)
    fields = [e["field"] for e in p["errors"]]
    assert set(fields) == {"tenants[1].credit_code", "tenants[2].founded_on",
                           "tenants[4].status"}, p
    # Relations between a tenant's fields are checked once every field is valid.
    with Unchanged(sql):
        p = assert_problem(sync(hrb, [listed(1), listed(4, admitted_on="2023-01-01"),
                                      listed(5, listed_on="2024-01-01")]), 422)
    assert [e["field"] for e in p["errors"]] == ["tenants[1].admitted_on", "tenants[2].listed_on"]


def test_an_external_id_listed_twice_is_422(hrb, sql):
    with Unchanged(sql):
        p = assert_problem(sync(hrb, [listed(1), listed(2), listed(1, name="别名")]), 422,
                           "tenants[2].external_id")
    assert "twice" in p["errors"][0]["message"]


def test_rules_of_the_stored_rows_name_the_tenant(hrb, sql):
    assert sync(hrb, [listed(1), listed(2), listed(3, high_tech_certified_on="2025-09-01")]).status == 200
    assert hrb.post(f"{PATH}/T-0002/exit", {"exited_on": "2025-07-01",
                                            "reason": "relocated"}).status == 200
    assert hrb.post(f"{PATH}/T-0003/graduation", {"graduated_on": "2025-10-01",
                                                  "basis": "high_tech"}).status == 200
    with Unchanged(sql):
        p = assert_problem(sync(hrb, [listed(1, name="新"), listed(2, admitted_on="2025-08-01"),
                                      listed(3, high_tech_certified_on=None)]), 422)
    assert [e["field"] for e in p["errors"]] == ["tenants[1].admitted_on",
                                                 "tenants[2].high_tech_certified_on"]


def test_frozen_history_is_409_and_names_the_tenant(hrb, sql):
    assert sync(hrb, [listed(1), listed(2)]).status == 200
    freeze_until(sql, "2025-10-31")
    with Unchanged(sql):
        p = assert_problem(sync(hrb, [listed(1, name="新"),
                                      listed(2, tech_certified_on="2025-10-01")]), 409)
    assert [e["field"] for e in p["errors"]] == ["tenants[1].tech_certified_on"]
    assert "2025-10-31" in p["detail"]
    # Creating tenants and other fields are always allowed.
    r = sync(hrb, [listed(1, name="新"), listed(2), listed(3, founded_on="2020-01-01")])
    assert r.status == 200, r
    assert r.json()["created"] == 1 and r.json()["updated"] == 1


# ---- size ----

def test_5000_tenants_in_one_sync_and_5001_refused(hrb, sql):
    # 1.6 MB: over the 1 MiB every other route takes, within the sync's own limit.
    many = [dict(tenant_body(n), external_id=f"T-{n:05d}", annual_revenue_fen=None)
            for n in range(1, 5001)]
    body = dumps({"tenants": many}).encode()
    assert MAX_BODY_BYTES < len(body) <= MAX_SYNC_BODY_BYTES
    r = raw_put(hrb, PATH, body, timeout=60)
    assert r.status == 200, r
    assert r.json()["created"] == 5000
    assert sql.execute("SELECT count(*) FROM tenants").fetchone()[0] == 5000
    r = raw_put(hrb, PATH, body, timeout=60)
    assert r.json()["unchanged"] == 5000
    many.append(dict(tenant_body(5001), external_id="T-05001"))
    with Unchanged(sql):
        assert_problem(sync(hrb, many), 422, "tenants")


# ---- scope and the bad-input matrix ----

def test_scope(admin, hrb, other, sql):
    with Unchanged(sql):
        for code in ("HRB-002", "HRB-404"):
            assert_problem(sync(hrb, [listed(1)], code=code), 403)
        r = hrb.daemon.request("PUT", PATH, token="ikd_" + "x" * 43,
                               json_body={"tenants": [listed(1)]})
        assert_problem(r, 401)
        r = hrb.daemon.request("PUT", PATH, json_body={"tenants": [listed(1)]})
        assert_problem(r, 401)
        assert_problem(sync(admin, [listed(1)], code="HRB-404"), 404)
    r = sync(admin, [listed(1)])
    assert r.status == 200 and r.json()["created"] == 1


def with_item(**over):
    return {"tenants": [listed(1), dict(listed(2), **over)]}


def without_item(key):
    t = listed(2)
    del t[key]
    return {"tenants": [listed(1), t]}


BAD_SYNCS = [
    ("malformed", b'{"tenants": [', 400, None),
    ("duplicate-key", b'{"tenants": [], "tenants": []}', 400, "tenants"),
    ("empty-body", b"", 400, None),
    ("array-body", b"[]", 422, "(body)"),
    ("missing-tenants", {}, 422, "tenants"),
    ("tenants-null", {"tenants": None}, 422, "tenants"),
    ("tenants-object", {"tenants": {"T-0001": listed(1)}}, 422, "tenants"),
    ("item-not-object", {"tenants": [listed(1), "T-0002"]}, 422, "tenants[1]"),
    ("unknown-top", {"tenants": [], "dry": True}, 422, "dry"),
    ("unknown-item", with_item(status="graduated"), 422, "tenants[1].status"),
    ("missing-external-id", without_item("external_id"), 422, "tenants[1].external_id"),
    ("bad-external-id", with_item(external_id="-x"), 422, "tenants[1].external_id"),
    ("external-id-number", with_item(external_id=2), 422, "tenants[1].external_id"),
    ("missing-name", without_item("name"), 422, "tenants[1].name"),
    ("name-too-long", with_item(name="名" * 201), 422, "tenants[1].name"),
    ("credit-lower", with_item(credit_code=PUBLISHED_CODES[0].lower()), 422, "tenants[1].credit_code"),
    ("date-future", with_item(admitted_on="2999-01-01"), 422, "tenants[1].admitted_on"),
    ("date-number", with_item(founded_on=20240301), 422, "tenants[1].founded_on"),
    ("field-wrong", with_item(field="software"), 422, "tenants[1].field"),
    ("revenue-negative", with_item(annual_revenue_fen={"2025": -1}), 422,
     "tenants[1].annual_revenue_fen.2025"),
    ("revenue-too-large", with_item(annual_revenue_fen={"2025": 10**15 + 1}), 422,
     "tenants[1].annual_revenue_fen.2025"),
    ("tech-before-founded", with_item(tech_certified_on="2024-02-01"), 422,
     "tenants[1].tech_certified_on"),
]


@pytest.mark.parametrize("existing", [False, True], ids=["empty", "with-tenants"])
def test_bad_syncs_are_refused_and_change_nothing(hrb, sql, existing):
    if existing:
        assert sync(hrb, [listed(1), listed(2)]).status == 200
    refuse_all(hrb, sql, "PUT", PATH, BAD_SYNCS)


def test_wrong_media_type_is_415(hrb, sql):
    with Unchanged(sql):
        for ct in ("text/plain", "application/xml", None):
            r = hrb.daemon.request("PUT", PATH, token=hrb.token,
                                   body=dumps({"tenants": [listed(1)]}), content_type=ct)
            assert_problem(r, 415)


def test_oversized_body_is_413_one_byte_over_the_default_limit(hrb, sql):
    limit = MAX_SYNC_BODY_BYTES
    head = b'{"tenants": [], "x": "'
    over = head + b"x" * (limit + 1 - len(head) - 2) + b'"}'
    assert len(over) == limit + 1
    with Unchanged(sql):
        assert_problem(raw_put(hrb, PATH, over, timeout=30), 413)
