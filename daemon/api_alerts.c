/*
 * Alerts: the list's query table and the acknowledgement's body. The rules,
 * the lifecycle and the scope of an incubator's token are SQL's
 * (schema/functions/50_alerts.sql); delivery is notify.c's.
 */
#include "incubatord/api.h"

/* clang-format off */
static const char *const states[] = {"firing", "resolved", "all", NULL};
static const char *const rules[] = {"space_share_breach", "space_share_warning", "stale_data",
                                    "duplicate_enterprise", "overdue_tenant", "token_expiring", NULL};

const struct query_param api_alert_list_query[] = {
    {"state", Q_ENUM, false, states},
    {"incubator", Q_CODE, false, NULL},
    {"rule", Q_ENUM, false, rules},
    {"limit", Q_LIMIT, false, NULL},
    {"cursor", Q_CURSOR, false, NULL},
    {"lang", Q_ENUM, false, api_csv_langs},
    {NULL, 0, false, NULL},
};
/* clang-format on */

const struct field api_alert_ack_body[] = {
    {"note", FT_TEXT, F_REQUIRED, .max = 1000},
    {NULL},
};
