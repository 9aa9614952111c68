/*
 * The HTTP server's connections. See http_conn.h.
 *
 * libevent 2.1 writes HTML error pages of its own and has no hook to replace
 * them, so evhttp is told to allow every method (the router answers 405) and
 * to accept bodies a few times larger than server.max_body_bytes (http.c
 * answers 413 with problem+json below that). It has no connection limit:
 * every connection's bufferevent is a filter whose free callback counts it
 * out, and the listener pauses at server.max_connections; the filter also
 * writes the answers to the socket itself (see struct conn_track).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "incubatord/common.h"
#include "incubatord/http_conn.h"
#include "incubatord/log.h"

/* evhttp's own limit, beyond which it answers a bare 413 before reading. */
#define EVHTTP_BODY_FACTOR 4
#define MAX_HEADERS_BYTES  (32 * 1024)

/*
 * Owned by whoever started it; freed by http_conn_free, or, when
 * connections are still open then (libevent finalizes their bufferevents
 * later, those still open at exit only in event_base_free()), by the last
 * connection's free callback.
 */
struct http_conn {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener;
    int max_connections;
    int open_connections;
    bool accepting;
    bool paused; /* the listener is disabled at max_connections */
    bool freed;  /* http_conn_free was called: the last connection frees it */
};

static void pause_or_resume(struct http_conn *c)
{
    bool full = c->open_connections >= c->max_connections;
    if (c->listener == NULL || !c->accepting)
        return;
    if (full && !c->paused) {
        evconnlistener_disable(c->listener);
        c->paused = true;
        log_msg(LOG_WARNING,
                "http: %d connections open (server.max_connections): not accepting "
                "more until one closes",
                c->open_connections);
    } else if (!full && c->paused) {
        evconnlistener_enable(c->listener);
        c->paused = false;
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
    struct http_conn *conn;
    struct bufferevent *bev;
    struct event *kick;     /* activated when output is added */
    struct event *writable; /* EV_WRITE on the socket, made when first needed */
};

static void connection_freed(void *arg)
{
    struct conn_track *t = arg;
    struct http_conn *c = t->conn;
    event_free(t->kick);
    if (t->writable)
        event_free(t->writable);
    free(t);
    c->open_connections--;
    if (c->freed) {
        if (c->open_connections == 0)
            free(c);
        return;
    }
    pause_or_resume(c);
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
            t->writable = event_new(t->conn->base, fd, EV_WRITE, flush_cb, t);
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
    struct http_conn *c = arg;
    struct bufferevent *sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct conn_track *t;
    if (sock == NULL)
        return NULL;
    t = xcalloc(1, sizeof(*t));
    t->conn = c;
    t->bev = bufferevent_filter_new(sock, NULL, write_through, BEV_OPT_CLOSE_ON_FREE,
                                    connection_freed, t);
    if (t->bev == NULL) {
        bufferevent_free(sock);
        free(t);
        return NULL;
    }
    t->kick = event_new(base, -1, 0, flush_cb, t);
    evbuffer_add_cb(bufferevent_get_output(t->bev), output_added, t);
    c->open_connections++;
    pause_or_resume(c);
    return t->bev;
}

struct http_conn *http_conn_start(struct event_base *base, const struct config *cfg,
                                  http_conn_request_cb cb, void *arg)
{
    struct http_conn *c = xcalloc(1, sizeof(*c));
    char host[64];
    int port;

    c->base = base;
    c->http = evhttp_new(base);
    if (c->http == NULL)
        goto fail;
    http_conn_apply_config(c, cfg);
    evhttp_set_max_headers_size(c->http, MAX_HEADERS_BYTES);
    evhttp_set_flags(c->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_default_content_type(c->http, "application/json");
    evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(c->http, cb, arg);
    evhttp_set_bevcb(c->http, new_connection_bev, c);

    if (!config_split_listen(cfg->listen, host, sizeof(host), &port))
        goto fail;
    c->bound = evhttp_bind_socket_with_handle(c->http, host, (ev_uint16_t)port);
    if (c->bound == NULL) {
        log_msg(LOG_CRIT, "http: cannot listen on %s: %s", cfg->listen,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    c->listener = evhttp_bound_socket_get_listener(c->bound);
    c->accepting = true;
    log_msg(LOG_NOTICE, "http: listening on %s", cfg->listen);
    return c;
fail:
    http_conn_free(c);
    return NULL;
}

void http_conn_apply_config(struct http_conn *c, const struct config *cfg)
{
    c->max_connections = cfg->max_connections;
    evhttp_set_timeout(c->http, cfg->idle_timeout_s);
    evhttp_set_max_body_size(c->http, cfg->max_body_bytes * EVHTTP_BODY_FACTOR + 65536);
    pause_or_resume(c);
}

void http_conn_stop_accepting(struct http_conn *c)
{
    if (c == NULL || !c->accepting)
        return;
    c->accepting = false;
    if (c->bound)
        evhttp_del_accept_socket(c->http, c->bound);
    c->bound = NULL;
    c->listener = NULL;
}

void http_conn_free(struct http_conn *c)
{
    if (c == NULL)
        return;
    struct evhttp *http = c->http;
    c->freed = true;
    c->http = NULL;
    c->open_connections++; /* holds c while evhttp frees the connections */
    if (http)
        evhttp_free(http);
    if (--c->open_connections == 0)
        free(c);
}

int http_conn_open(const struct http_conn *c)
{
    return c ? c->open_connections : 0;
}
