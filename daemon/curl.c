/*
 * libcurl's multi-socket interface on the libevent loop. See curl.h.
 *
 * libcurl tells which sockets it waits on (socket_cb: one libevent event per
 * socket, kept with curl_multi_assign) and when it wants to be called back
 * (timer_cb: one timer). Both only arm events; the events call
 * curl_multi_socket_action, after which finished transfers are collected
 * (collect) and their callbacks run, outside every libcurl callback, so a
 * callback may start or cancel transfers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "incubatord/curl.h"
#include "incubatord/log.h"

#define SYSTEM_CA_PATH "/etc/ssl/certs" /* Debian's hashed directory of trusted CAs */

struct curl_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *ca_file;
    char *proxy;
    int active;
    struct curl_transfer *transfers; /* in flight, a doubly linked list */
};

struct curl_transfer {
    struct curl_client *c;
    struct curl_transfer *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *rcpt;
    char *body;
    size_t body_len;
    size_t body_sent; /* SMTP: how much of the mail libcurl has read */
    char *answer;
    size_t answer_len;
    bool answer_too_long;
    curl_done_cb cb;
    void *arg;
    char error[CURL_ERROR_SIZE];
};

/* One socket libcurl waits on. */
struct sock {
    struct curl_client *c;
    curl_socket_t fd;
    struct event *ev;
};

static void collect(struct curl_client *c);

static void transfer_free(struct curl_transfer *t)
{
    curl_multi_remove_handle(t->c->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->rcpt);
    if (t->body != NULL) {
        explicit_bzero(t->body, t->body_len);
        free(t->body);
    }
    free(t->answer);
    if (t->prev)
        t->prev->next = t->next;
    else
        t->c->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->c->active--;
    free(t);
}

/* ---- the loop's side ---- */

static void event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct curl_client *c = arg;
    int running = 0;
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, flags, &running);
    collect(c);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct curl_client *c = arg;
    int running = 0;
    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(c);
}

/* libcurl's CURLMOPT_TIMERFUNCTION: arm or drop the one timer. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
    return 0;
}

/* libcurl's CURLMOPT_SOCKETFUNCTION: watch a socket for what libcurl waits on. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curl_client *c = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            event_free(s->ev);
            free(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->c = c;
        s->fd = fd;
        curl_multi_assign(c->multi, fd, s);
    } else {
        event_free(s->ev);
    }
    s->ev = event_new(c->base, fd, kind, event_cb, c);
    event_add(s->ev, NULL);
    return 0;
}

/* libcurl's words for a failure, shorter where they are vague. */
static const char *describe(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return "certificate not accepted";
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out";
    case CURLE_COULDNT_CONNECT:
        return "connection refused or unreachable";
    case CURLE_COULDNT_RESOLVE_HOST:
        return "host name not found";
    default:
        return curl_easy_strerror(rc);
    }
}

/* Runs the callbacks of the transfers that finished. */
static void collect(struct curl_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct curl_transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        long status = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        struct curl_response res = {
            .transferred = rc == CURLE_OK,
            .status = (int)status,
            .body = t->answer ? t->answer : "",
            .body_len = t->answer_len,
            .error = "",
        };
        char error[CURL_ERROR_SIZE + 64];
        if (rc != CURLE_OK) {
            if (t->answer_too_long)
                snprintf(error, sizeof(error), "the answer is longer than %d bytes",
                         CURL_CLIENT_MAX_RESPONSE);
            else
                snprintf(error, sizeof(error), "%s%s%s", describe(rc), t->error[0] ? ": " : "",
                         t->error);
            res.error = error;
        }
        curl_done_cb cb = t->cb;
        void *arg = t->arg;
        /* Freed first: the callback may start transfers, or free the client. */
        char *answer = t->answer;
        t->answer = NULL;
        transfer_free(t);
        cb(arg, &res);
        free(answer);
    }
}

/* ---- libcurl's side of one transfer ---- */

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct curl_transfer *t = userp;
    size_t len = size * n;
    if (t->answer_len + len > CURL_CLIENT_MAX_RESPONSE) {
        t->answer_too_long = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    char *grown = realloc(t->answer, t->answer_len + len + 1);
    if (grown == NULL)
        return 0;
    t->answer = grown;
    memcpy(t->answer + t->answer_len, data, len);
    t->answer_len += len;
    t->answer[t->answer_len] = '\0';
    return len;
}

/* SMTP: libcurl reads the mail from here. */
static size_t read_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct curl_transfer *t = userp;
    size_t room = size * n, left = t->body_len - t->body_sent;
    size_t take = left < room ? left : room;
    memcpy(buf, t->body + t->body_sent, take);
    t->body_sent += take;
    return take;
}

/* ---- the module ---- */

struct curl_client *curl_client_new(struct event_base *base, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl cannot be initialised");
        return NULL;
    }
    struct curl_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        snprintf(err, errlen, "libcurl: no multi handle");
        free(c);
        return NULL;
    }
    c->timer = evtimer_new(base, timer_event_cb, c);
    c->ca_file = xstrdup("");
    c->proxy = xstrdup("");
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void curl_client_configure(struct curl_client *c, const struct curl_client_settings *s)
{
    free(c->ca_file);
    free(c->proxy);
    c->ca_file = xstrdup(s->ca_file ? s->ca_file : "");
    c->proxy = xstrdup(s->proxy ? s->proxy : "");
}

static bool has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(url, scheme, n) == 0 && url[n] == ':';
}

struct curl_transfer *curl_client_start(struct curl_client *c, const struct curl_request *req,
                                        curl_done_cb cb, void *arg, char *err, size_t errlen)
{
    bool smtp = has_scheme(req->url, "smtp") || has_scheme(req->url, "smtps");
    if (!smtp && !has_scheme(req->url, "http") && !has_scheme(req->url, "https")) {
        snprintf(err, errlen, "not an http(s) or smtp(s) URL");
        return NULL;
    }
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        snprintf(err, errlen, "libcurl: no easy handle");
        return NULL;
    }
    struct curl_transfer *t = xcalloc(1, sizeof(*t));
    t->c = c;
    t->easy = easy;
    t->cb = cb;
    t->arg = arg;
    t->body_len = req->body_len;
    t->body = xmalloc(req->body_len + 1);
    memcpy(t->body, req->body ? req->body : "", req->body_len);
    t->body[req->body_len] = '\0';
    t->next = c->transfers;
    if (c->transfers)
        c->transfers->prev = t;
    c->transfers = t;
    c->active++;

    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)req->timeout_ms);
    /* Verification stays on: the system's CAs and, when configured, ca_file. */
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(easy, CURLOPT_CAPATH, SYSTEM_CA_PATH);
    if (c->ca_file[0] != '\0')
        curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
    /* "" disables proxies, the environment's (http_proxy, ...) included. */
    curl_easy_setopt(easy, CURLOPT_PROXY, c->proxy);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "incubatord/" INCUBATORD_VERSION);

    if (smtp) {
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(easy, CURLOPT_MAIL_FROM, req->mail_from);
        for (const char *const *r = req->rcpt; r && *r; r++)
            t->rcpt = curl_slist_append(t->rcpt, *r);
        curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, t->rcpt);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(easy, CURLOPT_READDATA, t);
        curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->body_len);
        if (req->starttls && has_scheme(req->url, "smtp"))
            curl_easy_setopt(easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (req->user != NULL && req->user[0] != '\0') {
            curl_easy_setopt(easy, CURLOPT_USERNAME, req->user);
            curl_easy_setopt(easy, CURLOPT_PASSWORD, req->password ? req->password : "");
        }
    } else {
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
        /* No "Expect: 100-continue" round trip; one connection per attempt. */
        t->headers = curl_slist_append(t->headers, "Expect:");
        for (const char *const *h = req->headers; h && *h; h++)
            t->headers = curl_slist_append(t->headers, *h);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    }

    CURLMcode mc = curl_multi_add_handle(c->multi, easy);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "libcurl: %s", curl_multi_strerror(mc));
        transfer_free(t);
        return NULL;
    }
    return t;
}

void curl_transfer_cancel(struct curl_transfer *t)
{
    if (t != NULL)
        transfer_free(t);
}

int curl_client_active(const struct curl_client *c)
{
    return c ? c->active : 0;
}

void curl_client_free(struct curl_client *c)
{
    if (c == NULL)
        return;
    while (c->transfers != NULL)
        transfer_free(c->transfers);
    curl_multi_cleanup(c->multi);
    event_free(c->timer);
    free(c->ca_file);
    free(c->proxy);
    free(c);
    curl_global_cleanup();
}
