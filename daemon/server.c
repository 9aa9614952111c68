/*
 * The daemon's life: start-up, readiness, signals, reload, draining.
 *
 * Start-up never waits for PostgreSQL: the HTTP server listens and systemd
 * hears READY=1 at once; the schema is migrated (or checked) as soon as the
 * database answers, and until then /readyz and the API say 503.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "incubatord/apicall.h"
#include "incubatord/auth.h"
#include "incubatord/busy.h"
#include "incubatord/db.h"
#include "incubatord/http.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"
#include "incubatord/migrate.h"
#include "incubatord/gauges.h"
#include "incubatord/outbox.h"
#include "incubatord/routes.h"
#include "incubatord/sched.h"
#include "incubatord/server.h"

#define MIGRATE_RETRY_DOWN_MS  1000
#define MIGRATE_RETRY_ERROR_MS 30000
#define MIGRATE_TIMEOUT_MS     600000
/* How often the read pool's replay lag is sampled: one cheap statement a second. */
#define READ_LAG_SAMPLE_MS 1000

/*
 * Channels the LISTEN connection follows: token revocations (payload: the
 * token's id) and new outbox events (no payload: the notifier looks).
 */
static const char *const listen_channels[] = {"incubatord_tokens", "incubatord_outbox"};

static void notify_systemd(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

/* ---- schema ---- */

static void schedule_migrate(struct server *srv, int delay_ms);

static void webhook_recorded(void *arg, const struct db_result *r)
{
    struct server *srv = arg;
    if (r->status != DB_OK) {
        log_msg(LOG_WARNING, "schema: cannot record the [webhook] channel: %s (retrying)",
                r->message);
        schedule_migrate(srv, MIGRATE_RETRY_DOWN_MS);
        return;
    }
    srv->schema = SCHEMA_CURRENT;
    notify_systemd("STATUS=serving");
    outbox_wake(srv);
}

static void migrated(void *arg, enum migrate_outcome outcome, const char *message)
{
    struct server *srv = arg;
    srv->migrating = false;
    switch (outcome) {
    case MIGRATE_CURRENT:
        log_msg(LOG_NOTICE, "schema: %s", message);
        /* Serving starts once the configuration's [webhook] is its channel. */
        outbox_schema_ready(srv, webhook_recorded, srv);
        return;
    case MIGRATE_BEHIND:
        srv->schema = SCHEMA_BEHIND;
        log_msg(LOG_ERR, "schema: %s; run incubatord migrate (checking again in %d s)", message,
                MIGRATE_RETRY_ERROR_MS / 1000);
        schedule_migrate(srv, MIGRATE_RETRY_ERROR_MS);
        return;
    case MIGRATE_TOO_NEW:
        srv->schema = SCHEMA_TOO_NEW;
        log_msg(LOG_CRIT, "schema: %s; refusing to serve until upgraded", message);
        notify_systemd("STATUS=database schema is newer than this binary");
        return;
    case MIGRATE_FAILED:
        if (!db_pool_is_up(srv->pool)) {
            /* The pool logs why the database is unreachable; try again soon. */
            schedule_migrate(srv, MIGRATE_RETRY_DOWN_MS);
            return;
        }
        srv->schema = SCHEMA_FAILED;
        log_msg(LOG_ERR, "schema: migration failed: %s (retrying in %d s)", message,
                MIGRATE_RETRY_ERROR_MS / 1000);
        schedule_migrate(srv, MIGRATE_RETRY_ERROR_MS);
        return;
    }
}

static void migrate_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    if (srv->migrating || srv->draining)
        return;
    srv->migrating = true;
    migrate_run(srv->pool, srv->cfg.migrate_on_start ? MIGRATE_APPLY : MIGRATE_CHECK,
                MIGRATE_TIMEOUT_MS, migrated, srv);
}

static void schedule_migrate(struct server *srv, int delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(srv->migrate_timer, &tv);
}

/* ---- notifications from other daemons ---- */

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct server *srv = arg;
    if (strcmp(channel, "incubatord_tokens") == 0)
        auth_cache_forget(srv->auth, strtoll(payload, NULL, 10));
    else if (strcmp(channel, "incubatord_outbox") == 0)
        outbox_wake(srv);
}

static void on_listen_reset(void *arg, bool connected)
{
    struct server *srv = arg;
    /* Revocations sent while we were not listening are unknown: start afresh. */
    auth_cache_set_trusted(srv->auth, connected);
    /* So are events written meanwhile. */
    if (connected)
        outbox_wake(srv);
}

/* ---- signals ---- */

static void stop_now(struct server *srv)
{
    event_base_loopexit(srv->base, NULL);
}

/* How often a draining server looks whether the work is done. */
#define DRAIN_POLL_MS 5

static void drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    if (busy_total() == 0)
        stop_now(srv);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    log_msg(LOG_WARNING,
            "shutdown: %d request(s), %d job(s) and %d delivery step(s) still "
            "running after %d ms; exiting",
            busy_count(BUSY_REQUEST), busy_count(BUSY_JOB), busy_count(BUSY_DELIVERY),
            srv->cfg.shutdown_timeout_ms);
    stop_now(srv);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    (void)what;
    if (srv->draining) {
        log_msg(LOG_WARNING, "shutdown: second %s, exiting without waiting",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        /* Requests still hold evhttp and pool objects: no orderly teardown is possible. */
        _exit(1);
    }
    srv->draining = true;
    notify_systemd("STOPPING=1");
    http_stop_accepting(srv);
    log_msg(LOG_NOTICE,
            "shutdown: %s received; finishing %d request(s), %d job(s) and %d "
            "delivery step(s)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", busy_count(BUSY_REQUEST), busy_count(BUSY_JOB),
            busy_count(BUSY_DELIVERY));
    if (busy_total() == 0) {
        stop_now(srv);
        return;
    }
    struct timeval tv = {srv->cfg.shutdown_timeout_ms / 1000,
                         (srv->cfg.shutdown_timeout_ms % 1000) * 1000};
    srv->drain_timer = evtimer_new(srv->base, drain_timeout_cb, srv);
    evtimer_add(srv->drain_timer, &tv);
    struct timeval poll = {0, DRAIN_POLL_MS * 1000};
    srv->drain_poll = event_new(srv->base, -1, EV_PERSIST, drain_poll_cb, srv);
    evtimer_add(srv->drain_poll, &poll);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct config next;
    char err[1024];
    (void)sig;
    (void)what;

    if (srv->config_path == NULL) {
        log_msg(LOG_NOTICE, "reload: no configuration file; nothing to reload");
        return;
    }
    if (!config_load(srv->config_path, &next, err, sizeof(err))) {
        log_msg(LOG_ERR, "reload: %s; keeping the running configuration", err);
        config_free(&next);
        return;
    }
    notify_systemd("RELOADING=1");
    config_apply_reload(&srv->cfg, &next);
    config_free(&next);
    log_set_level(srv->cfg.log_level);
    http_apply_config(srv);
    db_pool_set_max_queue(srv->pool, srv->cfg.max_queue);
    if (srv->read_pool)
        db_pool_set_max_queue(srv->read_pool, srv->cfg.max_queue);
    sched_apply_config(srv);
    outbox_apply_config(srv);
    log_msg(LOG_NOTICE, "reload: configuration %s reloaded", srv->config_path);
    notify_systemd("READY=1");
}

/* ---- start and stop ---- */

static bool set_timezone(const char *tz)
{
    if (setenv("TZ", tz, 1) != 0)
        return false;
    tzset();
    return true;
}

int server_run(const char *config_path, bool foreground)
{
    struct server srv;
    char err[1024];
    int code = 0;

    memset(&srv, 0, sizeof(srv));
    srv.config_path = config_path;
    srv.foreground = foreground;
    srv.started_at = time(NULL);

    if (config_path == NULL) {
        config_defaults(&srv.cfg);
    } else if (!config_load(config_path, &srv.cfg, err, sizeof(err))) {
        fprintf(stderr, "incubatord: %s\n", err);
        config_free(&srv.cfg);
        return 1;
    }
    if (!set_timezone(srv.cfg.timezone)) {
        fprintf(stderr, "incubatord: cannot set time zone %s\n", srv.cfg.timezone);
        config_free(&srv.cfg);
        return 1;
    }
    log_open(srv.cfg.log_ident, srv.cfg.log_facility, srv.cfg.log_level, srv.cfg.log_syslog,
             foreground || isatty(STDERR_FILENO) || !srv.cfg.log_syslog);
    if (!migrate_embedded_ok(err, sizeof(err))) {
        log_msg(LOG_CRIT, "schema: %s", err);
        config_free(&srv.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)(time(NULL) ^ getpid()));

    srv.base = event_base_new();
    if (srv.base == NULL) {
        log_msg(LOG_CRIT, "cannot create the event loop");
        config_free(&srv.cfg);
        return 1;
    }
    struct db_pool_config pc = {
        .conninfo = srv.cfg.conninfo,
        .pool_size = srv.cfg.pool_size,
        .max_queue = srv.cfg.max_queue,
        .statement_timeout_ms = srv.cfg.statement_timeout_ms,
        .connect_timeout_ms = 5000,
        .pipeline_depth = srv.cfg.pipeline_depth,
    };
    srv.pool = db_pool_new(srv.base, &pc);
    if (srv.cfg.read_conninfo[0] != '\0') {
        pc.conninfo = srv.cfg.read_conninfo;
        pc.lag_sample_ms = READ_LAG_SAMPLE_MS;
        srv.read_pool = db_pool_new(srv.base, &pc);
    }
    srv.auth = auth_cache_new();
    db_pool_listen(srv.pool, listen_channels, (int)ARRAY_LEN(listen_channels), on_notify,
                   on_listen_reset, &srv);
    metrics_init(routes_count);
    apicall_init(routes_count);
    for (size_t i = 0; i < routes_count; i++) {
        char label[160];
        snprintf(label, sizeof(label), "%s %s", route_method_name(routes[i].method),
                 routes[i].pattern);
        metrics_route_label(i, label);
    }

    if (!http_start(&srv)) {
        code = 1;
        goto out;
    }
    srv.sig_term = evsignal_new(srv.base, SIGTERM, on_term, &srv);
    srv.sig_int = evsignal_new(srv.base, SIGINT, on_term, &srv);
    srv.sig_hup = evsignal_new(srv.base, SIGHUP, on_hup, &srv);
    evsignal_add(srv.sig_term, NULL);
    evsignal_add(srv.sig_int, NULL);
    evsignal_add(srv.sig_hup, NULL);
    srv.migrate_timer = evtimer_new(srv.base, migrate_timer_cb, &srv);
    schedule_migrate(&srv, 0);
    sched_start(&srv);
    outbox_start(&srv);
    gauges_start(&srv);

    log_msg(LOG_NOTICE, "incubatord %s started (pid %d, schema %d, time zone %s)",
            INCUBATORD_VERSION, (int)getpid(), migrate_latest_version(), srv.cfg.timezone);
    notify_systemd("READY=1\nSTATUS=waiting for the database");

    event_base_dispatch(srv.base);
    log_msg(LOG_NOTICE, "incubatord stopped");

out:
    /*
     * The pool goes first: it fails the work still waiting, and the
     * callbacks of requests that outlasted shutdown_timeout_ms answer them
     * through evhttp, and those of deliveries through the notifier, which
     * must both still exist then. (Freed the other way round, those
     * callbacks wrote to freed evhttp requests: a crash at every shutdown
     * that timed out.)
     */
    db_pool_free(srv.read_pool);
    db_pool_free(srv.pool);
    http_free(&srv);
    sched_free(&srv);
    outbox_free(&srv);
    gauges_free(&srv);
    auth_cache_free(srv.auth);
    metrics_free();
    apicall_free();
    if (srv.sig_term)
        event_free(srv.sig_term);
    if (srv.sig_int)
        event_free(srv.sig_int);
    if (srv.sig_hup)
        event_free(srv.sig_hup);
    if (srv.migrate_timer)
        event_free(srv.migrate_timer);
    if (srv.drain_timer)
        event_free(srv.drain_timer);
    if (srv.drain_poll)
        event_free(srv.drain_poll);
    event_base_free(srv.base);
    config_free(&srv.cfg);
    log_close();
    return code;
}
