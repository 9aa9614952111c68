/*
 * Notification channels over the API: the body tables (the kind-dependent
 * rules are checked on the whole row by SQL, schema/functions/41_channels.sql),
 * and the test message, which the daemon sends itself and answers with what
 * the remote said.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/channels.h"
#include "incubatord/http.h"
#include "incubatord/log.h"
#include "incubatord/outbox.h"
#include "incubatord/server.h"

#define TEST_MARGIN_MS 500 /* the answer leaves this much of the request's time */

/* clang-format off */
static const char *const kinds[] = {"webhook", "wecom", "dingtalk", "feishu", "email", NULL};
static const char *const severities[] = {"info", "warning", "critical", NULL};
static const char *const events[] = {"alert.firing", "alert.resolved", "alert.repeat",
                                     "payout_run.computed", "payout_run.approved", NULL};
/* clang-format on */

static const struct field address = {"", FT_EMAIL, 0};
/* A rule's name; SQL checks it against the one list of rules (alert_rules). */
static const struct field rule = {"", FT_TEXT, 0, .max = 64};
static const struct field event = {"", FT_ENUM, 0, .values = events};
static const struct field code = {"", FT_CODE, 0};
static const struct field district = {"", FT_TEXT, 0, .max = 100};

#define CHANNEL_FIELDS(required)                                                                   \
    {"name", FT_TEXT, required, .max = 100}, {"kind", FT_ENUM, required, .values = kinds},         \
        {"url", FT_URL, F_NULLABLE, .max = 2000}, {"secret", FT_TEXT, F_NULLABLE, .max = 200},     \
        {"to", FT_ARRAY, F_NULLABLE, .min = 1, .max = 50, .item = &address},                       \
        {"min_severity", FT_ENUM, F_NULLABLE, .values = severities},                               \
        {"rules", FT_ARRAY, F_NULLABLE, .min = 1, .max = 20, .item = &rule},                       \
        {"incubators", FT_ARRAY, F_NULLABLE, .min = 1, .max = 1000, .item = &code},                \
        {"districts", FT_ARRAY, F_NULLABLE, .min = 1, .max = 100, .item = &district},              \
        {"events", FT_ARRAY, F_NULLABLE, .min = 1, .max = 10, .item = &event},                     \
        {"max_per_minute", FT_INT, F_NULLABLE, .min = 1, .max = 1000},                             \
        {"enabled", FT_BOOL, 0},                                                                   \
    {                                                                                              \
        NULL                                                                                       \
    }

const struct field api_channel_create_body[] = {CHANNEL_FIELDS(F_REQUIRED)};
const struct field api_channel_patch_body[] = {CHANNEL_FIELDS(0)};

/* ---- POST /v1/channels/{id}/test ---- */

struct channel_test {
    struct req *r;
    enum channel_kind kind;
};

static void test_answered(void *arg, const struct curl_response *res)
{
    struct channel_test *t = arg;
    struct req *r = t->r;
    char err[512];
    if (channel_answer_ok(t->kind, res, err, sizeof(err))) {
        json_t *doc = json_pack("{s:b, s:i, s:s%}", "delivered", 1, "status", res->status,
                                "response", res->body, res->body_len);
        if (doc == NULL) /* not UTF-8 */
            doc = json_pack("{s:b, s:i, s:s}", "delivered", 1, "status", res->status,
                            "response", "");
        http_reply_json(r, 200, doc);
    } else {
        char detail[600];
        snprintf(detail, sizeof(detail), "%s: %s",
                 res->transferred ? "the channel did not take the message"
                                  : "the channel could not be reached",
                 err);
        http_reply_problem(r, 502, detail, NULL);
    }
    free(t);
}

static void target_read(void *arg, const struct db_result *res)
{
    struct req *r = arg;
    char err[256];
    r->pending = NULL;
    if (res->status != DB_OK) {
        http_reply_db_failure(r, res);
        return;
    }
    if (PQgetisnull(res->res, 0, 0)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "no channel %s", req_param(r, "id"));
        http_reply_problem(r, 404, detail, NULL);
        return;
    }
    json_t *target = json_loads(PQgetvalue(res->res, 0, 0), 0, NULL);
    struct channel_test *t = xcalloc(1, sizeof(*t));
    t->r = r;
    if (!channel_kind_parse(json_string_value(json_object_get(target, "kind")), &t->kind))
        t->kind = CHANNEL_WEBHOOK;
    int timeout = req_remaining_ms(r) - TEST_MARGIN_MS;
    if (timeout > r->srv->cfg.notify_timeout_ms)
        timeout = r->srv->cfg.notify_timeout_ms;
    if (timeout < 100)
        timeout = 100;
    bool started = outbox_send_test(r->srv, target, test_answered, t, timeout, err, sizeof(err));
    json_decref(target);
    if (!started) {
        free(t);
        char detail[320];
        snprintf(detail, sizeof(detail), "the test message could not be sent: %s", err);
        http_reply_problem(r, 502, detail, NULL);
    }
}

void api_channel_test(struct req *r)
{
    static const char sql[] = "SELECT api.channel_target($1::bigint)::text";
    const char *values[] = {req_param(r, "id")};
    r->pending = db_query(r->srv->pool, sql, 1, values, req_remaining_ms(r), target_read, r);
}
