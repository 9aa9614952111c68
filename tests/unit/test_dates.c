/* Dates, periods and the calendar arithmetic behind them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/dates.h"

static void test_round_trip_every_day(void **state)
{
    (void)state;
    day_t first = date_from_ymd(1900, 1, 1), last = date_from_ymd(2999, 12, 31);
    char text[11];
    for (day_t d = first; d <= last; d++) {
        int y, m, dd;
        day_t back;
        date_to_ymd(d, &y, &m, &dd);
        assert_int_equal(date_from_ymd(y, m, dd), d);
        date_format(d, text);
        assert_true(date_parse(text, &back));
        assert_int_equal(back, d);
    }
}

static void test_known_days(void **state)
{
    (void)state;
    assert_int_equal(date_from_ymd(1970, 1, 1), 0);
    assert_int_equal(date_from_ymd(2000, 3, 1) - date_from_ymd(2000, 2, 28), 2);
    assert_int_equal(date_from_ymd(1900, 3, 1) - date_from_ymd(1900, 2, 28), 1);
    /* 2026-11-26 is 20783 days after 1970-01-01 (20418 would be 2025-11-26). */
    assert_int_equal(date_from_ymd(2026, 11, 26), 20783);
    assert_int_equal(date_from_ymd(2025, 11, 26), 20418);
}

static void test_rejects_impossible_dates(void **state)
{
    (void)state;
    day_t d;
    const char *bad[] = {"2026-02-30", "2026-13-01", "2026-00-10", "2026-01-00", "2025-02-29",
                         "1900-02-29", "26-01-01",   "2026-1-01",  "2026/01/01", "2026-01-01T00",
                         "1899-12-31", "3000-01-01", "",           "abcd-ef-gh", " 2026-01-01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(date_parse(bad[i], &d));
    assert_true(date_parse("2024-02-29", &d));
    assert_true(date_parse("2000-02-29", &d));
}

static void test_periods(void **state)
{
    (void)state;
    int y, m;
    assert_true(period_parse("2026-10", &y, &m));
    assert_int_equal(y, 2026);
    assert_int_equal(m, 10);
    assert_false(period_parse("2026-13", &y, &m));
    assert_false(period_parse("2026-00", &y, &m));
    assert_false(period_parse("2026-1", &y, &m));
    assert_false(period_parse("2026-10-01", &y, &m));
    assert_int_equal(date_days_in_month(2024, 2), 29);
    assert_int_equal(date_days_in_month(2100, 2), 28);
    assert_int_equal(date_days_in_month(2026, 4), 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_day),
        cmocka_unit_test(test_known_days),
        cmocka_unit_test(test_rejects_impossible_dates),
        cmocka_unit_test(test_periods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
