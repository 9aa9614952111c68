/*
 * The route table and the router.
 */
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/dates.h"
#include "incubatord/routes.h"

#define GET    EVHTTP_REQ_GET
#define POST   EVHTTP_REQ_POST
#define PUT    EVHTTP_REQ_PUT
#define PATCH  EVHTTP_REQ_PATCH
#define DELETE EVHTTP_REQ_DELETE

const struct query_param api_page_query[] = {
    {"limit", Q_LIMIT, false, NULL},
    {"cursor", Q_CURSOR, false, NULL},
    {NULL, 0, false, NULL},
};

/* clang-format off */
const struct route routes[] = {
    /* method  pattern                            access            flags                    api fn              body / query / check / handler / hooks */
    {GET,    "/healthz",                          ACCESS_PUBLIC,    ROUTE_NOLOG,             NULL,               .handler = api_healthz},
    {GET,    "/readyz",                           ACCESS_PUBLIC,    ROUTE_NOLOG,             NULL,               .handler = api_readyz},
    {GET,    "/metrics",                          ACCESS_PUBLIC,    ROUTE_NOLOG,             NULL,               .handler = api_metrics},

    {POST,   "/v1/incubators",                    ACCESS_ADMIN,     ROUTE_BODY,              "incubator_create", .body = api_incubator_create_body},
    {GET,    "/v1/incubators",                    ACCESS_ADMIN,     0,                       "incubator_list",   .query = api_page_query},
    {GET,    "/v1/incubators/{code}",             ACCESS_INCUBATOR, 0,                       "incubator_get"},
    {PATCH,  "/v1/incubators/{code}",             ACCESS_ADMIN,     ROUTE_BODY | ROUTE_PATCH, "incubator_patch", .body = api_incubator_patch_body, .check = api_incubator_patch_check},
    {POST,   "/v1/incubators/{code}/close",       ACCESS_ADMIN,     ROUTE_BODY,              "incubator_close",  .body = api_incubator_close_body, .after = api_incubator_close_after},

    {POST,   "/v1/incubators/{code}/tokens",      ACCESS_ADMIN,     ROUTE_BODY,              "token_create",     .body = api_token_create_body, .prepare = api_token_create_prepare, .after = api_token_create_after},
    {GET,    "/v1/incubators/{code}/tokens",      ACCESS_ADMIN,     0,                       "token_list",       .query = api_page_query},
    {DELETE, "/v1/tokens/{id}",                   ACCESS_ADMIN,     0,                       "token_revoke",     .after = api_token_revoke_after},
    {POST,   "/v1/tokens/{id}/rotate",            ACCESS_ADMIN,     ROUTE_BODY,              "token_rotate",     .body = api_token_rotate_body, .prepare = api_token_create_prepare, .after = api_token_rotate_after},

    {PUT,    "/v1/incubators/{code}/tenants/{external_id}", ACCESS_INCUBATOR, ROUTE_BODY, "tenant_put", .body = api_tenant_put_body, .check = api_tenant_put_check},
    {GET,    "/v1/incubators/{code}/tenants/{external_id}", ACCESS_INCUBATOR, 0,          "tenant_get"},
    {GET,    "/v1/incubators/{code}/tenants",     ACCESS_INCUBATOR, ROUTE_CSV,               "tenant_list",      .query = api_tenant_list_query},
    {PUT,    "/v1/incubators/{code}/tenants",     ACCESS_INCUBATOR, ROUTE_BODY | ROUTE_BULK, "tenants_sync",     .body = api_tenants_sync_body, .check = api_tenants_sync_check, .csv = &api_tenants_sync_csv},
    {POST,   "/v1/incubators/{code}/tenants/{external_id}/graduation", ACCESS_INCUBATOR, ROUTE_BODY, "tenant_graduate", .body = api_tenant_graduate_body, .check = api_tenant_graduate_check},
    {POST,   "/v1/incubators/{code}/tenants/{external_id}/graduation/revoke", ACCESS_ADMIN, ROUTE_BODY, "tenant_graduation_revoke", .body = api_graduation_revoke_body},
    {POST,   "/v1/incubators/{code}/tenants/{external_id}/exit", ACCESS_INCUBATOR, ROUTE_BODY, "tenant_exit", .body = api_tenant_exit_body},

    {PUT,    "/v1/incubators/{code}/occupancy",   ACCESS_INCUBATOR, ROUTE_BODY,              "occupancy_put",    .body = api_occupancy_put_body, .check = api_occupancy_put_check},
    {GET,    "/v1/incubators/{code}/occupancy",   ACCESS_INCUBATOR, 0,                       "occupancy_get",    .query = api_on_query},
    {GET,    "/v1/incubators/{code}/space-share", ACCESS_INCUBATOR, 0,                       "space_share_get",  .query = api_on_query},

    {GET,    "/v1/incubators/{code}/space-share/daily", ACCESS_INCUBATOR, ROUTE_READ,        "space_share_daily", .query = api_share_daily_query, .check = api_share_daily_check},

    {GET,    "/v1/policy",                        ACCESS_ANY,       0,                       "policy_get",       .query = api_policy_query},

    {POST,   "/v1/policy",                        ACCESS_ADMIN,     ROUTE_BODY,              "policy_create",    .body = api_policy_create_body, .check = api_policy_create_check},
    {POST,   "/v1/payout-runs",                   ACCESS_ADMIN,     ROUTE_BODY,              "payout_run_create", .body = api_payout_run_create_body},
    {GET,    "/v1/payout-runs",                   ACCESS_ADMIN,     ROUTE_READ,              "payout_run_list",  .query = api_page_query},
    {GET,    "/v1/payout-runs/{period}",          ACCESS_ADMIN,     ROUTE_CSV,               "payout_run_get",   .query = api_payout_run_query},
    {POST,   "/v1/payout-runs/{period}/review",   ACCESS_ADMIN,     ROUTE_BODY | ROUTE_BODY_OPTIONAL, "payout_run_review", .body = api_payout_run_review_body},
    {POST,   "/v1/payout-runs/{period}/approve",  ACCESS_ADMIN,     ROUTE_BODY | ROUTE_BODY_OPTIONAL, "payout_run_approve", .body = api_payout_run_approve_body, .check = api_payout_run_approve_check},
    {POST,   "/v1/incubators/{code}/prior-payouts", ACCESS_ADMIN,   ROUTE_BODY,              "prior_payout_create", .body = api_prior_payout_create_body, .check = api_prior_payout_create_check},
    {GET,    "/v1/incubators/{code}/prior-payouts", ACCESS_ADMIN,   0,                       "prior_payout_list", .query = api_page_query},
    {GET,    "/v1/incubators/{code}/payouts",     ACCESS_INCUBATOR, ROUTE_READ,              "incubator_payouts", .query = api_page_query},

    {GET,    "/v1/audit",                         ACCESS_ADMIN,     0,                       "audit_list",       .query = api_audit_query},

    {GET,    "/v1/incubators/{code}/metrics",     ACCESS_INCUBATOR, ROUTE_READ,              "metrics_get",      .query = api_metrics_query, .check = api_period_started_check},
    {GET,    "/v1/reports/monthly",               ACCESS_ADMIN,     ROUTE_CSV | ROUTE_READ,  "reports_monthly",  .query = api_monthly_query, .check = api_period_started_check},
    {GET,    "/v1/reports/annual",                ACCESS_ADMIN,     ROUTE_CSV | ROUTE_READ,  "reports_annual",   .query = api_annual_query},
    {GET,    "/v1/reports/cohorts",               ACCESS_ANY,       ROUTE_READ,              "reports_cohorts",  .query = api_cohorts_query, .check = api_cohorts_check, .authorize = api_reports_cohorts_authorize},
    {GET,    "/v1/reports/overview",              ACCESS_ADMIN,     ROUTE_READ,              "reports_overview", .query = api_on_query},
    {GET,    "/v1/reports/plan-progress",         ACCESS_ADMIN,     ROUTE_CSV | ROUTE_READ,  "reports_plan_progress", .query = api_plan_progress_query, .check = api_plan_progress_check},
    {GET,    "/v1/plans",                         ACCESS_ADMIN,     0,                       "plan_list",        .query = api_page_query},
    {GET,    "/v1/plans/{plan}",                  ACCESS_ADMIN,     0,                       "plan_get"},
    {PUT,    "/v1/plans/{plan}",                  ACCESS_ADMIN,     ROUTE_BODY,              "plan_put",         .body = api_plan_put_body, .check = api_plan_put_check},
    {GET,    "/v1/alerts",                        ACCESS_ANY,       ROUTE_CSV,               "alert_list",       .query = api_alert_list_query},
    {POST,   "/v1/alerts/{id}/ack",               ACCESS_ADMIN,     ROUTE_BODY,              "alert_ack",        .body = api_alert_ack_body},

    {POST,   "/v1/channels",                      ACCESS_ADMIN,     ROUTE_BODY,              "channel_create",   .body = api_channel_create_body},
    {GET,    "/v1/channels",                      ACCESS_ADMIN,     0,                       "channel_list",     .query = api_page_query},
    {GET,    "/v1/channels/{id}",                 ACCESS_ADMIN,     0,                       "channel_get"},
    {PATCH,  "/v1/channels/{id}",                 ACCESS_ADMIN,     ROUTE_BODY | ROUTE_PATCH, "channel_patch",  .body = api_channel_patch_body},
    {DELETE, "/v1/channels/{id}",                 ACCESS_ADMIN,     0,                       "channel_delete"},
    {POST,   "/v1/channels/{id}/test",            ACCESS_ADMIN,     0,                       NULL,               .handler = api_channel_test},
    {GET,    "/v1/channels/{id}/deliveries",      ACCESS_ADMIN,     0,                       "channel_deliveries", .query = api_page_query},
};
/* clang-format on */
const size_t routes_count = ARRAY_LEN(routes);

const char *route_method_name(enum evhttp_cmd_type method)
{
    switch (method) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "?";
}

bool route_param_valid(const char *name, const char *value, size_t len)
{
    if (strcmp(name, "code") == 0 || strcmp(name, "plan") == 0)
        return validate_code(value, len);
    if (strcmp(name, "external_id") == 0)
        return validate_external_id(value, len);
    if (strcmp(name, "id") == 0) {
        if (len == 0 || len > 18 || value[0] == '0')
            return false;
        for (size_t i = 0; i < len; i++)
            if (value[i] < '0' || value[i] > '9')
                return false;
        return true;
    }
    if (strcmp(name, "period") == 0) {
        char buf[8];
        int y, m;
        if (len != 7)
            return false;
        memcpy(buf, value, 7);
        buf[7] = '\0';
        return period_parse(buf, &y, &m);
    }
    return false;
}

/*
 * The parameter names patterns may use; each has its format in
 * route_param_valid() (a plan's id has the form of an incubator code).
 */
static const char *const param_names[] = {"code", "external_id", "id", "period", "plan"};

static const char *param_name(const char *s, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(param_names); i++)
        if (strlen(param_names[i]) == len && strncmp(param_names[i], s, len) == 0)
            return param_names[i];
    return NULL;
}

/*
 * Matches a path against one pattern segment by segment; fills params.
 * Returns false on a mismatch or a malformed parameter.
 */
static bool match_pattern(const char *pattern, const char *path, struct route_param *params,
                          int max_params, int *nparams)
{
    const char *p = pattern, *s = path;
    int n = 0;

    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pend = strchr(p, '/'), *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen > 2 && p[0] == '{' && p[plen - 1] == '}') {
            const char *name = param_name(p + 1, plen - 2);
            if (n >= max_params || name == NULL || !route_param_valid(name, s, slen))
                return false;
            params[n].name = name;
            params[n].value = s;
            params[n].len = slen;
            n++;
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    if (*p || *s)
        return false;
    *nparams = n;
    return true;
}

enum route_match_result route_match(enum evhttp_cmd_type method, const char *path,
                                    const struct route **out, struct route_param *params,
                                    int max_params, int *nparams, char *allow, size_t allowlen)
{
    bool path_known = false;
    allow[0] = '\0';
    *nparams = 0;
    for (size_t i = 0; i < routes_count; i++) {
        int n = 0;
        if (!match_pattern(routes[i].pattern, path, params, max_params, &n))
            continue;
        if (routes[i].method == method) {
            *out = &routes[i];
            *nparams = n;
            return ROUTE_FOUND;
        }
        path_known = true;
        const char *name = route_method_name(routes[i].method);
        if (strlen(allow) + strlen(name) + 3 < allowlen) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, name);
        }
    }
    if (path_known && strstr(allow, "GET") != NULL && strlen(allow) + 7 < allowlen)
        strcat(allow, ", HEAD");
    *out = NULL;
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}
