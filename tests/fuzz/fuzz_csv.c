/*
 * CSV request bodies (csv.c on libcsv), for every route that takes one: the
 * first byte picks the route, the rest is the body. A body that parses
 * without errors becomes {"<list>": [objects]} with one row number per
 * record, each row after the header; each record holds only the spec's
 * columns, as strings or null; the result then goes through the route's
 * field table as the pipeline does, and validation errors renamed to rows
 * still name something. A body that is no CSV says why.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/csv.h"
#include "incubatord/routes.h"
#include "incubatord/validate.h"

static bool spec_has(const struct csv_spec *spec, const char *key)
{
    for (const struct csv_column *c = spec->columns; c->field; c++)
        if (strcmp(c->field, key) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct route *with_csv[16];
    size_t n = 0;
    struct vctx v;
    struct csv_body b;
    char detail[300] = "";

    for (size_t i = 0; i < routes_count && n < ARRAY_LEN(with_csv); i++)
        if (routes[i].csv != NULL)
            with_csv[n++] = &routes[i];
    if (size < 1 || n == 0)
        return 0;
    const struct route *rt = with_csv[data[0] % n];
    const struct csv_spec *spec = rt->csv;

    vctx_init(&v, date_from_ymd(2026, 11, 26));
    memset(&b, 0, sizeof(b));
    if (!csv_parse_body(spec, (const char *)data + 1, size - 1, &v, &b, detail, sizeof(detail))) {
        FUZZ_ASSERT(detail[0] != '\0');
        csv_body_free(&b);
        vctx_free(&v);
        return 0;
    }
    if (vctx_ok(&v)) {
        json_t *items = json_object_get(b.body, spec->list);
        size_t i;
        json_t *record, *row;
        FUZZ_ASSERT(json_is_array(items) && json_is_array(b.rows));
        FUZZ_ASSERT(json_array_size(items) == json_array_size(b.rows));
        json_int_t last = 1;
        json_array_foreach(b.rows, i, row)
        {
            FUZZ_ASSERT(json_is_integer(row) && json_integer_value(row) > last);
            last = json_integer_value(row);
        }
        json_array_foreach(items, i, record)
        {
            const char *key;
            json_t *value;
            FUZZ_ASSERT(json_is_object(record));
            json_object_foreach(record, key, value)
            {
                FUZZ_ASSERT(spec_has(spec, key));
                FUZZ_ASSERT(json_is_string(value) || json_is_null(value));
            }
        }
        /* Then the route's field table, as for a JSON body. */
        json_t *out = validate_object(&v, "", b.body, rt->body, false);
        csv_rename_errors(spec, b.rows, v.errors);
        json_t *e;
        json_array_foreach(v.errors, i, e)
        {
            const char *field = json_string_value(json_object_get(e, "field"));
            FUZZ_ASSERT(field != NULL && field[0] != '\0');
        }
        json_decref(out);
    }
    csv_body_free(&b);
    vctx_free(&v);
    return 0;
}
