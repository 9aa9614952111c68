/*
 * Dates and periods as a request spells them: any bytes. What parses is
 * written back exactly as it was given (one spelling per day), lies within
 * DATE_MIN_YEAR..DATE_MAX_YEAR, and the day number converts back to the same
 * year, month and day.
 */
#include "fuzz.h"
#include "incubatord/dates.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    char out[11];
    day_t d;
    int y, m, dd;

    if (date_parse(s, &d)) {
        date_format(d, out);
        FUZZ_ASSERT(strcmp(out, s) == 0);
        date_to_ymd(d, &y, &m, &dd);
        FUZZ_ASSERT(y >= DATE_MIN_YEAR && y <= DATE_MAX_YEAR);
        FUZZ_ASSERT(m >= 1 && m <= 12 && dd >= 1 && dd <= date_days_in_month(y, m));
        FUZZ_ASSERT(date_from_ymd(y, m, dd) == d);
        /* The day before and after are one apart in the calendar too. */
        date_to_ymd(d + 1, &y, &m, &dd);
        FUZZ_ASSERT(dd == 1 || date_from_ymd(y, m, dd - 1) == d);
    }
    if (period_parse(s, &y, &m)) {
        FUZZ_ASSERT(strlen(s) == 7);
        FUZZ_ASSERT(y >= DATE_MIN_YEAR && y <= DATE_MAX_YEAR && m >= 1 && m <= 12);
        snprintf(out, sizeof(out), "%04d-%02d", y, m);
        FUZZ_ASSERT(strcmp(out, s) == 0);
    }
    free(s);
    return 0;
}
