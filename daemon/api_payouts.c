/*
 * Reward payouts and policy versions: the bodies of POST /v1/policy and
 * POST /v1/payout-runs. The computation, approval and frozen history are
 * SQL's (schema/functions/60_payouts.sql).
 */
#include <stdio.h>
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/dates.h"
#include "incubatord/http.h"
#include "incubatord/server.h"

static const struct field extended_field = {"", FT_ENUM, 0, .values = api_tenant_fields};

#define TARGET(name)                                                                               \
    {                                                                                              \
        name, FT_INT, F_REQUIRED, .min = 0, .max = 1000000                                         \
    }

static const struct field plan_targets[] = {
    TARGET("incubators"),
    TARGET("new_tech_enterprises"),
    TARGET("revenue_over_5m"),
    TARGET("revenue_over_20m"),
    TARGET("listed"),
    TARGET("new_high_tech"),
    {NULL},
};

/* A plan's window and targets: in a policy version, and PUT /v1/plans/{plan}. */
const struct field api_plan_put_body[] = {
    {"from", FT_DATE, F_REQUIRED},
    {"to", FT_DATE, F_REQUIRED},
    {"targets", FT_OBJECT, F_REQUIRED, .fields = plan_targets},
    {NULL},
};

static void check_plan_window(struct vctx *v, json_t *plan, const char *to_field)
{
    const char *from = json_string_value(json_object_get(plan, "from"));
    const char *to = json_string_value(json_object_get(plan, "to"));
    if (from && to && strcmp(from, to) > 0)
        v_error(v, to_field, "must not be before %s (%s)",
                strcmp(to_field, "to") == 0 ? "from" : "plan.from", from);
}

void api_plan_put_check(struct req *r, struct vctx *v, json_t *args)
{
    (void)r;
    check_plan_window(v, args, "to");
}

/* Every field is required: a version states the whole policy. */
const struct field api_policy_create_body[] = {
    {"effective_from", FT_PERIOD, F_REQUIRED},
    {"veto_threshold", FT_RATIO, F_REQUIRED, .min = 1, .max = 10000},
    {"warning_margin", FT_RATIO, F_REQUIRED, .min = 0, .max = 9999},
    {"reward_per_graduate_fen", FT_FEN, F_REQUIRED},
    {"high_tech_bonus_fen", FT_FEN, F_REQUIRED},
    {"annual_cap_fen", FT_FEN, F_REQUIRED},
    {"incubation_limit_months", FT_INT, F_REQUIRED, .min = 1, .max = 240},
    {"extended_limit_months", FT_INT, F_REQUIRED, .min = 1, .max = 240},
    {"extended_fields", FT_ARRAY, F_REQUIRED, .max = 11, .item = &extended_field},
    {"entry_max_age_months", FT_INT, F_REQUIRED, .min = 0, .max = 1200},
    {"graduation_investment_min_fen", FT_FEN, F_REQUIRED},
    {"graduation_revenue_2y_min_fen", FT_FEN, F_REQUIRED},
    {"stale_after_days", FT_INT, F_REQUIRED, .min = 1, .max = 3650},
    {"repeat_hours", FT_INT, F_REQUIRED, .min = 1, .max = 8760},
    {"plan", FT_OBJECT, F_REQUIRED, .fields = api_plan_put_body},
    {NULL},
};

void api_policy_create_check(struct req *r, struct vctx *v, json_t *args)
{
    json_t *fields = json_object_get(args, "extended_fields");
    json_t *plan = json_object_get(args, "plan");
    size_t i, k;
    json_t *a, *b;
    (void)r;
    if (json_integer_value(json_object_get(args, "extended_limit_months")) <
        json_integer_value(json_object_get(args, "incubation_limit_months")))
        v_error(v, "extended_limit_months", "must not be shorter than incubation_limit_months");
    json_array_foreach(fields, i, a)
    {
        json_array_foreach(fields, k, b)
        {
            if (k < i && json_equal(a, b)) {
                char path[48];
                snprintf(path, sizeof(path), "extended_fields[%zu]", i);
                v_error(v, path, "%s is listed twice", json_string_value(a));
                break;
            }
        }
    }
    check_plan_window(v, plan, "plan.to");
}

static const char *const details[] = {"graduates", NULL};

/* The CSV of a run: lang=zh, and detail=graduates for one row per graduate. */
const struct query_param api_payout_run_query[] = {
    {"lang", Q_ENUM, false, api_csv_langs},
    {"detail", Q_ENUM, false, details},
    {NULL, 0, false, NULL},
};

const struct field api_payout_run_create_body[] = {
    {"period", FT_PERIOD, F_REQUIRED},
    {NULL},
};

/* A review's note is optional; an empty object or no body at all is a review without one. */
const struct field api_payout_run_review_body[] = {
    {"note", FT_TEXT, F_NULLABLE, .max = 1000},
    {NULL},
};

/* Approval takes no fields; an empty object or no body at all. */
const struct field api_payout_run_approve_body[] = {
    {NULL},
};

/*
 * Approval's rule depends on the configuration: with [payouts] four_eyes the
 * run needs a review by another token name. SQL gets the setting as an
 * argument no client can send (the body has no fields).
 */
void api_payout_run_approve_check(struct req *r, struct vctx *v, json_t *args)
{
    (void)v;
    json_object_set_new(args, "four_eyes", json_boolean(r->srv->cfg.four_eyes));
}

const struct field api_graduation_revoke_body[] = {
    {"reason", FT_TEXT, F_REQUIRED, .max = 1000},
    {NULL},
};

static const struct field prior_graduate = {"", FT_USCC, 0};

/* Rewards paid before the history started, for one calendar year. */
const struct field api_prior_payout_create_body[] = {
    {"year", FT_INT, F_REQUIRED, .min = DATE_MIN_YEAR, .max = DATE_MAX_YEAR},
    {"amount_fen", FT_FEN, F_REQUIRED},
    {"graduates", FT_ARRAY, F_REQUIRED, .max = 10000, .item = &prior_graduate},
    {"note", FT_TEXT, F_NULLABLE, .max = 1000},
    {NULL},
};

/* A year that has not begun has paid nothing; an enterprise is listed once. */
void api_prior_payout_create_check(struct req *r, struct vctx *v, json_t *args)
{
    json_t *graduates = json_object_get(args, "graduates");
    int year, month, day;
    size_t i, k;
    json_t *a, *b;
    date_to_ymd(server_today(r->srv), &year, &month, &day);
    if (json_integer_value(json_object_get(args, "year")) > year)
        v_error(v, "year", "must not be after the current year (%d)", year);
    json_array_foreach(graduates, i, a)
    {
        for (k = 0; k < i; k++) {
            b = json_array_get(graduates, k);
            if (json_equal(a, b)) {
                char path[48];
                snprintf(path, sizeof(path), "graduates[%zu]", i);
                v_error(v, path, "%s is listed twice", json_string_value(a));
                break;
            }
        }
    }
}
