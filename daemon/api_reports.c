/*
 * Metrics and reports: their query tables, the checks that a period or date
 * has begun, and the scope rule of cohorts. The figures themselves are SQL's
 * (schema/functions/40_metrics.sql), computed over whole tables.
 */
#include <stdio.h>
#include <string.h>

#include "incubatord/api.h"

const struct query_param api_metrics_query[] = {
    {"period", Q_PERIOD, true, NULL},
    {NULL, 0, false, NULL},
};

/* lang=zh: a CSV export headed in Chinese (Accept-Language: zh does the same). */
const char *const api_csv_langs[] = {"zh", "en", NULL};

const struct query_param api_monthly_query[] = {
    {"period", Q_PERIOD, true, NULL},
    {"lang", Q_ENUM, false, api_csv_langs},
    {NULL, 0, false, NULL},
};

const struct query_param api_annual_query[] = {
    {"year", Q_YEAR, true, NULL},
    {"lang", Q_ENUM, false, api_csv_langs},
    {NULL, 0, false, NULL},
};

const struct query_param api_cohorts_query[] = {
    {"admitted_year", Q_YEAR, true, NULL},
    {"incubator", Q_CODE, false, NULL},
    {NULL, 0, false, NULL},
};

/* plan: a plan's id, which has the form of an incubator code. */
const struct query_param api_plan_progress_query[] = {
    {"as_of", Q_DATE, false, NULL},
    {"plan", Q_CODE, false, NULL},
    {"lang", Q_ENUM, false, api_csv_langs},
    {NULL, 0, false, NULL},
};

/*
 * A month that has not started has no figures yet: 422. The current month
 * is answered up to today (documented in docs/policy.md).
 */
void api_period_started_check(struct req *r, struct vctx *v, json_t *args)
{
    const char *period = json_string_value(json_object_get(args, "period"));
    int y, m, ty, tm, td;
    (void)r;
    if (period == NULL || !period_parse(period, &y, &m))
        return;
    date_to_ymd(v->today, &ty, &tm, &td);
    if (y > ty || (y == ty && m > tm))
        v_error(v, "period", "%s has not started yet", period);
}

/* An as_of after today asks about data that cannot exist yet: 422. */
void api_plan_progress_check(struct req *r, struct vctx *v, json_t *args)
{
    const char *as_of = json_string_value(json_object_get(args, "as_of"));
    day_t d;
    (void)r;
    if (as_of != NULL && date_parse(as_of, &d) && d > v->today)
        v_error(v, "as_of", "must not be after today");
}

/* A cohort of a year that has not started yet: 422. */
void api_cohorts_check(struct req *r, struct vctx *v, json_t *args)
{
    json_t *year = json_object_get(args, "admitted_year");
    int ty, tm, td;
    (void)r;
    date_to_ymd(v->today, &ty, &tm, &td);
    if (json_is_integer(year) && json_integer_value(year) > ty)
        v_error(v, "admitted_year", "%lld has not started yet",
                (long long)json_integer_value(year));
}

/*
 * GET /v1/reports/cohorts: city-wide for the bureau; an incubator token may
 * read its own incubator's cohorts only, so it must name itself with
 * incubator=<its code>. The path has no {code} for the access column, hence
 * this hook; it runs before the query is validated (403 before 400/422).
 */
const char *api_reports_cohorts_authorize(const json_t *ctx, const json_t *request)
{
    if (apicall_own_incubator(ctx, json_string_value(json_object_get(request, "incubator"))))
        return NULL;
    return "an incubator token may only read its own incubator's cohorts: pass "
           "incubator=<its code>";
}

const struct query_param api_share_daily_query[] = {
    {"from", Q_DATE, false, NULL},
    {"to", Q_DATE, false, NULL},
    {NULL, 0, false, NULL},
};

/*
 * The range of a daily share series: to defaults to today, from to the 365
 * days that end with to; from after to, or more than API_SHARE_DAILY_MAX_DAYS
 * days, is a 422. The defaults are written into args, so SQL gets a range.
 */
void api_share_daily_check(struct req *r, struct vctx *v, json_t *args)
{
    const char *from = json_string_value(json_object_get(args, "from"));
    const char *to = json_string_value(json_object_get(args, "to"));
    day_t first, last;
    char text[11];
    (void)r;
    if (to == NULL || !date_parse(to, &last))
        last = v->today;
    if (from == NULL || !date_parse(from, &first))
        first = last - 364;
    if (first > last) {
        v_error(v, "from", "must not be after to");
        return;
    }
    if (last - first + 1 > API_SHARE_DAILY_MAX_DAYS) {
        v_error(v, "to", "the range may cover at most %d days (it covers %d)",
                API_SHARE_DAILY_MAX_DAYS, (int)(last - first + 1));
        return;
    }
    date_format(first, text);
    json_object_set_new(args, "from", json_string(text));
    date_format(last, text);
    json_object_set_new(args, "to", json_string(text));
}
