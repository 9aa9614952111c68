/*
 * The API's handlers and the tables the route table points at: body field
 * tables, query tables, cross-field checks, and the few handlers that do more
 * than one api.run call. One api_*.c file per resource.
 */
#ifndef INCUBATORD_API_H
#define INCUBATORD_API_H

#include <jansson.h>

#include "incubatord/validate.h"

struct req;
struct csv_spec;

/* Shared query tables. */
extern const struct query_param api_page_query[]; /* limit, cursor */

/* api_ops.c: health, readiness, metrics. */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_metrics(struct req *r);

/* api_incubators.c */
extern const struct field api_incubator_create_body[];
extern const struct field api_incubator_patch_body[];
void api_incubator_patch_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_incubator_close_body[];

/* api_tokens.c */
extern const struct field api_token_create_body[];
void api_token_create(struct req *r);
void api_token_revoke(struct req *r);

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
extern const struct field api_payout_run_review_body[];
extern const struct field api_payout_run_approve_body[];
void api_payout_run_approve_check(struct req *r, struct vctx *v, json_t *args);
extern const struct field api_graduation_revoke_body[];
extern const struct field api_prior_payout_create_body[];
void api_prior_payout_create_check(struct req *r, struct vctx *v, json_t *args);

/* api_audit.c */
extern const struct query_param api_audit_query[];

/* api_reports.c */
extern const struct query_param api_metrics_query[];       /* period (required) */
extern const struct query_param api_cohorts_query[];       /* admitted_year, incubator */
extern const struct query_param api_plan_progress_query[]; /* as_of */
void api_period_started_check(struct req *r, struct vctx *v, json_t *args);
void api_cohorts_check(struct req *r, struct vctx *v, json_t *args);
void api_plan_progress_check(struct req *r, struct vctx *v, json_t *args);
void api_reports_cohorts(struct req *r);
/* The longest daily share series one request may ask for. */
#define API_SHARE_DAILY_MAX_DAYS 1100
extern const struct query_param api_share_daily_query[]; /* from, to */
void api_share_daily_check(struct req *r, struct vctx *v, json_t *args);

/* api_alerts.c */
extern const struct query_param api_alert_list_query[];
extern const struct field api_alert_ack_body[];

extern const struct field api_channel_create_body[];
extern const struct field api_channel_patch_body[];
void api_channel_test(struct req *r);

#endif
