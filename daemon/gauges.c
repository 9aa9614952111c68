/*
 * The database gauges of /metrics. See gauges.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <jansson.h>

#include "incubatord/busy.h"
#include "incubatord/db.h"
#include "incubatord/gauges.h"
#include "incubatord/metrics.h"
#include "incubatord/server.h"

#define METRICS_MS      10000 /* refresh the gauges this often */
#define METRICS_SOON_MS 200   /* ... and this soon after a delivery */
#define SQL_TIMEOUT_MS  10000

static const char METRICS_SQL[] = "SELECT api.alert_metrics()::text";

struct gauges_state {
    struct server *srv;
    struct event *timer;
    bool busy;
    bool again;
    int64_t due_ms;
};

static void arm_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

static void set_series(const char *name, const char *label, json_t *object)
{
    const char *key;
    json_t *value;
    char labels[160];
    metrics_reset(name);
    json_object_foreach(object, key, value)
    {
        snprintf(labels, sizeof(labels), "%s=\"%s\"", label, key);
        metrics_set(name, labels, (double)json_integer_value(value));
    }
}

/* Pending and given-up deliveries of every channel, by name. */
static void set_channels(json_t *channels)
{
    size_t i;
    json_t *c;
    char labels[200];
    metrics_reset("incubatord_channel_deliveries");
    json_array_foreach(channels, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "channel"));
        snprintf(labels, sizeof(labels), "channel=\"%s\",state=\"pending\"", name ? name : "?");
        metrics_set("incubatord_channel_deliveries", labels,
                    (double)json_integer_value(json_object_get(c, "pending")));
        snprintf(labels, sizeof(labels), "channel=\"%s\",state=\"failed\"", name ? name : "?");
        metrics_set("incubatord_channel_deliveries", labels,
                    (double)json_integer_value(json_object_get(c, "failed")));
    }
}

static void read_done(void *arg, const struct db_result *r)
{
    struct gauges_state *g = arg;
    g->busy = false;
    busy_leave(BUSY_DELIVERY);
    if (r->status == DB_OK && db_rows(r) == 1) {
        json_t *m = json_loads(db_text(r, 0, 0), 0, NULL);
        json_t *o = json_object_get(m, "outbox");
        set_series("incubatord_alerts_open", "rule", json_object_get(m, "alerts_open"));
        set_series("incubatord_outbox_undelivered", "channel", json_object_get(o, "undelivered"));
        metrics_set("incubatord_outbox_failed", "channel=\"webhook\"",
                    (double)json_integer_value(json_object_get(o, "webhook_failed")));
        metrics_set("incubatord_outbox_oldest_undelivered_seconds", NULL,
                    (double)json_integer_value(json_object_get(o, "oldest_undelivered_s")));
        set_channels(json_object_get(o, "channels"));
        json_decref(m);
    }
    g->due_ms = mono_ms() + (g->again ? METRICS_SOON_MS : METRICS_MS);
    arm_ms(g->timer, g->again ? METRICS_SOON_MS : METRICS_MS);
    g->again = false;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gauges_state *g = arg;
    (void)fd;
    (void)what;
    if (g->busy)
        return;
    if (g->srv->draining || !server_schema_ready(g->srv)) {
        if (!g->srv->draining)
            arm_ms(g->timer, 1000);
        return;
    }
    g->busy = true;
    busy_enter(BUSY_DELIVERY);
    db_query_background(g->srv->pool, METRICS_SQL, 0, NULL, SQL_TIMEOUT_MS, read_done, g);
}

void gauges_start(struct server *srv)
{
    struct gauges_state *g = xcalloc(1, sizeof(*g));
    g->srv = srv;
    g->timer = evtimer_new(srv->base, timer_cb, g);
    arm_ms(g->timer, 1000);
    g->due_ms = mono_ms() + 1000;
    srv->gauges = g;
}

void gauges_soon(struct server *srv)
{
    struct gauges_state *g = srv->gauges;
    if (g == NULL)
        return;
    int64_t due = mono_ms() + METRICS_SOON_MS;
    if (g->busy) {
        g->again = true;
        return;
    }
    if (g->due_ms > due || !evtimer_pending(g->timer, NULL)) {
        g->due_ms = due;
        arm_ms(g->timer, METRICS_SOON_MS);
    }
}

void gauges_free(struct server *srv)
{
    struct gauges_state *g = srv->gauges;
    if (g == NULL)
        return;
    event_free(g->timer);
    free(g);
    srv->gauges = NULL;
}
