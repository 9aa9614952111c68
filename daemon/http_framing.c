/*
 * Request framing, checked before evhttp parses anything. See http_framing.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "incubatord/common.h"
#include "incubatord/http_framing.h"

/* A chunk-size line's limit: 16 hex digits and some spaces. */
#define MAX_CHUNK_LINE 1024

void http_framing_init(struct http_framing *f, int64_t max_body_bytes)
{
    memset(f, 0, sizeof(*f));
    f->state = HF_HEAD;
    f->max_body_bytes = max_body_bytes;
}

static void refuse(struct http_framing *f, struct http_scan *out, int status, const char *detail)
{
    f->state = HF_REFUSED;
    out->pass = 0;
    out->event = HS_REFUSED;
    out->status = status;
    out->detail = detail;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A line without its end: [s, s + n), a trailing CR removed. */
struct line {
    const char *s;
    size_t n;
};

static bool line_is(struct line l, const char *text)
{
    return l.n == strlen(text) && memcmp(l.s, text, l.n) == 0;
}

/* The methods evhttp knows, in the case it knows them. */
static bool known_method(struct line m)
{
    static const char *const methods[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
                                          "OPTIONS", "TRACE", "CONNECT", "PATCH"};
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (line_is(m, methods[i]))
            return true;
    return false;
}

/* "METHOD SP target SP HTTP/1.x": 0 when good, else the status to refuse with. */
static int check_request_line(struct line l, const char **detail, bool *bodyless, bool *head)
{
    const char *sp1 = memchr(l.s, ' ', l.n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', l.n - (size_t)(sp1 + 1 - l.s)) : NULL;
    *detail = "the request line must be METHOD, a path and HTTP/1.1 (or 1.0), one space apart";
    if (sp1 == NULL || sp1 == l.s)
        return 400; /* no version at all is HTTP/0.9 */
    struct line method = {l.s, (size_t)(sp1 - l.s)};
    for (size_t i = 0; i < method.n; i++)
        if (!is_tchar((unsigned char)method.s[i]))
            return 400;
    if (sp2 == NULL)
        return 400;
    struct line target = {sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    struct line version = {sp2 + 1, l.n - (size_t)(sp2 + 1 - l.s)};
    if (target.n == 0 || memchr(version.s, ' ', version.n) != NULL)
        return 400;
    for (size_t i = 0; i < target.n; i++)
        if ((unsigned char)target.s[i] <= 0x20 || (unsigned char)target.s[i] >= 0x7f)
            return 400;
    if (!line_is(version, "HTTP/1.1") && !line_is(version, "HTTP/1.0")) {
        bool looks_like_http = version.n == 8 && memcmp(version.s, "HTTP/", 5) == 0 &&
                               version.s[5] >= '0' && version.s[5] <= '9' && version.s[6] == '.' &&
                               version.s[7] >= '0' && version.s[7] <= '9';
        if (!looks_like_http)
            return 400;
        *detail = "only HTTP/1.1 and HTTP/1.0 are spoken here";
        return 505;
    }
    if (!known_method(method)) {
        *detail = "unknown method (methods are upper case: GET, POST, PUT, PATCH, DELETE, HEAD)";
        return 501;
    }
    /* A target evhttp's URI parser refuses would get its HTML page (CONNECT's is its own). */
    if (!line_is(method, "CONNECT")) {
        char *copy = xmalloc(target.n + 1);
        memcpy(copy, target.s, target.n);
        copy[target.n] = '\0';
        struct evhttp_uri *uri = evhttp_uri_parse_with_flags(copy, EVHTTP_URI_NONCONFORMANT);
        free(copy);
        if (uri == NULL) {
            *detail = "the request target is not a path or URI";
            return 400;
        }
        evhttp_uri_free(uri);
    }
    /* evhttp reads no body for these, whatever the headers say. */
    *bodyless = line_is(method, "HEAD") || line_is(method, "TRACE");
    *head = line_is(method, "HEAD");
    return 0;
}

/* The value of a header line, leading and trailing blanks removed (as evhttp does). */
static struct line header_value(struct line l, size_t colon)
{
    struct line v = {l.s + colon + 1, l.n - colon - 1};
    while (v.n && (v.s[0] == ' ' || v.s[0] == '\t')) {
        v.s++;
        v.n--;
    }
    while (v.n && (v.s[v.n - 1] == ' ' || v.s[v.n - 1] == '\t'))
        v.n--;
    return v;
}

/*
 * "name: value", no folding; returns the colon's offset or 0. Other control
 * characters in a value pass, as evhttp takes them: the pipeline refuses them
 * where a header matters, naming it (Idempotency-Key).
 */
static size_t check_header_line(struct line l)
{
    size_t i = 0;
    while (i < l.n && is_tchar((unsigned char)l.s[i]))
        i++;
    if (i == 0 || i == l.n || l.s[i] != ':')
        return 0;
    return i;
}

static bool name_is(struct line l, size_t colon, const char *name)
{
    return colon == strlen(name) && strncasecmp(l.s, name, colon) == 0;
}

/* Checks a whole head; sets the body's framing. 0 when good, else the status to refuse with. */
static int check_head(struct http_framing *f, const char *head, size_t len, const char **detail)
{
    struct line content_length = {NULL, 0};
    int transfer_encodings = 0;
    bool bodyless = false, chunked = false;
    int lines = 0;
    const char *p = head, *end = head + len;
    int status = 0;

    f->head_method = false;

    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        struct line l = {p, (size_t)(lf - p)};
        p = lf + 1;
        if (l.n && l.s[l.n - 1] == '\r')
            l.n--;
        if (l.n == 0)
            break; /* the empty line that ends the head */
        if (memchr(l.s, '\r', l.n) != NULL || memchr(l.s, '\0', l.n) != NULL) {
            *detail = "a bare CR or a NUL in the request head";
            return 400;
        }
        if (lines++ == 0) {
            if ((status = check_request_line(l, detail, &bodyless, &f->head_method)) != 0)
                return status;
            continue;
        }
        if (lines > HTTP_MAX_HEADERS + 1) {
            *detail = "more than 100 header fields";
            return 431;
        }
        size_t colon = check_header_line(l);
        if (colon == 0) {
            *detail = "a header line must be Name: value (no folding)";
            return 400;
        }
        struct line v = header_value(l, colon);
        if (name_is(l, colon, "Content-Length")) {
            if (content_length.s != NULL &&
                (content_length.n != v.n || memcmp(content_length.s, v.s, v.n) != 0)) {
                *detail = "two different Content-Length headers";
                return 400;
            }
            content_length = v;
        } else if (name_is(l, colon, "Transfer-Encoding")) {
            transfer_encodings++;
            chunked = v.n == 7 && strncasecmp(v.s, "chunked", 7) == 0;
            if (!chunked) {
                *detail = "the only transfer coding understood is chunked";
                return 501;
            }
        } else if (name_is(l, colon, "Expect")) {
            if (!(v.n == 12 && strncasecmp(v.s, "100-continue", 12) == 0)) {
                *detail = "the only expectation understood is 100-continue";
                return 417;
            }
        }
    }

    f->body_left = 0;
    f->body_total = 0;
    if (transfer_encodings > 1 || (transfer_encodings && content_length.s != NULL)) {
        *detail = "Transfer-Encoding with Content-Length, or twice";
        return 400;
    }
    if (content_length.s != NULL) {
        int64_t n = 0;
        if (content_length.n == 0 || content_length.n > 18) {
            *detail = "Content-Length must be a number of bytes";
            return content_length.n > 18 ? 413 : 400;
        }
        for (size_t i = 0; i < content_length.n; i++) {
            if (content_length.s[i] < '0' || content_length.s[i] > '9') {
                *detail = "Content-Length must be a number of bytes";
                return 400;
            }
            n = n * 10 + (content_length.s[i] - '0');
        }
        if (n > f->max_body_bytes) {
            *detail = "the body is too large";
            return 413;
        }
        f->body_left = n;
    }
    if (bodyless && (chunked || f->body_left > 0)) {
        *detail = "a HEAD or TRACE request has no body";
        return 400;
    }
    f->state = chunked ? HF_CHUNK_SIZE : f->body_left > 0 ? HF_BODY : HF_HEAD;
    return 0;
}

/*
 * HF_HEAD: skips empty lines before a request line (RFC 9112 2.2), then holds
 * the head back until its empty line; head_scanned keeps a trickled head
 * from being searched from its start on every byte.
 */
static void scan_head(struct http_framing *f, const char *data, size_t len, struct http_scan *out)
{
    size_t s = 0;
    if (f->head_scanned == 0) {
        while (s < len &&
               (data[s] == '\n' || (data[s] == '\r' && s + 1 < len && data[s + 1] == '\n')))
            s += data[s] == '\n' ? 1 : 2;
        out->skip = s;
        if (s == len || (s + 1 == len && data[s] == '\r'))
            return; /* nothing but empty lines so far */
    }
    f->head_started = true;
    data += s;
    len -= s;
    size_t from = f->head_scanned > 2 ? f->head_scanned - 2 : 0;
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    for (size_t i = from; i < limit; i++) {
        if (data[i] != '\n')
            continue;
        /* The head ends with an empty line: "\n\n" or "\n\r\n". */
        bool empty_next = (i + 1 < len && data[i + 1] == '\n') ||
                          (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n');
        if (!empty_next)
            continue;
        size_t head_len = i + 1 + (data[i + 1] == '\n' ? 1 : 2);
        if (head_len > HTTP_MAX_HEAD_BYTES) {
            refuse(f, out, 431, "the request head is larger than 32 KiB");
            return;
        }
        const char *detail = NULL;
        int status = check_head(f, data, head_len, &detail);
        if (status != 0) {
            refuse(f, out, status, detail);
            return;
        }
        f->head_scanned = 0;
        f->head_started = false;
        out->pass = head_len;
        out->event = f->state == HF_HEAD ? HS_REQUEST_DONE : HS_HEAD_DONE;
        return;
    }
    if (len >= HTTP_MAX_HEAD_BYTES) {
        refuse(f, out, 431, "the request head is larger than 32 KiB");
        return;
    }
    f->head_scanned = len;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* HF_CHUNK_SIZE: "1a2b" and optional spaces (evhttp takes no chunk extensions). */
static void scan_chunk_size(struct http_framing *f, const char *data, size_t len,
                            struct http_scan *out)
{
    size_t limit = len < MAX_CHUNK_LINE ? len : MAX_CHUNK_LINE;
    const char *lf = memchr(data, '\n', limit);
    if (lf == NULL) {
        if (len >= MAX_CHUNK_LINE)
            refuse(f, out, 400, "a chunk-size line is too long");
        return;
    }
    size_t n = (size_t)(lf - data), digits = 0;
    int64_t size = 0;
    if (n && data[n - 1] == '\r')
        n--;
    while (digits < n && hex_value(data[digits]) >= 0) {
        if (digits == 15) {
            refuse(f, out, 413, "a chunk is too large");
            return;
        }
        size = size * 16 + hex_value(data[digits]);
        digits++;
    }
    for (size_t i = digits; i < n; i++) {
        if (data[i] != ' ') {
            refuse(f, out, 400, "a chunk size must be hexadecimal digits (no extensions)");
            return;
        }
    }
    if (digits == 0) {
        refuse(f, out, 400, "a chunk size must be hexadecimal digits (no extensions)");
        return;
    }
    if (size > f->max_body_bytes - f->body_total) {
        refuse(f, out, 413, "the body is too large");
        return;
    }
    f->body_total += size;
    f->chunk_left = size;
    f->state = size == 0 ? HF_TRAILER : HF_CHUNK_DATA;
    f->trailer_lines = 0;
    out->pass = (size_t)(lf - data) + 1;
}

/* HF_TRAILER: header lines until an empty one. */
static void scan_trailer(struct http_framing *f, const char *data, size_t len,
                         struct http_scan *out)
{
    size_t limit = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    const char *lf = memchr(data, '\n', limit);
    if (lf == NULL) {
        if (len >= HTTP_MAX_HEAD_BYTES)
            refuse(f, out, 431, "a trailer line is larger than 32 KiB");
        return;
    }
    struct line l = {data, (size_t)(lf - data)};
    if (l.n && l.s[l.n - 1] == '\r')
        l.n--;
    out->pass = (size_t)(lf - data) + 1;
    if (l.n == 0) {
        f->state = HF_HEAD;
        out->event = HS_REQUEST_DONE;
        return;
    }
    if (++f->trailer_lines > HTTP_MAX_HEADERS || memchr(l.s, '\r', l.n) != NULL ||
        memchr(l.s, '\0', l.n) != NULL || check_header_line(l) == 0)
        refuse(f, out, 400, "a trailer line must be Name: value");
}

void http_framing_scan(struct http_framing *f, const char *data, size_t len, struct http_scan *out)
{
    memset(out, 0, sizeof(*out));
    out->event = HS_NEED_MORE;
    if (f->state == HF_REFUSED) {
        refuse(f, out, 400, "the connection is closing");
        return;
    }
    if (len == 0)
        return;
    switch (f->state) {
    case HF_HEAD:
        scan_head(f, data, len, out);
        return;
    case HF_BODY:
        out->pass = len < (uint64_t)f->body_left ? len : (size_t)f->body_left;
        f->body_left -= (int64_t)out->pass;
        if (f->body_left == 0) {
            f->state = HF_HEAD;
            out->event = HS_REQUEST_DONE;
        }
        return;
    case HF_CHUNK_SIZE:
        scan_chunk_size(f, data, len, out);
        return;
    case HF_CHUNK_DATA:
        out->pass = len < (uint64_t)f->chunk_left ? len : (size_t)f->chunk_left;
        f->chunk_left -= (int64_t)out->pass;
        if (f->chunk_left == 0)
            f->state = HF_CHUNK_END;
        return;
    case HF_CHUNK_END:
        if (data[0] == '\n') {
            out->pass = 1;
        } else if (data[0] == '\r' && len < 2) {
            return;
        } else if (data[0] == '\r' && data[1] == '\n') {
            out->pass = 2;
        } else {
            refuse(f, out, 400, "a chunk's data must end with CRLF");
            return;
        }
        f->state = HF_CHUNK_SIZE;
        return;
    case HF_TRAILER:
        scan_trailer(f, data, len, out);
        return;
    case HF_REFUSED:
        return;
    }
}
