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
        {"max_per_minute", FT_INT, F_NULLABLE, .min = 1, .max = 1000}, {"enabled", FT_BOOL, 0},    \
    {                                                                                              \
        NULL                                                                                       \
    }

const struct field api_channel_create_body[] = {CHANNEL_FIELDS(F_REQUIRED)};
const struct field api_channel_patch_body[] = {CHANNEL_FIELDS(0)};

/* ---- POST /v1/channels/{id}/test ---- */

/* A test message in flight: owned here, freed once it has answered. */
struct channel_test {
    struct server *srv;
    apicall_cb done;
    void *arg;
    char request_id[64];
    char id[24];
    int timeout_ms;
    enum channel_kind kind;
    bool dry_run; /* check the channel, send nothing */
};

static void refuse(struct channel_test *t, int status, const char *detail)
{
    struct api_reply reply = {.status = status, .detail = detail};
    t->done(t->arg, &reply);
    free(t);
}

static void test_answered(void *arg, const struct curl_response *res)
{
    struct channel_test *t = arg;
    char err[512];
    if (!channel_answer_ok(t->kind, res, err, sizeof(err))) {
        char detail[600];
        snprintf(detail, sizeof(detail), "%s: %s",
                 res->transferred ? "the channel did not take the message"
                                  : "the channel could not be reached",
                 err);
        refuse(t, 502, detail);
        return;
    }
    json_t *doc = json_pack("{s:b, s:i, s:s%}", "delivered", 1, "status", res->status, "response",
                            res->body, res->body_len);
    if (doc == NULL) /* not UTF-8 */
        doc = json_pack("{s:b, s:i, s:s}", "delivered", 1, "status", res->status, "response", "");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        refuse(t, 500, "internal error");
        return;
    }
    struct api_reply reply = {.status = 200, .body = text, .body_len = strlen(text)};
    t->done(t->arg, &reply);
    free(text);
    free(t);
}

static void target_read(void *arg, const struct db_result *res)
{
    struct channel_test *t = arg;
    char err[256];
    if (res->status != DB_OK) {
        struct api_reply reply;
        apicall_failure(res, t->request_id, &reply);
        t->done(t->arg, &reply);
        free(t);
        return;
    }
    const char *text = db_value(res, 0, 0);
    if (text == NULL) {
        char detail[64];
        snprintf(detail, sizeof(detail), "no channel %s", t->id);
        refuse(t, 404, detail);
        return;
    }
    if (t->dry_run) {
        /* A dry run sends nothing: it says the channel exists and would be tried. */
        static const char body[] = "{\"delivered\":false,\"dry_run\":true}";
        struct api_reply reply = {.status = 200, .body = body, .body_len = sizeof(body) - 1};
        t->done(t->arg, &reply);
        free(t);
        return;
    }
    json_t *target = json_loads(text, 0, NULL);
    if (!channel_kind_parse(json_string_value(json_object_get(target, "kind")), &t->kind))
        t->kind = CHANNEL_WEBHOOK;
    int timeout = t->timeout_ms - TEST_MARGIN_MS;
    if (timeout > t->srv->cfg.notify_timeout_ms)
        timeout = t->srv->cfg.notify_timeout_ms;
    if (timeout < 100)
        timeout = 100;
    bool started = outbox_send_test(t->srv, target, test_answered, t, timeout, err, sizeof(err));
    json_decref(target);
    if (!started) {
        char detail[320];
        snprintf(detail, sizeof(detail), "the test message could not be sent: %s", err);
        refuse(t, 502, detail);
    }
}

void api_channel_test(const struct route_env *env, apicall_cb done, void *arg)
{
    static const char sql[] = "SELECT api.channel_target($1::bigint)::text";
    struct channel_test *t = xcalloc(1, sizeof(*t));
    t->srv = env->srv;
    t->done = done;
    t->arg = arg;
    t->timeout_ms = env->timeout_ms;
    t->dry_run = env->dry_run;
    snprintf(t->request_id, sizeof(t->request_id), "%s", env->request_id);
    snprintf(t->id, sizeof(t->id), "%s", json_string_value(json_object_get(env->args, "id")));
    const char *values[] = {t->id};
    db_query(env->srv->pool, sql, 1, values, env->timeout_ms, target_read, t);
}
