/*
 * The router and its path parameters: the first byte picks a method, the
 * rest is the path. A route found has the method asked for, its pattern's
 * literal segments are the path's, and each parameter is a well-formed value
 * lying inside the path; a 405's Allow header lists only methods of routes
 * whose pattern matches.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/common.h"
#include "incubatord/http.h"
#include "incubatord/routes.h"

static const enum evhttp_cmd_type methods[] = {
    EVHTTP_REQ_GET,     EVHTTP_REQ_POST,  EVHTTP_REQ_HEAD,    EVHTTP_REQ_PUT,   EVHTTP_REQ_DELETE,
    EVHTTP_REQ_OPTIONS, EVHTTP_REQ_TRACE, EVHTTP_REQ_CONNECT, EVHTTP_REQ_PATCH,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum evhttp_cmd_type method = methods[data[0] % ARRAY_LEN(methods)];
    char *path = fuzz_string(data + 1, size - 1);
    size_t len = strlen(path);
    const struct route *rt = NULL;
    struct route_param params[HTTP_MAX_PARAMS];
    char allow[128];
    int n = -1;

    switch (route_match(method, path, &rt, params, HTTP_MAX_PARAMS, &n, allow, sizeof(allow))) {
    case ROUTE_FOUND:
        FUZZ_ASSERT(rt != NULL && rt >= routes && rt < routes + routes_count);
        FUZZ_ASSERT(rt->method == method);
        FUZZ_ASSERT(n >= 0 && n <= HTTP_MAX_PARAMS);
        for (int i = 0; i < n; i++) {
            FUZZ_ASSERT(params[i].value >= path && params[i].value + params[i].len <= path + len);
            FUZZ_ASSERT(route_param_valid(params[i].name, params[i].value, params[i].len));
            FUZZ_ASSERT(memchr(params[i].value, '/', params[i].len) == NULL);
            FUZZ_ASSERT(strstr(rt->pattern, params[i].name) != NULL);
        }
        break;
    case ROUTE_BAD_METHOD: {
        FUZZ_ASSERT(rt == NULL && allow[0] != '\0');
        /* "GET, PUT, HEAD": method names, none of them the one asked for (but HEAD). */
        for (char *name = strtok(allow, ", "); name; name = strtok(NULL, ", ")) {
            bool known = false;
            for (size_t i = 0; i < ARRAY_LEN(methods); i++)
                known |= strcmp(name, route_method_name(methods[i])) == 0;
            FUZZ_ASSERT(known);
            FUZZ_ASSERT(strcmp(name, route_method_name(method)) != 0 || method == EVHTTP_REQ_HEAD);
        }
        break;
    }
    case ROUTE_NOT_FOUND:
        FUZZ_ASSERT(rt == NULL && allow[0] == '\0');
        break;
    }
    free(path);
    return 0;
}
