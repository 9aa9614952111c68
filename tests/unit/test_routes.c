/*
 * The router: every pattern of the route table is matched (the table is
 * walked, so routes added later are covered too), parameters are validated
 * by name, a known path with another method is a 405 with the Allow list,
 * and nothing else matches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "incubatord/routes.h"

#define MAX_PARAMS 4

static const enum evhttp_cmd_type all_methods[] = {
    EVHTTP_REQ_GET,     EVHTTP_REQ_POST,  EVHTTP_REQ_HEAD,    EVHTTP_REQ_PUT,   EVHTTP_REQ_DELETE,
    EVHTTP_REQ_OPTIONS, EVHTTP_REQ_TRACE, EVHTTP_REQ_CONNECT, EVHTTP_REQ_PATCH,
};

/* A well-formed value of each parameter name, and some malformed ones. */
static const struct {
    const char *name;
    const char *good;
    const char *bad[8];
} samples[] = {
    {"code",
     "HRB-001",
     {"-HRB", ".x", "HRB 001", "HRB%2D001", "0123456789012345678901234567890XY", "HRB:001", "",
      NULL}},
    {"external_id", "T-0001:a.b_c", {"-T", ":T", "T 1", "T/1", "", NULL}},
    {"id", "7", {"0", "07", "-7", "7a", "1234567890123456789", "", NULL}},
    {"period", "2026-10", {"2026-13", "2026-00", "2026-1", "2026-10-01", "202610", "", NULL}},
    {"plan",
     "2026-2028",
     {"-2026", "2026 2028", "2026/2028", "0123456789012345678901234567890XY", "", NULL}},
};

static int sample_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        if (strlen(samples[i].name) == len && strncmp(samples[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/*
 * The pattern with every parameter replaced by its good sample, except the
 * nth parameter (if bad_index >= 0), replaced by samples[].bad[bad_index].
 * Returns the number of parameters, or -1 if that bad sample does not exist.
 */
static int make_path(const char *pattern, int nth, int bad_index, char *out, size_t len)
{
    const char *p = pattern;
    int n = 0;
    out[0] = '\0';
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            int s = sample_of(p + 1, (size_t)(close - p - 1));
            if (s < 0)
                fail_msg("pattern %s has a parameter the test does not know", pattern);
            const char *value = samples[s].good;
            if (n == nth) {
                value = samples[s].bad[bad_index];
                if (value == NULL)
                    return -1;
            }
            strncat(out, value, len - strlen(out) - 1);
            n++;
            p = close + 1;
        } else {
            size_t l = strlen(out);
            if (l + 1 < len) {
                out[l] = *p;
                out[l + 1] = '\0';
            }
            p++;
        }
    }
    return n;
}

static enum route_match_result match(enum evhttp_cmd_type method, const char *path,
                                     const struct route **out, struct route_param *params,
                                     int *nparams, char *allow, size_t allowlen)
{
    return route_match(method, path, out, params, MAX_PARAMS, nparams, allow, allowlen);
}

static void test_every_route_matches_itself(void **state)
{
    (void)state;
    assert_true(routes_count >= 11);
    for (size_t i = 0; i < routes_count; i++) {
        char path[256], allow[128];
        const struct route *rt = NULL;
        struct route_param params[MAX_PARAMS];
        int nparams = -1;
        int n = make_path(routes[i].pattern, -1, 0, path, sizeof(path));
        enum route_match_result res =
            match(routes[i].method, path, &rt, params, &nparams, allow, sizeof(allow));
        if (res != ROUTE_FOUND || rt != &routes[i])
            fail_msg("%s %s (as %s) did not match its own route",
                     route_method_name(routes[i].method), routes[i].pattern, path);
        assert_int_equal(nparams, n);
        /* Each parameter is found by its name, with the value from the path. */
        for (int k = 0; k < nparams; k++) {
            char brace[64];
            int s = sample_of(params[k].name, strlen(params[k].name));
            assert_true(s >= 0);
            snprintf(brace, sizeof(brace), "{%s}", params[k].name);
            assert_non_null(strstr(routes[i].pattern, brace));
            assert_int_equal(params[k].len, strlen(samples[s].good));
            assert_memory_equal(params[k].value, samples[s].good, params[k].len);
            /* The value points into the given path. */
            assert_true(params[k].value >= path && params[k].value < path + strlen(path));
        }
    }
}

static void test_known_routes(void **state)
{
    (void)state;
    static const struct {
        enum evhttp_cmd_type method;
        const char *path;
        const char *pattern;
        enum route_access access;
    } known[] = {
        {EVHTTP_REQ_GET, "/healthz", "/healthz", ACCESS_PUBLIC},
        {EVHTTP_REQ_GET, "/readyz", "/readyz", ACCESS_PUBLIC},
        {EVHTTP_REQ_GET, "/metrics", "/metrics", ACCESS_PUBLIC},
        {EVHTTP_REQ_POST, "/v1/incubators", "/v1/incubators", ACCESS_ADMIN},
        {EVHTTP_REQ_GET, "/v1/incubators", "/v1/incubators", ACCESS_ADMIN},
        {EVHTTP_REQ_GET, "/v1/incubators/HRB-001", "/v1/incubators/{code}", ACCESS_INCUBATOR},
        {EVHTTP_REQ_PATCH, "/v1/incubators/HRB-001", "/v1/incubators/{code}", ACCESS_ADMIN},
        {EVHTTP_REQ_POST, "/v1/incubators/a/tokens", "/v1/incubators/{code}/tokens", ACCESS_ADMIN},
        {EVHTTP_REQ_GET, "/v1/incubators/a/tokens", "/v1/incubators/{code}/tokens", ACCESS_ADMIN},
        {EVHTTP_REQ_DELETE, "/v1/tokens/42", "/v1/tokens/{id}", ACCESS_ADMIN},
        {EVHTTP_REQ_GET, "/v1/audit", "/v1/audit", ACCESS_ADMIN},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct route *rt = NULL;
        struct route_param params[MAX_PARAMS];
        int nparams;
        char allow[128];
        assert_int_equal(
            match(known[i].method, known[i].path, &rt, params, &nparams, allow, sizeof(allow)),
            ROUTE_FOUND);
        assert_string_equal(rt->pattern, known[i].pattern);
        assert_int_equal(rt->method, known[i].method);
        assert_int_equal(rt->access, known[i].access);
        /* Every route is served by something. */
        assert_true(rt->handler != NULL || rt->fn != NULL);
    }
}

static void test_bad_parameters_do_not_match(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; i < routes_count; i++) {
        for (int nth = 0; nth < MAX_PARAMS; nth++) {
            for (int b = 0; b < 8; b++) {
                char path[256], allow[128];
                const struct route *rt = NULL;
                struct route_param params[MAX_PARAMS];
                int nparams;
                if (make_path(routes[i].pattern, nth, b, path, sizeof(path)) <= nth)
                    break;
                enum route_match_result res =
                    match(routes[i].method, path, &rt, params, &nparams, allow, sizeof(allow));
                if (res == ROUTE_FOUND && rt == &routes[i])
                    fail_msg("%s matched %s", path, routes[i].pattern);
                checked++;
            }
        }
    }
    assert_true(checked > 20);

    /* Examples, spelled out. */
    const struct route *rt;
    struct route_param params[MAX_PARAMS];
    int nparams;
    char allow[128];
    assert_int_equal(
        match(EVHTTP_REQ_GET, "/v1/incubators/-bad", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_NOT_FOUND);
    assert_int_equal(
        match(EVHTTP_REQ_DELETE, "/v1/tokens/abc", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_NOT_FOUND);
    assert_int_equal(
        match(EVHTTP_REQ_DELETE, "/v1/tokens/0", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_NOT_FOUND);
}

/* The methods the table has for this path, in table order, then HEAD after a GET. */
static void expected_allow(const char *path, char *out, size_t len)
{
    bool get = false;
    out[0] = '\0';
    for (size_t i = 0; i < routes_count; i++) {
        char p[256];
        make_path(routes[i].pattern, -1, 0, p, sizeof(p));
        if (strcmp(p, path) != 0)
            continue;
        if (out[0])
            strncat(out, ", ", len - strlen(out) - 1);
        strncat(out, route_method_name(routes[i].method), len - strlen(out) - 1);
        get |= routes[i].method == EVHTTP_REQ_GET;
    }
    if (get)
        strncat(out, ", HEAD", len - strlen(out) - 1);
}

static void test_405_with_allow(void **state)
{
    (void)state;
    size_t checked = 0;
    for (size_t i = 0; i < routes_count; i++) {
        char path[256], want[128];
        make_path(routes[i].pattern, -1, 0, path, sizeof(path));
        expected_allow(path, want, sizeof(want));
        for (size_t m = 0; m < sizeof(all_methods) / sizeof(all_methods[0]); m++) {
            char allow[128];
            const struct route *rt = NULL;
            struct route_param params[MAX_PARAMS];
            int nparams;
            enum route_match_result res =
                match(all_methods[m], path, &rt, params, &nparams, allow, sizeof(allow));
            if (res == ROUTE_FOUND) {
                assert_int_equal(rt->method, all_methods[m]);
                continue;
            }
            /* HEAD is never in the table: http.c serves it as GET. */
            assert_int_equal(res, ROUTE_BAD_METHOD);
            assert_null(rt);
            assert_string_equal(allow, want);
            checked++;
        }
    }
    assert_true(checked > 50);

    /* Spelled out for two paths. */
    char allow[128];
    const struct route *rt;
    struct route_param params[MAX_PARAMS];
    int nparams;
    assert_int_equal(match(EVHTTP_REQ_DELETE, "/v1/incubators/HRB-001", &rt, params, &nparams,
                           allow, sizeof(allow)),
                     ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, PATCH, HEAD");
    assert_int_equal(
        match(EVHTTP_REQ_GET, "/v1/tokens/7", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_BAD_METHOD);
    assert_string_equal(allow, "DELETE");
    assert_int_equal(
        match(EVHTTP_REQ_PUT, "/v1/incubators", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_BAD_METHOD);
    assert_string_equal(allow, "POST, GET, HEAD");
}

static void test_head_is_not_routed(void **state)
{
    (void)state;
    char allow[128];
    const struct route *rt;
    struct route_param params[MAX_PARAMS];
    int nparams;
    /* The router knows no HEAD route; http.c asks for GET instead. */
    for (size_t i = 0; i < routes_count; i++)
        assert_int_not_equal(routes[i].method, EVHTTP_REQ_HEAD);
    assert_int_equal(
        match(EVHTTP_REQ_HEAD, "/healthz", &rt, params, &nparams, allow, sizeof(allow)),
        ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD");
}

static void test_paths_that_match_nothing(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/",
        "",
        "/v1",
        "/v1/",
        "/healthz/",
        "/healthz/x",
        "//healthz",
        "/HEALTHZ",
        "/v1/incubators/",
        "/v1/incubators//tokens",
        "/v1/incubators/HRB-001/",
        "/v1/incubators/HRB-001/tokens/",
        "/v1/incubators/HRB-001/nope",
        "/v1/tokens",
        "/v1/tokens/",
        "/v1/tokens/7/x",
        "/v1/audit/",
        "/v2/incubators",
        "/v1//incubators",
        "v1/incubators",
        "/v1/incubators/HRB-001/tokens/7",
        "/v1/{code}",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        for (size_t m = 0; m < sizeof(all_methods) / sizeof(all_methods[0]); m++) {
            char allow[128] = "junk";
            const struct route *rt = &routes[0];
            struct route_param params[MAX_PARAMS];
            int nparams = 9;
            if (match(all_methods[m], paths[i], &rt, params, &nparams, allow, sizeof(allow)) !=
                ROUTE_NOT_FOUND)
                fail_msg("%s %s matched a route", route_method_name(all_methods[m]), paths[i]);
            assert_null(rt);
            assert_int_equal(nparams, 0);
            assert_string_equal(allow, "");
        }
    }
}

static void test_trailing_slash_of_every_route(void **state)
{
    (void)state;
    for (size_t i = 0; i < routes_count; i++) {
        char path[256], allow[128];
        const struct route *rt;
        struct route_param params[MAX_PARAMS];
        int nparams;
        make_path(routes[i].pattern, -1, 0, path, sizeof(path));
        strcat(path, "/");
        assert_int_equal(match(routes[i].method, path, &rt, params, &nparams, allow, sizeof(allow)),
                         ROUTE_NOT_FOUND);
    }
}

static void test_param_formats(void **state)
{
    (void)state;
    /* code: ^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$ */
    assert_true(route_param_valid("code", "a", 1));
    assert_true(route_param_valid("code", "HRB-001", 7));
    assert_true(route_param_valid("code", "0123456789012345678901234567890X", 32));
    assert_false(route_param_valid("code", "0123456789012345678901234567890XY", 33));
    assert_false(route_param_valid("code", "a:b", 3));
    assert_false(route_param_valid("code", "", 0));
    /* Only len characters are looked at. */
    assert_true(route_param_valid("code", "HRB-001/tokens", 7));
    /* external_id: ^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$ */
    assert_true(route_param_valid("external_id", "T:1", 3));
    char long_id[66];
    memset(long_id, 'a', sizeof(long_id));
    assert_true(route_param_valid("external_id", long_id, 64));
    assert_false(route_param_valid("external_id", long_id, 65));
    assert_false(route_param_valid("external_id", ":T", 2));
    /* id: a positive integer without leading zeros, at most 18 digits */
    assert_true(route_param_valid("id", "1", 1));
    assert_true(route_param_valid("id", "999999999999999999", 18));
    assert_false(route_param_valid("id", "9999999999999999999", 19));
    assert_false(route_param_valid("id", "0", 1));
    assert_false(route_param_valid("id", "+1", 2));
    /* period: YYYY-MM */
    assert_true(route_param_valid("period", "2026-12", 7));
    assert_false(route_param_valid("period", "2026-12", 6));
    assert_false(route_param_valid("period", "1899-12", 7));
    /* plan: the form of a code */
    assert_true(route_param_valid("plan", "2015-2017", 9));
    assert_false(route_param_valid("plan", "_2015", 5));
    /* A name the router does not know is never valid. */
    assert_false(route_param_valid("name", "x", 1));
}

static void test_too_few_param_slots(void **state)
{
    (void)state;
    char allow[128];
    const struct route *rt;
    struct route_param params[1];
    int nparams;
    /* With no room for the parameter, the route cannot be matched (never overrun). */
    assert_int_equal(route_match(EVHTTP_REQ_GET, "/v1/incubators/HRB-001", &rt, params, 0, &nparams,
                                 allow, sizeof(allow)),
                     ROUTE_NOT_FOUND);
    assert_int_equal(route_match(EVHTTP_REQ_GET, "/v1/incubators/HRB-001", &rt, params, 1, &nparams,
                                 allow, sizeof(allow)),
                     ROUTE_FOUND);
    assert_int_equal(nparams, 1);
}

static void test_method_names(void **state)
{
    (void)state;
    static const char *const names[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
                                        "OPTIONS", "TRACE", "CONNECT", "PATCH"};
    for (size_t m = 0; m < sizeof(all_methods) / sizeof(all_methods[0]); m++)
        assert_string_equal(route_method_name(all_methods[m]), names[m]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_matches_itself),
        cmocka_unit_test(test_known_routes),
        cmocka_unit_test(test_bad_parameters_do_not_match),
        cmocka_unit_test(test_405_with_allow),
        cmocka_unit_test(test_head_is_not_routed),
        cmocka_unit_test(test_paths_that_match_nothing),
        cmocka_unit_test(test_trailing_slash_of_every_route),
        cmocka_unit_test(test_param_formats),
        cmocka_unit_test(test_too_few_param_slots),
        cmocka_unit_test(test_method_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
