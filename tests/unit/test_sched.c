/*
 * The monthly schedule's arithmetic: when the payout run is next due, when it
 * was last due, and which period it is for, across month ends, leap years,
 * day settings of 29-31 and time zones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "incubatord/sched.h"

/* A moment given as local wall-clock time in tz. */
static time_t at(const char *tz, int y, int mo, int d, int h, int mi, int s)
{
    setenv("TZ", tz, 1);
    tzset();
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s,
                    .tm_isdst = -1};
    return mktime(&tm);
}

static void check_next(const char *tz, time_t now, int day, int hour, time_t want)
{
    time_t got = sched_next_monthly(now, tz, day, hour);
    if (got != want)
        fail_msg("%s day %d hour %d: got %lld, want %lld", tz, day, hour, (long long)got,
                 (long long)want);
}

static void test_next_within_and_across_months(void **state)
{
    (void)state;
    const char *tz = "Asia/Shanghai";
    /* Before the due hour on the due day: today. */
    check_next(tz, at(tz, 2026, 11, 1, 1, 59, 59), 1, 2, at(tz, 2026, 11, 1, 2, 0, 0));
    /* Exactly at the due moment: the next month (strictly after now). */
    check_next(tz, at(tz, 2026, 11, 1, 2, 0, 0), 1, 2, at(tz, 2026, 12, 1, 2, 0, 0));
    /* December rolls into January of the next year. */
    check_next(tz, at(tz, 2026, 12, 15, 0, 0, 0), 1, 2, at(tz, 2027, 1, 1, 2, 0, 0));
    check_next(tz, at(tz, 2026, 12, 31, 23, 0, 0), 31, 23, at(tz, 2027, 1, 31, 23, 0, 0));
}

static void test_days_past_the_month_end_mean_its_last_day(void **state)
{
    (void)state;
    const char *tz = "Asia/Shanghai";
    /* Day 31 in a 30-day month and in February, leap and not. */
    check_next(tz, at(tz, 2026, 4, 1, 0, 0, 0), 31, 2, at(tz, 2026, 4, 30, 2, 0, 0));
    check_next(tz, at(tz, 2026, 2, 1, 0, 0, 0), 31, 2, at(tz, 2026, 2, 28, 2, 0, 0));
    check_next(tz, at(tz, 2028, 2, 1, 0, 0, 0), 31, 2, at(tz, 2028, 2, 29, 2, 0, 0));
    check_next(tz, at(tz, 2028, 2, 1, 0, 0, 0), 29, 2, at(tz, 2028, 2, 29, 2, 0, 0));
    check_next(tz, at(tz, 2026, 2, 1, 0, 0, 0), 29, 2, at(tz, 2026, 2, 28, 2, 0, 0));
    check_next(tz, at(tz, 2100, 2, 1, 0, 0, 0), 30, 2, at(tz, 2100, 2, 28, 2, 0, 0));
    check_next(tz, at(tz, 2000, 2, 1, 0, 0, 0), 30, 2, at(tz, 2000, 2, 29, 2, 0, 0));
    /* After February's clamped day, March's own day 31 is next. */
    check_next(tz, at(tz, 2026, 2, 28, 3, 0, 0), 31, 2, at(tz, 2026, 3, 31, 2, 0, 0));
    /* Day 30 on January 31st after the hour: February's last day. */
    check_next(tz, at(tz, 2026, 1, 31, 12, 0, 0), 30, 2, at(tz, 2026, 2, 28, 2, 0, 0));
}

static void test_last_due_and_its_period(void **state)
{
    (void)state;
    const char *tz = "Asia/Shanghai";
    char period[8];
    time_t now = at(tz, 2026, 11, 26, 10, 0, 0);
    time_t last = sched_last_monthly(now, tz, 1, 2);
    assert_true(last == at(tz, 2026, 11, 1, 2, 0, 0));
    sched_previous_period(last, tz, period);
    assert_string_equal(period, "2026-10");
    /* Before this month's due moment, the last due was the previous month's. */
    now = at(tz, 2026, 11, 1, 1, 0, 0);
    last = sched_last_monthly(now, tz, 1, 2);
    assert_true(last == at(tz, 2026, 10, 1, 2, 0, 0));
    sched_previous_period(last, tz, period);
    assert_string_equal(period, "2026-09");
    /* January's run is for December of the year before. */
    now = at(tz, 2027, 1, 5, 0, 0, 0);
    sched_previous_period(sched_last_monthly(now, tz, 1, 2), tz, period);
    assert_string_equal(period, "2026-12");
    /* At the due moment itself, that one counts. */
    now = at(tz, 2026, 3, 31, 2, 0, 0);
    assert_true(sched_last_monthly(now, tz, 31, 2) == now);
}

static void test_time_zone_is_the_bureaus(void **state)
{
    (void)state;
    /* 2026-11-30T17:00Z is already December 1st 01:00 in Shanghai: due at 02:00 local. */
    time_t now = at("UTC", 2026, 11, 30, 17, 0, 0);
    time_t want = at("Asia/Shanghai", 2026, 12, 1, 2, 0, 0);
    check_next("Asia/Shanghai", now, 1, 2, want);
    assert_true(want - now == 3600);
    char period[8];
    sched_previous_period(now, "Asia/Shanghai", period);
    assert_string_equal(period, "2026-11");
    sched_previous_period(now, "UTC", period);
    assert_string_equal(period, "2026-10");
}

static void test_every_day_of_four_years(void **state)
{
    (void)state;
    /* For every hour of 2026-2029 and every day setting, the next due moment is in
     * the future, at the hour, and no later than the last due plus one month. */
    const char *tz = "Asia/Shanghai";
    for (time_t now = at(tz, 2026, 1, 1, 0, 0, 0); now < at(tz, 2030, 1, 1, 0, 0, 0);
         now += 3600 * 7) {
        for (int day = 1; day <= 31; day += 5) {
            time_t next = sched_next_monthly(now, tz, day, 2);
            time_t last = sched_last_monthly(now, tz, day, 2);
            assert_true(next > now);
            assert_true(last <= now);
            assert_true(next - last <= 31 * 86400 + 3600);
            struct tm tm;
            localtime_r(&next, &tm);
            assert_int_equal(tm.tm_hour, 2);
            assert_int_equal(tm.tm_min, 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_within_and_across_months),
        cmocka_unit_test(test_days_past_the_month_end_mean_its_last_day),
        cmocka_unit_test(test_last_due_and_its_period),
        cmocka_unit_test(test_time_zone_is_the_bureaus),
        cmocka_unit_test(test_every_day_of_four_years),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
