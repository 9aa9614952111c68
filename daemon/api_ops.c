/*
 * Operations endpoints: liveness, readiness, metrics. None needs a token;
 * /healthz and /metrics never touch the database. Each answers with a
 * struct api_reply, like an API call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "incubatord/api.h"
#include "incubatord/busy.h"
#include "incubatord/config.h"
#include "incubatord/http_conn.h"
#include "incubatord/metrics.h"
#include "incubatord/migrate.h"
#include "incubatord/server.h"

#define READY_PROBE_MS 2000

void api_healthz(const struct route_env *env, apicall_cb done, void *arg)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    struct api_reply reply = {.status = 200, .body = ok, .body_len = sizeof(ok) - 1};
    (void)env;
    done(arg, &reply);
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

/* A readiness probe in flight: owned here, freed when it has answered. */
struct probe {
    apicall_cb done;
    void *arg;
    char request_id[64];
};

static void probe_done(void *arg, const struct db_result *res)
{
    struct probe *p = arg;
    struct api_reply reply = {.status = 200};
    char body[128];
    if (res->status != DB_OK) {
        apicall_failure(res, p->request_id, &reply);
    } else {
        snprintf(body, sizeof(body), "{\"status\":\"ready\",\"schema_version\":%d}",
                 migrate_latest_version());
        reply.body = body;
        reply.body_len = strlen(body);
    }
    p->done(p->arg, &reply);
    free(p);
}

/*
 * Ready means: the schema is this binary's and a statement runs now. The
 * probe goes through the pool like any request, so a full queue shows too.
 */
void api_readyz(const struct route_env *env, apicall_cb done, void *arg)
{
    if (!server_schema_ready(env->srv)) {
        struct api_reply reply = {
            .status = 503, .detail = schema_state_name(env->srv->schema), .retry_after_s = 5};
        done(arg, &reply);
        return;
    }
    struct probe *p = xcalloc(1, sizeof(*p));
    p->done = done;
    p->arg = arg;
    snprintf(p->request_id, sizeof(p->request_id), "%s", env->request_id);
    int timeout = env->timeout_ms < READY_PROBE_MS ? env->timeout_ms : READY_PROBE_MS;
    db_query(env->srv->pool, "SELECT 1", 0, NULL, timeout, probe_done, p);
}

/* /metrics names the build and the load: [server] metrics_allow may keep it to operators. */
static bool metrics_allowed(const struct route_env *env)
{
    const char *list = env->srv->cfg.metrics_allow;
    if (list == NULL || list[0] == '\0')
        return true;
    return env->peer != NULL && config_address_listed(list, env->peer);
}

void api_metrics(const struct route_env *env, apicall_cb done, void *arg)
{
    struct server *srv = env->srv;
    if (!metrics_allowed(env)) {
        struct api_reply refused = {
            .status = 403, .detail = "this address may not read /metrics ([server] metrics_allow)"};
        done(arg, &refused);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    struct metrics_process p = {
        .connections_open = srv->http_conn ? http_conn_open(srv->http_conn) : 0,
        .requests_in_flight = busy_count(BUSY_REQUEST),
        .schema_ready = server_schema_ready(srv),
        .started_at = srv->started_at,
    };
    if (srv->pool)
        db_pool_get_stats(srv->pool, &p.pool);
    if (srv->read_pool) {
        p.has_read_pool = true;
        db_pool_get_stats(srv->read_pool, &p.read_pool);
    }
    memcpy(p.reads_routed, srv->reads_routed, sizeof(p.reads_routed));
    metrics_render(buf, &p);
    struct api_reply reply = {
        .status = 200,
        .content_type = "text/plain; version=0.0.4; charset=utf-8",
        .body_len = evbuffer_get_length(buf),
    };
    reply.body = (const char *)evbuffer_pullup(buf, -1);
    done(arg, &reply);
    evbuffer_free(buf);
}
