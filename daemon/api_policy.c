/*
 * The policy: its query table. Reading is SQL's (schema/functions/20_policy.sql).
 */
#include "incubatord/api.h"

const struct query_param api_policy_query[] = {
    {"period", Q_PERIOD, false, NULL},
    {NULL, 0, false, NULL},
};
