/*
 * The HTTP server. See http.h.
 *
 * A request goes through these steps, each of which may answer it:
 *   route (404/405) -> size (413) -> token (401) -> scope (403)
 *   -> media type (415) -> JSON (400) -> the route's handler (400/422/...).
 * Authentication may wait on the database; everything else is synchronous
 * until the handler's one SQL call.
 *
 * libevent 2.1 writes HTML error pages of its own and has no hook to replace
 * them, so evhttp is told to allow every method (the router answers 405) and
 * to accept bodies a few times larger than server.max_body_bytes (this file
 * answers 413 with problem+json below that). It has no connection limit:
 * every connection's bufferevent is a filter whose free callback counts it
 * out, and the listener pauses at server.max_connections; the filter also
 * writes the answers to the socket itself (see struct conn_track).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "incubatord/config.h"
#include "incubatord/console.h"
#include "incubatord/http.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/routes.h"
#include "incubatord/server.h"

/* evhttp's own limit, beyond which it answers a bare 413 before reading. */
#define EVHTTP_BODY_FACTOR 4
#define MAX_HEADERS_BYTES  (32 * 1024)

struct http_state {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener;
    int open_connections;
    int inflight;
    bool accepting;
    bool paused; /* the listener is disabled at max_connections */
};

static const char RUN_SQL[] =
    "SELECT status, body::text, location, replayed FROM api.run($1, $2::jsonb, $3::jsonb)";

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
    {409, "conflict", "Conflict"},
    {413, "too-large", "Request body too large"},
    {415, "unsupported-media-type", "Unsupported media type"},
    {422, "validation", "Request body failed validation"},
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
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "OK";
    }
}

/* ---- connection accounting ---- */

static void pause_or_resume(struct server *srv)
{
    struct http_state *h = srv->http;
    bool full = h->open_connections >= srv->cfg.max_connections;
    if (h->listener == NULL || !h->accepting)
        return;
    if (full && !h->paused) {
        evconnlistener_disable(h->listener);
        h->paused = true;
        log_msg(LOG_WARNING,
                "http: %d connections open (server.max_connections): not accepting "
                "more until one closes",
                h->open_connections);
    } else if (!full && h->paused) {
        evconnlistener_enable(h->listener);
        h->paused = false;
    }
}

/*
 * A connection's filter: it counts the connection (its free callback counts
 * it out) and writes the answers.
 *
 * Output is written straight to the socket by write_through() rather than
 * passed to the socket bufferevent below. evhttp takes the filter's write
 * callback, which runs once the filter's output is empty, to mean "sent",
 * and after an answer with Connection: close (HTTP/1.0 clients, nginx's
 * default proxy_http_version, "Connection: close" requests, the answers of
 * a draining server, evhttp's own lingering 413) it shuts the socket down and
 * frees the connection at once. Bytes that a pass-through filter had only
 * moved into the socket bufferevent's buffer were freed with it unsent: those
 * clients got an empty reply. Written by write_through(), they are in the
 * kernel by then.
 *
 * libevent's filter only processes output added while writing is enabled,
 * and evhttp adds its answer first and enables writing after: a deferred
 * flush (kick) moves it on the next loop turn; writable waits for a socket
 * whose send buffer was full.
 */
struct conn_track {
    struct server *srv;
    struct bufferevent *bev;
    struct event *kick;     /* activated when output is added */
    struct event *writable; /* EV_WRITE on the socket, made when first needed */
};

static void connection_freed(void *arg)
{
    struct conn_track *t = arg;
    struct server *srv = t->srv;
    event_free(t->kick);
    if (t->writable)
        event_free(t->writable);
    free(t);
    /*
     * libevent finalizes a freed bufferevent later, and those of the
     * connections still open at exit only in event_base_free(), after
     * http_free(): there is nothing left to count then.
     */
    if (srv->http == NULL)
        return;
    srv->http->open_connections--;
    pause_or_resume(srv);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn_track *t = arg;
    (void)fd;
    (void)what;
    bufferevent_flush(t->bev, EV_WRITE, BEV_NORMAL);
}

/* The filter's output function: as much of src as the socket takes now. */
static enum bufferevent_filter_result write_through(struct evbuffer *src, struct evbuffer *dst,
                                                    ev_ssize_t limit,
                                                    enum bufferevent_flush_mode mode, void *arg)
{
    struct conn_track *t = arg;
    evutil_socket_t fd = bufferevent_getfd(bufferevent_get_underlying(t->bev));
    size_t before = evbuffer_get_length(src);
    (void)dst;
    (void)limit;
    (void)mode;

    if (before == 0)
        return BEV_OK;
    if (evbuffer_write(src, fd) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        /* The client is gone: what is left cannot be delivered. Tell evhttp
         * as the socket bufferevent would have, so it frees the connection. */
        evbuffer_drain(src, evbuffer_get_length(src));
        bufferevent_trigger_event(t->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR,
                                  BEV_TRIG_DEFER_CALLBACKS);
        return BEV_ERROR;
    }
    if (evbuffer_get_length(src) > 0) {
        if (t->writable == NULL)
            t->writable = event_new(t->srv->base, fd, EV_WRITE, flush_cb, t);
        event_add(t->writable, NULL);
        return evbuffer_get_length(src) < before ? BEV_OK : BEV_NEED_MORE;
    }
    return BEV_OK;
}

static void output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn_track *t = arg;
    (void)buf;
    if (info->n_added > 0)
        event_active(t->kick, EV_TIMEOUT, 0);
}

static struct bufferevent *new_connection_bev(struct event_base *base, void *arg)
{
    struct server *srv = arg;
    struct bufferevent *sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct conn_track *t;
    if (sock == NULL)
        return NULL;
    t = xcalloc(1, sizeof(*t));
    t->srv = srv;
    t->bev = bufferevent_filter_new(sock, NULL, write_through, BEV_OPT_CLOSE_ON_FREE,
                                    connection_freed, t);
    if (t->bev == NULL) {
        bufferevent_free(sock);
        free(t);
        return NULL;
    }
    t->kick = event_new(base, -1, 0, flush_cb, t);
    evbuffer_add_cb(bufferevent_get_output(t->bev), output_added, t);
    srv->http->open_connections++;
    pause_or_resume(srv);
    return t->bev;
}

/* ---- the request object ---- */

int http_inflight(const struct server *srv)
{
    return srv->http ? srv->http->inflight : 0;
}

int http_open_connections(const struct server *srv)
{
    return srv->http ? srv->http->open_connections : 0;
}

const char *req_param(const struct req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

const char *req_query(const struct req *r, const char *name)
{
    return evhttp_find_header(&r->query, name);
}

int req_remaining_ms(const struct req *r)
{
    int64_t left = r->deadline_ms - mono_ms();
    return left < 1 ? 1 : (int)left;
}

void http_add_header(struct req *r, const char *name, const char *value)
{
    if (r->ev)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
}

bool req_wants_csv(const struct req *r)
{
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Accept");
    return accept != NULL && strcasestr(accept, "text/csv") != NULL;
}

static void client_closed(struct evhttp_connection *evcon, void *arg)
{
    struct req *r = arg;
    (void)evcon;
    r->client_gone = true;
}

static void req_free(struct req *r)
{
    if (r->secret != NULL) {
        explicit_bzero(r->secret, strlen(r->secret));
        free(r->secret);
    }
    evhttp_clear_headers(&r->query);
    json_decref(r->body);
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i].value);
    free(r->path);
    free(r->read_ctx);
    free(r->read_args);
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
    log_req(level, r->id, "\"%s %s\" %d %.1fms bytes=%zu token=%s peer=%s%s", r->method,
            r->path ? r->path : "?", r->status, ms, r->reply_bytes,
            r->authenticated ? r->token.name : "-", peer ? peer : "-",
            r->client_gone ? " client_gone" : "");
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

    r->status = status;
    r->reply_bytes = body ? evbuffer_get_length(body) : 0;
    if (content_type)
        evhttp_add_header(out, "Content-Type", content_type);
    evhttp_add_header(out, "X-Request-Id", r->id);
    /* API answers are never stored; the console's files say no-cache themselves. */
    if (evhttp_find_header(out, "Cache-Control") == NULL)
        evhttp_add_header(out, "Cache-Control", "no-store");
    if (srv->draining)
        evhttp_add_header(out, "Connection", "close");
    /*
     * To CONNECT (a tunnel, to evhttp) evhttp sends neither a Content-Length
     * nor a close: the client would wait for the end of the problem+json
     * body until the idle timeout.
     */
    if (evhttp_request_get_command(r->ev) == EVHTTP_REQ_CONNECT) {
        char len[24];
        snprintf(len, sizeof(len), "%zu", r->reply_bytes);
        evhttp_add_header(out, "Content-Length", len);
    }
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    access_log(r);
    metrics_request(r->route ? (int)(r->route - routes) : -1, status, mono_us() - r->started_us);
    evhttp_send_reply(r->ev, status, reason_phrase(status), body);
    r->ev = NULL;
    srv->http->inflight--;
    req_free(r);
    server_request_done(srv);
}

void http_reply_raw(struct req *r, int status, const char *content_type, const char *body,
                    size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    if (body && len)
        evbuffer_add(buf, body, len);
    finish(r, status, content_type, buf);
    evbuffer_free(buf);
}

void http_reply_json_text(struct req *r, int status, const char *json, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, json, len);
    evbuffer_add(buf, "\n", 1);
    finish(r, status, "application/json", buf);
    evbuffer_free(buf);
}

void http_reply_json(struct req *r, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(body);
    http_reply_json_text(r, status, text, strlen(text));
    free(text);
}

void http_reply_empty(struct req *r, int status)
{
    finish(r, status, NULL, NULL);
}

void http_reply_problem(struct req *r, int status, const char *detail, json_t *errors)
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
        http_add_header(r, "WWW-Authenticate",
                        r->token_presented ? "Bearer realm=\"incubatord\", error=\"invalid_token\""
                                           : "Bearer realm=\"incubatord\"");
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, text, strlen(text));
    evbuffer_add(buf, "\n", 1);
    free(text);
    if (status >= 400 && status < 500)
        log_req(LOG_INFO, r->id, "%d: %s", status, detail ? detail : title);
    finish(r, status, "application/problem+json", buf);
    evbuffer_free(buf);
}

void http_reply_db_failure(struct req *r, const struct db_result *res)
{
    char retry[16];
    switch (res->status) {
    case DB_UNAVAILABLE:
    case DB_TIMEOUT:
        snprintf(retry, sizeof(retry), "%d", res->retry_after_s > 0 ? res->retry_after_s : 1);
        http_add_header(r, "Retry-After", retry);
        log_req(LOG_WARNING, r->id, "503: %s", res->message);
        http_reply_problem(r, 503, res->message, NULL);
        return;
    case DB_SQL_ERROR:
        if (db_sqlstate_is_transient(res->sqlstate)) {
            http_add_header(r, "Retry-After", "1");
            log_req(LOG_WARNING, r->id, "503: database: %s (%s)", res->message, res->sqlstate);
            http_reply_problem(r, 503, "the database could not complete the request now; retry",
                               NULL);
            return;
        }
        if (strcmp(res->sqlstate, "23505") == 0 || strcmp(res->sqlstate, "23P01") == 0) {
            /* A constraint caught a conflict a concurrent request created. */
            log_req(LOG_NOTICE, r->id, "409: %s", res->message);
            http_reply_problem(r, 409, res->message, NULL);
            return;
        }
        log_req(LOG_ERR, r->id, "500: database error %s: %s%s%s", res->sqlstate, res->message,
                res->detail ? " DETAIL: " : "", res->detail ? res->detail : "");
        http_reply_problem(r, 500, "internal error; the request id identifies it in the log", NULL);
        return;
    case DB_OK:
        break;
    }
    http_reply_problem(r, 500, "internal error", NULL);
}

/* ---- the API call ---- */

json_t *req_context(const struct req *r)
{
    char today[11], now[32];
    time_t t = time(NULL);
    struct tm tm;
    date_format(server_today(r->srv), today);
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request_id", r->id, "method", r->method,
                            "path", r->path, "today", today, "now", now);
    if (r->authenticated) {
        json_object_set_new(ctx, "token_id", json_integer(r->token.id));
        json_object_set_new(ctx, "token_name", json_string(r->token.name));
        json_object_set_new(ctx, "admin", json_boolean(r->token.admin));
        json_object_set_new(ctx, "incubator",
                            r->token.admin ? json_null() : json_string(r->token.incubator));
    }
    if (r->idempotency_key[0] != '\0') {
        unsigned char md[32];
        char hex[65];
        auth_sha256(r->raw_body ? r->raw_body : "", r->raw_body_len, md);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        json_object_set_new(ctx, "idempotency_key", json_string(r->idempotency_key));
        json_object_set_new(ctx, "body_sha256", json_string(hex));
    }
    return ctx;
}

/*
 * An api.run row: (status, body, location, replayed). Errors come back as
 * rows too, with body {"detail", "errors"?}, and become problem+json here.
 */
static void api_done(void *arg, const struct db_result *res)
{
    struct req *r = arg;
    r->pending = NULL;
    if (r->read_ctx != NULL) {
        char *ctx_text = r->read_ctx, *args_text = r->read_args;
        r->read_ctx = r->read_args = NULL;
        /*
         * The read pool lost its connection, or the standby cancelled the
         * statement (a conflict with recovery, a shutdown): a read may run
         * again, on the primary, before the client sees a 503.
         */
        if (res->status == DB_UNAVAILABLE ||
            (res->status == DB_SQL_ERROR && db_sqlstate_is_transient(res->sqlstate))) {
            const char *values[] = {r->read_fn, ctx_text, args_text};
            log_req(LOG_INFO, r->id, "read pool: %s; reading from the primary", res->message);
            r->srv->reads_routed[1]++;
            r->pending =
                db_query(r->srv->pool, RUN_SQL, 3, values, req_remaining_ms(r), api_done, r);
            free(ctx_text);
            free(args_text);
            return;
        }
        free(ctx_text);
        free(args_text);
    }
    if (res->status != DB_OK) {
        http_reply_db_failure(r, res);
        return;
    }
    if (PQntuples(res->res) != 1) {
        log_req(LOG_ERR, r->id, "api.run returned %d rows", PQntuples(res->res));
        http_reply_problem(r, 500, "internal error", NULL);
        return;
    }
    int status = atoi(PQgetvalue(res->res, 0, 0));
    const char *body = PQgetvalue(res->res, 0, 1);
    bool has_body = !PQgetisnull(res->res, 0, 1);
    if (!PQgetisnull(res->res, 0, 2))
        http_add_header(r, "Location", PQgetvalue(res->res, 0, 2));
    if (PQgetvalue(res->res, 0, 3)[0] == 't') {
        r->replayed = true;
        http_add_header(r, "Idempotent-Replayed", "true");
    }

    if (status >= 400) {
        json_error_t err;
        json_t *p = has_body ? json_loads(body, 0, &err) : NULL;
        const char *detail = p ? json_string_value(json_object_get(p, "detail")) : NULL;
        json_t *errors = p ? json_object_get(p, "errors") : NULL;
        http_reply_problem(r, status, detail, json_is_array(errors) ? json_incref(errors) : NULL);
        json_decref(p);
        return;
    }
    if (status == 204 || !has_body) {
        if (r->on_success != NULL)
            r->on_success(r, status, NULL);
        http_reply_empty(r, status);
        return;
    }
    if (r->route && (r->route->flags & ROUTE_CSV) && req_wants_csv(r)) {
        /* CSV bodies come from SQL as a JSON string; the BOM makes spreadsheets read UTF-8. */
        json_t *csv = json_loads(body, JSON_DECODE_ANY, NULL);
        if (json_is_string(csv)) {
            struct evbuffer *buf = evbuffer_new();
            evbuffer_add(buf, "\xEF\xBB\xBF", 3);
            evbuffer_add(buf, json_string_value(csv), json_string_length(csv));
            json_decref(csv);
            finish(r, status, "text/csv; charset=utf-8", buf);
            evbuffer_free(buf);
            return;
        }
        json_decref(csv);
    }
    if (r->on_success != NULL) {
        json_t *doc = json_loads(body, 0, NULL);
        if (doc != NULL) {
            r->on_success(r, status, doc);
            http_reply_json(r, status, doc);
            return;
        }
    }
    http_reply_json_text(r, status, body, strlen(body));
}

void req_call_api(struct req *r, const char *fn, json_t *args)
{
    json_t *ctx = req_context(r);
    if (r->route && (r->route->flags & ROUTE_CSV) && req_wants_csv(r))
        json_object_set_new(ctx, "format", json_string("csv"));
    char *ctx_text = json_dumps(ctx, JSON_COMPACT);
    char *args_text = json_dumps(args, JSON_COMPACT);
    const char *values[] = {fn, ctx_text, args_text};
    json_decref(ctx);
    json_decref(args);
    struct db_pool *pool =
        r->route && (r->route->flags & ROUTE_READ) ? server_read_pool(r->srv) : r->srv->pool;
    r->pending = db_query(pool, RUN_SQL, 3, values, req_remaining_ms(r), api_done, r);
    if (pool != r->srv->pool) {
        r->read_fn = fn;
        r->read_ctx = ctx_text;
        r->read_args = args_text;
        return;
    }
    free(ctx_text);
    free(args_text);
}

/* ---- the generic handler ---- */

static json_t *query_value(struct req *r, struct vctx *v, const struct query_param *q,
                           const char *s)
{
    day_t d;
    int y, m;
    char *end;
    long n;

    switch (q->type) {
    case Q_LIMIT:
        n = strtol(s, &end, 10);
        if (*s == '\0' || *end != '\0' || n < 1 || n > 500)
            break;
        return json_integer(n);
    case Q_CURSOR:
        if (strlen(s) == 0 || strlen(s) > 200 ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
                      "lmnopqrstuvwxyz0123456789-_") != strlen(s))
            break;
        return json_string(s);
    case Q_DATE:
        if (!date_parse(s, &d))
            break;
        return json_string(s);
    case Q_PERIOD:
        if (!period_parse(s, &y, &m))
            break;
        return json_string(s);
    case Q_YEAR:
        n = strtol(s, &end, 10);
        if (strlen(s) != 4 || *end != '\0' || n < DATE_MIN_YEAR || n > DATE_MAX_YEAR)
            break;
        return json_integer(n);
    case Q_ENUM:
        for (const char *const *e = q->values; *e; e++)
            if (strcmp(*e, s) == 0)
                return json_string(s);
        break;
    case Q_CODE:
        if (!route_param_valid("code", s, strlen(s)))
            break;
        return json_string(s);
    case Q_TEXT:
        if (strlen(s) == 0 || strlen(s) > 100)
            break;
        return json_string(s);
    }
    (void)r;
    static const char *const what[] = {
        [Q_LIMIT] = "an integer from 1 to 500",
        [Q_CURSOR] = "a cursor returned by an earlier page",
        [Q_DATE] = "a calendar date YYYY-MM-DD",
        [Q_PERIOD] = "a month YYYY-MM",
        [Q_YEAR] = "a year YYYY",
        [Q_ENUM] = "one of the listed values",
        [Q_CODE] = "an incubator code",
        [Q_TEXT] = "1 to 100 characters",
    };
    if (q->type == Q_ENUM) {
        char list[256] = "";
        for (const char *const *e = q->values; *e; e++) {
            if (strlen(list) + strlen(*e) + 3 >= sizeof(list))
                break;
            if (list[0])
                strcat(list, ", ");
            strcat(list, *e);
        }
        v_error(v, q->name, "must be one of: %s", list);
    } else {
        v_error(v, q->name, "must be %s", what[q->type]);
    }
    return NULL;
}

/* Checks the query string against the route's table into args; false after answering 400. */
static bool collect_query(struct req *r, json_t *args)
{
    struct vctx v;
    struct evkeyval *kv;
    const struct query_param *table = r->route->query;

    vctx_init(&v, server_today(r->srv));
    TAILQ_FOREACH(kv, &r->query, next)
    {
        const struct query_param *q = table;
        while (q && q->name && strcmp(q->name, kv->key) != 0)
            q++;
        if (q == NULL || q->name == NULL) {
            v_error(&v, kv->key, "unknown query parameter");
            continue;
        }
        if (json_object_get(args, q->name) != NULL) {
            v_error(&v, kv->key, "given twice");
            continue;
        }
        json_t *value = query_value(r, &v, q, kv->value);
        if (value)
            json_object_set_new(args, q->name, value);
    }
    for (const struct query_param *q = table; q && q->name; q++) {
        if (json_object_get(args, q->name) != NULL)
            continue;
        if (q->required)
            v_error(&v, q->name, "is required");
        else if (q->type == Q_LIMIT)
            json_object_set_new(args, q->name, json_integer(100));
        else
            json_object_set_new(args, q->name, json_null());
    }
    if (!vctx_ok(&v)) {
        size_t n = json_array_size(v.errors);
        char detail[160];
        snprintf(detail, sizeof(detail), "%zu query parameter%s %s invalid", n, n == 1 ? "" : "s",
                 n == 1 ? "is" : "are");
        http_reply_problem(r, 400, detail, json_incref(v.errors));
        vctx_free(&v);
        return false;
    }
    vctx_free(&v);
    return true;
}

/*
 * Builds args = path parameters + query + validated body. Answers 400/422
 * itself and returns NULL when something is wrong.
 */
json_t *req_build_args(struct req *r)
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
    vctx_init(&v, server_today(r->srv));
    if (rt->body != NULL && r->body != NULL) {
        json_t *body = validate_object(&v, "", r->body, rt->body, (rt->flags & ROUTE_PATCH) != 0);
        json_object_update_missing(args, body);
        json_decref(body);
    }
    if (vctx_ok(&v) && rt->check != NULL)
        rt->check(r, &v, args);
    if (!vctx_ok(&v)) {
        size_t n = json_array_size(v.errors);
        char detail[160];
        snprintf(detail, sizeof(detail), "%zu field%s %s invalid", n, n == 1 ? "" : "s",
                 n == 1 ? "is" : "are");
        http_reply_problem(r, 422, detail, json_incref(v.errors));
        vctx_free(&v);
        json_decref(args);
        return NULL;
    }
    vctx_free(&v);
    return args;
}

static void generic_handler(struct req *r)
{
    json_t *args = req_build_args(r);
    if (args != NULL)
        req_call_api(r, r->route->fn, args);
}

/* ---- the request pipeline ---- */

static bool media_type_is_json(const char *ct)
{
    static const char json[] = "application/json";
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, json, sizeof(json) - 1) != 0)
        return false;
    ct += sizeof(json) - 1;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
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

/* Authenticated: scope, body, then the handler. */
static void serve(struct req *r)
{
    const struct route *rt = r->route;
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->ev);

    if (rt->access == ACCESS_ADMIN && !r->token.admin) {
        http_reply_problem(r, 403, "this endpoint needs an admin token", NULL);
        return;
    }
    if (rt->access == ACCESS_INCUBATOR && !r->token.admin) {
        const char *code = req_param(r, "code");
        if (code == NULL || strcmp(code, r->token.incubator) != 0) {
            http_reply_problem(r, 403, "this token may only access its own incubator", NULL);
            return;
        }
    }

    if (rt->flags & ROUTE_BODY) {
        bool empty = r->raw_body_len == 0;
        if (empty && (rt->flags & ROUTE_BODY_OPTIONAL)) {
            r->body = json_object();
        } else {
            json_error_t err;
            if (!media_type_is_json(evhttp_find_header(in, "Content-Type"))) {
                http_reply_problem(r, 415,
                                   "the body must be JSON, sent with "
                                   "Content-Type: application/json",
                                   NULL);
                return;
            }
            /* Any JSON value parses: a well-formed non-object is a 422 below, not a 400. */
            r->body = json_loadb(r->raw_body, r->raw_body_len,
                                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
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
                    snprintf(detail, sizeof(detail), "malformed JSON at line %d, column %d: %s",
                             err.line, err.column, err.text);
                }
                http_reply_problem(r, 400, detail, errors);
                return;
            }
            if (!json_is_object(r->body)) {
                json_t *errors = json_pack("[{s:s, s:s}]", "field", "(body)", "message",
                                           "must be a JSON object");
                http_reply_problem(r, 422, "the body must be a JSON object", errors);
                return;
            }
        }
    }

    if (r->ev != NULL && evhttp_request_get_command(r->ev) == EVHTTP_REQ_POST) {
        const char *key = evhttp_find_header(in, "Idempotency-Key");
        if (key != NULL) {
            if (!idempotency_key_ok(key)) {
                http_reply_problem(r, 400,
                                   "Idempotency-Key must be 1-255 printable ASCII "
                                   "characters",
                                   NULL);
                return;
            }
            snprintf(r->idempotency_key, sizeof(r->idempotency_key), "%s", key);
        }
    }

    if (!server_schema_ready(r->srv)) {
        http_add_header(r, "Retry-After", "5");
        http_reply_problem(r, 503, "the database schema is not ready", NULL);
        return;
    }
    if (rt->handler)
        rt->handler(r);
    else
        generic_handler(r);
}

static void authenticated(void *arg, enum auth_outcome outcome, const struct auth_token *token,
                          const struct db_result *failure)
{
    struct req *r = arg;
    switch (outcome) {
    case AUTH_OK:
        r->token = *token;
        r->authenticated = true;
        serve(r);
        return;
    case AUTH_REJECTED:
        http_reply_problem(r, 401, "the token is unknown or revoked", NULL);
        return;
    case AUTH_DB_FAILURE:
        http_reply_db_failure(r, failure);
        return;
    case AUTH_PENDING:
        break;
    }
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
    srv->http->inflight++;
    make_request_id(r, in);
    evhttp_connection_set_closecb(evhttp_request_get_connection(ev), client_closed, r);

    path = uri ? evhttp_uri_get_path(uri) : NULL;
    r->path = xstrdup(path && path[0] ? path : "/");
    if (console_owns(r->path)) {
        console_serve(r);
        return;
    }
    if (uri && evhttp_uri_get_query(uri) &&
        evhttp_parse_query_str(evhttp_uri_get_query(uri), &r->query) != 0) {
        http_reply_problem(r, 400, "malformed query string", NULL);
        return;
    }

    switch (route_match(method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method, r->path, &r->route,
                        params, HTTP_MAX_PARAMS, &r->nparams, allow, sizeof(allow))) {
    case ROUTE_NOT_FOUND:
        http_reply_problem(r, 404, "no such resource", NULL);
        return;
    case ROUTE_BAD_METHOD:
        http_add_header(r, "Allow", allow);
        http_reply_problem(r, 405, "method not allowed on this resource", NULL);
        return;
    case ROUTE_FOUND:
        break;
    }
    for (int i = 0; i < r->nparams; i++) {
        r->params[i].name = params[i].name;
        r->params[i].value = xmalloc(params[i].len + 1);
        memcpy(r->params[i].value, params[i].value, params[i].len);
        r->params[i].value[params[i].len] = '\0';
    }

    struct evbuffer *body = evhttp_request_get_input_buffer(ev);
    r->raw_body_len = evbuffer_get_length(body);
    if ((int64_t)r->raw_body_len > srv->cfg.max_body_bytes) {
        char detail[128];
        snprintf(detail, sizeof(detail), "the body is larger than %lld bytes",
                 (long long)srv->cfg.max_body_bytes);
        http_reply_problem(r, 413, detail, NULL);
        return;
    }
    r->raw_body = r->raw_body_len ? (const char *)evbuffer_pullup(body, -1) : "";

    if (r->route->access == ACCESS_PUBLIC) {
        r->route->handler(r);
        return;
    }
    const char *authz = evhttp_find_header(in, "Authorization");
    if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0) {
        http_reply_problem(r, 401, "an Authorization: Bearer token is required", NULL);
        return;
    }
    r->token_presented = true;
    const char *token = authz + 7;
    while (*token == ' ')
        token++;
    struct auth_token t;
    switch (
        auth_authenticate(srv->auth, srv->pool, token, req_remaining_ms(r), &t, authenticated, r)) {
    case AUTH_OK:
        authenticated(r, AUTH_OK, &t, NULL);
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
    char host[64];
    int port;

    srv->http = h;
    h->http = evhttp_new(srv->base);
    if (h->http == NULL)
        return false;
    http_apply_config(srv);
    evhttp_set_max_headers_size(h->http, MAX_HEADERS_BYTES);
    evhttp_set_flags(h->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_default_content_type(h->http, "application/json");
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h->http, request_cb, srv);
    evhttp_set_bevcb(h->http, new_connection_bev, srv);

    if (!config_split_listen(srv->cfg.listen, host, sizeof(host), &port))
        return false;
    h->bound = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (h->bound == NULL) {
        log_msg(LOG_CRIT, "http: cannot listen on %s: %s", srv->cfg.listen,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return false;
    }
    h->listener = evhttp_bound_socket_get_listener(h->bound);
    h->accepting = true;
    log_msg(LOG_NOTICE, "http: listening on %s", srv->cfg.listen);
    return true;
}

void http_apply_config(struct server *srv)
{
    struct http_state *h = srv->http;
    evhttp_set_timeout(h->http, srv->cfg.idle_timeout_s);
    evhttp_set_max_body_size(h->http, srv->cfg.max_body_bytes * EVHTTP_BODY_FACTOR + 65536);
    pause_or_resume(srv);
}

void http_stop_accepting(struct server *srv)
{
    struct http_state *h = srv->http;
    if (h == NULL || !h->accepting)
        return;
    h->accepting = false;
    if (h->bound)
        evhttp_del_accept_socket(h->http, h->bound);
    h->bound = NULL;
    h->listener = NULL;
}

void http_free(struct server *srv)
{
    struct http_state *h = srv->http;
    if (h == NULL)
        return;
    if (h->http)
        evhttp_free(h->http);
    free(h);
    srv->http = NULL;
}
