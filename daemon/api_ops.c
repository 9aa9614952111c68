/*
 * Operations endpoints: liveness, readiness, metrics. None needs a token;
 * /healthz and /metrics never touch the database.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "incubatord/api.h"
#include "incubatord/config.h"
#include "incubatord/http.h"
#include "incubatord/metrics.h"
#include "incubatord/migrate.h"
#include "incubatord/server.h"

#define READY_PROBE_MS 2000

void api_healthz(struct req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    http_reply_json_text(r, 200, ok, sizeof(ok) - 1);
}

static const char *schema_state_name(enum schema_state s)
{
    switch (s) {
    case SCHEMA_UNKNOWN:
        return "the database has not been reached yet";
    case SCHEMA_CURRENT:
        return "current";
    case SCHEMA_BEHIND:
        return "the database schema is older than this binary: run incubatord migrate";
    case SCHEMA_TOO_NEW:
        return "the database schema is newer than this binary";
    case SCHEMA_FAILED:
        return "the schema migration failed; see the log";
    }
    return "?";
}

static void probe_done(void *arg, const struct db_result *res)
{
    struct req *r = arg;
    char body[128];
    r->pending = NULL;
    if (res->status != DB_OK) {
        http_reply_db_failure(r, res);
        return;
    }
    snprintf(body, sizeof(body), "{\"status\":\"ready\",\"schema_version\":%d}",
             migrate_latest_version());
    http_reply_json_text(r, 200, body, strlen(body));
}

/*
 * Ready means: the schema is this binary's and a statement runs now. The
 * probe goes through the pool like any request, so a full queue shows too.
 */
void api_readyz(struct req *r)
{
    if (!server_schema_ready(r->srv)) {
        http_add_header(r, "Retry-After", "5");
        http_reply_problem(r, 503, schema_state_name(r->srv->schema), NULL);
        return;
    }
    int timeout = req_remaining_ms(r) < READY_PROBE_MS ? req_remaining_ms(r) : READY_PROBE_MS;
    r->pending = db_query(r->srv->pool, "SELECT 1", 0, NULL, timeout, probe_done, r);
}

/* /metrics names the build and the load: [server] metrics_allow may keep it to operators. */
static bool metrics_allowed(struct req *r)
{
    const char *list = r->srv->cfg.metrics_allow;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    char *peer = NULL;
    ev_uint16_t port = 0;
    if (list == NULL || list[0] == '\0')
        return true;
    if (evcon)
        evhttp_connection_get_peer(evcon, &peer, &port);
    return peer != NULL && config_address_listed(list, peer);
}

void api_metrics(struct req *r)
{
    if (!metrics_allowed(r)) {
        http_reply_problem(r, 403, "this address may not read /metrics ([server] metrics_allow)",
                           NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    metrics_render(buf, r->srv);
    size_t len = evbuffer_get_length(buf);
    http_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                   (const char *)evbuffer_pullup(buf, -1), len);
    evbuffer_free(buf);
}
