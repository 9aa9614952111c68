/*
 * The HTTP server's connections. See http_conn.h.
 *
 * libevent 2.1 writes HTML error pages of its own and has no hook to replace
 * them, so nothing that would make evhttp write one reaches it: every
 * connection's bufferevent is a filter whose input side checks the framing
 * of each request (http_framing.c) before evhttp parses it, and answers a
 * malformed one itself with problem+json before closing. evhttp is told to
 * allow every method (the router answers 405) and to accept bodies a few
 * times larger than server.max_body_bytes, and at least as large as
 * server.max_sync_body_bytes (http.c answers 413 with problem+json below
 * that; the filter above it).
 *
 * The filter also keeps the connection limits, which evhttp has none of:
 *
 * - a head must arrive within server.header_timeout_s of the connection's
 *   start (or of its first byte, for the next request of a kept-alive
 *   connection), a body within server.body_timeout_s of its head, an answer
 *   must be taken by the client within body_timeout_s: however slowly the
 *   bytes trickle, the deadline holds (evhttp's idle timeout restarts on
 *   every byte);
 * - server.max_connections_per_ip connections per client address;
 * - server.max_connections in all, of which connections that have not
 *   completed a request yet may hold three quarters: the rest is kept for
 *   clients that have. A new connection beyond the limit closes the longest
 *   idle kept-alive connection, else the oldest one still sending its first
 *   head; only when every connection is inside a request does the listener
 *   pause (new ones wait in the kernel's backlog).
 *
 * What is cut is counted (incubatord_http_connections_cut_total by reason)
 * and summed up in the log every 10 s while it goes on.
 *
 * The filter writes the answers to the socket itself, see struct conn_track.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "incubatord/common.h"
#include "incubatord/http_conn.h"
#include "incubatord/http_framing.h"
#include "incubatord/log.h"
#include "incubatord/metrics.h"

/* evhttp's own limit, beyond which it answers a bare 413 before reading. */
#define EVHTTP_BODY_FACTOR 4
/* evhttp's head limit, above the filter's (which counts head and trailer apart). */
#define EVHTTP_HEADERS_BYTES (3 * HTTP_MAX_HEAD_BYTES)
/* The share of the connections that may be still sending their first head. */
#define FRESH_SHARE_PERCENT 75
#define IP_BUCKETS          1024
#define LISTEN_BACKLOG      4096
#define LINGER_S            5
#define REPORT_INTERVAL_S   10

/* Why a connection was cut; the metric's reason label. */
enum cut_reason {
    CUT_HEADER_TIMEOUT, /* its head took longer than header_timeout_s */
    CUT_BODY_TIMEOUT,   /* its body took longer than body_timeout_s */
    CUT_WRITE_TIMEOUT,  /* it took its answer slower than body_timeout_s */
    CUT_PER_IP,         /* its address had max_connections_per_ip open */
    CUT_EVICTED_IDLE,   /* kept alive idle while the connections were full */
    CUT_EVICTED_FRESH,  /* still sending its first head while they were full */
    CUT_FULL,           /* every connection was inside a request */
    CUT_MALFORMED,      /* its request was malformed (answered 4xx/5xx) */
    CUT_REASONS,
};

static const char *const cut_names[CUT_REASONS] = {
    "header_timeout", "body_timeout",  "write_timeout", "per_ip_limit",
    "evicted_idle",   "evicted_fresh", "full",          "malformed",
};

/* Connections open per client address. */
struct ip_count {
    char addr[INET6_ADDRSTRLEN];
    int open;
    bool warned; /* the limit was logged for this address */
    struct ip_count *next;
};

/* Which list a connection is on, for eviction. */
enum conn_list {
    LIST_NONE,  /* inside a request, not admitted yet, or closing */
    LIST_FRESH, /* admitted, no request completed yet: oldest first */
    LIST_IDLE,  /* kept alive between two requests: longest idle first */
};

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
    int max_per_ip;
    int header_timeout_s;
    int body_timeout_s;
    int64_t max_body_hard; /* evhttp's body limit, which the filter answers at */
    int open_connections;  /* until libevent frees them */
    int closing;           /* of those, cut and waiting to be freed */
    int fresh_count;
    TAILQ_HEAD(, conn_track) fresh;
    TAILQ_HEAD(, conn_track) idle;
    struct ip_count *ips[IP_BUCKETS];
    struct event *report; /* the log's summary of cuts, while there are any */
    uint64_t cut[CUT_REASONS];
    bool accepting;
    bool paused; /* the listener is disabled: every connection is inside a request */
    bool freed;  /* http_conn_free was called: the last connection frees it */
};

/*
 * A connection's filter: it counts the connection (its free callback counts
 * it out), checks each request's framing and the deadlines on the way in,
 * and writes the answers.
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
 *
 * evhttp frees the filter (bufferevent_free) long before libevent finalizes
 * it and calls connection_freed(); in between, no event of ours may touch
 * the filter again (a flush then unlinked it a second time: libevent's
 * "BEV_OPT_CLOSE_ON_FREE set on an bufferevent with too few references" on
 * every other closed connection). alive() tells.
 */
struct conn_track {
    struct http_conn *conn;
    struct bufferevent *bev;
    struct event *kick;     /* activated when output is added */
    struct event *writable; /* EV_WRITE on the socket, made when first needed */
    struct event *admit;    /* once, when evhttp has given the filter its socket */
    struct event *deadline; /* the head, body or answer deadline that runs now */
    enum cut_reason deadline_reason;
    struct http_framing framing;
    struct ip_count *ip; /* set when admitted */
    enum conn_list list;
    TAILQ_ENTRY(conn_track) entry;
    int unanswered;   /* requests passed on to evhttp whose answers are not written yet */
    bool established; /* a request of it was completed */
    bool closing;     /* cut: nothing more is read, evhttp is told to free it */
};

static void pause_or_resume(struct http_conn *c)
{
    bool evictable = !TAILQ_EMPTY(&c->fresh) || !TAILQ_EMPTY(&c->idle);
    bool full = c->open_connections - c->closing >= c->max_connections && !evictable;
    if (c->listener == NULL || !c->accepting)
        return;
    if (full && !c->paused) {
        evconnlistener_disable(c->listener);
        c->paused = true;
        log_msg(LOG_WARNING,
                "http: %d connections open (server.max_connections), each inside a request: "
                "not accepting more until one finishes",
                c->open_connections - c->closing);
    } else if (!full && c->paused) {
        evconnlistener_enable(c->listener);
        c->paused = false;
    }
}

/* Whether evhttp still has the filter (it clears the callbacks when it frees it). */
static bool alive(const struct conn_track *t)
{
    bufferevent_data_cb readcb = NULL;
    bufferevent_event_cb eventcb = NULL;
    bufferevent_getcb(t->bev, &readcb, NULL, &eventcb, NULL);
    return readcb != NULL || eventcb != NULL;
}

static void list_move(struct conn_track *t, enum conn_list to)
{
    struct http_conn *c = t->conn;
    if (t->list == to)
        return;
    if (t->list == LIST_FRESH) {
        TAILQ_REMOVE(&c->fresh, t, entry);
        c->fresh_count--;
    } else if (t->list == LIST_IDLE) {
        TAILQ_REMOVE(&c->idle, t, entry);
    }
    t->list = to;
    if (to == LIST_FRESH) {
        TAILQ_INSERT_TAIL(&c->fresh, t, entry);
        c->fresh_count++;
    } else if (to == LIST_IDLE) {
        TAILQ_INSERT_TAIL(&c->idle, t, entry);
    }
}

/* ---- connections per address ---- */

static unsigned ip_hash(const char *addr)
{
    unsigned h = 2166136261u;
    for (; *addr; addr++)
        h = (h ^ (unsigned char)*addr) * 16777619u;
    return h % IP_BUCKETS;
}

static struct ip_count *ip_ref(struct http_conn *c, const char *addr)
{
    unsigned h = ip_hash(addr);
    struct ip_count *ip;
    for (ip = c->ips[h]; ip; ip = ip->next)
        if (strcmp(ip->addr, addr) == 0)
            break;
    if (ip == NULL) {
        ip = xcalloc(1, sizeof(*ip));
        snprintf(ip->addr, sizeof(ip->addr), "%s", addr);
        ip->next = c->ips[h];
        c->ips[h] = ip;
    }
    ip->open++;
    return ip;
}

static void ip_unref(struct http_conn *c, struct ip_count *ip)
{
    if (--ip->open > 0)
        return;
    for (struct ip_count **p = &c->ips[ip_hash(ip->addr)]; *p; p = &(*p)->next) {
        if (*p == ip) {
            *p = ip->next;
            free(ip);
            return;
        }
    }
}

/* The peer's address as text; an IPv4 client of an IPv6 socket as IPv4. */
static void peer_address(evutil_socket_t fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(out, len, "unknown");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
    } else if (ss.ss_family == AF_INET6) {
        struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, (const unsigned char *)a + 12, out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)len);
    }
}

/* ---- cutting a connection ---- */

static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    char text[512];
    size_t n = 0;
    uint64_t total = 0;
    (void)fd;
    (void)what;
    for (int i = 0; i < CUT_REASONS; i++) {
        if (c->cut[i] == 0)
            continue;
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s %llu", n ? ", " : "", cut_names[i],
                              (unsigned long long)c->cut[i]);
        total += c->cut[i];
        c->cut[i] = 0;
    }
    if (total > 0)
        log_msg(LOG_NOTICE, "http: %llu connections cut in the last %d s: %s",
                (unsigned long long)total, REPORT_INTERVAL_S, text);
}

/*
 * A problem+json answer written straight to the socket, for a request that
 * evhttp never sees: as much as the socket takes at once (it is small, and
 * the connection closes right after).
 */
static void write_problem(struct conn_track *t, int status, const char *detail)
{
    static const struct {
        int status;
        const char *reason, *type, *title;
    } kinds[] = {
        {400, "Bad Request", "bad-request", "Bad request"},
        {408, "Request Timeout", "request-timeout", "Request timeout"},
        {413, "Payload Too Large", "too-large", "Request body too large"},
        {417, "Expectation Failed", "expectation-failed", "Expectation failed"},
        {431, "Request Header Fields Too Large", "head-too-large", "Request head too large"},
        {501, "Not Implemented", "not-implemented", "Not implemented"},
        {503, "Service Unavailable", "unavailable", "Service unavailable"},
        {505, "HTTP Version Not Supported", "http-version", "HTTP version not supported"},
    };
    static uint32_t prefix, counter;
    size_t k = 0;
    char id[24], urn[64], head[512];
    while (k + 1 < ARRAY_LEN(kinds) && kinds[k].status != status)
        k++;
    if (prefix == 0 && RAND_bytes((unsigned char *)&prefix, sizeof(prefix)) != 1)
        prefix = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    snprintf(id, sizeof(id), "%08x%08x", prefix, ++counter);
    snprintf(urn, sizeof(urn), "urn:incubatord:problem:%s", kinds[k].type);
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", urn, "title", kinds[k].title, "status",
                  kinds[k].status, "detail", detail ? detail : kinds[k].title, "request_id", id);
    char *body = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    char fallback[192];
    if (body == NULL) {
        /* Memory short: the same problem without its detail and id, from static text. */
        snprintf(fallback, sizeof(fallback), "{\"type\":\"%s\",\"title\":\"%s\",\"status\":%d}",
                 urn, kinds[k].title, kinds[k].status);
    }
    const char *text = body ? body : fallback;
    size_t body_len = strlen(text);
    /* A HEAD gets the headers only, its Content-Length included. */
    bool no_body = t->framing.head_method;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\nX-Request-Id: %s\r\n\r\n",
                     kinds[k].status, kinds[k].reason, body_len + 1, id);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, head, (size_t)n);
    if (!no_body) {
        evbuffer_add(out, text, body_len);
        evbuffer_add(out, "\n", 1);
    }
    free(body);
    evutil_socket_t fd = bufferevent_getfd(t->bev);
    if (fd >= 0)
        (void)evbuffer_write(out, fd);
    evbuffer_free(out);
    metrics_request(-1, kinds[k].status, 0);
}

/*
 * Ends a connection: answers status (0: nothing) with problem+json, counts
 * and logs why, and shuts the socket down. evhttp then reads the end of the
 * connection as if the client had closed it, and frees it on its own path
 * (triggering an error event on the filter from here instead let libevent
 * free it twice).
 */
static void cut(struct conn_track *t, enum cut_reason reason, int status, const char *detail)
{
    struct http_conn *c = t->conn;
    char label[48];
    if (t->closing)
        return;
    t->closing = true;
    c->closing++;
    list_move(t, LIST_NONE);
    event_del(t->deadline);
    if (!alive(t))
        return; /* evhttp is freeing it already */
    c->cut[reason]++;
    snprintf(label, sizeof(label), "reason=\"%s\"", cut_names[reason]);
    metrics_add("incubatord_http_connections_cut_total", label, 1);
    log_msg(LOG_DEBUG, "http: cut a connection from %s: %s%s%s", t->ip ? t->ip->addr : "?",
            cut_names[reason], detail ? ": " : "", detail ? detail : "");
    if (c->report && !event_pending(c->report, EV_TIMEOUT, NULL)) {
        struct timeval tv = {REPORT_INTERVAL_S, 0};
        event_add(c->report, &tv);
    }
    if (status != 0)
        write_problem(t, status, detail);
    evutil_socket_t fd = bufferevent_getfd(t->bev);
    if (fd < 0)
        return;
    if (reason == CUT_MALFORMED) {
        /*
         * A client refused at its head may still be sending its body: closing
         * now would reset the connection and lose the answer. What it sends
         * is read and dropped for a while (as evhttp's lingering close does).
         */
        shutdown(fd, SHUT_WR);
        t->deadline_reason = CUT_REASONS;
        struct timeval tv = {LINGER_S, 0};
        event_add(t->deadline, &tv);
        return;
    }
    shutdown(fd, SHUT_RDWR);
}

static void arm(struct conn_track *t, int seconds, enum cut_reason reason)
{
    struct timeval tv = {seconds, 0};
    t->deadline_reason = reason;
    event_add(t->deadline, &tv);
}

static void deadline_cb(evutil_socket_t fd_unused, short what, void *arg)
{
    struct conn_track *t = arg;
    (void)fd_unused;
    (void)what;
    if (t->closing) {
        /* The end of a lingering close. */
        evutil_socket_t fd = bufferevent_getfd(t->bev);
        if (fd >= 0 && alive(t))
            shutdown(fd, SHUT_RDWR);
        return;
    }
    if (t->deadline_reason == CUT_WRITE_TIMEOUT)
        cut(t, CUT_WRITE_TIMEOUT, 0, NULL); /* its answer is half-written: no other */
    else
        cut(t, t->deadline_reason, 408,
            t->deadline_reason == CUT_HEADER_TIMEOUT
                ? "the request head did not arrive within server.header_timeout_s"
                : "the request body did not arrive within server.body_timeout_s");
    pause_or_resume(t->conn);
}

/*
 * Makes room for a newcomer beyond max_connections: the oldest connection
 * still sending its first head goes while those hold more than their share,
 * else the longest idle kept-alive connection, else the oldest first head,
 * else the newcomer.
 */
static void make_room(struct http_conn *c, struct conn_track *newcomer)
{
    int fresh_cap = c->max_connections * FRESH_SHARE_PERCENT / 100;
    struct conn_track *v;
    if (fresh_cap < 1)
        fresh_cap = 1;
    while (c->open_connections - c->closing > c->max_connections && !newcomer->closing) {
        if (c->fresh_count > fresh_cap && (v = TAILQ_FIRST(&c->fresh)) != NULL)
            cut(v, CUT_EVICTED_FRESH, 503, "the server is busy; retry");
        else if ((v = TAILQ_FIRST(&c->idle)) != NULL)
            cut(v, CUT_EVICTED_IDLE, 0, NULL);
        else if ((v = TAILQ_FIRST(&c->fresh)) != NULL && v != newcomer)
            cut(v, CUT_EVICTED_FRESH, 503, "the server is busy; retry");
        else
            cut(newcomer, CUT_FULL, 503, "the server is busy; retry");
    }
}

/* Runs once, right after evhttp has set up the connection: its address is known. */
static void admit_cb(evutil_socket_t fd_unused, short what, void *arg)
{
    struct conn_track *t = arg;
    struct http_conn *c = t->conn;
    char addr[INET6_ADDRSTRLEN];
    (void)fd_unused;
    (void)what;
    if (t->closing || !alive(t))
        return;
    peer_address(bufferevent_getfd(t->bev), addr, sizeof(addr));
    t->ip = ip_ref(c, addr);
    if (t->ip->open > c->max_per_ip) {
        if (!t->ip->warned)
            log_msg(LOG_WARNING,
                    "http: %s has %d connections open (server.max_connections_per_ip): "
                    "refusing more from it",
                    addr, c->max_per_ip);
        t->ip->warned = true;
        cut(t, CUT_PER_IP, 503, "too many connections from this address");
        return;
    }
    list_move(t, LIST_FRESH);
    arm(t, c->header_timeout_s, CUT_HEADER_TIMEOUT);
    make_room(c, t);
    pause_or_resume(c);
}

/* ---- the filter ---- */

static void connection_freed(void *arg)
{
    struct conn_track *t = arg;
    struct http_conn *c = t->conn;
    /*
     * libevent 2.1 finalizes only one of a freed bufferevent's events; the
     * filter's read and write timeouts (evhttp's idle timeout) are merely
     * deleted, and a write processed after evhttp freed the filter arms its
     * write timeout again: freed with it, a timer left in the base's heap.
     */
    event_del(&t->bev->ev_read);
    event_del(&t->bev->ev_write);
    list_move(t, LIST_NONE);
    event_free(t->kick);
    event_free(t->admit);
    event_free(t->deadline);
    if (t->writable)
        event_free(t->writable);
    if (t->ip)
        ip_unref(c, t->ip);
    if (t->closing)
        c->closing--;
    free(t);
    c->open_connections--;
    if (c->freed) {
        if (c->open_connections == 0)
            free(c);
        return;
    }
    pause_or_resume(c);
}

/*
 * Moves the filter's output on. Once evhttp has freed the filter, there is
 * nothing left to do: bufferevent_flush() would take and drop a reference
 * to it, and libevent would unlink it a second time.
 */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn_track *t = arg;
    (void)fd;
    (void)what;
    if (alive(t))
        bufferevent_flush(t->bev, EV_WRITE, BEV_NORMAL);
}

/* A request was passed on whole: no deadline until its answer is written. */
static void request_done(struct conn_track *t)
{
    event_del(t->deadline);
    t->unanswered++;
    t->established = true;
    list_move(t, LIST_NONE);
}

/*
 * The filter's input function: one step of the framing per call (libevent
 * calls again while it returns BEV_OK and input is left). A head is held
 * back until it is whole and well-formed; bodies pass as they come.
 */
static enum bufferevent_filter_result read_through(struct evbuffer *src, struct evbuffer *dst,
                                                   ev_ssize_t limit,
                                                   enum bufferevent_flush_mode mode, void *arg)
{
    struct conn_track *t = arg;
    struct http_framing *f = &t->framing;
    size_t len = evbuffer_get_length(src);
    struct http_scan s;
    (void)limit;
    (void)mode;

    if (t->closing) {
        evbuffer_drain(src, len);
        return BEV_OK;
    }
    if (len == 0)
        return BEV_NEED_MORE;
    bool awaiting_head = f->state == HF_HEAD && !f->head_started;
    size_t look = f->state == HF_BODY || f->state == HF_CHUNK_DATA ? 0
                  : len < HTTP_MAX_HEAD_BYTES + 4                  ? len
                                                                   : HTTP_MAX_HEAD_BYTES + 4;
    const char *data = look ? (const char *)evbuffer_pullup(src, (ev_ssize_t)look) : NULL;
    http_framing_scan(f, data, look ? look : len, &s);
    if (awaiting_head && (f->head_started || s.event != HS_NEED_MORE) && t->list == LIST_IDLE) {
        /* The next request of a kept-alive connection: its head has a deadline too. */
        list_move(t, LIST_NONE);
        arm(t, t->conn->header_timeout_s, CUT_HEADER_TIMEOUT);
    }
    if (s.skip)
        evbuffer_drain(src, s.skip);
    if (s.pass)
        evbuffer_remove_buffer(src, dst, s.pass);
    switch (s.event) {
    case HS_REFUSED:
        cut(t, CUT_MALFORMED, s.status, s.detail);
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_OK;
    case HS_HEAD_DONE:
        list_move(t, LIST_NONE);
        arm(t, t->conn->body_timeout_s, CUT_BODY_TIMEOUT);
        break;
    case HS_REQUEST_DONE:
        request_done(t);
        break;
    case HS_NEED_MORE:
        break;
    }
    return s.skip || s.pass || s.event != HS_NEED_MORE ? BEV_OK : BEV_NEED_MORE;
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
        /* A client that does not take its answer holds its slot no longer than a body. */
        if (!t->closing && !event_pending(t->deadline, EV_TIMEOUT, NULL))
            arm(t, t->conn->body_timeout_s, CUT_WRITE_TIMEOUT);
        return evbuffer_get_length(src) < before ? BEV_OK : BEV_NEED_MORE;
    }
    /* An answer is out: with nothing more asked, the connection is idle. */
    if (t->deadline_reason == CUT_WRITE_TIMEOUT)
        event_del(t->deadline);
    if (t->unanswered > 0)
        t->unanswered--;
    if (!t->closing && t->unanswered == 0 && t->framing.state == HF_HEAD &&
        !t->framing.head_started && t->established) {
        list_move(t, LIST_IDLE);
        pause_or_resume(t->conn);
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
    t->bev = bufferevent_filter_new(sock, read_through, write_through, BEV_OPT_CLOSE_ON_FREE,
                                    connection_freed, t);
    if (t->bev == NULL) {
        bufferevent_free(sock);
        free(t);
        return NULL;
    }
    http_framing_init(&t->framing, c->max_body_hard);
    t->kick = event_new(base, -1, 0, flush_cb, t);
    t->admit = event_new(base, -1, 0, admit_cb, t);
    t->deadline = event_new(base, -1, 0, deadline_cb, t);
    evbuffer_add_cb(bufferevent_get_output(t->bev), output_added, t);
    /* evhttp sets the socket after this returns: admit_cb looks at it next. */
    event_active(t->admit, EV_TIMEOUT, 0);
    c->open_connections++;
    return t->bev;
}

struct http_conn *http_conn_start(struct event_base *base, const struct config *cfg,
                                  http_conn_request_cb cb, void *arg)
{
    struct http_conn *c = xcalloc(1, sizeof(*c));
    char host[64];
    int port;

    c->base = base;
    TAILQ_INIT(&c->fresh);
    TAILQ_INIT(&c->idle);
    c->report = evtimer_new(base, report_cb, c);
    c->http = evhttp_new(base);
    if (c->http == NULL)
        goto fail;
    http_conn_apply_config(c, cfg);
    evhttp_set_max_headers_size(c->http, EVHTTP_HEADERS_BYTES);
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
    /*
     * evhttp listens with a backlog of 128: a burst of connections (a crowd
     * of hostile ones) overflows it, and a client whose SYN is dropped waits
     * a second or more for its retry. The kernel caps this at somaxconn.
     */
    if (listen(evconnlistener_get_fd(c->listener), LISTEN_BACKLOG) != 0)
        log_msg(LOG_WARNING, "http: cannot raise the listen backlog: %s", strerror(errno));
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
    c->max_per_ip = cfg->max_connections_per_ip;
    c->header_timeout_s = cfg->header_timeout_s;
    c->body_timeout_s = cfg->body_timeout_s;
    /* Room for a bulk sync's larger limit, and for a few times any other body's. */
    int64_t most = cfg->max_body_bytes * EVHTTP_BODY_FACTOR;
    if (most < cfg->max_sync_body_bytes)
        most = cfg->max_sync_body_bytes;
    c->max_body_hard = most + 65536;
    evhttp_set_timeout(c->http, cfg->idle_timeout_s);
    evhttp_set_max_body_size(c->http, (ev_ssize_t)c->max_body_hard);
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
    if (c->report) {
        report_cb(-1, 0, c);
        event_free(c->report);
        c->report = NULL;
    }
    if (--c->open_connections == 0)
        free(c);
}

int http_conn_open(const struct http_conn *c)
{
    return c ? c->open_connections - c->closing : 0;
}
