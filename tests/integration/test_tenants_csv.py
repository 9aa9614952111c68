"""Bulk tenant sync as CSV (Content-Type: text/csv): headers by field name or
by the Chinese column names of API.md, a BOM, RFC 4180 quoting (commas,
quotes and line breaks in cells), empty cells as null, YYYY/MM/DD dates,
errors named "row N: field" (the header is row 1), malformed CSV, 5,000 rows,
and the same stored rows as the JSON sync."""

import pytest

from harness import MAX_SYNC_BODY_BYTES, assert_problem
from ingestlib import Unchanged, audit_count, hrb, other, refuse_all, tenant_body, uscc  # noqa: F401

PATH = "/v1/incubators/HRB-001/tenants"
ZH = ["企业编号", "企业名称", "统一社会信用代码", "成立时间", "入驻时间", "技术领域",
      "科技型中小企业认定日期", "高新技术企业认定日期", "创业者类型", "上市日期"]
FIELDS = ["external_id", "name", "credit_code", "founded_on", "admitted_on", "field",
          "tech_certified_on", "high_tech_certified_on", "founder_origin", "listed_on"]


def quote(cell):
    if cell is None:
        return ""
    cell = str(cell)
    if any(c in cell for c in ',"\r\n') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_text(rows, header=ZH, bom=True, newline="\r\n"):
    lines = [",".join(header)] + [",".join(quote(c) for c in r) for r in rows]
    return ("\ufeff" if bom else "") + newline.join(lines) + newline


def row(n, **over):
    """The n-th tenant (tenant_body(n)) as a CSV row in FIELDS order."""
    t = dict(tenant_body(n), external_id=f"T-{n:04d}")
    t.update(over)
    return [t[f] for f in FIELDS]


def put_csv(api, text, code="HRB-001", content_type="text/csv"):
    body = text.encode() if isinstance(text, str) else text
    return api.daemon.request("PUT", f"/v1/incubators/{code}/tenants", token=api.token,
                              body=body, content_type=content_type, timeout=60)


def stored(api, n):
    t = api.get(f"{PATH}/T-{n:04d}").json()
    return {f: t[f] for f in FIELDS}


def test_chinese_headers_bom_quotes_empty_cells_and_slashed_dates(hrb, sql):
    name = '松北区"智谷",创新中心 二期'
    text = csv_text([row(1, name=name, founded_on="2024/3/1", admitted_on="2025/06/01"),
                     row(2, tech_certified_on=None, founder_origin=None),
                     row(3, high_tech_certified_on="2025/10/01")])
    before = audit_count(sql)
    r = put_csv(hrb, text)
    assert r.status == 200, r
    assert r.json() == {"created": 3, "updated": 0, "unchanged": 0, "not_listed": []}
    assert audit_count(sql) == before + 1
    t1 = stored(hrb, 1)
    assert t1["name"] == name and t1["founded_on"] == "2024-03-01"
    assert t1["admitted_on"] == "2025-06-01"
    t2 = stored(hrb, 2)
    assert t2["tech_certified_on"] is None and t2["founder_origin"] is None
    assert stored(hrb, 3)["high_tech_certified_on"] == "2025-10-01"
    # The same sheet again changes nothing; CSV carries no revenue, so the
    # profile's annual_revenue_fen is null, as a PUT without it makes it.
    r = put_csv(hrb, text)
    assert r.json()["unchanged"] == 3
    assert hrb.get(f"{PATH}/T-0001").json()["annual_revenue_fen"] is None


def test_a_line_break_inside_quotes_stays_in_its_cell(hrb, sql):
    # RFC 4180: the quoted cell spans two lines and its row stays whole; a
    # name may not hold a line break, so it is refused by name, row 2.
    with Unchanged(sql):
        p = assert_problem(put_csv(hrb, csv_text([row(1, name="第一行\n第二行"), row(2)])), 422)
    assert [(e["field"], e["message"]) for e in p["errors"]] == [
        ("row 2: name", "must not contain control characters")]


def test_field_names_as_header_any_column_order_lf_and_no_bom(hrb):
    header = list(reversed(FIELDS))
    rows = [list(reversed(row(n))) for n in (1, 2)]
    r = put_csv(hrb, csv_text(rows, header=header, bom=False, newline="\n"))
    assert r.status == 200, r
    assert stored(hrb, 2)["credit_code"] == uscc(2)


def test_optional_columns_may_be_left_out(hrb):
    required = ZH[:6]
    r = put_csv(hrb, csv_text([row(1)[:6]], header=required))
    assert r.status == 200, r
    assert stored(hrb, 1)["tech_certified_on"] is None


def test_csv_and_json_store_the_same(hrb, other, sql):
    rows = [row(n, founder_origin=o) for n, o in ((1, "university"), (2, None), (3, "soe"))]
    assert put_csv(hrb, csv_text(rows)).status == 200
    tenants = [dict(zip(FIELDS, r)) for r in rows]
    assert other.put("/v1/incubators/HRB-002/tenants", {"tenants": tenants}).status == 200
    for n in (1, 2, 3):
        assert stored(hrb, n) == {f: v for f, v in other.get(
            f"/v1/incubators/HRB-002/tenants/T-{n:04d}").json().items() if f in FIELDS}


def test_bad_rows_are_named_by_row_and_nothing_is_written(hrb, sql):
    assert put_csv(hrb, csv_text([row(1)])).status == 200
    text = csv_text([row(1, name="改名"), row(2, credit_code=uscc(2)[:-1] + "0"), [None] * 10,
                     row(3, founded_on="2026/02/30"), row(4, field="软件"),
                     row(5, admitted_on=None)])
    with Unchanged(sql):
        p = assert_problem(put_csv(hrb, text), 422)
    # The header is row 1; the empty row 4 is skipped but counted.
    assert sorted(e["field"] for e in p["errors"]) == [
        "row 3: credit_code", "row 5: founded_on", "row 6: field", "row 7: admitted_on"], p


def test_cross_field_and_stored_rules_name_the_row(hrb, sql):
    assert put_csv(hrb, csv_text([row(1), row(2)])).status == 200
    assert hrb.post(f"{PATH}/T-0002/exit", {"exited_on": "2025-07-01",
                                            "reason": "relocated"}).status == 200
    with Unchanged(sql):
        p = assert_problem(put_csv(hrb, csv_text([row(1, admitted_on="2024/01/01")])), 422)
        assert [e["field"] for e in p["errors"]] == ["row 2: admitted_on"]
        p = assert_problem(put_csv(hrb, csv_text([row(1), row(2, admitted_on="2025/08/01")])),
                           422)
        assert [e["field"] for e in p["errors"]] == ["row 3: admitted_on"]


def test_an_id_listed_twice_names_its_second_row(hrb, sql):
    with Unchanged(sql):
        p = assert_problem(put_csv(hrb, csv_text([row(1), row(2), row(1, name="又一次")])), 422,
                           "row 4: external_id")
    assert "twice" in p["errors"][0]["message"]


BAD_CSV = [
    ("unknown-column", csv_text([row(1) + ["x"]], header=ZH + ["企业规模"]).encode(), 422,
     "row 1: 企业规模"),
    ("column-twice", csv_text([row(1) + [uscc(1)]], header=ZH + ["credit_code"]).encode(), 422,
     "row 1: credit_code"),
    ("missing-column", csv_text([row(1)[1:]], header=ZH[1:]).encode(), 422,
     "row 1: external_id"),
    ("ragged-row", csv_text([row(1), row(2)[:9]]).encode(), 422, "row 3"),
    ("unterminated-quote", (csv_text([row(1)]) + 'T-9,"open\r\n').encode(), 400, None),
    ("quote-in-cell", (csv_text([row(1)]) + 'T-9,a"b,x,x,x,x,,,,\r\n').encode(), 400, None),
    ("gbk", csv_text([row(1, name="孵化")]).encode("utf-8").replace(
        "孵化".encode(), "孵化".encode("gbk")), 400, None),
    ("empty", b"", 400, None),
    ("header-only-of-nothing", b"\r\n", 400, None),
    ("revenue-column", csv_text([row(1) + ["1"]], header=ZH + ["annual_revenue_fen"]).encode(),
     422, "row 1: annual_revenue_fen"),
    ("too-many-rows", csv_text([row(n, external_id=f"R-{n}") for n in range(5001)]).encode(),
     422, "rows"),
    ("too-large", b"external_id,name\r\n" + b"x" * MAX_SYNC_BODY_BYTES, 413, None),
]


@pytest.mark.parametrize("existing", [False, True], ids=["empty", "with-tenants"])
def test_bad_csv_is_refused_and_changes_nothing(hrb, sql, existing):
    if existing:
        assert put_csv(hrb, csv_text([row(1), row(2)])).status == 200
    failures = []
    for case, body, status, field in BAD_CSV:
        try:
            with Unchanged(sql):
                assert_problem(put_csv(hrb, body), status, field)
        except AssertionError as e:
            failures.append(f"{case}: {e}")
    assert not failures, "\n".join(failures)


def test_media_types(hrb, sql):
    text = csv_text([row(1)])
    with Unchanged(sql):
        assert_problem(put_csv(hrb, text, content_type="text/plain"), 415)
        assert_problem(put_csv(hrb, text, content_type="application/json"), 400)
        # CSV is taken by the bulk sync only.
        r = hrb.daemon.request("PUT", f"{PATH}/T-0001", token=hrb.token, body=text.encode(),
                               content_type="text/csv")
        assert_problem(r, 415)
    r = put_csv(hrb, text, content_type="text/csv; charset=utf-8")
    assert r.status == 200, r


def test_scope(admin, hrb, other, sql):
    with Unchanged(sql):
        assert_problem(put_csv(hrb, csv_text([row(1)]), code="HRB-002"), 403)
    assert put_csv(admin, csv_text([row(1)])).status == 200


def test_5000_rows(hrb, sql):
    rows = [row(n, external_id=f"T-{n:05d}", name=f"哈尔滨某某科技有限公司{n}")
            for n in range(1, 5001)]
    text = csv_text(rows)
    assert len(text.encode()) < MAX_SYNC_BODY_BYTES
    r = put_csv(hrb, text)
    assert r.status == 200, r
    assert r.json()["created"] == 5000
    assert put_csv(hrb, text).json()["unchanged"] == 5000
