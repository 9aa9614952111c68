/*
 * The HTTP server's connections: the listening socket, evhttp and its
 * limits, the connection cap, and the filter through which every answer is
 * written straight to its socket. What a request means is http.c's; this
 * file knows connections only, and hands each request to the callback it
 * was given.
 */
#ifndef INCUBATORD_HTTP_CONN_H
#define INCUBATORD_HTTP_CONN_H

#include <stdbool.h>

#include <event2/event.h>
#include <event2/http.h>

#include "incubatord/config.h"

struct http_conn;

typedef void (*http_conn_request_cb)(struct evhttp_request *req, void *arg);

/*
 * Creates evhttp on base with cfg's limits, binds cfg->listen and hands
 * every request to cb. NULL, with a logged reason, when the address cannot
 * be used.
 */
struct http_conn *http_conn_start(struct event_base *base, const struct config *cfg,
                                  http_conn_request_cb cb, void *arg);
/* Applies the reloadable limits (idle timeout, body size, connection cap). */
void http_conn_apply_config(struct http_conn *c, const struct config *cfg);
/* Closes the listening socket: open connections stay and finish. */
void http_conn_stop_accepting(struct http_conn *c);
/* Frees evhttp and with it every connection. */
void http_conn_free(struct http_conn *c);
/* Client connections open now. */
int http_conn_open(const struct http_conn *c);

#endif
