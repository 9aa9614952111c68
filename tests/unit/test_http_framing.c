/*
 * Request framing before evhttp: what is passed on, what completes a
 * request, and the status each malformed request is refused with (the
 * requests that evhttp answered with its own HTML page, HTTP/0.9).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/http_framing.h"

/* Feeds text at once; returns the refusal's status, or 0 with *requests complete ones. */
static int feed(const char *text, size_t len, int *requests, size_t *taken)
{
    struct http_framing f;
    size_t pos = 0;
    http_framing_init(&f, 1000);
    *requests = 0;
    for (;;) {
        struct http_scan s;
        http_framing_scan(&f, text + pos, len - pos, &s);
        if (s.event == HS_REFUSED) {
            assert_non_null(s.detail);
            *taken = pos;
            return s.status;
        }
        pos += s.skip + s.pass;
        if (s.event == HS_REQUEST_DONE)
            (*requests)++;
        if (s.event == HS_NEED_MORE && s.skip == 0 && s.pass == 0)
            break;
    }
    *taken = pos;
    return 0;
}

static void refused(const char *text, int status)
{
    int requests;
    size_t taken;
    int got = feed(text, strlen(text), &requests, &taken);
    if (got != status)
        fail_msg("%s: refused with %d, expected %d", text, got, status);
}

static void accepted(const char *text, int requests_expected)
{
    int requests;
    size_t taken;
    int got = feed(text, strlen(text), &requests, &taken);
    if (got != 0 || requests != requests_expected || taken != strlen(text))
        fail_msg("%s: status %d, %d requests, %zu of %zu bytes", text, got, requests, taken,
                 strlen(text));
}

static void test_well_formed_requests_pass(void **state)
{
    (void)state;
    accepted("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    accepted("GET / HTTP/1.0\n\n", 1);
    accepted("\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1); /* empty lines before a request */
    accepted("POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n", 2);
    accepted("PUT /v1/x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
             "5\r\nhello\r\na \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
             1);
    accepted("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", 1);
    accepted("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", 1);
    accepted("GET / HTTP/1.1\r\nX-Empty:\r\nX-Utf8: \xe5\xad\xb5\r\n\r\n", 1);
    accepted("GET / HTTP/1.1\r\nX-Control: a\x01\tb\r\n\r\n", 1); /* the pipeline judges */
    accepted("HEAD /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 1);
}

static void test_bad_request_lines(void **state)
{
    (void)state;
    refused("GET /\r\n\r\n", 400); /* HTTP/0.9 */
    refused("GET / HTTP/0.9\r\n\r\n", 505);
    refused("GET / HTTP/2.0\r\n\r\n", 505);
    refused("GET / HTTP/1.7\r\n\r\n", 505);
    refused("GET / HTTP/1.x\r\n\r\n", 400);
    refused("GET / HTTP/1.1 \r\n\r\n", 400);
    refused("GET  / HTTP/1.1\r\n\r\n", 400);
    refused("GET /a b HTTP/1.1\r\n\r\n", 400);
    refused("GET\r\n\r\n", 400);
    refused("get / HTTP/1.1\r\n\r\n", 501);
    refused("FOO / HTTP/1.1\r\n\r\n", 501);
    refused("G(T / HTTP/1.1\r\n\r\n", 400);
    refused("GET /\x01 HTTP/1.1\r\n\r\n", 400);
    refused("GET :/h HTTP/1.1\r\n\r\n", 400); /* evhttp's URI parser refuses it */
}

static void test_bad_headers(void **state)
{
    (void)state;
    refused("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413);
    refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nExpect: something\r\n\r\n", 417);
    refused("HEAD / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody", 400);
}

static void test_bad_chunks(void **state)
{
    (void)state;
    const char *head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    char text[256];
    static const struct {
        const char *body;
        int status;
    } cases[] = {
        {"zz\r\n", 400},
        {"5;ext=1\r\nhello\r\n0\r\n\r\n", 400},
        {"-5\r\n", 400},
        {"\r\n", 400},
        {"5\r\nhelloX", 400},
        {"3e9\r\n", 413},
        {"fffffffffffffffff\r\n", 413},
        {"1\r\nx\r\n0\r\nbad trailer\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", head, cases[i].body);
        refused(text, cases[i].status);
    }
}

static void test_head_size_limit(void **state)
{
    static char text[HTTP_MAX_HEAD_BYTES + 200];
    (void)state;
    /* A head of exactly the limit passes; one byte more is 431, ended or not. */
    size_t fill = HTTP_MAX_HEAD_BYTES - strlen("GET / HTTP/1.1\r\nX: \r\n\r\n");
    snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nX: %*s\r\n\r\n", (int)fill, "");
    memset(text + 19, 'a', fill);
    accepted(text, 1);
    snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nX: %*s\r\n\r\n", (int)fill + 1, "");
    memset(text + 19, 'a', fill + 1);
    refused(text, 431);
    text[HTTP_MAX_HEAD_BYTES + 10] = '\0';
    memset(text + 19, 'a', HTTP_MAX_HEAD_BYTES);
    refused(text, 431);
    /* 101 header fields */
    size_t n = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "X%d: 1\r\n", i);
    snprintf(text + n, sizeof(text) - n, "\r\n");
    refused(text, 431);
}

/* A head trickled byte by byte is held back whole, then passed at once. */
static void test_trickled_head_is_held_back(void **state)
{
    const char *text = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = strlen(text), pos = 0;
    struct http_framing f;
    (void)state;
    http_framing_init(&f, 1000);
    for (size_t have = 1; have <= len; have++) {
        struct http_scan s;
        http_framing_scan(&f, text + pos, have - pos, &s);
        if (have < len) {
            assert_true(f.head_started);
            assert_int_equal(s.event, HS_NEED_MORE);
            assert_int_equal(s.pass, 0);
        } else {
            assert_int_equal(s.event, HS_REQUEST_DONE);
            assert_int_equal(s.pass, len);
            assert_false(f.head_started);
        }
        pos += s.skip + s.pass;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_requests_pass),
        cmocka_unit_test(test_bad_request_lines),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_chunks),
        cmocka_unit_test(test_head_size_limit),
        cmocka_unit_test(test_trickled_head_is_held_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
