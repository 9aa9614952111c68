/*
 * The API's handlers and the tables the route table points at: body field
 * tables, query tables, cross-field checks, route hooks, and the handlers of
 * the public routes. One api_*.c file per resource.
 */
#ifndef INCUBATORD_API_H
#define INCUBATORD_API_H

#include <jansson.h>

#include "incubatord/routes.h"
#include "incubatord/validate.h"

struct req;
struct csv_spec;

/* Shared query tables. */
extern const struct query_param api_page_query[]; /* limit, cursor */

/* api_ops.c: health, readiness, metrics (route handlers of the daemon's own). */
void api_healthz(const struct route_env *env, apicall_cb done, void *arg);
void api_readyz(const struct route_env *env, apicall_cb done, void *arg);
void api_metrics(const struct route_env *env, apicall_cb done, void *arg);

/* api_incubators.c */
extern const struct field api_incubator_create_body[];
extern const struct field api_incubator_patch_body[];
void api_incubator_patch_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_incubator_close_body[];
void api_incubator_close_after(const struct route_answer *a, json_t *doc, json_t *effects);

/* api_tokens.c */
extern const struct field api_token_create_body[];
extern const struct field api_token_rotate_body[];
/* A new token's secret, made here: its hash goes to the database, the secret into keep. */
bool api_token_create_prepare(json_t *args, json_t *keep);
/* The secret shown once, in the 201 (not in a replay). */
void api_token_create_after(const struct route_answer *a, json_t *doc, json_t *effects);
/* A revoked token is forgotten here at once (other daemons hear NOTIFY). */
void api_token_revoke_after(const struct route_answer *a, json_t *doc, json_t *effects);
/* A rotation: the new secret shown once, and the old token forgotten here at once. */
void api_token_rotate_after(const struct route_answer *a, json_t *doc, json_t *effects);

/* api_tenants.c */
/* The fields of technology a tenant works in (the policy's extended_fields too). */
extern const char *const api_tenant_fields[];
extern const struct field api_tenant_put_body[];
void api_tenant_put_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_tenant_graduate_body[];
void api_tenant_graduate_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_tenant_exit_body[];
extern const struct query_param api_tenant_list_query[];
/* PUT .../tenants (bulk sync): at most this many tenants in one call. */
#define API_SYNC_MAX_TENANTS 5000
extern const struct field api_tenants_sync_body[];
extern const struct csv_spec api_tenants_sync_csv; /* the same as text/csv */
void api_tenants_sync_check(struct req *r, struct vctx *v, json_t *args);

/* api_occupancy.c */
extern const struct field api_occupancy_put_body[];
void api_occupancy_put_check(struct req *r, struct vctx *v, json_t *args);
/* Records an error for each tenants[i].external_id listed a second time. */
void api_check_listed_once(struct vctx *v, json_t *tenants);
extern const struct query_param api_on_query[]; /* on=DATE */

/* api_policy.c */
extern const struct query_param api_policy_query[];

/* api_payouts.c */
extern const struct field api_policy_create_body[];
void api_policy_create_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_payout_run_create_body[];
extern const struct query_param api_payout_run_query[];
extern const struct field api_payout_run_review_body[];
extern const struct field api_payout_run_approve_body[];
void api_payout_run_approve_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_graduation_revoke_body[];
extern const struct field api_plan_put_body[];
void api_plan_put_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_prior_payout_create_body[];
void api_prior_payout_create_check(struct req *r, struct vctx *v, json_t *args);

/* api_audit.c */
extern const struct query_param api_audit_query[];

/* api_reports.c */
extern const struct query_param api_metrics_query[];       /* period (required) */
extern const struct query_param api_monthly_query[];       /* period (required), lang */
extern const struct query_param api_annual_query[];        /* year (required), lang */
extern const char *const api_csv_langs[];                  /* the lang values of CSV exports */
extern const struct query_param api_cohorts_query[];       /* admitted_year, incubator */
extern const struct query_param api_plan_progress_query[]; /* as_of */
void api_period_started_check(struct req *r, struct vctx *v, json_t *args);
void api_cohorts_check(struct req *r, struct vctx *v, json_t *args);
void api_plan_progress_check(struct req *r, struct vctx *v, json_t *args);
/* Cohorts: an incubator token must name its own incubator. */
const char *api_reports_cohorts_authorize(const json_t *ctx, const json_t *request);
/* The longest daily share series one request may ask for. */
#define API_SHARE_DAILY_MAX_DAYS 1100
extern const struct query_param api_share_daily_query[]; /* from, to */
void api_share_daily_check(struct req *r, struct vctx *v, json_t *args);

/* api_alerts.c */
extern const struct query_param api_alert_list_query[];
extern const struct field api_alert_ack_body[];

extern const struct field api_channel_create_body[];
extern const struct field api_channel_patch_body[];
void api_channel_test(const struct route_env *env, apicall_cb done, void *arg);

#endif
