/*
 * Request framing on a connection, checked before evhttp parses anything.
 *
 * The connection filter (http_conn.c) feeds a connection's unread input
 * through http_framing_scan(), which says how many bytes may be passed on to
 * evhttp and what they complete: a request head (held back until it is whole
 * and well-formed), then its body (by Content-Length or chunk by chunk). A
 * request evhttp would answer with its own HTML page, or that is no HTTP/1.x
 * at all (HTTP/0.9), is refused here instead, with the status of the
 * problem+json answer the filter sends before closing: 400 malformed, 413
 * body too large, 417 unknown Expect, 431 head too large, 501 unknown method
 * or transfer coding, 505 another version.
 *
 * The rules are evhttp's (libevent 2.1) where evhttp accepts the input, and
 * stricter where it is lenient, never looser: what passes here frames the
 * same way in evhttp, so the two never disagree on where a request ends.
 */
#ifndef INCUBATORD_HTTP_FRAMING_H
#define INCUBATORD_HTTP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request head's limit: its lines, the request line included. */
#define HTTP_MAX_HEAD_BYTES (32 * 1024)
#define HTTP_MAX_HEADERS    100

/* Where a connection's input is. */
enum http_framing_state {
    HF_HEAD,       /* before or inside a request head */
    HF_BODY,       /* inside a Content-Length body: body_left bytes to go */
    HF_CHUNK_SIZE, /* before a chunk-size line */
    HF_CHUNK_DATA, /* inside a chunk: chunk_left bytes to go */
    HF_CHUNK_END,  /* the CRLF after a chunk's data */
    HF_TRAILER,    /* the trailer lines after the last chunk */
    HF_REFUSED,    /* a request was refused: nothing more is passed on */
};

struct http_framing {
    enum http_framing_state state;
    int64_t max_body_bytes; /* a larger body is refused with 413 */
    int64_t body_left;      /* HF_BODY */
    int64_t chunk_left;     /* HF_CHUNK_DATA */
    int64_t body_total;     /* chunked: the sum of the chunks so far */
    size_t head_scanned;    /* HF_HEAD: bytes of the head searched for its end already */
    int trailer_lines;      /* HF_TRAILER */
    bool head_started;      /* HF_HEAD: bytes of the next head have arrived */
    bool head_method;       /* the last request line read was a HEAD: answer without a body */
};

/* What the bytes a scan passes on complete. */
enum http_scan_event {
    HS_NEED_MORE,    /* nothing complete yet: pass `pass` bytes, wait for input */
    HS_HEAD_DONE,    /* a head is whole and well-formed; its body follows */
    HS_REQUEST_DONE, /* a request (head and body) is whole */
    HS_REFUSED,      /* refuse the request: answer status (detail says why) and close */
};

struct http_scan {
    size_t skip; /* bytes to drop first: empty lines before a request line */
    size_t pass; /* then bytes to pass on */
    enum http_scan_event event;
    int status;         /* HS_REFUSED: the answer's status */
    const char *detail; /* HS_REFUSED: a sentence for the problem's detail */
};

void http_framing_init(struct http_framing *f, int64_t max_body_bytes);

/*
 * Looks at the start of the connection's unread input (data, len: all of it,
 * contiguous) and fills out: skip and pass bytes, and what they complete.
 * The caller drops skip bytes, passes pass bytes on, then scans again what is
 * left (several requests may be in one read) until HS_NEED_MORE or
 * HS_REFUSED.
 */
void http_framing_scan(struct http_framing *f, const char *data, size_t len, struct http_scan *out);

#endif
