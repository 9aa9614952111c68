/*
 * The outbox. See outbox.h.
 *
 * Two delivery passes run side by side:
 *
 *   local     claim a batch of events whose syslog line or NOTIFY is pending
 *             (lease LOCAL_LEASE_MS), write their syslog lines, then record
 *             them, which sends their NOTIFY incubatord_events at commit;
 *   channels  claim the next message of up to MAX_SENDING channels
 *             (api.outbox_claim_channels: a lease per channel, its
 *             deliveries in outbox order, its rate, a digest when one
 *             message is left in the minute), build each with channels.c,
 *             send them through curl.c side by side, and record each
 *             outcome: delivered, retried after a backoff with jitter, or
 *             given up (LOG_ERR) once the retry window has passed.
 *
 * One channel never holds back another: each has its own lease, backoff and
 * rate. The passes run when woken (NOTIFY incubatord_outbox, the LISTEN
 * connection coming back, the schema becoming ready), when a retry or a
 * rate window falls due, and every POLL_MS as a safety net.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "incubatord/busy.h"
#include "incubatord/channels.h"
#include "incubatord/curl.h"
#include "incubatord/db.h"
#include "incubatord/gauges.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/outbox.h"
#include "incubatord/server.h"

#define POLL_MS        5000  /* the safety net: look at the outbox this often */
#define SQL_TIMEOUT_MS 10000 /* one bookkeeping statement's limit */
#define LOCAL_BATCH    100   /* events claimed at once for syslog and NOTIFY */
#define LOCAL_LEASE_MS 30000 /* how long such a claim holds */
#define LEASE_MARGIN_MS                                                                            \
    5000 /* a channel's lease: 2 x the attempt's limit + this (its record, under load) */
#define MAX_SENDING 32  /* channels with a message in flight at once */
#define DIGEST_MAX  200 /* events in one digest at most */

static const char CLAIM_LOCAL_SQL[] =
    "SELECT id, event_id, syslog_level, message, syslog_pending, notify_pending "
    "FROM api.outbox_claim_local($1, $2::integer, $3::integer)";
static const char LOCAL_DONE_SQL[] = "SELECT api.outbox_local_done($1, $2::bigint[])";
static const char CLAIM_SQL[] =
    "SELECT channel_id, kind, name, url, secret, recipients, from_config, items, attempts, "
    "wait_ms FROM api.outbox_claim_channels($1, $2::integer, $3::integer, $4::integer, "
    "$5::integer, $6::bigint[])";
static const char DONE_SQL[] =
    "SELECT delivered, given_up, attempts FROM api.outbox_channel_done($1, $2::bigint, "
    "$3::bigint[], $4::boolean, $5::boolean, $6, $7::integer, $8::integer)";
static const char SYNC_SQL[] = "SELECT api.channel_config_sync($1)";

/* One message to one channel (one event, or a digest), from its claim to its record. */
struct message {
    struct outbox_state *n;
    struct message *prev, *next; /* n->messages */
    int64_t channel_id;
    char name[128];
    enum channel_kind kind;
    bool from_config;
    char ids[2048]; /* the deliveries it carries, as a PostgreSQL array literal */
    size_t events;
    char first_event[40];
    int attempts_before; /* failed attempts of its oldest delivery */
    struct curl_transfer *xfer;
    struct event *after; /* deferred: record the outcome from the loop */
    bool sent;           /* it went out (counts against the rate) */
    bool ok;
    bool refused; /* a 2xx answer refusing it in its body */
    int status;
    int64_t started_ms;
    char error[512];
};

struct outbox_state {
    struct server *srv;
    char claimer[160];   /* host:pid:random, the lease holder's name */
    struct event *wake;  /* deferred: run both passes */
    struct event *poll;  /* every POLL_MS */
    struct event *retry; /* the earliest channel falls due */
    bool local_busy;     /* a local claim or record is in flight */
    bool local_again;    /* woken meanwhile: run again when done */
    bool claiming;       /* a channel claim is in flight */
    bool claim_again;
    int sending;              /* messages between claim and record */
    struct message *messages; /* those messages */
    struct curl_client *curl;
    char *smtp_password; /* [smtp] password, or password_file's first line */
};

static void local_run(struct outbox_state *n);
static void channels_run(struct outbox_state *n);

/* ---- pure parts ---- */

int64_t outbox_backoff_ms(int attempts, int64_t initial_ms, int64_t max_ms, uint32_t rnd)
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

static bool may_start(const struct outbox_state *n)
{
    return !n->srv->draining && server_schema_ready(n->srv);
}

static void arm_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

/* A step finished: the gauges may have moved. */
static void step_done(struct outbox_state *n)
{
    gauges_soon(n->srv);
}

static void count_delivery(const char *channel, int count)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "channel=\"%s\"", channel);
    metrics_add("incubatord_notifications_total", labels, count);
}

/* ---- syslog and NOTIFY ---- */

static void local_finished(struct outbox_state *n, bool more)
{
    n->local_busy = false;
    busy_leave(BUSY_DELIVERY);
    if (more || n->local_again)
        local_run(n);
    step_done(n);
}

struct local_batch {
    struct outbox_state *n;
    int count;
    int notified;
    bool full;
};

static void local_recorded(void *arg, const struct db_result *r)
{
    struct local_batch *b = arg;
    struct outbox_state *n = b->n;
    bool full = b->full;
    if (r->status != DB_OK) {
        /* The lease runs out and the batch is delivered again: at least once. */
        log_msg(LOG_WARNING, "outbox: could not record %d syslog/NOTIFY deliveries: %s", b->count,
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
    struct outbox_state *n = arg;
    if (r->status != DB_OK) {
        log_msg(LOG_WARNING, "outbox: cannot claim events: %s", r->message);
        local_finished(n, false);
        return;
    }
    int rows = db_rows(r);
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
        len += (size_t)snprintf(ids + len, cap - len, "%s%s", i ? "," : "", db_text(r, i, 0));
        if (db_text(r, i, 4)[0] == 't') {
            int level = log_level_from_name(db_text(r, i, 2));
            log_msg(level < 0 ? LOG_NOTICE : level, "%s", db_text(r, i, 3));
            logged++;
        }
        if (db_text(r, i, 5)[0] == 't')
            b->notified++;
    }
    snprintf(ids + len, cap - len, "}");
    count_delivery("syslog", logged);
    const char *values[] = {n->claimer, ids};
    db_query_background(n->srv->pool, LOCAL_DONE_SQL, 2, values, SQL_TIMEOUT_MS, local_recorded, b);
    free(ids);
}

static void local_run(struct outbox_state *n)
{
    char lease[16], batch[16];
    if (n->local_busy) {
        n->local_again = true;
        return;
    }
    if (!may_start(n))
        return;
    n->local_busy = true;
    busy_enter(BUSY_DELIVERY);
    n->local_again = false;
    snprintf(lease, sizeof(lease), "%d", LOCAL_LEASE_MS);
    snprintf(batch, sizeof(batch), "%d", LOCAL_BATCH);
    const char *values[] = {n->claimer, lease, batch};
    db_query_background(n->srv->pool, CLAIM_LOCAL_SQL, 3, values, SQL_TIMEOUT_MS, local_claimed, n);
}

/* ---- the channels: one message ---- */

static int timeout_of(const struct outbox_state *n, bool from_config)
{
    return from_config ? n->srv->cfg.webhook_timeout_ms : n->srv->cfg.notify_timeout_ms;
}

static void message_free(struct message *m)
{
    struct outbox_state *n = m->n;
    curl_transfer_cancel(m->xfer);
    if (m->after)
        event_free(m->after);
    if (m->prev)
        m->prev->next = m->next;
    else
        n->messages = m->next;
    if (m->next)
        m->next->prev = m->prev;
    free(m);
}

static void count(const char *name, const struct message *m, const char *outcome)
{
    char labels[200];
    if (outcome)
        snprintf(labels, sizeof(labels), "channel=\"%s\",outcome=\"%s\"", m->name, outcome);
    else
        snprintf(labels, sizeof(labels), "channel=\"%s\"", m->name);
    metrics_add(name, labels, 1);
}

static void message_recorded(void *arg, const struct db_result *r)
{
    struct message *m = arg;
    struct outbox_state *n = m->n;
    int64_t took = mono_ms() - m->started_ms;

    if (m->from_config)
        metrics_add("incubatord_webhook_deliveries_total",
                    m->ok ? "outcome=\"delivered\"" : "outcome=\"failed\"", 1);
    count("incubatord_channel_attempts_total", m, m->ok ? "delivered" : "failed");
    if (m->refused)
        count("incubatord_channel_refusals_total", m, NULL);
    if (r->status != DB_OK || db_rows(r) != 1) {
        log_msg(LOG_WARNING,
                "outbox: channel %s: could not record an attempt (%s): %s; it is sent again "
                "when its lease runs out",
                m->name, m->ok ? "delivered" : m->error, r->message ? r->message : "no result");
    } else {
        int given_up = atoi(db_text(r, 0, 1));
        int attempts = atoi(db_text(r, 0, 2));
        char who[160], what[160];
        /* "webhook: event X ..." for the configuration's, "channel NAME: event X ..." else. */
        snprintf(who, sizeof(who), "%s%s", m->from_config ? "" : "channel ", m->name);
        if (m->events > 1)
            snprintf(what, sizeof(what), "%zu events from %s (a digest)", m->events,
                     m->first_event);
        else
            snprintf(what, sizeof(what), "event %s", m->first_event);
        if (m->ok) {
            if (m->from_config)
                metrics_add("incubatord_notifications_total", "channel=\"webhook\"", 1);
            log_msg(LOG_INFO, "%s: %s delivered: HTTP %d in %lld ms (attempt %d)", who, what,
                    m->status, (long long)took, attempts);
        } else if (given_up > 0) {
            log_msg(LOG_ERR, "%s: %s given up after %d attempts: %s", who, what, attempts,
                    m->error);
        } else {
            log_msg(LOG_WARNING, "%s: %s attempt %d failed: %s", who, what, attempts, m->error);
        }
    }
    message_free(m);
    n->sending--;
    busy_leave(BUSY_DELIVERY);
    channels_run(n); /* the channel's next message, or the wait for its retry */
    step_done(n);
}

/* The attempt is over (answered, failed or never started): record its outcome. */
static void message_after_cb(evutil_socket_t fd, short what, void *arg)
{
    struct message *m = arg;
    struct outbox_state *n = m->n;
    const struct config *cfg = &n->srv->cfg;
    char id[24], retry_ms[24], retry_for[16];
    (void)fd;
    (void)what;

    snprintf(id, sizeof(id), "%lld", (long long)m->channel_id);
    int64_t backoff = m->from_config
                          ? outbox_backoff_ms(m->attempts_before + 1, cfg->webhook_retry_initial_ms,
                                              cfg->webhook_retry_max_ms, (uint32_t)random())
                          : outbox_backoff_ms(m->attempts_before + 1, cfg->notify_retry_initial_ms,
                                              cfg->notify_retry_max_ms, (uint32_t)random());
    snprintf(retry_ms, sizeof(retry_ms), "%lld", (long long)backoff);
    snprintf(retry_for, sizeof(retry_for), "%d",
             m->from_config ? cfg->webhook_retry_for_s : cfg->notify_retry_for_s);
    const char *values[] = {n->claimer,
                            id,
                            m->ids,
                            m->sent ? "true" : "false",
                            m->ok ? "true" : "false",
                            m->ok ? NULL : m->error,
                            retry_ms,
                            retry_for};
    db_query_background(n->srv->pool, DONE_SQL, 8, values, SQL_TIMEOUT_MS, message_recorded, m);
}

static void message_answered(void *arg, const struct curl_response *res)
{
    struct message *m = arg;
    m->xfer = NULL;
    m->sent = true;
    m->status = res->transferred ? res->status : 0;
    m->ok = channel_answer_ok(m->kind, res, m->error, sizeof(m->error));
    m->refused = !m->ok && res->transferred && res->status >= 200 && res->status <= 299;
    if (m->ok)
        m->error[0] = '\0';
    event_active(m->after, EV_TIMEOUT, 0);
}

static int64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void smtp_settings(const struct outbox_state *n, struct channel_smtp *smtp)
{
    const struct config *cfg = &n->srv->cfg;
    *smtp = (struct channel_smtp){cfg->smtp_host,
                                  cfg->smtp_port,
                                  cfg->smtp_starttls,
                                  cfg->smtp_user,
                                  n->smtp_password ? n->smtp_password : "",
                                  cfg->smtp_from,
                                  NULL};
}

/*
 * Builds the message of a channel's items and starts sending it. items is
 * [{"id", "payload" (text), "incubator_name"}]. A digest that does not fit
 * carries the first events that do; the others wait for the next message.
 * Returns false with a reason when it could not even start.
 */
static bool send_items(struct outbox_state *n, const struct channel_target *ch, json_t *items,
                       int timeout_ms, curl_done_cb cb, void *arg, struct curl_transfer **xfer,
                       size_t *events, char *first_event, size_t first_len, char *ids,
                       size_t ids_len, char *err, size_t errlen)
{
    size_t count_items = json_array_size(items);
    struct message_event *evs = xcalloc(count_items ? count_items : 1, sizeof(*evs));
    const char **payloads = xcalloc(count_items ? count_items : 1, sizeof(*payloads));
    struct message_context mctx = {n->srv->cfg.console_public_url};
    struct channel_smtp smtp;
    struct channel_message msg;
    bool ok = false;

    for (size_t i = 0; i < count_items; i++) {
        json_t *it = json_array_get(items, i);
        payloads[i] = json_string_value(json_object_get(it, "payload"));
        evs[i].payload = json_loads(payloads[i] ? payloads[i] : "{}", 0, NULL);
        evs[i].incubator_name = json_string_value(json_object_get(it, "incubator_name"));
    }
    smtp_settings(n, &smtp);
    if (!channel_build(ch, evs, payloads, count_items, &mctx, &smtp, wall_ms(), &msg, err,
                       errlen)) {
        *events = count_items;
        goto out;
    }
    *events = msg.events;
    struct curl_request req = {.url = msg.url,
                               .body = msg.body,
                               .body_len = msg.body_len,
                               .headers = (const char *const *)msg.headers,
                               .timeout_ms = timeout_ms,
                               .mail_from = msg.mail_from,
                               .rcpt = (const char *const *)msg.rcpt,
                               .starttls = smtp.starttls,
                               .user = smtp.user,
                               .password = smtp.password};
    *xfer = curl_client_start(n->curl, &req, cb, arg, err, errlen);
    ok = *xfer != NULL;
    channel_message_free(&msg);
out:
    if (first_event) {
        const char *id =
            evs[0].payload ? json_string_value(json_object_get(evs[0].payload, "id")) : NULL;
        snprintf(first_event, first_len, "%s", id ? id : "?");
    }
    if (ids) {
        size_t w = (size_t)snprintf(ids, ids_len, "{");
        for (size_t i = 0; i < *events && i < count_items && w + 24 < ids_len; i++)
            w += (size_t)snprintf(
                ids + w, ids_len - w, "%s%lld", i ? "," : "",
                (long long)json_integer_value(json_object_get(json_array_get(items, i), "id")));
        snprintf(ids + w, ids_len - w, "}");
    }
    for (size_t i = 0; i < count_items; i++)
        json_decref(evs[i].payload);
    free(evs);
    free(payloads);
    return ok;
}

static void message_start(struct outbox_state *n, const struct db_result *res, int row)
{
    struct message *m = xcalloc(1, sizeof(*m));
    char err[256];
    const char *to_list[51] = {NULL};
    json_t *to = json_loads(db_text(res, row, 5), 0, NULL);
    json_t *items = json_loads(db_text(res, row, 7), 0, NULL);
    size_t i;
    json_t *addr;

    m->n = n;
    m->channel_id = strtoll(db_text(res, row, 0), NULL, 10);
    if (!channel_kind_parse(db_text(res, row, 1), &m->kind))
        m->kind = CHANNEL_WEBHOOK;
    snprintf(m->name, sizeof(m->name), "%s", db_text(res, row, 2));
    m->from_config = db_text(res, row, 6)[0] == 't';
    m->attempts_before = atoi(db_text(res, row, 8));
    m->started_ms = mono_ms();
    m->after = event_new(n->srv->base, -1, 0, message_after_cb, m);
    m->next = n->messages;
    if (n->messages)
        n->messages->prev = m;
    n->messages = m;
    n->sending++;
    busy_enter(BUSY_DELIVERY);

    json_array_foreach(to, i, addr)
    {
        if (i < ARRAY_LEN(to_list) - 1)
            to_list[i] = json_string_value(addr);
    }
    const struct config *cfg = &n->srv->cfg;
    struct channel_target ch = {
        .kind = m->kind,
        .name = m->name,
        .url = m->from_config ? cfg->webhook_url : db_text(res, row, 3),
        .secret = m->from_config ? cfg->webhook_secret : db_text(res, row, 4),
        .to = to_list,
    };
    if (!send_items(n, &ch, items, timeout_of(n, m->from_config), message_answered, m, &m->xfer,
                    &m->events, m->first_event, sizeof(m->first_event), m->ids, sizeof(m->ids), err,
                    sizeof(err))) {
        m->ok = false;
        snprintf(m->error, sizeof(m->error), "%s", err);
        event_active(m->after, EV_TIMEOUT, 0);
    }
    json_decref(to);
    json_decref(items);
}

static void channels_claimed(void *arg, const struct db_result *r)
{
    struct outbox_state *n = arg;
    n->claiming = false;
    busy_leave(BUSY_DELIVERY);
    if (r->status != DB_OK) {
        log_msg(LOG_WARNING, "outbox: cannot claim channel deliveries: %s", r->message);
        step_done(n);
        return;
    }
    int rows = db_rows(r);
    for (int i = 0; i < rows; i++) {
        if (db_value(r, i, 0) == NULL) {
            if (db_value(r, i, 9) != NULL)
                arm_ms(n->retry, strtoll(db_text(r, i, 9), NULL, 10) + 1);
            continue;
        }
        message_start(n, r, i);
    }
    if (n->claim_again)
        channels_run(n);
    step_done(n);
}

static void channels_run(struct outbox_state *n)
{
    char lease[16], max[16], digest[16], webhook_lease[16];
    if (n->claiming) {
        n->claim_again = true;
        return;
    }
    if (!may_start(n) || n->sending >= MAX_SENDING)
        return;
    n->claiming = true;
    busy_enter(BUSY_DELIVERY);
    n->claim_again = false;
    snprintf(lease, sizeof(lease), "%d", 2 * timeout_of(n, false) + LEASE_MARGIN_MS);
    snprintf(webhook_lease, sizeof(webhook_lease), "%d", 2 * timeout_of(n, true) + LEASE_MARGIN_MS);
    snprintf(max, sizeof(max), "%d", MAX_SENDING - n->sending);
    snprintf(digest, sizeof(digest), "%d", DIGEST_MAX);
    /* The channels with a message in flight here, as a PostgreSQL array. */
    char *in_flight = xmalloc(2 + (size_t)n->sending * 21 + 1);
    size_t w = 0;
    in_flight[w++] = '{';
    for (struct message *m = n->messages; m; m = m->next)
        w += (size_t)sprintf(in_flight + w, "%s%lld", w > 1 ? "," : "", (long long)m->channel_id);
    in_flight[w++] = '}';
    in_flight[w] = '\0';
    const char *values[] = {n->claimer, lease, max, digest, webhook_lease, in_flight};
    db_query_background(n->srv->pool, CLAIM_SQL, 6, values, SQL_TIMEOUT_MS, channels_claimed, n);
    free(in_flight);
}

/* ---- a test message, now ---- */

struct test_send {
    outbox_test_cb cb;
    void *arg;
};

static void test_answered(void *arg, const struct curl_response *res)
{
    struct test_send *t = arg;
    t->cb(t->arg, res);
    free(t);
}

bool outbox_send_test(struct server *srv, json_t *target, outbox_test_cb cb, void *arg,
                      int timeout_ms, char *err, size_t errlen)
{
    struct outbox_state *n = srv->outbox;
    const struct config *cfg = &srv->cfg;
    enum channel_kind kind;
    const char *to_list[51] = {NULL};
    size_t i;
    json_t *addr;
    bool from_config = json_is_true(json_object_get(target, "from_config"));
    char payload[512], stamp[32], uuid[40];
    unsigned char rnd[16];
    time_t now = time(NULL);
    struct tm tm;

    if (n == NULL ||
        !channel_kind_parse(json_string_value(json_object_get(target, "kind")), &kind)) {
        snprintf(err, errlen, "the channel cannot be sent to");
        return false;
    }
    json_array_foreach(json_object_get(target, "to"), i, addr)
    {
        if (i < ARRAY_LEN(to_list) - 1)
            to_list[i] = json_string_value(addr);
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    rnd[6] = (unsigned char)((rnd[6] & 0x0f) | 0x40);
    rnd[8] = (unsigned char)((rnd[8] & 0x3f) | 0x80);
    snprintf(uuid, sizeof(uuid),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11],
             rnd[12], rnd[13], rnd[14], rnd[15]);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:{s:O}}", "id", uuid, "type", "channel.test", "occurred_at",
                  stamp, "data", "channel", json_object_get(target, "name"));
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (text == NULL) {
        snprintf(err, errlen, "cannot encode the test event");
        return false;
    }
    snprintf(payload, sizeof(payload), "%s", text);
    free(text);
    json_t *items = json_pack("[{s:i, s:s, s:n}]", "id", 0, "payload", payload, "incubator_name");
    struct channel_target ch = {
        .kind = kind,
        .name = json_string_value(json_object_get(target, "name")),
        .url = from_config ? cfg->webhook_url : json_string_value(json_object_get(target, "url")),
        .secret = from_config ? cfg->webhook_secret
                              : json_string_value(json_object_get(target, "secret")),
        .to = to_list,
    };
    if (ch.url == NULL)
        ch.url = "";
    if (ch.secret == NULL)
        ch.secret = "";
    struct test_send *t = xcalloc(1, sizeof(*t));
    struct curl_transfer *xfer = NULL;
    size_t events;
    t->cb = cb;
    t->arg = arg;
    bool ok = send_items(n, &ch, items, timeout_ms, test_answered, t, &xfer, &events, NULL, 0, NULL,
                         0, err, errlen);
    json_decref(items);
    if (!ok)
        free(t);
    return ok;
}

/* ---- the module ---- */

/* The CA file, the proxy and the SMTP password of the configuration, for the next transfers. */
static void configure(struct outbox_state *n)
{
    const struct config *cfg = &n->srv->cfg;
    struct curl_client_settings s = {
        .ca_file = cfg->notify_ca_file[0] ? cfg->notify_ca_file : cfg->webhook_ca_file,
        .proxy = cfg->notify_proxy,
    };
    curl_client_configure(n->curl, &s);
    if (n->smtp_password) {
        explicit_bzero(n->smtp_password, strlen(n->smtp_password));
        free(n->smtp_password);
    }
    n->smtp_password = xstrdup(cfg->smtp_password);
    if (cfg->smtp_password_file[0] != '\0') {
        FILE *f = fopen(cfg->smtp_password_file, "r");
        char line[512] = "";
        if (f == NULL || fgets(line, sizeof(line), f) == NULL)
            log_msg(LOG_ERR, "outbox: cannot read [smtp] password_file %s",
                    cfg->smtp_password_file);
        if (f)
            fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
        free(n->smtp_password);
        n->smtp_password = xstrdup(line);
        explicit_bzero(line, sizeof(line));
    }
}

static void synced(void *arg, const struct db_result *r)
{
    struct outbox_state *n = arg;
    busy_leave(BUSY_DELIVERY);
    if (r->status != DB_OK)
        log_msg(LOG_WARNING, "outbox: cannot record the [webhook] of the configuration: %s",
                r->message);
    local_run(n);
    channels_run(n);
    step_done(n);
}

/* The configuration's [webhook] becomes its channel's URL (and enabled flag). */
static void sync_config(struct outbox_state *n)
{
    const char *values[] = {n->srv->cfg.webhook_url};
    if (!server_schema_ready(n->srv))
        return;
    busy_enter(BUSY_DELIVERY);
    db_query_background(n->srv->pool, SYNC_SQL, 1, values, SQL_TIMEOUT_MS, synced, n);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct outbox_state *n = arg;
    (void)fd;
    (void)what;
    local_run(n);
    channels_run(n);
}

void outbox_start(struct server *srv)
{
    struct outbox_state *n = xcalloc(1, sizeof(*n));
    char host[64] = "?", err[256];
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
    event_add(n->poll, &poll);
    n->curl = curl_client_new(srv->base, err, sizeof(err));
    if (n->curl == NULL) {
        log_msg(LOG_CRIT, "outbox: %s", err);
        abort();
    }
    srv->outbox = n;
    configure(n);
}

void outbox_schema_ready(struct server *srv, db_cb done, void *arg)
{
    const char *values[] = {srv->cfg.webhook_url};
    db_query_background(srv->pool, SYNC_SQL, 1, values, SQL_TIMEOUT_MS, done, arg);
}

void outbox_wake(struct server *srv)
{
    if (srv->outbox != NULL)
        event_active(srv->outbox->wake, EV_TIMEOUT, 0);
}

void outbox_apply_config(struct server *srv)
{
    struct outbox_state *n = srv->outbox;
    if (n == NULL)
        return;
    configure(n);
    sync_config(n);
}

void outbox_free(struct server *srv)
{
    struct outbox_state *n = srv->outbox;
    if (n == NULL)
        return;
    while (n->messages)
        message_free(n->messages);
    event_free(n->wake);
    event_free(n->poll);
    event_free(n->retry);
    curl_client_free(n->curl);
    if (n->smtp_password) {
        explicit_bzero(n->smtp_password, strlen(n->smtp_password));
        free(n->smtp_password);
    }
    free(n);
    srv->outbox = NULL;
}
