/*
 * The notifier. See notify.h.
 *
 * Two delivery passes run side by side, each with at most one step in flight:
 *
 *   local    claim a batch of events whose syslog line or NOTIFY is pending
 *            (lease LOCAL_LEASE_MS), write their syslog lines, then record
 *            them, which sends their NOTIFY incubatord_events at commit;
 *   webhook  claim the oldest event whose webhook is pending, if it is due
 *            (lease: twice the attempt's time limit and a margin), POST it,
 *            and record the outcome: delivered, retried after a backoff, or
 *            given up once the retry window has passed.
 *
 * The webhook goes strictly in outbox order: a receiver sees a firing before
 * its resolution, and a receiver that is down costs one attempt per backoff
 * step, not one per waiting event. The passes run when woken (NOTIFY
 * incubatord_outbox, the LISTEN connection coming back, the schema becoming
 * ready), when a retry falls due, and every POLL_MS as a safety net.
 *
 * The gauges of /metrics that come from the database (open alerts, backlog,
 * failed webhooks) are read here every METRICS_MS and shortly after each
 * delivery, so /metrics itself never needs the database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "incubatord/channels.h"
#include "incubatord/curl.h"
#include "incubatord/db.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/notify.h"
#include "incubatord/server.h"

#define POLL_MS            5000  /* the safety net: look at the outbox this often */
#define METRICS_MS         10000 /* refresh the database gauges this often */
#define METRICS_SOON_MS    200   /* ... and this soon after a delivery */
#define SQL_TIMEOUT_MS     10000 /* one bookkeeping statement's limit */
#define LOCAL_BATCH        100   /* events claimed at once for syslog and NOTIFY */
#define LOCAL_LEASE_MS     30000 /* how long such a claim holds */
#define LEASE_MARGIN_MS    2000  /* a webhook lease: 2 x the attempt's limit + this */

static const char CLAIM_LOCAL_SQL[] =
    "SELECT id, event_id, syslog_level, message, syslog_pending, notify_pending "
    "FROM api.outbox_claim_local($1, $2::integer, $3::integer)";
static const char LOCAL_DONE_SQL[] = "SELECT api.outbox_local_done($1, $2::bigint[])";
static const char CLAIM_WEBHOOK_SQL[] =
    "SELECT id, event_id, body, attempts, wait_ms "
    "FROM api.outbox_claim_webhook($1, $2::integer, $3::boolean)";
static const char WEBHOOK_DONE_SQL[] =
    "SELECT state, attempts, next_attempt_ms "
    "FROM api.outbox_webhook_done($1, $2::bigint, $3::boolean, $4, $5::integer, $6::integer)";
static const char METRICS_SQL[] = "SELECT api.alert_metrics()::text";

enum webhook_phase {
    WH_IDLE,      /* nothing in flight */
    WH_CLAIMING,  /* asking the outbox for the next event */
    WH_SENDING,   /* the POST is in flight */
    WH_RECORDING, /* recording the attempt's outcome */
};

/* One POST of one event. Owned by the notifier (n->attempt) until recorded. */
struct attempt {
    struct notify_state *n;
    int64_t id; /* outbox row */
    char event_id[40];
    char *body;
    int attempts_before; /* failed attempts before this one */
    struct curl_transfer *xfer; /* the POST in flight */
    struct event *after;        /* deferred: record the outcome from the loop */
    bool finished;
    bool ok;
    int status; /* the HTTP status, 0 when none came */
    int64_t started_ms;
    char error[512];
};

struct notify_state {
    struct server *srv;
    char claimer[160];     /* host:pid:random, the lease holder's name */
    struct event *wake;    /* deferred: run both passes */
    struct event *poll;    /* every POLL_MS */
    struct event *retry;   /* the next webhook attempt falls due */
    struct event *metrics; /* refresh of the database gauges */
    bool local_busy;       /* a local claim or record is in flight */
    bool local_again;      /* woken meanwhile: run again when done */
    enum webhook_phase phase;
    bool webhook_again;
    struct attempt *attempt;
    bool metrics_busy;
    bool metrics_again;
    int64_t metrics_due_ms;
    struct curl_client *curl;
};

static void local_run(struct notify_state *n);
static void webhook_run(struct notify_state *n);
static void metrics_soon(struct notify_state *n);

/* ---- pure parts ---- */

int64_t notify_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t d = initial_ms > 0 ? initial_ms : 1;
    for (int i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return d - half + (int64_t)(rnd % (uint64_t)(half + 1));
}

/* ---- small helpers ---- */

static bool may_start(const struct notify_state *n)
{
    return !n->srv->draining && server_schema_ready(n->srv);
}

static void arm_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

/* A step finished: a draining server may be waiting for the last one. */
static void step_done(struct notify_state *n)
{
    server_request_done(n->srv);
}

static void count_delivery(const char *channel, int count)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "channel=\"%s\"", channel);
    metrics_add("incubatord_notifications_total", labels, count);
}

/* ---- syslog and NOTIFY ---- */

static void local_finished(struct notify_state *n, bool more)
{
    n->local_busy = false;
    metrics_soon(n);
    if (more || n->local_again)
        local_run(n);
    step_done(n);
}

struct local_batch {
    struct notify_state *n;
    int count;
    int notified;
    bool full;
};

static void local_recorded(void *arg, const struct db_result *r)
{
    struct local_batch *b = arg;
    struct notify_state *n = b->n;
    bool full = b->full;
    if (r->status != DB_OK) {
        /* The lease runs out and the batch is delivered again: at least once. */
        log_msg(LOG_WARNING, "notify: could not record %d syslog/NOTIFY deliveries: %s", b->count,
                r->message);
        full = false;
    } else {
        count_delivery("notify", b->notified);
    }
    free(b);
    local_finished(n, full);
}

static void local_claimed(void *arg, const struct db_result *r)
{
    struct notify_state *n = arg;
    if (r->status != DB_OK) {
        log_msg(LOG_DEBUG, "notify: cannot claim events: %s", r->message);
        local_finished(n, false);
        return;
    }
    int rows = PQntuples(r->res);
    if (rows == 0) {
        local_finished(n, false);
        return;
    }
    struct local_batch *b = xcalloc(1, sizeof(*b));
    size_t cap = 2 + (size_t)rows * 21, len = 0;
    char *ids = xmalloc(cap);
    int logged = 0;
    b->n = n;
    b->count = rows;
    b->full = rows >= LOCAL_BATCH;
    ids[len++] = '{';
    for (int i = 0; i < rows; i++) {
        len +=
            (size_t)snprintf(ids + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(r->res, i, 0));
        if (PQgetvalue(r->res, i, 4)[0] == 't') {
            int level = log_level_from_name(PQgetvalue(r->res, i, 2));
            log_msg(level < 0 ? LOG_NOTICE : level, "%s", PQgetvalue(r->res, i, 3));
            logged++;
        }
        if (PQgetvalue(r->res, i, 5)[0] == 't')
            b->notified++;
    }
    snprintf(ids + len, cap - len, "}");
    count_delivery("syslog", logged);
    const char *values[] = {n->claimer, ids};
    db_query_background(n->srv->pool, LOCAL_DONE_SQL, 2, values, SQL_TIMEOUT_MS, local_recorded, b);
    free(ids);
}

static void local_run(struct notify_state *n)
{
    char lease[16], batch[16];
    if (n->local_busy) {
        n->local_again = true;
        return;
    }
    if (!may_start(n))
        return;
    n->local_busy = true;
    n->local_again = false;
    snprintf(lease, sizeof(lease), "%d", LOCAL_LEASE_MS);
    snprintf(batch, sizeof(batch), "%d", LOCAL_BATCH);
    const char *values[] = {n->claimer, lease, batch};
    db_query_background(n->srv->pool, CLAIM_LOCAL_SQL, 3, values, SQL_TIMEOUT_MS, local_claimed, n);
}

/* ---- the webhook: one attempt, through libcurl ---- */

static void attempt_free(struct attempt *a)
{
    curl_transfer_cancel(a->xfer);
    if (a->after)
        event_free(a->after);
    free(a->body);
    free(a);
}

/* libcurl's answer (or failure): judged here, recorded from attempt_after_cb. */
static void attempt_answered(void *arg, const struct curl_response *res)
{
    struct attempt *a = arg;
    a->xfer = NULL;
    a->status = res->transferred ? res->status : 0;
    a->ok = channel_answer_ok(CHANNEL_WEBHOOK, res, a->error, sizeof(a->error));
    if (a->ok)
        a->error[0] = '\0';
    event_active(a->after, EV_TIMEOUT, 0);
}

static void attempt_recorded(void *arg, const struct db_result *r)
{
    struct attempt *a = arg;
    struct notify_state *n = a->n;
    int64_t took = mono_ms() - a->started_ms;

    metrics_add("incubatord_webhook_deliveries_total",
                a->ok ? "outcome=\"delivered\"" : "outcome=\"failed\"", 1);
    if (r->status != DB_OK || PQntuples(r->res) != 1) {
        log_msg(LOG_WARNING,
                "webhook: event %s: could not record the attempt (%s): %s; it is "
                "sent again when its lease runs out",
                a->event_id, a->ok ? "delivered" : a->error, r->message ? r->message : "no result");
    } else {
        const char *state = PQgetvalue(r->res, 0, 0);
        int attempts = atoi(PQgetvalue(r->res, 0, 1));
        if (a->ok) {
            count_delivery("webhook", 1);
            log_msg(LOG_INFO, "webhook: event %s delivered: HTTP %d in %lld ms (attempt %d)",
                    a->event_id, a->status, (long long)took, attempts);
        } else if (strcmp(state, "failed") == 0) {
            log_msg(LOG_ERR, "webhook: event %s given up after %d attempts in %d s: %s",
                    a->event_id, attempts, n->srv->cfg.webhook_retry_for_s, a->error);
        } else if (strcmp(state, "pending") == 0) {
            log_msg(LOG_WARNING, "webhook: event %s attempt %d failed: %s; next attempt in %s ms",
                    a->event_id, attempts, a->error, PQgetvalue(r->res, 0, 2));
        } else {
            log_msg(LOG_INFO, "webhook: event %s was %s meanwhile by another daemon", a->event_id,
                    state);
        }
    }
    n->attempt = NULL;
    attempt_free(a);
    n->phase = WH_IDLE;
    metrics_soon(n);
    webhook_run(n); /* the next event, or the wait for this one's retry */
    step_done(n);
}

/* The attempt is over (answered, failed or timed out): record its outcome. */
static void attempt_after_cb(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    struct notify_state *n = a->n;
    const struct config *cfg = &n->srv->cfg;
    char id[24], retry_ms[24], retry_for[16];
    (void)fd;
    (void)what;

    snprintf(id, sizeof(id), "%lld", (long long)a->id);
    snprintf(retry_ms, sizeof(retry_ms), "%lld",
             (long long)notify_backoff_ms(a->attempts_before + 1, cfg->webhook_retry_initial_ms,
                                          cfg->webhook_retry_max_ms, (uint32_t)random()));
    snprintf(retry_for, sizeof(retry_for), "%d", cfg->webhook_retry_for_s);
    const char *values[] = {n->claimer, id,       a->ok ? "true" : "false", a->ok ? NULL : a->error,
                            retry_ms,   retry_for};
    n->phase = WH_RECORDING;
    db_query_background(n->srv->pool, WEBHOOK_DONE_SQL, 6, values, SQL_TIMEOUT_MS, attempt_recorded,
                        a);
}

/*
 * Sends the event: a POST of its body with the event id and the signature
 * headers (channels.c), over http or https through libcurl (peer and host
 * name verified). Returns false with a reason when it could not even start;
 * the attempt then counts as failed.
 */
static bool attempt_send(struct attempt *a, char *err, size_t errlen)
{
    struct notify_state *n = a->n;
    const struct config *cfg = &n->srv->cfg;
    struct channel_target ch = {.kind = CHANNEL_WEBHOOK, .name = "webhook",
                                .url = cfg->webhook_url, .secret = cfg->webhook_secret};
    struct channel_message m;
    const char *payloads[] = {a->body};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (!channel_build(&ch, NULL, payloads, 1, NULL, NULL,
                       (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &m, err, errlen))
        return false;
    struct curl_request req = {.url = m.url, .body = m.body, .body_len = m.body_len,
                               .headers = (const char *const *)m.headers,
                               .timeout_ms = cfg->webhook_timeout_ms};
    a->xfer = curl_client_start(n->curl, &req, attempt_answered, a, err, errlen);
    channel_message_free(&m);
    return a->xfer != NULL;
}

static void attempt_start(struct notify_state *n, const PGresult *res)
{
    struct attempt *a = xcalloc(1, sizeof(*a));
    char err[256];
    a->n = n;
    a->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(a->event_id, sizeof(a->event_id), "%s", PQgetvalue(res, 0, 1));
    a->body = xstrdup(PQgetvalue(res, 0, 2));
    a->attempts_before = atoi(PQgetvalue(res, 0, 3));
    a->started_ms = mono_ms();
    a->after = event_new(n->srv->base, -1, 0, attempt_after_cb, a);
    n->attempt = a;
    n->phase = WH_SENDING;
    if (!attempt_send(a, err, sizeof(err)) && !a->finished) {
        a->finished = true;
        a->ok = false;
        snprintf(a->error, sizeof(a->error), "%s", err);
        event_active(a->after, EV_TIMEOUT, 0);
    }
}

static void webhook_claimed(void *arg, const struct db_result *r)
{
    struct notify_state *n = arg;
    if (r->status != DB_OK || PQntuples(r->res) != 1) {
        log_msg(LOG_DEBUG, "webhook: cannot claim an event: %s",
                r->message ? r->message : "no result");
        n->phase = WH_IDLE;
        step_done(n);
        return;
    }
    if (!PQgetisnull(r->res, 0, 0)) {
        attempt_start(n, r->res);
        return;
    }
    n->phase = WH_IDLE;
    if (!PQgetisnull(r->res, 0, 4))
        arm_ms(n->retry, strtoll(PQgetvalue(r->res, 0, 4), NULL, 10));
    if (n->webhook_again)
        webhook_run(n);
    step_done(n);
}

static void webhook_run(struct notify_state *n)
{
    const struct config *cfg = &n->srv->cfg;
    char lease[16];
    if (n->phase != WH_IDLE) {
        n->webhook_again = true;
        return;
    }
    if (!may_start(n))
        return;
    n->phase = WH_CLAIMING;
    n->webhook_again = false;
    snprintf(lease, sizeof(lease), "%d", 2 * cfg->webhook_timeout_ms + LEASE_MARGIN_MS);
    const char *values[] = {n->claimer, lease, cfg->webhook_url[0] ? "true" : "false"};
    db_query_background(n->srv->pool, CLAIM_WEBHOOK_SQL, 3, values, SQL_TIMEOUT_MS, webhook_claimed,
                        n);
}

/* ---- the database gauges ---- */

static void set_series(const char *name, const char *label, json_t *object)
{
    const char *key;
    json_t *value;
    char labels[128];
    metrics_reset(name);
    json_object_foreach(object, key, value)
    {
        snprintf(labels, sizeof(labels), "%s=\"%s\"", label, key);
        metrics_set(name, labels, (double)json_integer_value(value));
    }
}

static void metrics_read(void *arg, const struct db_result *r)
{
    struct notify_state *n = arg;
    n->metrics_busy = false;
    if (r->status == DB_OK && PQntuples(r->res) == 1) {
        json_t *m = json_loads(PQgetvalue(r->res, 0, 0), 0, NULL);
        set_series("incubatord_alerts_open", "rule", json_object_get(m, "alerts_open"));
        set_series("incubatord_outbox_undelivered", "channel", json_object_get(m, "undelivered"));
        metrics_set("incubatord_outbox_failed", "channel=\"webhook\"",
                    (double)json_integer_value(json_object_get(m, "webhook_failed")));
        metrics_set("incubatord_outbox_oldest_undelivered_seconds", NULL,
                    (double)json_integer_value(json_object_get(m, "oldest_undelivered_s")));
        json_decref(m);
    }
    n->metrics_due_ms = mono_ms() + (n->metrics_again ? METRICS_SOON_MS : METRICS_MS);
    arm_ms(n->metrics, n->metrics_again ? METRICS_SOON_MS : METRICS_MS);
    n->metrics_again = false;
    step_done(n);
}

static void metrics_cb(evutil_socket_t fd, short what, void *arg)
{
    struct notify_state *n = arg;
    (void)fd;
    (void)what;
    if (n->metrics_busy)
        return;
    if (!may_start(n)) {
        if (!n->srv->draining)
            arm_ms(n->metrics, 1000);
        return;
    }
    n->metrics_busy = true;
    db_query_background(n->srv->pool, METRICS_SQL, 0, NULL, SQL_TIMEOUT_MS, metrics_read, n);
}

/* The gauges changed: read them again shortly (at most one read in flight). */
static void metrics_soon(struct notify_state *n)
{
    int64_t due = mono_ms() + METRICS_SOON_MS;
    if (n->metrics_busy) {
        n->metrics_again = true;
        return;
    }
    if (n->metrics_due_ms > due || !evtimer_pending(n->metrics, NULL)) {
        n->metrics_due_ms = due;
        arm_ms(n->metrics, METRICS_SOON_MS);
    }
}

/* ---- the module ---- */

/* The CA file and the proxy of the configuration, for the next transfers. */
static void configure_curl(struct notify_state *n)
{
    const struct config *cfg = &n->srv->cfg;
    struct curl_client_settings s = {
        .ca_file = cfg->notify_ca_file[0] ? cfg->notify_ca_file : cfg->webhook_ca_file,
        .proxy = cfg->notify_proxy,
    };
    curl_client_configure(n->curl, &s);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct notify_state *n = arg;
    (void)fd;
    (void)what;
    local_run(n);
    webhook_run(n);
}

void notify_start(struct server *srv)
{
    struct notify_state *n = xcalloc(1, sizeof(*n));
    char host[64] = "?";
    unsigned char rnd[4] = {0};
    struct timeval poll = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};

    gethostname(host, sizeof(host) - 1);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    snprintf(n->claimer, sizeof(n->claimer), "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0],
             rnd[1], rnd[2], rnd[3]);
    n->srv = srv;
    n->wake = event_new(srv->base, -1, 0, wake_cb, n);
    n->poll = event_new(srv->base, -1, EV_PERSIST, wake_cb, n);
    n->retry = evtimer_new(srv->base, wake_cb, n);
    n->metrics = evtimer_new(srv->base, metrics_cb, n);
    event_add(n->poll, &poll);
    arm_ms(n->metrics, 1000);
    n->metrics_due_ms = mono_ms() + 1000;
    char err[256];
    n->curl = curl_client_new(srv->base, err, sizeof(err));
    if (n->curl == NULL) {
        log_msg(LOG_CRIT, "notify: %s", err);
        abort();
    }
    configure_curl(n);
    srv->notify = n;
}

void notify_wake(struct server *srv)
{
    if (srv->notify != NULL)
        event_active(srv->notify->wake, EV_TIMEOUT, 0);
}

void notify_apply_config(struct server *srv)
{
    struct notify_state *n = srv->notify;
    if (n == NULL)
        return;
    configure_curl(n);
    notify_wake(srv);
}

int notify_busy(const struct server *srv)
{
    const struct notify_state *n = srv->notify;
    if (n == NULL)
        return 0;
    return (n->local_busy ? 1 : 0) + (n->phase != WH_IDLE ? 1 : 0) + (n->metrics_busy ? 1 : 0);
}

void notify_free(struct server *srv)
{
    struct notify_state *n = srv->notify;
    if (n == NULL)
        return;
    if (n->attempt)
        attempt_free(n->attempt);
    event_free(n->wake);
    event_free(n->poll);
    event_free(n->retry);
    event_free(n->metrics);
    curl_client_free(n->curl);
    free(n);
    srv->notify = NULL;
}
