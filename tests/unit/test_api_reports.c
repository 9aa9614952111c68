/* The reports' checks that a period, year or date has begun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/api.h"

/* Runs a check on args as of today; returns the field of its one error, or NULL. */
static const char *check(void (*fn)(struct req *, struct vctx *, json_t *), day_t today,
                         json_t *args)
{
    static char field[64];
    struct vctx v;
    vctx_init(&v, today);
    fn(NULL, &v, args);
    json_decref(args);
    const char *result = NULL;
    if (!vctx_ok(&v)) {
        assert_int_equal(json_array_size(v.errors), 1);
        snprintf(field, sizeof(field), "%s",
                 json_string_value(json_object_get(json_array_get(v.errors, 0), "field")));
        result = field;
    }
    vctx_free(&v);
    return result;
}

static void test_period_started(void **state)
{
    (void)state;
    day_t today = date_from_ymd(2026, 11, 26);
    assert_null(check(api_period_started_check, today, json_pack("{s:s}", "period", "2026-10")));
    /* The current month is answered, up to today. */
    assert_null(check(api_period_started_check, today, json_pack("{s:s}", "period", "2026-11")));
    assert_string_equal(
        check(api_period_started_check, today, json_pack("{s:s}", "period", "2026-12")), "period");
    assert_string_equal(
        check(api_period_started_check, today, json_pack("{s:s}", "period", "2027-01")), "period");
    /* On the first of a month, that month has started. */
    assert_null(check(api_period_started_check, date_from_ymd(2026, 12, 1),
                      json_pack("{s:s}", "period", "2026-12")));
}

static void test_cohort_year_started(void **state)
{
    (void)state;
    day_t today = date_from_ymd(2026, 1, 1);
    assert_null(check(api_cohorts_check, today, json_pack("{s:i}", "admitted_year", 2026)));
    assert_null(check(api_cohorts_check, today, json_pack("{s:i}", "admitted_year", 1990)));
    assert_string_equal(check(api_cohorts_check, today, json_pack("{s:i}", "admitted_year", 2027)),
                        "admitted_year");
}

static void test_plan_progress_as_of(void **state)
{
    (void)state;
    day_t today = date_from_ymd(2026, 11, 26);
    assert_null(check(api_plan_progress_check, today, json_pack("{s:s}", "as_of", "2026-11-26")));
    assert_null(check(api_plan_progress_check, today, json_pack("{s:n}", "as_of")));
    assert_string_equal(
        check(api_plan_progress_check, today, json_pack("{s:s}", "as_of", "2026-11-27")), "as_of");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_started),
        cmocka_unit_test(test_cohort_year_started),
        cmocka_unit_test(test_plan_progress_as_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
