/*
 * The audit log's query table; the log itself is written by every write
 * function in SQL and read by api.audit_list.
 */
#include "incubatord/api.h"

const struct query_param api_audit_query[] = {
    {"incubator", Q_CODE, false, NULL},
    {"limit", Q_LIMIT, false, NULL},
    {"cursor", Q_CURSOR, false, NULL},
    {NULL, 0, false, NULL},
};
