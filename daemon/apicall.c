/*
 * The API call. See apicall.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incubatord/apicall.h"
#include "incubatord/auth.h"
#include "incubatord/dates.h"
#include "incubatord/log.h"

/*
 * api.run(fn, ctx, args): the wrapper, for what needs it: an Idempotency-Key
 * (the stored answer, its lock) and a dry run (the rolled-back block).
 */
static const struct db_statement RUN = {
    "api_run",
    "SELECT status, body::text, location, replayed FROM api.run($1, $2::jsonb, $3::jsonb)", 3};
static const char RUN_JOB_SQL[] = "CALL api.run_job_batches($1, $2::jsonb, $3, $4, NULL)";

/*
 * Every other call is api.<fn>(ctx, args) itself, one prepared statement per
 * function: no subtransaction, no dynamic EXECUTE, and a plan the server
 * keeps per connection. A refusal (api.fail) then arrives as an error whose
 * SQLSTATE is 'IK' and the status, its message the detail and its DETAIL
 * the errors. The text is made once per function, from the route table's
 * names (lower-case identifiers; nothing from a request).
 */
struct fn_statement {
    struct db_statement st;
    char fn[64];
    char name[72];
    char sql[160];
};

static struct fn_statement *fn_statements;
static size_t nfn_statements, capfn_statements;

static bool fn_name_ok(const char *fn)
{
    size_t n = strlen(fn);
    return n > 0 && n < 64 && strspn(fn, "abcdefghijklmnopqrstuvwxyz_") == n;
}

/* The statement of api.<fn>, or NULL for a name that cannot be one (api.run says why). */
static const struct db_statement *fn_statement(const char *fn)
{
    for (size_t i = 0; i < nfn_statements; i++)
        if (strcmp(fn_statements[i].fn, fn) == 0)
            return &fn_statements[i].st;
    if (!fn_name_ok(fn))
        return NULL;
    if (nfn_statements == capfn_statements) {
        /* Grown only before a statement of it is in use: a pointer into it is kept by db.c. */
        return NULL;
    }
    struct fn_statement *f = &fn_statements[nfn_statements++];
    snprintf(f->fn, sizeof(f->fn), "%s", fn);
    snprintf(f->name, sizeof(f->name), "api_%s", fn);
    snprintf(f->sql, sizeof(f->sql),
             "SELECT status, body::text, location, false FROM api.%s($1::jsonb, $2::jsonb)", fn);
    f->st = (struct db_statement){f->name, f->sql, 2};
    return &f->st;
}

void apicall_init(size_t nfunctions)
{
    free(fn_statements);
    fn_statements = xcalloc(nfunctions + 1, sizeof(*fn_statements));
    nfn_statements = 0;
    capfn_statements = nfunctions + 1;
}

void apicall_free(void)
{
    free(fn_statements);
    fn_statements = NULL;
    nfn_statements = capfn_statements = 0;
}

/* One call in flight. Owned by apicall.c: freed after its callback. */
struct call {
    apicall_cb cb;
    void *arg;
    char request_id[64];
    /* A read on a read pool: the primary to try once more, and the call's text. */
    struct db_pool *fallback;
    uint64_t *fallbacks;
    const struct db_statement *st;
    const char *fn;
    char *ctx_text, *args_text;
    int64_t deadline_ms;
    bool pipeline; /* a short GET's STABLE function: the pool may pipeline it */
};

/* The call's parameters: (ctx, args) for api.<fn>, (fn, ctx, args) for api.run. */
static void call_values(const struct call *c, const char *values[3])
{
    int n = 0;
    if (c->st == &RUN)
        values[n++] = c->fn;
    values[n++] = c->ctx_text;
    values[n++] = c->args_text;
}

static void call_free(struct call *c)
{
    free(c->ctx_text);
    free(c->args_text);
    free(c);
}

struct job_call {
    apicall_job_cb cb;
    void *arg;
};

json_t *apicall_context(const struct api_caller *c)
{
    char today[11], now[32];
    time_t t = time(NULL);
    struct tm tm;
    date_format(date_today(), today);
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:o}", "request_id", c->request_id,
                     "method", c->method, "path", c->path, "today", today, "now", now, "token_id",
                     c->token_id > 0 ? json_integer(c->token_id) : json_null(), "token_name",
                     c->token_name, "admin", c->admin, "incubator",
                     c->incubator && c->incubator[0] ? json_string(c->incubator) : json_null());
}

bool apicall_own_incubator(const json_t *ctx, const char *code)
{
    const char *own = json_string_value(json_object_get(ctx, "incubator"));
    if (json_is_true(json_object_get(ctx, "admin")))
        return true;
    return code != NULL && own != NULL && strcmp(code, own) == 0;
}

void apicall_context_idempotency(json_t *ctx, const char *key, const char *body, size_t len)
{
    unsigned char md[AUTH_HASH_LEN];
    char hex[2 * AUTH_HASH_LEN + 1];
    auth_sha256(body ? body : "", len, md);
    hex_encode(md, sizeof(md), hex);
    json_object_set_new(ctx, "idempotency_key", json_string(key));
    json_object_set_new(ctx, "body_sha256", json_string(hex));
}

void apicall_failure(const struct db_result *res, const char *request_id, struct api_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (res->status) {
    case DB_UNAVAILABLE:
    case DB_TIMEOUT:
        out->status = 503;
        out->detail = res->message;
        out->retry_after_s = res->retry_after_s > 0 ? res->retry_after_s : 1;
        return;
    case DB_SQL_ERROR:
        if (db_sqlstate_is_transient(res->sqlstate)) {
            snprintf(out->reason, sizeof(out->reason), "database: %s (%s)", res->message,
                     res->sqlstate);
            out->status = 503;
            out->detail = "the database could not complete the request now; retry";
            out->retry_after_s = 1;
            return;
        }
        if (strcmp(res->sqlstate, "23505") == 0 || strcmp(res->sqlstate, "23P01") == 0) {
            /* A constraint caught a conflict a concurrent request created. */
            out->status = 409;
            out->detail = res->message;
            return;
        }
        log_req(LOG_ERR, request_id, "500: database error %s: %s%s%s", res->sqlstate, res->message,
                res->detail ? " DETAIL: " : "", res->detail ? res->detail : "");
        out->status = 500;
        out->detail = "internal error; the request id identifies it in the log";
        return;
    case DB_OK:
        break;
    }
    out->status = 500;
    out->detail = "internal error";
}

/* Whether an error is api.fail's: SQLSTATE 'IK' and a status 400-599. */
static bool is_refusal(const char *sqlstate)
{
    return sqlstate[0] == 'I' && sqlstate[1] == 'K' && sqlstate[2] >= '4' && sqlstate[2] <= '5' &&
           sqlstate[3] >= '0' && sqlstate[3] <= '9' && sqlstate[4] >= '0' && sqlstate[4] <= '9' &&
           sqlstate[5] == '\0';
}

static void send_read(struct db_pool *pool, struct call *c, const char *const *values,
                      int timeout_ms);

/*
 * A call's row: (status, body, location, replayed). Through api.run a
 * refusal comes back as a row too, with body {"detail", "errors"?}; called
 * directly, as an error (is_refusal).
 */
static void run_done(void *arg, const struct db_result *res)
{
    struct call *c = arg;
    struct api_reply reply;
    json_t *problem = NULL;

    memset(&reply, 0, sizeof(reply));
    if (c->fallback != NULL &&
        (res->status == DB_UNAVAILABLE ||
         (res->status == DB_SQL_ERROR && db_sqlstate_is_transient(res->sqlstate)))) {
        /*
         * The read pool lost its connection, or the standby cancelled the
         * statement (a conflict with recovery, a shutdown): a read may run
         * again, on the primary, before the client sees a 503.
         */
        const char *values[3];
        int64_t left = c->deadline_ms - mono_ms();
        struct db_pool *primary = c->fallback;
        log_req(LOG_INFO, c->request_id, "read pool: %s; reading from the primary", res->message);
        c->fallback = NULL;
        if (c->fallbacks)
            (*c->fallbacks)++;
        call_values(c, values);
        send_read(primary, c, values, left < 1 ? 1 : (int)left);
        return;
    }
    if (res->status == DB_SQL_ERROR && is_refusal(res->sqlstate)) {
        /* api.fail: 'IK' || status, the detail, and the errors as DETAIL. */
        reply.status = atoi(res->sqlstate + 2);
        reply.detail = res->message;
        problem = res->detail && res->detail[0] ? json_loads(res->detail, 0, NULL) : NULL;
        reply.errors = json_is_array(problem) ? problem : NULL;
    } else if (res->status != DB_OK) {
        apicall_failure(res, c->request_id, &reply);
    } else if (db_rows(res) != 1 || db_value(res, 0, 0) == NULL) {
        log_req(LOG_ERR, c->request_id, "api.run returned %d rows", db_rows(res));
        reply.status = 500;
        reply.detail = "internal error";
    } else {
        const char *body = db_value(res, 0, 1);
        const char *replayed = db_value(res, 0, 3);
        reply.status = atoi(db_value(res, 0, 0));
        reply.location = db_value(res, 0, 2);
        reply.replayed = replayed != NULL && replayed[0] == 't';
        if (reply.status >= 400) {
            problem = body ? json_loads(body, 0, NULL) : NULL;
            reply.detail = json_string_value(json_object_get(problem, "detail"));
            reply.errors = json_object_get(problem, "errors");
            if (!json_is_array(reply.errors))
                reply.errors = NULL;
        } else if (body != NULL) {
            reply.body = body;
            reply.body_len = strlen(body);
        }
    }
    c->cb(c->arg, &reply);
    json_decref(problem);
    call_free(c);
}

/*
 * A call's statement. A GET's own function may be pipelined: every GET
 * route's function is STABLE (test_schema.py holds them to it), and
 * PostgreSQL refuses a write in one; api.run's wrapper is not. The reads
 * that may lag (reports, series, listings: apicall_run_read) are not
 * either: one may take seconds, and the reads pipelined behind it would
 * wait for it.
 */
static void send_read(struct db_pool *pool, struct call *c, const char *const *values,
                      int timeout_ms)
{
    if (c->pipeline && c->st != &RUN)
        db_query_read(pool, c->st, values, timeout_ms, run_done, c);
    else
        db_query_prepared(pool, c->st, values, timeout_ms, run_done, c);
}

static void start_call(struct db_pool *read, struct db_pool *primary, uint64_t *fallbacks,
                       const char *fn, json_t *ctx, json_t *args, int timeout_ms, bool pipeline,
                       apicall_cb cb, void *arg)
{
    struct call *c = xcalloc(1, sizeof(*c));
    c->pipeline = pipeline;
    c->cb = cb;
    c->arg = arg;
    c->fn = fn;
    c->fallback = read != primary ? primary : NULL;
    c->fallbacks = fallbacks;
    c->deadline_ms = mono_ms() + timeout_ms;
    snprintf(c->request_id, sizeof(c->request_id), "%s",
             json_string_value(json_object_get(ctx, "request_id")));
    /* The wrapper only for what needs it; a dry run or a key is never on a read pool. */
    bool wrapped = json_object_get(ctx, "idempotency_key") != NULL ||
                   json_is_true(json_object_get(ctx, "dry_run"));
    c->st = wrapped ? NULL : fn_statement(fn);
    if (c->st == NULL)
        c->st = &RUN;
    c->ctx_text = json_dumps(ctx, JSON_COMPACT);
    c->args_text = json_dumps(args, JSON_COMPACT);
    json_decref(ctx);
    json_decref(args);
    if (c->ctx_text == NULL || c->args_text == NULL)
        abort(); /* Jansson dumps a valid value unless memory is exhausted */
    const char *values[3];
    call_values(c, values);
    send_read(read, c, values, timeout_ms);
    if (c->fallback == NULL) {
        /* No second try: the texts are not needed once sent (db_query copies them). */
        free(c->ctx_text);
        free(c->args_text);
        c->ctx_text = c->args_text = NULL;
    }
}

void apicall_run_read(struct db_pool *read, struct db_pool *primary, uint64_t *fallbacks,
                      const char *fn, json_t *ctx, json_t *args, int timeout_ms, apicall_cb cb,
                      void *arg)
{
    start_call(read, primary, fallbacks, fn, ctx, args, timeout_ms, false, cb, arg);
}

void apicall_run_get(struct db_pool *pool, const char *fn, json_t *ctx, json_t *args,
                     int timeout_ms, apicall_cb cb, void *arg)
{
    start_call(pool, pool, NULL, fn, ctx, args, timeout_ms, true, cb, arg);
}

void apicall_run(struct db_pool *pool, const char *fn, json_t *ctx, json_t *args, int timeout_ms,
                 apicall_cb cb, void *arg)
{
    start_call(pool, pool, NULL, fn, ctx, args, timeout_ms, false, cb, arg);
}

static void job_done(void *arg, const struct db_result *res)
{
    struct job_call *j = arg;
    j->cb(j->arg, res->status == DB_OK ? NULL : res, db_value(res, 0, 0));
    free(j);
}

void apicall_run_job(struct db_session *s, const char *name, const char *ctx, int budget_ms,
                     int target_ms, apicall_job_cb cb, void *arg)
{
    struct job_call *j = xcalloc(1, sizeof(*j));
    char budget[16], target[16];
    snprintf(budget, sizeof(budget), "%d", budget_ms);
    snprintf(target, sizeof(target), "%d", target_ms);
    const char *values[] = {name, ctx, budget, target};
    j->cb = cb;
    j->arg = arg;
    db_session_query(s, RUN_JOB_SQL, 4, values, job_done, j);
}
