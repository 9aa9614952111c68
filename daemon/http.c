/*
 * The request pipeline. See http.h.
 *
 * A request goes through these steps, in one direction, each of which may
 * answer it:
 *   route (404/405) -> size (413) -> token (401) -> scope: access and the
 *   route's authorize hook (403) -> media type (415) -> JSON (400)
 *   -> query and body tables, the route's check (400/422) -> prepare
 *   -> the API call (apicall.c) -> after -> the answer.
 * Authentication may wait on the database; everything else is synchronous
 * until the one API call. Every answer leaves through finish().
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "incubatord/apicall.h"
#include "incubatord/busy.h"
#include "incubatord/config.h"
#include "incubatord/console.h"
#include "incubatord/csv.h"
#include "incubatord/http.h"
#include "incubatord/http_conn.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/routes.h"
#include "incubatord/server.h"

struct http_state {
    struct http_conn *conn;
};

static const struct {
    int status;
    const char *type;
    const char *title;
} problems[] = {
    {400, "bad-request", "Bad request"},
    {401, "unauthorized", "Authentication required"},
    {403, "forbidden", "Forbidden"},
    {404, "not-found", "Not found"},
    {405, "method-not-allowed", "Method not allowed"},
    {406, "not-acceptable", "Not acceptable"},
    {409, "conflict", "Conflict"},
    {413, "too-large", "Request body too large"},
    {415, "unsupported-media-type", "Unsupported media type"},
    {422, "validation", "Request body failed validation"},
    {429, "rate-limited", "Too many requests"},
    {500, "internal", "Internal error"},
    {502, "bad-gateway", "The remote end did not take the message"},
    {503, "unavailable", "Service unavailable"},
};

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "OK";
    }
}

/* ---- the request object ---- */

static const char *req_param(const struct req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

static int req_remaining_ms(const struct req *r)
{
    int64_t left = r->deadline_ms - mono_ms();
    return left < 1 ? 1 : (int)left;
}

static void add_header(struct req *r, const char *name, const char *value)
{
    if (r->ev)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

static bool wants_csv(const struct req *r)
{
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept");
    return accept != NULL && strcasestr(accept, "text/csv") != NULL;
}

/*
 * Accept asks for CSV and takes nothing JSON could be: a route without a
 * CSV form must say so (406) rather than answer JSON by surprise.
 */
static bool wants_only_csv(const struct req *r)
{
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept");
    return wants_csv(r) && strcasestr(accept, "json") == NULL && strstr(accept, "*/*") == NULL &&
           strcasestr(accept, "application/*") == NULL;
}

/* Accept-Language whose first (most wanted) language is Chinese: "zh", "zh-CN", ... */
static bool wants_chinese(const struct req *r)
{
    const char *lang =
        evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept-Language");
    if (lang == NULL)
        return false;
    while (*lang == ' ')
        lang++;
    return strncasecmp(lang, "zh", 2) == 0 &&
           (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_' || lang[2] == ',' ||
            lang[2] == ';' || lang[2] == ' ');
}

/* A file name SQL gave a CSV export: letters, digits, '.', '_' and '-' only. */
static bool file_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 120 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void client_closed(struct evhttp_connection *evcon, void *arg)
{
    struct req *r = arg;
    (void)evcon;
    r->client_gone = true;
}

/* Wipes a secret the prepare hook kept (a new token) before it is freed. */
static void wipe_keep(json_t *keep)
{
    const char *key;
    json_t *value;
    json_object_foreach(keep, key, value)
    {
        if (json_is_string(value))
            explicit_bzero((char *)json_string_value(value), json_string_length(value));
    }
}

static void req_free(struct req *r)
{
    wipe_keep(r->keep);
    json_decref(r->keep);
    json_decref(r->args);
    json_decref(r->csv_rows);
    evhttp_clear_headers(&r->query);
    json_decref(r->body);
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i].value);
    free(r->path);
    free(r);
}

static void access_log(struct req *r)
{
    double ms = (double)(mono_us() - r->started_us) / 1000.0;
    int level = (r->route && (r->route->flags & ROUTE_NOLOG) && r->status < 400) ? LOG_DEBUG
                : r->status >= 500                                               ? LOG_WARNING
                                                                                 : LOG_INFO;
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (evcon)
        evhttp_connection_get_peer(evcon, &peer, &port);
    log_req(level, r->id, "\"%s %s\" %d %.1fms bytes=%zu token=%s peer=%s%s%s%s%s%s", r->method,
            r->path ? r->path : "?", r->status, ms, r->reply_bytes,
            r->authenticated ? r->token.name : "-", peer ? peer : "-", r->dry_run ? " dry_run" : "",
            r->client_gone ? " client_gone" : "", r->problem[0] ? " problem=\"" : "", r->problem,
            r->problem[0] ? "\"" : "");
}

/*
 * Sends the answer and frees the request: the single exit of every request.
 * Also when the client is gone: evhttp then frees its request object.
 */
static void finish(struct req *r, int status, const char *content_type, struct evbuffer *body)
{
    struct server *srv = r->srv;
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    bool head = evhttp_request_get_command(r->ev) == EVHTTP_REQ_HEAD;

    r->status = status;
    r->reply_bytes = body ? evbuffer_get_length(body) : 0;
    if (content_type)
        evhttp_add_header(out, "Content-Type", content_type);
    evhttp_add_header(out, "X-Request-Id", r->id);
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    /* API answers are never stored; the console's files say no-cache themselves. */
    if (evhttp_find_header(out, "Cache-Control") == NULL)
        evhttp_add_header(out, "Cache-Control", "no-store");
    if (r->dry_run)
        evhttp_add_header(out, "Dry-Run", "true");
    if (srv->draining)
        evhttp_add_header(out, "Connection", "close");
    /*
     * To CONNECT (a tunnel, to evhttp) evhttp sends neither a Content-Length
     * nor a close: the client would wait for the end of the problem+json
     * body until the idle timeout. To HEAD it sends no Content-Length but
     * the body all the same, which a kept-alive client reads as the start of
     * the next answer: HEAD gets the GET's headers, its length included, and
     * no body.
     */
    if (head || evhttp_request_get_command(r->ev) == EVHTTP_REQ_CONNECT) {
        char len[24];
        snprintf(len, sizeof(len), "%zu", r->reply_bytes);
        if (status != 204 && status != 304)
            evhttp_add_header(out, "Content-Length", len);
    }
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    access_log(r);
    metrics_request(r->route ? (int)(r->route - routes) : -1, status, mono_us() - r->started_us);
    evhttp_send_reply(r->ev, status, reason_phrase(status), head ? NULL : body);
    r->ev = NULL;
    req_free(r);
    busy_leave(BUSY_REQUEST);
}

static void reply_text(struct req *r, int status, const char *content_type, const char *text,
                       size_t len, bool newline)
{
    struct evbuffer *buf = evbuffer_new();
    if (text && len)
        evbuffer_add(buf, text, len);
    if (newline)
        evbuffer_add(buf, "\n", 1);
    finish(r, status, content_type, buf);
    evbuffer_free(buf);
}

/*
 * Answers with RFC 9457 problem details of API.md's table: the type and title
 * follow from the status; errors (consumed, may be NULL) is a list of
 * {"field", "message"}.
 */
static void reply_problem(struct req *r, int status, const char *detail, json_t *errors)
{
    const char *type = "internal", *title = "Error";
    char urn[96];
    for (size_t i = 0; i < ARRAY_LEN(problems); i++) {
        if (problems[i].status == status) {
            type = problems[i].type;
            title = problems[i].title;
        }
    }
    snprintf(urn, sizeof(urn), "urn:incubatord:problem:%s", type);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", urn, "title", title, "status",
                          status, "detail", detail ? detail : title, "request_id", r->id);
    if (errors != NULL)
        json_object_set_new(p, "errors", errors);
    if (status == 401)
        add_header(r, "WWW-Authenticate",
                   r->token_expired     ? "Bearer realm=\"incubatord\", error=\"invalid_token\", "
                                          "error_description=\"token expired\""
                   : r->token_presented ? "Bearer realm=\"incubatord\", error=\"invalid_token\""
                                        : "Bearer realm=\"incubatord\"");
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    /* The reason goes on the request's one access line. */
    if (r->problem[0] == '\0')
        snprintf(r->problem, sizeof(r->problem), "%s", detail ? detail : title);
    if (text == NULL) {
        reply_text(r, 500, NULL, NULL, 0, false);
        return;
    }
    reply_text(r, status, "application/problem+json", text, strlen(text), true);
    free(text);
}

/* Does what an after hook asked for. */
static void apply_effects(struct req *r, const json_t *effects)
{
    json_t *forget = json_object_get(effects, ROUTE_EFFECT_FORGET_TOKEN);
    json_t *incubator = json_object_get(effects, ROUTE_EFFECT_FORGET_INCUBATOR);
    /* A dry run changed nothing: its effects are not made either. */
    if (r->dry_run)
        return;
    if (json_is_integer(forget))
        auth_cache_forget(r->srv->auth, json_integer_value(forget));
    if (json_is_string(incubator))
        auth_cache_forget_incubator(r->srv->auth, json_string_value(incubator));
}

/*
 * A successful answer through the route's after hook: its body parsed, given
 * to the hook, and sent as the hook left it.
 */
static void reply_after(struct req *r, const struct api_reply *a)
{
    struct route_answer answer = {a->status, a->replayed, r->args, r->keep};
    json_t *doc = a->body ? json_loadb(a->body, a->body_len, 0, NULL) : NULL;
    json_t *sent = doc ? json_deep_copy(doc) : NULL;
    json_t *effects = json_object();
    r->route->after(&answer, doc, effects);
    apply_effects(r, effects);
    json_decref(effects);
    /* A body the hook left as it was goes out as SQL wrote it (numbers as text). */
    if (doc != NULL && json_equal(doc, sent)) {
        json_decref(doc);
        doc = NULL;
    }
    json_decref(sent);
    if (doc == NULL) {
        if (a->body)
            reply_text(r, a->status, "application/json", a->body, a->body_len, true);
        else
            reply_text(r, a->status, NULL, NULL, 0, false);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(doc);
    if (text == NULL) {
        log_req(LOG_ERR, r->id, "the answer could not be serialised");
        reply_problem(r, 500, "internal error", NULL);
        return;
    }
    reply_text(r, a->status, "application/json", text, strlen(text), true);
    explicit_bzero(text, strlen(text)); /* it may hold a secret shown once */
    free(text);
}

/*
 * Every answer but the pipeline's own refusals: an API call's, a failed
 * database call's, a public handler's. Problems become problem+json; CSV
 * comes from SQL as a JSON string, or as {"csv": ..., "filename": ...} (then
 * with Content-Disposition), and goes out as text/csv with a BOM (so that
 * spreadsheets read UTF-8).
 */
static void answer(void *arg, const struct api_reply *a)
{
    struct req *r = arg;
    char retry[16];

    if (a->retry_after_s > 0) {
        snprintf(retry, sizeof(retry), "%d", a->retry_after_s);
        add_header(r, "Retry-After", retry);
    }
    for (const char *const *h = a->headers; h && h[0] && h[1]; h += 2)
        add_header(r, h[0], h[1]);
    if (a->location)
        add_header(r, "Location", a->location);
    if (a->replayed)
        add_header(r, "Idempotent-Replayed", "true");
    if (a->status >= 400) {
        if (a->reason[0] != '\0')
            snprintf(r->problem, sizeof(r->problem), "%s", a->reason);
        reply_problem(r, a->status, a->detail, a->errors ? json_deep_copy(a->errors) : NULL);
        return;
    }
    if (a->body != NULL && a->content_type == NULL && r->route && (r->route->flags & ROUTE_CSV) &&
        wants_csv(r)) {
        json_t *doc = json_loadb(a->body, a->body_len, JSON_DECODE_ANY, NULL);
        json_t *csv = json_is_object(doc) ? json_object_get(doc, "csv") : doc;
        const char *name = json_string_value(json_object_get(doc, "filename"));
        if (json_is_string(csv)) {
            struct evbuffer *buf = evbuffer_new();
            if (name != NULL && file_name_ok(name)) {
                char disposition[160];
                snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", name);
                add_header(r, "Content-Disposition", disposition);
            }
            evbuffer_add(buf, "\xEF\xBB\xBF", 3);
            evbuffer_add(buf, json_string_value(csv), json_string_length(csv));
            json_decref(doc);
            finish(r, a->status, "text/csv; charset=utf-8", buf);
            evbuffer_free(buf);
            return;
        }
        json_decref(doc);
    }
    if (r->route && r->route->after) {
        reply_after(r, a);
        return;
    }
    if (a->body == NULL || a->status == 204) {
        reply_text(r, a->status, NULL, NULL, 0, false);
        return;
    }
    if (a->content_type != NULL)
        reply_text(r, a->status, a->content_type, a->body, a->body_len, false);
    else
        reply_text(r, a->status, "application/json", a->body, a->body_len, true);
}

/* A failed database call (authentication's) as an answer. */
static void reply_db_failure(struct req *r, const struct db_result *res)
{
    struct api_reply a;
    apicall_failure(res, r->id, &a);
    answer(r, &a);
}

/* ---- the query and the arguments ---- */

/* Checks the query string against the route's table into args; false after answering 400. */
static bool collect_query(struct req *r, json_t *args)
{
    struct vctx v;
    struct evkeyval *kv;
    const struct query_param *table = r->route->query;

    vctx_init(&v, date_today());
    TAILQ_FOREACH(kv, &r->query, next)
    {
        validate_query_param(&v, table, kv->key, kv->value, args);
    }
    validate_query_finish(&v, table, args);
    if (!vctx_ok(&v)) {
        size_t n = json_array_size(v.errors);
        char detail[160];
        snprintf(detail, sizeof(detail), "%zu query parameter%s %s invalid", n, n == 1 ? "" : "s",
                 n == 1 ? "is" : "are");
        reply_problem(r, 400, detail, json_incref(v.errors));
        vctx_free(&v);
        return false;
    }
    vctx_free(&v);
    return true;
}

/* Whether a Content-Type is this media type (parameters such as charset aside). */
static bool media_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/*
 * A text/csv body of a route that takes one (rt->csv): parsed into the JSON
 * its body table validates, with the row of each record kept for the
 * errors. false after answering 400 (not CSV, not UTF-8) or 422 (columns).
 */
static bool parse_csv_body(struct req *r)
{
    struct vctx v;
    struct csv_body b;
    char detail[300];

    vctx_init(&v, date_today());
    if (!csv_parse_body(r->route->csv, r->raw_body, r->raw_body_len, &v, &b, detail,
                        sizeof(detail))) {
        vctx_free(&v);
        reply_problem(r, 400, detail, NULL);
        return false;
    }
    if (!vctx_ok(&v)) {
        size_t n = json_array_size(v.errors);
        snprintf(detail, sizeof(detail), "%zu problem%s with the CSV's columns or rows", n,
                 n == 1 ? "" : "s");
        reply_problem(r, 422, detail, json_incref(v.errors));
        vctx_free(&v);
        csv_body_free(&b);
        return false;
    }
    vctx_free(&v);
    r->body = b.body;
    r->csv_rows = b.rows;
    return true;
}

/* API.md: 1-255 printable ASCII characters (0x20-0x7e: a space inside is printable too). */
static bool idempotency_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return false;
    return true;
}

/*
 * The key Jansson names in its duplicate-key error, "duplicate object key
 * near '"area_m2"'", so that the problem names the field like a 422 does.
 */
static bool duplicate_key_name(const char *text, char *key, size_t len)
{
    const char *start = strstr(text, "near '\"");
    const char *end = start ? strrchr(text, '"') : NULL;
    if (start == NULL || end == NULL || end <= start + 7)
        return false;
    start += 7;
    snprintf(key, len, "%.*s", (int)(end - start), start);
    return true;
}

/*
 * Builds args = path parameters + query + validated body. Answers 400/422
 * itself and returns NULL when something is wrong.
 */
static json_t *build_args(struct req *r)
{
    const struct route *rt = r->route;
    json_t *args = json_object();
    struct vctx v;

    for (int i = 0; i < r->nparams; i++)
        json_object_set_new(args, r->params[i].name, json_string(r->params[i].value));
    if (!collect_query(r, args)) {
        json_decref(args);
        return NULL;
    }
    vctx_init(&v, date_today());
    if (rt->body != NULL && r->body != NULL) {
        json_t *body = validate_object(&v, "", r->body, rt->body, (rt->flags & ROUTE_PATCH) != 0);
        json_object_update_missing(args, body);
        json_decref(body);
    }
    if (vctx_ok(&v) && rt->check != NULL)
        rt->check(r, &v, args);
    if (r->csv_rows != NULL) {
        /* A CSV body: its errors name rows, and SQL's will too. */
        csv_rename_errors(rt->csv, r->csv_rows, v.errors);
        json_object_set_new(args, "source", json_string("csv"));
        json_object_set(args, "rows", r->csv_rows);
    }
    if (!vctx_ok(&v)) {
        size_t n = json_array_size(v.errors);
        char detail[160];
        snprintf(detail, sizeof(detail), "%zu field%s %s invalid", n, n == 1 ? "" : "s",
                 n == 1 ? "is" : "are");
        reply_problem(r, 422, detail, json_incref(v.errors));
        vctx_free(&v);
        json_decref(args);
        return NULL;
    }
    vctx_free(&v);
    return args;
}

/* What an authorize hook sees: the path parameters and the raw query, as strings. */
static json_t *raw_request(const struct req *r)
{
    json_t *request = json_object();
    struct evkeyval *kv;
    for (int i = 0; i < r->nparams; i++)
        json_object_set_new(request, r->params[i].name, json_string(r->params[i].value));
    TAILQ_FOREACH(kv, &r->query, next)
    {
        if (json_object_get(request, kv->key) == NULL)
            json_object_set_new(request, kv->key, json_string(kv->value));
    }
    return request;
}

/* The caller as api.run's context sees it. */
static json_t *context(const struct req *r)
{
    struct api_caller caller = {
        .request_id = r->id,
        .method = r->method,
        .path = r->path,
        .token_id = r->token.id,
        .token_name = r->token.name,
        .admin = r->token.admin,
        .incubator = r->token.incubator,
    };
    json_t *ctx = apicall_context(&caller);
    if (r->dry_run)
        json_object_set_new(ctx, "dry_run", json_true());
    return ctx;
}

/*
 * The pool for a read that may lag a little: the read pool while it is up
 * and its replay lag is known and at most read_max_lag_s, else the primary.
 */
static struct db_pool *read_pool(struct server *srv)
{
    if (srv->read_pool != NULL && db_pool_is_up(srv->read_pool)) {
        int64_t lag_ms = db_pool_lag_ms(srv->read_pool);
        if (lag_ms >= 0 && lag_ms <= (int64_t)srv->cfg.read_max_lag_s * 1000) {
            srv->reads_routed[0]++;
            return srv->read_pool;
        }
    }
    srv->reads_routed[1]++;
    return srv->pool;
}

/* The validated request as one API call: prepare, then api.<fn>(ctx, args). */
static void call_api(struct req *r, json_t *ctx)
{
    const struct route *rt = r->route;
    json_t *args = build_args(r);
    if (args == NULL) {
        json_decref(ctx);
        return;
    }
    if (rt->prepare != NULL) {
        r->keep = json_object();
        if (!rt->prepare(args, r->keep)) {
            json_decref(args);
            json_decref(ctx);
            log_req(LOG_ERR, r->id, "%s: the call could not be prepared", rt->fn);
            reply_problem(r, 500, "internal error", NULL);
            return;
        }
    }
    if (r->idempotency_key[0] != '\0')
        apicall_context_idempotency(ctx, r->idempotency_key, r->raw_body, r->raw_body_len);
    if ((rt->flags & ROUTE_CSV) && wants_csv(r)) {
        /* A CSV export is for people: their language, the bureau's clock. */
        json_object_set_new(ctx, "format", json_string("csv"));
        if (wants_chinese(r))
            json_object_set_new(ctx, "lang", json_string("zh"));
        json_object_set_new(ctx, "timezone", json_string(r->srv->cfg.timezone));
    }
    if (rt->handler != NULL) {
        /* The daemon's own work on the validated request, instead of a call. */
        struct route_env env = {r->srv, r->id, req_remaining_ms(r), NULL, args, r->dry_run};
        json_decref(ctx);
        r->args = args;
        rt->handler(&env, answer, r);
        return;
    }
    if (rt->after != NULL)
        r->args = json_incref(args);
    if (rt->flags & ROUTE_READ)
        apicall_run_read(read_pool(r->srv), r->srv->pool, &r->srv->reads_routed[1], rt->fn, ctx,
                         args, req_remaining_ms(r), answer, r);
    else
        apicall_run(r->srv->pool, rt->fn, ctx, args, req_remaining_ms(r), answer, r);
}

/* Parses the body of a route that takes one; false after answering 400/415/422. */
static bool parse_body(struct req *r)
{
    const struct route *rt = r->route;
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
    json_error_t err;

    if (r->raw_body_len == 0 && (rt->flags & ROUTE_BODY_OPTIONAL)) {
        r->body = json_object();
        return true;
    }
    if (rt->csv != NULL && media_type_is(evhttp_find_header(in, "Content-Type"), "text/csv"))
        return parse_csv_body(r);
    if (!media_type_is(evhttp_find_header(in, "Content-Type"), "application/json")) {
        reply_problem(r, 415,
                      rt->csv != NULL ? "the body must be JSON (Content-Type: application/json) "
                                        "or CSV (Content-Type: text/csv)"
                                      : "the body must be JSON, sent with Content-Type: "
                                        "application/json",
                      NULL);
        return false;
    }
    /* Any JSON value parses: a well-formed non-object is a 422 below, not a 400. */
    r->body =
        json_loadb(r->raw_body, r->raw_body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (r->body == NULL) {
        char detail[300];
        json_t *errors = NULL;
        if (json_error_code(&err) == json_error_duplicate_key) {
            char key[160];
            snprintf(detail, sizeof(detail), "duplicate key in JSON object: %s", err.text);
            if (duplicate_key_name(err.text, key, sizeof(key)))
                errors = json_pack("[{s:s, s:s}]", "field", key, "message",
                                   "appears twice in one object");
        } else {
            snprintf(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s", err.line,
                     err.column, err.text);
        }
        reply_problem(r, 400, detail, errors);
        return false;
    }
    if (!json_is_object(r->body)) {
        json_t *errors =
            json_pack("[{s:s, s:s}]", "field", "(body)", "message", "must be a JSON object");
        reply_problem(r, 422, "the body must be a JSON object", errors);
        return false;
    }
    return true;
}

/* Authenticated: scope, body, then the call. */
static void serve(struct req *r)
{
    const struct route *rt = r->route;
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);
    json_t *ctx = context(r);

    if (rt->access == ACCESS_ADMIN && !r->token.admin) {
        json_decref(ctx);
        reply_problem(r, 403, "this endpoint needs an admin token", NULL);
        return;
    }
    if (rt->access == ACCESS_INCUBATOR && !apicall_own_incubator(ctx, req_param(r, "code"))) {
        json_decref(ctx);
        reply_problem(r, 403, "this token may only access its own incubator", NULL);
        return;
    }
    if (rt->authorize != NULL) {
        json_t *request = raw_request(r);
        const char *refusal = rt->authorize(ctx, request);
        json_decref(request);
        if (refusal != NULL) {
            json_decref(ctx);
            reply_problem(r, 403, refusal, NULL);
            return;
        }
    }

    if ((rt->flags & ROUTE_BODY) && !parse_body(r)) {
        json_decref(ctx);
        return;
    }

    if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_POST) {
        const char *key = evhttp_find_header(in, "Idempotency-Key");
        if (key != NULL) {
            if (!idempotency_key_ok(key)) {
                json_decref(ctx);
                reply_problem(r, 400, "Idempotency-Key must be 1-255 printable ASCII characters",
                              NULL);
                return;
            }
            snprintf(r->idempotency_key, sizeof(r->idempotency_key), "%s", key);
        }
    }

    if (!server_schema_ready(r->srv)) {
        json_decref(ctx);
        add_header(r, "Retry-After", "5");
        reply_problem(r, 503, "the database schema is not ready", NULL);
        return;
    }
    call_api(r, ctx);
}

/*
 * The token's bucket ([server] rate_limit_per_minute and rate_limit_burst, at
 * this daemon): true after answering 429 with Retry-After.
 */
static bool rate_limited(struct req *r)
{
    const struct config *cfg = &r->srv->cfg;
    int retry_after_s;
    char retry[16], name[512], incubator[80], labels[640];

    if (auth_rate_take(r->srv->auth, r->token.id, cfg->rate_limit_per_minute, cfg->rate_limit_burst,
                       mono_ms(), &retry_after_s))
        return false;
    metrics_label_value(name, sizeof(name), r->token.name);
    metrics_label_value(incubator, sizeof(incubator), r->token.incubator);
    snprintf(labels, sizeof(labels), "token=\"%s\",incubator=\"%s\"", name, incubator);
    metrics_add("incubatord_rate_limited_total", labels, 1);
    snprintf(retry, sizeof(retry), "%d", retry_after_s);
    add_header(r, "Retry-After", retry);
    char detail[160];
    snprintf(detail, sizeof(detail),
             "this token made more than %d requests a minute (bursts of %d); retry in %d s",
             cfg->rate_limit_per_minute, cfg->rate_limit_burst, retry_after_s);
    reply_problem(r, 429, detail, NULL);
    return true;
}

static void authenticated(void *arg, enum auth_outcome outcome, const struct auth_token *token,
                          const struct db_result *failure)
{
    struct req *r = arg;
    switch (outcome) {
    case AUTH_OK:
        r->token = *token;
        r->authenticated = true;
        if (rate_limited(r))
            return;
        serve(r);
        return;
    case AUTH_EXPIRED:
        r->token_expired = true;
        reply_problem(r, 401, "the token expired", NULL);
        return;
    case AUTH_REJECTED:
        reply_problem(r, 401, "the token is unknown or revoked", NULL);
        return;
    case AUTH_DB_FAILURE:
        reply_db_failure(r, failure);
        return;
    case AUTH_PENDING:
        break;
    }
}

/*
 * ?dry_run=true on a PUT, POST, PATCH or DELETE under /v1/ (API.md "Dry
 * runs"): api.run carries the request out in a transaction that it rolls
 * back, and every answer says Dry-Run: true. The parameter is taken out of
 * the query here, once for every route, so no route's table lists it.
 * Returns false after answering 400 for a value other than true or false.
 */
static bool take_dry_run(struct req *r)
{
    enum evhttp_cmd_type m = r->route->method;
    const char *value = evhttp_find_header(&r->query, "dry_run");
    bool ok;

    if (value == NULL || strncmp(r->path, "/v1/", 4) != 0 ||
        (m != EVHTTP_REQ_POST && m != EVHTTP_REQ_PUT && m != EVHTTP_REQ_PATCH &&
         m != EVHTTP_REQ_DELETE))
        return true;
    r->dry_run = strcmp(value, "true") == 0;
    ok = r->dry_run || strcmp(value, "false") == 0;
    evhttp_remove_header(&r->query, "dry_run");
    if (evhttp_find_header(&r->query, "dry_run") != NULL) {
        /* Given twice: which one was meant is anybody's guess. */
        ok = false;
        evhttp_remove_header(&r->query, "dry_run");
    }
    if (!ok) {
        r->dry_run = false;
        reply_problem(r, 400, "dry_run must be given once, as true or false",
                      json_pack("[{s:s, s:s}]", "field", "dry_run", "message",
                                "must be true or false, given once"));
        return false;
    }
    return true;
}

static void make_request_id(struct req *r, struct evkeyvalq *in)
{
    const char *given = evhttp_find_header(in, "X-Request-Id");
    if (given != NULL && strlen(given) >= 8 && strlen(given) <= HTTP_REQUEST_ID_LEN &&
        strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
            strlen(given)) {
        snprintf(r->id, sizeof(r->id), "%s", given);
        return;
    }
    /*
     * A random prefix drawn once and a counter: unique across restarts and
     * daemons in practice, and no call into the random generator per request.
     */
    static uint32_t prefix, counter;
    if (prefix == 0 && RAND_bytes((unsigned char *)&prefix, sizeof(prefix)) != 1)
        prefix = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    snprintf(r->id, sizeof(r->id), "%08x%08x", prefix, ++counter);
}

static void request_cb(struct evhttp_request *ev, void *arg)
{
    struct server *srv = arg;
    struct req *r = xcalloc(1, sizeof(*r));
    struct evkeyvalq *in = evhttp_request_get_input_headers(ev);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    enum evhttp_cmd_type method = evhttp_request_get_command(ev);
    struct route_param params[HTTP_MAX_PARAMS];
    char allow[128];
    const char *path;

    r->ev = ev;
    r->srv = srv;
    r->started_us = mono_us();
    r->deadline_ms = mono_ms() + srv->cfg.request_timeout_ms;
    r->method = route_method_name(method);
    TAILQ_INIT(&r->query);
    busy_enter(BUSY_REQUEST);
    make_request_id(r, in);
    evhttp_connection_set_closecb(evhttp_request_get_connection(ev), client_closed, r);

    path = uri ? evhttp_uri_get_path(uri) : NULL;
    r->path = xstrdup(path && path[0] ? path : "/");
    if (console_owns(r->path)) {
        console_serve(method, r->path, evhttp_find_header(in, "If-None-Match"), answer, r);
        return;
    }
    if (uri && evhttp_uri_get_query(uri) &&
        evhttp_parse_query_str(evhttp_uri_get_query(uri), &r->query) != 0) {
        reply_problem(r, 400, "malformed query string", NULL);
        return;
    }

    switch (route_match(method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method, r->path, &r->route,
                        params, HTTP_MAX_PARAMS, &r->nparams, allow, sizeof(allow))) {
    case ROUTE_NOT_FOUND:
        reply_problem(r, 404, "no such resource", NULL);
        return;
    case ROUTE_BAD_METHOD:
        add_header(r, "Allow", allow);
        reply_problem(r, 405, "method not allowed on this resource", NULL);
        return;
    case ROUTE_FOUND:
        break;
    }
    if (!(r->route->flags & ROUTE_CSV) && wants_only_csv(r)) {
        reply_problem(r, 406, "this resource has no CSV form; it answers application/json", NULL);
        return;
    }
    for (int i = 0; i < r->nparams; i++) {
        r->params[i].name = params[i].name;
        r->params[i].value = xmalloc(params[i].len + 1);
        memcpy(r->params[i].value, params[i].value, params[i].len);
        r->params[i].value[params[i].len] = '\0';
    }
    if (!take_dry_run(r))
        return;

    struct evbuffer *body = evhttp_request_get_input_buffer(ev);
    r->raw_body_len = evbuffer_get_length(body);
    int64_t limit =
        r->route->flags & ROUTE_BULK ? srv->cfg.max_sync_body_bytes : srv->cfg.max_body_bytes;
    if ((int64_t)r->raw_body_len > limit) {
        char detail[128];
        snprintf(detail, sizeof(detail), "the body is larger than %lld bytes", (long long)limit);
        reply_problem(r, 413, detail, NULL);
        return;
    }
    r->raw_body = r->raw_body_len ? (const char *)evbuffer_pullup(body, -1) : "";

    if (r->route->access == ACCESS_PUBLIC) {
        char *peer = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(evhttp_request_get_connection(ev), &peer, &port);
        struct route_env env = {srv, r->id, req_remaining_ms(r), peer, NULL};
        r->route->handler(&env, answer, r);
        return;
    }
    const char *authz = evhttp_find_header(in, "Authorization");
    if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0) {
        reply_problem(r, 401, "an Authorization: Bearer token is required", NULL);
        return;
    }
    r->token_presented = true;
    const char *token = authz + 7;
    while (*token == ' ')
        token++;
    struct auth_token t;
    enum auth_outcome outcome = auth_authenticate(srv->auth, srv->pool, token, server_now(srv),
                                                  req_remaining_ms(r), &t, authenticated, r);
    switch (outcome) {
    case AUTH_OK:
    case AUTH_EXPIRED:
        authenticated(r, outcome, &t, NULL);
        return;
    case AUTH_REJECTED:
        authenticated(r, AUTH_REJECTED, NULL, NULL);
        return;
    default:
        return; /* the callback continues */
    }
}

bool http_start(struct server *srv)
{
    struct http_state *h = xcalloc(1, sizeof(*h));
    srv->http = h;
    h->conn = http_conn_start(srv->base, &srv->cfg, request_cb, srv);
    srv->http_conn = h->conn;
    return h->conn != NULL;
}

void http_apply_config(struct server *srv)
{
    if (srv->http && srv->http->conn)
        http_conn_apply_config(srv->http->conn, &srv->cfg);
}

void http_stop_accepting(struct server *srv)
{
    if (srv->http)
        http_conn_stop_accepting(srv->http->conn);
}

void http_free(struct server *srv)
{
    struct http_state *h = srv->http;
    if (h == NULL)
        return;
    http_conn_free(h->conn);
    free(h);
    srv->http = NULL;
    srv->http_conn = NULL;
}
