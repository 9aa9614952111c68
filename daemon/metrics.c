/*
 * Prometheus metrics. Every metric is declared once in the table below with
 * its type and help; the request metrics and the pool's are read from their
 * owners when rendered, the others are series that modules set by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/migrate.h"

#define MAX_STATUSES 16

static const double buckets_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                   0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets_s) / sizeof(buckets_s[0]))

enum metric_kind {
    MK_HTTP_REQUESTS, /* rendered from the request counters */
    MK_HTTP_DURATION, /* rendered from the histograms */
    MK_PROCESS,       /* rendered from the server's state */
    MK_SERIES,        /* labelled series set by modules */
};

struct metric_def {
    const char *name;
    const char *type;
    enum metric_kind kind;
    const char *help;
};

/* clang-format off */
static const struct metric_def defs[] = {
    {"incubatord_http_requests_total", "counter", MK_HTTP_REQUESTS, "HTTP requests answered, by route and status."},
    {"incubatord_http_request_duration_seconds", "histogram", MK_HTTP_DURATION, "Time from a request's arrival to its answer, by route."},
    {"incubatord_rate_limited_total", "counter", MK_SERIES, "Requests refused with 429 (rate limit), by token name and incubator."},
    {"incubatord_http_connections_open", "gauge", MK_PROCESS, "Client connections open."},
    {"incubatord_http_connections_cut_total", "counter", MK_SERIES, "Client connections the daemon closed before their time, by reason."},
    {"incubatord_http_requests_in_flight", "gauge", MK_PROCESS, "Requests received and not answered yet."},
    {"incubatord_db_pool_connections", "gauge", MK_PROCESS, "Pool connections by state (configured, connected, busy)."},
    {"incubatord_db_queue_length", "gauge", MK_PROCESS, "Requests waiting for a database connection."},
    {"incubatord_db_queries_total", "counter", MK_PROCESS, "Database work items by outcome (submitted, failed, rejected, timeout)."},
    {"incubatord_db_reconnects_total", "counter", MK_PROCESS, "Database connections (re)established."},
    {"incubatord_db_pipelined_total", "counter", MK_PROCESS, "Reads sent on a connection still answering other reads (pipeline mode)."},
    {"incubatord_db_read_pool_connections", "gauge", MK_PROCESS, "Read pool connections by state (configured, connected, busy); 0 configured without read_conninfo."},
    {"incubatord_db_read_lag_seconds", "gauge", MK_PROCESS, "The read pool's replay lag as last sampled; -1 when unknown (down, not sampled yet)."},
    {"incubatord_db_reads_total", "counter", MK_PROCESS, "Reads that may lag, by the pool that served them (read, primary)."},
    {"incubatord_db_listen_up", "gauge", MK_PROCESS, "1 when the LISTEN connection (token revocations, events) is up."},
    {"incubatord_schema_ready", "gauge", MK_PROCESS, "1 when the database schema is this binary's version."},
    {"incubatord_start_time_seconds", "gauge", MK_PROCESS, "When the daemon started (Unix time)."},
    {"incubatord_build_info", "gauge", MK_PROCESS, "The daemon's version, as a label."},
    {"incubatord_alerts_open", "gauge", MK_SERIES, "Open (firing) alerts by rule, as of the last evaluation."},
    {"incubatord_outbox_undelivered", "gauge", MK_SERIES, "Notifications written but not yet delivered on every channel."},
    {"incubatord_webhook_deliveries_total", "counter", MK_SERIES, "Webhook delivery attempts by outcome."},
    {"incubatord_notifications_total", "counter", MK_SERIES, "Notifications delivered, by channel."},
    {"incubatord_job_last_run_timestamp_seconds", "gauge", MK_SERIES, "When each scheduled job last ran (Unix time)."},
    {"incubatord_job_last_success", "gauge", MK_SERIES, "1 when the job's last run succeeded."},
    {"incubatord_job_runs_total", "counter", MK_SERIES, "Runs of each scheduled job by outcome."},
    {"incubatord_outbox_failed", "gauge", MK_SERIES, "Notifications given up on after the retry window, by channel."},
    {"incubatord_channel_deliveries", "gauge", MK_SERIES, "Deliveries waiting (pending) or given up (failed), by channel."},
    {"incubatord_channel_attempts_total", "counter", MK_SERIES, "Delivery attempts (messages sent, a digest counting once) by channel and outcome."},
    {"incubatord_channel_refusals_total", "counter", MK_SERIES, "Robots' refusals (a 200 answer with errcode or code other than 0), by channel."},
    {"incubatord_outbox_oldest_undelivered_seconds", "gauge", MK_SERIES, "Age of the oldest notification not yet delivered on every channel (0: none)."},
};
/* clang-format on */

struct route_stats {
    struct {
        int status;
        uint64_t count;
    } statuses[MAX_STATUSES];
    uint64_t buckets[NBUCKETS];
    uint64_t count;
    double sum_s;
};

struct series {
    const char *name; /* points into defs */
    char *labels;     /* 'rule="x",state="y"', or NULL */
    double value;
    struct series *next;
};

static struct {
    size_t nroutes;
    struct route_stats *routes; /* nroutes + 1: the last is "unmatched" */
    char **labels;              /* nroutes: "GET /v1/incubators/{code}" */
    struct series *series;
} m;

void metrics_init(size_t nroutes)
{
    m.nroutes = nroutes;
    m.routes = xcalloc(nroutes + 1, sizeof(struct route_stats));
    m.labels = xcalloc(nroutes + 1, sizeof(char *));
}

void metrics_route_label(size_t route_index, const char *label)
{
    if (route_index < m.nroutes) {
        free(m.labels[route_index]);
        m.labels[route_index] = xstrdup(label);
    }
}

void metrics_free(void)
{
    struct series *s = m.series, *next;
    for (; s; s = next) {
        next = s->next;
        free(s->labels);
        free(s);
    }
    m.series = NULL;
    for (size_t i = 0; m.labels && i < m.nroutes; i++)
        free(m.labels[i]);
    free(m.labels);
    m.labels = NULL;
    free(m.routes);
    m.routes = NULL;
}

void metrics_request(int route_index, int status, int64_t duration_us)
{
    if (m.routes == NULL)
        return;
    struct route_stats *rs = &m.routes[route_index < 0 ? m.nroutes : (size_t)route_index];
    double s = (double)duration_us / 1e6;
    int i;
    for (i = 0; i < MAX_STATUSES && rs->statuses[i].status != 0; i++)
        if (rs->statuses[i].status == status)
            break;
    if (i < MAX_STATUSES) {
        rs->statuses[i].status = status;
        rs->statuses[i].count++;
    }
    for (size_t b = 0; b < NBUCKETS; b++)
        if (s <= buckets_s[b])
            rs->buckets[b]++;
    rs->count++;
    rs->sum_s += s;
}

static const struct metric_def *find_def(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

static struct series *find_series(const char *name, const char *labels)
{
    const struct metric_def *def = find_def(name);
    if (def == NULL) {
        log_msg(LOG_ERR, "metrics: %s is not declared", name);
        return NULL;
    }
    for (struct series *s = m.series; s; s = s->next) {
        if (s->name != def->name || (labels == NULL) != (s->labels == NULL))
            continue;
        if (labels == NULL || strcmp(labels, s->labels) == 0)
            return s;
    }
    struct series *s = xcalloc(1, sizeof(*s));
    s->name = def->name;
    s->labels = labels ? xstrdup(labels) : NULL;
    s->next = m.series;
    m.series = s;
    return s;
}

void metrics_set(const char *name, const char *labels, double value)
{
    struct series *s = find_series(name, labels);
    if (s)
        s->value = value;
}

void metrics_add(const char *name, const char *labels, double delta)
{
    struct series *s = find_series(name, labels);
    if (s)
        s->value += delta;
}

void metrics_reset(const char *name)
{
    const struct metric_def *def = find_def(name);
    struct series **ps = &m.series;
    while (*ps) {
        struct series *s = *ps;
        if (def && s->name == def->name) {
            *ps = s->next;
            free(s->labels);
            free(s);
        } else {
            ps = &s->next;
        }
    }
}

void metrics_label_value(char *out, size_t len, const char *value)
{
    size_t n = 0;
    for (const char *p = value; *p && n + 3 < len; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

void metrics_job_ran(const char *job, time_t when, bool ok)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "job=\"%s\"", job);
    metrics_set("incubatord_job_last_run_timestamp_seconds", labels, (double)when);
    metrics_set("incubatord_job_last_success", labels, ok ? 1 : 0);
    snprintf(labels, sizeof(labels), "job=\"%s\",outcome=\"%s\"", job, ok ? "ok" : "error");
    metrics_add("incubatord_job_runs_total", labels, 1);
}

static void route_label(size_t i, char *out, size_t len)
{
    snprintf(out, len, "%s", i < m.nroutes && m.labels[i] ? m.labels[i] : "unmatched");
}

static void render_requests(struct evbuffer *out, const char *name)
{
    char label[160];
    for (size_t i = 0; i <= m.nroutes; i++) {
        struct route_stats *rs = &m.routes[i];
        route_label(i, label, sizeof(label));
        for (int k = 0; k < MAX_STATUSES && rs->statuses[k].status; k++)
            evbuffer_add_printf(out, "%s{route=\"%s\",status=\"%d\"} %llu\n", name, label,
                                rs->statuses[k].status, (unsigned long long)rs->statuses[k].count);
    }
}

static void render_durations(struct evbuffer *out, const char *name)
{
    char label[160];
    for (size_t i = 0; i <= m.nroutes; i++) {
        struct route_stats *rs = &m.routes[i];
        if (rs->count == 0)
            continue;
        route_label(i, label, sizeof(label));
        for (size_t b = 0; b < NBUCKETS; b++)
            evbuffer_add_printf(out, "%s_bucket{route=\"%s\",le=\"%g\"} %llu\n", name, label,
                                buckets_s[b], (unsigned long long)rs->buckets[b]);
        evbuffer_add_printf(out, "%s_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", name, label,
                            (unsigned long long)rs->count);
        evbuffer_add_printf(out, "%s_sum{route=\"%s\"} %.6f\n", name, label, rs->sum_s);
        evbuffer_add_printf(out, "%s_count{route=\"%s\"} %llu\n", name, label,
                            (unsigned long long)rs->count);
    }
}

static void render_process(struct evbuffer *out, const char *name, const struct metrics_process *p)
{
    const struct db_pool_stats ps = p->pool;
    const struct db_pool_stats rs = p->read_pool;

    if (strcmp(name, "incubatord_http_connections_open") == 0)
        evbuffer_add_printf(out, "%s %d\n", name, p->connections_open);
    else if (strcmp(name, "incubatord_http_requests_in_flight") == 0)
        evbuffer_add_printf(out, "%s %d\n", name, p->requests_in_flight);
    else if (strcmp(name, "incubatord_db_pool_connections") == 0)
        evbuffer_add_printf(out,
                            "%s{state=\"configured\"} %d\n%s{state=\"connected\"} %d\n"
                            "%s{state=\"busy\"} %d\n",
                            name, ps.size, name, ps.connected, name, ps.busy);
    else if (strcmp(name, "incubatord_db_queue_length") == 0)
        evbuffer_add_printf(out, "%s %d\n", name, ps.queued);
    else if (strcmp(name, "incubatord_db_queries_total") == 0)
        evbuffer_add_printf(out,
                            "%s{outcome=\"submitted\"} %llu\n%s{outcome=\"failed\"} %llu\n"
                            "%s{outcome=\"rejected\"} %llu\n%s{outcome=\"timeout\"} %llu\n",
                            name, (unsigned long long)ps.submitted, name,
                            (unsigned long long)ps.failed, name, (unsigned long long)ps.rejected,
                            name, (unsigned long long)ps.timeouts);
    else if (strcmp(name, "incubatord_db_reconnects_total") == 0)
        evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)ps.reconnects);
    else if (strcmp(name, "incubatord_db_pipelined_total") == 0)
        evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)ps.pipelined);
    else if (strcmp(name, "incubatord_db_read_pool_connections") == 0)
        evbuffer_add_printf(out,
                            "%s{state=\"configured\"} %d\n%s{state=\"connected\"} %d\n"
                            "%s{state=\"busy\"} %d\n",
                            name, rs.size, name, rs.connected, name, rs.busy);
    else if (strcmp(name, "incubatord_db_read_lag_seconds") == 0) {
        if (p->has_read_pool)
            evbuffer_add_printf(out, "%s %.3f\n", name,
                                rs.lag_ms < 0 ? -1.0 : (double)rs.lag_ms / 1000.0);
    } else if (strcmp(name, "incubatord_db_reads_total") == 0)
        evbuffer_add_printf(out, "%s{pool=\"read\"} %llu\n%s{pool=\"primary\"} %llu\n", name,
                            (unsigned long long)p->reads_routed[0], name,
                            (unsigned long long)p->reads_routed[1]);
    else if (strcmp(name, "incubatord_db_listen_up") == 0)
        evbuffer_add_printf(out, "%s %d\n", name, ps.listening ? 1 : 0);
    else if (strcmp(name, "incubatord_schema_ready") == 0)
        evbuffer_add_printf(out, "%s %d\n", name, p->schema_ready ? 1 : 0);
    else if (strcmp(name, "incubatord_start_time_seconds") == 0)
        evbuffer_add_printf(out, "%s %lld\n", name, (long long)p->started_at);
    else if (strcmp(name, "incubatord_build_info") == 0)
        evbuffer_add_printf(out, "%s{version=\"%s\",schema=\"%d\"} 1\n", name, INCUBATORD_VERSION,
                            migrate_latest_version());
}

static void render_series(struct evbuffer *out, const struct metric_def *def)
{
    for (struct series *s = m.series; s; s = s->next) {
        if (s->name != def->name)
            continue;
        if (s->labels)
            evbuffer_add_printf(out, "%s{%s} %.17g\n", def->name, s->labels, s->value);
        else
            evbuffer_add_printf(out, "%s %.17g\n", def->name, s->value);
    }
}

void metrics_render(struct evbuffer *out, const struct metrics_process *p)
{
    for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
        const struct metric_def *def = &defs[i];
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", def->name, def->help, def->name,
                            def->type);
        switch (def->kind) {
        case MK_HTTP_REQUESTS:
            render_requests(out, def->name);
            break;
        case MK_HTTP_DURATION:
            render_durations(out, def->name);
            break;
        case MK_PROCESS:
            render_process(out, def->name, p);
            break;
        case MK_SERIES:
            render_series(out, def);
            break;
        }
    }
}
