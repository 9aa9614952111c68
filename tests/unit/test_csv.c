/*
 * CSV bodies: headers by field name or alias, BOM, RFC 4180 quoting, empty
 * cells as null, YYYY/MM/DD dates, skipped empty records, and the errors:
 * malformed quoting and non-UTF-8 (refused whole), unknown, repeated or
 * missing columns and ragged records (named by row), and the renaming of
 * validation paths to rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/csv.h"

static const struct csv_column columns[] = {
    {"external_id", "企业编号", true, false},
    {"name", "企业名称", true, false},
    {"founded_on", "成立时间", false, true},
    {"note", NULL, false, false},
    {NULL, NULL, false, false},
};
static const struct csv_spec spec = {"tenants", columns};

struct parsed {
    struct vctx v;
    struct csv_body b;
    bool ok;
    char detail[200];
};

static void parse(struct parsed *p, const char *text)
{
    vctx_init(&p->v, 0);
    p->ok = csv_parse_body(&spec, text, strlen(text), &p->v, &p->b, p->detail, sizeof(p->detail));
}

static void done(struct parsed *p)
{
    csv_body_free(&p->b);
    vctx_free(&p->v);
}

static const char *cell(struct parsed *p, size_t i, const char *field)
{
    json_t *item = json_array_get(json_object_get(p->b.body, "tenants"), i);
    json_t *value = json_object_get(item, field);
    assert_non_null(value);
    return json_is_null(value) ? NULL : json_string_value(value);
}

static const char *error_field(struct parsed *p, size_t i)
{
    return json_string_value(json_object_get(json_array_get(p->v.errors, i), "field"));
}

static void test_chinese_header_bom_quotes_and_empty_cells(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "\xEF\xBB\xBF企业编号,企业名称,成立时间\r\n"
              "T-1,\"哈尔滨\"\"智谷\"\",创新中心\",2025/6/1\r\n"
              "T-2,\"two\nlines\",\r\n"
              ",,\r\n"
              "T-3,  spaced  ,2024-03-01\r\n");
    assert_true(p.ok);
    assert_true(vctx_ok(&p.v));
    assert_int_equal(json_array_size(json_object_get(p.b.body, "tenants")), 3);
    assert_string_equal(cell(&p, 0, "name"), "哈尔滨\"智谷\",创新中心");
    assert_string_equal(cell(&p, 0, "founded_on"), "2025-06-01");
    assert_string_equal(cell(&p, 1, "name"), "two\nlines");
    assert_null(cell(&p, 1, "founded_on"));
    assert_string_equal(cell(&p, 2, "name"), "spaced");
    /* The empty record (row 4) is skipped; row numbers count it. */
    assert_int_equal(json_integer_value(json_array_get(p.b.rows, 2)), 5);
    done(&p);
}

static void test_field_names_as_header_and_lf_only(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "name,external_id\nA,T-1\nB,T-2");
    assert_true(p.ok);
    assert_true(vctx_ok(&p.v));
    assert_string_equal(cell(&p, 1, "external_id"), "T-2");
    assert_string_equal(cell(&p, 1, "name"), "B");
    done(&p);
}

static void test_dates_other_than_yyyy_mm_dd_are_left_to_validation(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "external_id,name,founded_on\nT-1,A,2025/13/45\nT-2,B,25/6/1\nT-3,C,2025.6.1\n");
    assert_true(p.ok);
    assert_string_equal(cell(&p, 0, "founded_on"), "2025-13-45");
    assert_string_equal(cell(&p, 1, "founded_on"), "25/6/1");
    assert_string_equal(cell(&p, 2, "founded_on"), "2025.6.1");
    done(&p);
}

static void test_header_errors_are_named_by_row_one(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "企业编号,企业规模,external_id\nT-1,大,T-1\n");
    assert_true(p.ok);
    assert_int_equal(json_array_size(p.v.errors), 3);
    assert_string_equal(error_field(&p, 0), "row 1: 企业规模");
    assert_string_equal(error_field(&p, 1), "row 1: external_id");
    assert_string_equal(error_field(&p, 2), "row 1: name");
    done(&p);
}

static void test_a_ragged_record_names_its_row(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "external_id,name\nT-1,A\nT-2,B,extra\nT-3\n");
    assert_true(p.ok);
    assert_int_equal(json_array_size(p.v.errors), 2);
    assert_string_equal(error_field(&p, 0), "row 3");
    assert_string_equal(error_field(&p, 1), "row 4");
    done(&p);
}

static void test_malformed_and_non_utf8_and_empty_bodies_are_refused(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "external_id,name\nT-1,\"unterminated\n");
    assert_false(p.ok);
    assert_non_null(strstr(p.detail, "malformed CSV at row 2"));
    done(&p);
    parse(&p, "external_id,name\nT-1,a\"b\n");
    assert_false(p.ok);
    done(&p);
    parse(&p, "external_id,name\nT-1,\xB9\xFE\xB6\xFB\xB1\xF5\n"); /* GBK, not UTF-8 */
    assert_false(p.ok);
    assert_non_null(strstr(p.detail, "UTF-8"));
    done(&p);
    parse(&p, "");
    assert_false(p.ok);
    done(&p);
}

static void test_validation_paths_become_rows(void **state)
{
    struct parsed p;
    (void)state;
    parse(&p, "external_id,name\nT-1,A\n,\nT-2,B\n");
    assert_true(p.ok);
    json_t *errors = json_pack("[{s:s},{s:s},{s:s},{s:s}]", "field", "tenants[1].name", "field",
                               "tenants", "field", "tenants[0]", "field", "other[1].x");
    csv_rename_errors(&spec, p.b.rows, errors);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                        "row 4: name");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "field")),
                        "rows");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 2), "field")),
                        "row 2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 3), "field")),
                        "other[1].x");
    json_decref(errors);
    done(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chinese_header_bom_quotes_and_empty_cells),
        cmocka_unit_test(test_field_names_as_header_and_lf_only),
        cmocka_unit_test(test_dates_other_than_yyyy_mm_dd_are_left_to_validation),
        cmocka_unit_test(test_header_errors_are_named_by_row_one),
        cmocka_unit_test(test_a_ragged_record_names_its_row),
        cmocka_unit_test(test_malformed_and_non_utf8_and_empty_bodies_are_refused),
        cmocka_unit_test(test_validation_paths_become_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
