/*
 * Calendar dates and periods, in the proleptic Gregorian calendar, as day
 * numbers (days since 1970-01-01), and "today" in the bureau's time zone.
 */
#ifndef INCUBATORD_DATES_H
#define INCUBATORD_DATES_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "incubatord/common.h"

/* The years a date in a request may have: wide enough for any founding date. */
#define DATE_MIN_YEAR 1900
#define DATE_MAX_YEAR 2999

typedef int32_t day_t;

/* Days since 1970-01-01 of a valid civil date. */
day_t date_from_ymd(int year, int month, int day);
void date_to_ymd(day_t d, int *year, int *month, int *day);
bool date_is_leap_year(int year);
int date_days_in_month(int year, int month);

/* Strict "YYYY-MM-DD" with a real calendar day between DATE_MIN_YEAR and DATE_MAX_YEAR. */
bool date_parse(const char *s, day_t *out) WARN_UNUSED;
/* Writes "YYYY-MM-DD" and a NUL into out[11]. */
void date_format(day_t d, char out[11]);
/* Strict "YYYY-MM" with month 01-12. */
bool period_parse(const char *s, int *year, int *month) WARN_UNUSED;

/* Today in the process's time zone (set from schedule.timezone at start-up). */
day_t date_today(void);
/* The calendar date of a moment in the process's time zone. */
day_t date_of_time(time_t t);

#endif
