/*
 * The body validator with the routes' own field tables. An input is
 * "METHOD PATTERN\n" and a body ("PUT /v1/incubators/{code}/occupancy\n{...}");
 * when its first line names no route that takes a body, its first byte picks
 * one and the whole input is the body. The body is parsed as the daemon
 * parses it (duplicate keys refused, any JSON value), then validated and
 * given to the route's cross-field check, as the pipeline does.
 *
 * Properties: every error names a field and says something; a body without
 * errors is normalised into exactly what SQL expects of each field type
 * (money an integer 0..FEN_MAX, dates and periods that parse, areas and
 * ratios as decimal text, no key the table does not declare).
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/http.h"
#include "incubatord/routes.h"
#include "incubatord/server.h"
#include "incubatord/validate.h"

static void check_normal_form(json_t *out, const struct field *fields, bool patch);

static void check_value(json_t *value, const struct field *f)
{
    day_t d;
    int y, m;
    if (json_is_null(value))
        return; /* an optional field left out, or nullable */
    switch (f->type) {
    case FT_TEXT:
    case FT_ENUM:
    case FT_USCC:
    case FT_CODE:
    case FT_EXTERNAL_ID:
        FUZZ_ASSERT(json_is_string(value));
        break;
    case FT_URL: {
        const char *s = json_string_value(value);
        FUZZ_ASSERT(s != NULL && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0));
        break;
    }
    case FT_EMAIL:
        FUZZ_ASSERT(json_is_string(value) && strchr(json_string_value(value), '@') != NULL);
        break;
    case FT_BOOL:
        FUZZ_ASSERT(json_is_boolean(value));
        break;
    case FT_DATE:
        FUZZ_ASSERT(json_is_string(value) && date_parse(json_string_value(value), &d));
        break;
    case FT_PERIOD:
        FUZZ_ASSERT(json_is_string(value) && period_parse(json_string_value(value), &y, &m));
        break;
    case FT_AREA:
    case FT_AREA0:
    case FT_RATIO: {
        const char *s = json_string_value(value);
        FUZZ_ASSERT(s != NULL && s[0] != '\0');
        FUZZ_ASSERT(strspn(s, "-0123456789.") == strlen(s) && strchr(s, '.') != NULL);
        break;
    }
    case FT_FEN:
        FUZZ_ASSERT(json_is_integer(value));
        FUZZ_ASSERT(json_integer_value(value) >= 0 &&
                    json_integer_value(value) <= (f->max ? f->max : FEN_MAX));
        break;
    case FT_INT:
        FUZZ_ASSERT(json_is_integer(value));
        FUZZ_ASSERT(json_integer_value(value) >= f->min && json_integer_value(value) <= f->max);
        break;
    case FT_YEAR_MAP: {
        const char *key;
        json_t *amount;
        FUZZ_ASSERT(json_is_object(value));
        json_object_foreach(value, key, amount)
        {
            FUZZ_ASSERT(strlen(key) == 4 && strspn(key, "0123456789") == 4);
            FUZZ_ASSERT(json_is_integer(amount) && json_integer_value(amount) >= 0 &&
                        json_integer_value(amount) <= FEN_MAX);
        }
        break;
    }
    case FT_OBJECT:
        FUZZ_ASSERT(json_is_object(value));
        if (f->flags & F_ANY_KEYS) {
            const char *key;
            json_t *item;
            json_object_foreach(value, key, item) check_value(item, f->item);
        } else {
            check_normal_form(value, f->fields, false);
        }
        break;
    case FT_ARRAY: {
        size_t i;
        json_t *item;
        FUZZ_ASSERT(json_is_array(value));
        FUZZ_ASSERT(f->max == 0 || (int64_t)json_array_size(value) <= f->max);
        json_array_foreach(value, i, item) check_value(item, f->item);
        break;
    }
    }
}

static void check_normal_form(json_t *out, const struct field *fields, bool patch)
{
    const char *key;
    json_t *value;
    json_object_foreach(out, key, value)
    {
        const struct field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        FUZZ_ASSERT(f->name != NULL);
        FUZZ_ASSERT(!(f->flags & F_REQUIRED) || !json_is_null(value));
        check_value(value, f);
    }
    for (const struct field *f = fields; f->name && !patch; f++)
        FUZZ_ASSERT(json_object_get(out, f->name) != NULL);
}

/* Checks may read settings (approval reads [payouts] four_eyes): the defaults. */
static struct server *fuzz_server(void)
{
    static struct server srv;
    static bool made;
    if (!made) {
        config_defaults(&srv.cfg);
        made = true;
    }
    return &srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct route *with_body[64];
    size_t n = 0;
    json_error_t err;
    struct vctx v;
    struct req r;

    for (size_t i = 0; i < routes_count && n < ARRAY_LEN(with_body); i++)
        if (routes[i].body != NULL)
            with_body[n++] = &routes[i];
    if (size < 1 || n == 0)
        return 0;
    const struct route *rt = with_body[data[0] % n];
    const uint8_t *nl = memchr(data, '\n', size);
    for (size_t i = 0; nl != NULL && i < n; i++) {
        const char *method = route_method_name(with_body[i]->method);
        size_t ml = strlen(method), pl = strlen(with_body[i]->pattern);
        if ((size_t)(nl - data) == ml + 1 + pl && memcmp(data, method, ml) == 0 &&
            data[ml] == ' ' && memcmp(data + ml + 1, with_body[i]->pattern, pl) == 0) {
            rt = with_body[i];
            size -= (size_t)(nl + 1 - data);
            data = nl + 1;
            break;
        }
    }
    bool patch = (rt->flags & ROUTE_PATCH) != 0;
    json_t *body =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (body == NULL)
        return 0;

    vctx_init(&v, date_from_ymd(2026, 11, 26));
    json_t *out = validate_object(&v, "", body, rt->body, patch);
    FUZZ_ASSERT(json_is_object(out));
    /* The validator's own output is in normal form; a check may then add
     * arguments of its own (approval adds [payouts] four_eyes). */
    if (vctx_ok(&v))
        check_normal_form(out, rt->body, patch);
    if (vctx_ok(&v) && rt->check != NULL) {
        memset(&r, 0, sizeof(r));
        r.srv = fuzz_server();
        r.route = rt;
        r.body = body;
        rt->check(&r, &v, out);
    }
    if (vctx_ok(&v)) {
        char *text = json_dumps(out, JSON_COMPACT);
        FUZZ_ASSERT(text != NULL);
        free(text);
    } else {
        FUZZ_ASSERT(!json_is_object(body) || json_array_size(v.errors) > 0);
        size_t i;
        json_t *e;
        json_array_foreach(v.errors, i, e)
        {
            const char *field = json_string_value(json_object_get(e, "field"));
            const char *message = json_string_value(json_object_get(e, "message"));
            FUZZ_ASSERT(field != NULL && field[0] != '\0');
            FUZZ_ASSERT(message != NULL && message[0] != '\0');
        }
    }
    json_decref(out);
    vctx_free(&v);
    json_decref(body);
    return 0;
}
