/*
 * Query strings: the first byte picks a route that takes query parameters,
 * the rest is its query string, decoded by evhttp as the daemon decodes it
 * and checked against the route's table as the pipeline checks it. A query
 * that passes gives every declared parameter a value of its type (limit an
 * integer 1..500, dates and months that parse, null when left out) and no
 * other; every error names a parameter.
 */
#include <stdbool.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "fuzz.h"
#include "incubatord/routes.h"
#include "incubatord/validate.h"

static void check_value(const struct query_param *q, json_t *value)
{
    day_t d;
    int y, m;
    FUZZ_ASSERT(value != NULL);
    if (json_is_null(value)) {
        FUZZ_ASSERT(!q->required && q->type != Q_LIMIT);
        return;
    }
    switch (q->type) {
    case Q_LIMIT:
        FUZZ_ASSERT(json_is_integer(value) && json_integer_value(value) >= 1 &&
                    json_integer_value(value) <= 500);
        break;
    case Q_YEAR:
        FUZZ_ASSERT(json_is_integer(value) && json_integer_value(value) >= DATE_MIN_YEAR &&
                    json_integer_value(value) <= DATE_MAX_YEAR);
        break;
    case Q_DATE:
        FUZZ_ASSERT(json_is_string(value) && date_parse(json_string_value(value), &d));
        break;
    case Q_PERIOD:
        FUZZ_ASSERT(json_is_string(value) && period_parse(json_string_value(value), &y, &m));
        break;
    case Q_ENUM: {
        bool listed = false;
        FUZZ_ASSERT(json_is_string(value));
        for (const char *const *e = q->values; *e; e++)
            listed |= strcmp(*e, json_string_value(value)) == 0;
        FUZZ_ASSERT(listed);
        break;
    }
    case Q_CURSOR:
    case Q_CODE:
        FUZZ_ASSERT(json_is_string(value) && json_string_length(value) > 0);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct route *with_query[64];
    size_t n = 0;
    struct evkeyvalq query;
    struct evkeyval *kv;
    struct vctx v;

    for (size_t i = 0; i < routes_count && n < ARRAY_LEN(with_query); i++)
        if (routes[i].query != NULL)
            with_query[n++] = &routes[i];
    if (size < 1 || n == 0)
        return 0;
    const struct query_param *table = with_query[data[0] % n]->query;
    char *text = fuzz_string(data + 1, size - 1);
    TAILQ_INIT(&query);
    if (evhttp_parse_query_str(text, &query) != 0) {
        evhttp_clear_headers(&query);
        free(text);
        return 0; /* a 400: malformed query string */
    }
    json_t *args = json_object();
    vctx_init(&v, date_from_ymd(2026, 11, 26));
    TAILQ_FOREACH(kv, &query, next)
    {
        validate_query_param(&v, table, kv->key, kv->value, args);
    }
    validate_query_finish(&v, table, args);
    if (vctx_ok(&v)) {
        size_t declared = 0;
        for (const struct query_param *q = table; q->name; q++, declared++)
            check_value(q, json_object_get(args, q->name));
        FUZZ_ASSERT(json_object_size(args) == declared);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(v.errors, i, e)
        {
            const char *field = json_string_value(json_object_get(e, "field"));
            FUZZ_ASSERT(field != NULL);
            FUZZ_ASSERT(json_string_value(json_object_get(e, "message")) != NULL);
        }
    }
    json_decref(args);
    vctx_free(&v);
    evhttp_clear_headers(&query);
    free(text);
    return 0;
}
