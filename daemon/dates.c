/*
 * Civil dates as day numbers. The conversions are Howard Hinnant's
 * days_from_civil / civil_from_days, exact for every Gregorian date.
 */
#include <stdio.h>
#include <string.h>

#include "incubatord/dates.h"

bool date_is_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int date_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && date_is_leap_year(y))
        return 29;
    return days[m - 1];
}

day_t date_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (day_t)(era * 146097 + (int)doe - 719468);
}

void date_to_ymd(day_t z, int *year, int *month, int *day)
{
    z += 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int y = (int)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *year = y + (m <= 2);
    *month = (int)m;
    *day = (int)d;
}

/* Reads exactly n decimal digits. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool period_parse(const char *s, int *year, int *month)
{
    int y, m;
    if (strlen(s) != 7 || s[4] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m))
        return false;
    if (y < DATE_MIN_YEAR || y > DATE_MAX_YEAR || m < 1 || m > 12)
        return false;
    *year = y;
    *month = m;
    return true;
}

bool date_parse(const char *s, day_t *out)
{
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
        return false;
    if (y < DATE_MIN_YEAR || y > DATE_MAX_YEAR || m < 1 || m > 12 || d < 1 ||
        d > date_days_in_month(y, m))
        return false;
    *out = date_from_ymd(y, m, d);
    return true;
}

void date_format(day_t d, char out[11])
{
    int y, m, dd;
    date_to_ymd(d, &y, &m, &dd);
    /* Written digit by digit: the compiler cannot prove snprintf's bounds here. */
    y = ((y % 10000) + 10000) % 10000;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + dd / 10);
    out[9] = (char)('0' + dd % 10);
    out[10] = '\0';
}

day_t date_of_time(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return date_from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

day_t date_today(void)
{
    return date_of_time(time(NULL));
}
