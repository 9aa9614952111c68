/*
 * Outgoing HTTP(S) and SMTP on the event loop: libcurl's multi-socket
 * interface driven by libevent (curl_multi_socket_action on socket events
 * and on one timer), so that no transfer, name lookup or TLS handshake ever
 * blocks the loop. Certificates and host names are always verified (the
 * system's CAs, plus a PEM file of the configuration); a proxy is used only
 * when the configuration names one, never from the environment; redirects
 * are not followed.
 *
 * A transfer's callback runs from the loop, never from inside the call that
 * started it, exactly once unless the transfer was cancelled first.
 */
#ifndef INCUBATORD_CURL_H
#define INCUBATORD_CURL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "incubatord/common.h"

#define CURL_CLIENT_MAX_RESPONSE (64 * 1024) /* bytes of an answer kept; beyond, it fails */

struct curl_client;
struct curl_transfer;

/* Settings shared by every transfer (reloadable: applied to the next ones). */
struct curl_client_settings {
    const char *ca_file; /* extra trusted CAs (PEM), besides the system's; "" for none */
    const char *proxy;   /* "" for none (the environment's proxies are ignored) */
};

/* One request. Strings are copied; NULL fields are unused. */
struct curl_request {
    const char *url;  /* http(s)://... or smtp(s)://host:port */
    const char *body; /* the POST body, or the mail (headers and body) */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines, NULL-terminated (HTTP) */
    int timeout_ms;             /* the whole transfer's limit */
    /* SMTP */
    const char *mail_from;       /* the envelope sender */
    const char *const *rcpt;     /* envelope recipients, NULL-terminated */
    bool starttls;               /* require STARTTLS on smtp:// */
    const char *user, *password; /* SMTP AUTH, when user is set */
};

struct curl_response {
    bool transferred; /* an answer came (status is set); false: see error */
    int status;       /* HTTP status, or the last SMTP reply code */
    const char *body; /* the answer's body (NUL-terminated, at most CURL_CLIENT_MAX_RESPONSE) */
    size_t body_len;
    const char *error; /* what went wrong when !transferred: "" otherwise */
};

/* The response is valid only during the callback. */
typedef void (*curl_done_cb)(void *arg, const struct curl_response *res);

/* False (with a reason in err) when libcurl cannot be initialised. */
struct curl_client *curl_client_new(struct event_base *base, char *err, size_t errlen);
/* Cancels every transfer (no callbacks) and frees the client. */
void curl_client_free(struct curl_client *c);
void curl_client_configure(struct curl_client *c, const struct curl_client_settings *s);

/*
 * Starts a transfer: a POST for http(s) URLs, a mail for smtp(s) ones.
 * Returns NULL (with a reason in err) when it cannot even start; the
 * callback is then never called.
 */
struct curl_transfer *curl_client_start(struct curl_client *c, const struct curl_request *req,
                                        curl_done_cb cb, void *arg, char *err, size_t errlen);
/* The caller no longer wants the answer: the transfer stops, its callback is not called. */
void curl_transfer_cancel(struct curl_transfer *t);
/* Transfers in flight. */
int curl_client_active(const struct curl_client *c);

#endif
