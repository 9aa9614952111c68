/*
 * CSV bodies (csv.c on libcsv) with the bulk tenant sync's columns: any bytes.
 *
 * Properties: a body that parses is {"tenants": [...]} with one row number
 * per record, increasing from 2; each record holds only the spec's fields,
 * each null or a non-empty string (a date column's value written YYYY-MM-DD
 * when it was YYYY/M/D); every error is named "row N..."; a refused body
 * says why. Renaming validation errors turns exactly the paths of existing
 * records into rows.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/api.h"
#include "incubatord/csv.h"

static const struct csv_column *column(const char *field)
{
    for (const struct csv_column *c = api_tenants_sync_csv.columns; c->field; c++)
        if (strcmp(c->field, field) == 0)
            return c;
    return NULL;
}

/* ^[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}$: what csv.c writes out as YYYY-MM-DD. */
static bool slashed_date(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n != 4 || s[4] != '/')
        return false;
    s += 5;
    n = strspn(s, "0123456789");
    if (n < 1 || n > 2 || s[n] != '/')
        return false;
    s += n + 1;
    n = strspn(s, "0123456789");
    return n >= 1 && n <= 2 && s[n] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vctx v;
    struct csv_body b;
    char detail[300];
    size_t i;
    json_t *e;

    vctx_init(&v, 0);
    if (!csv_parse_body(&api_tenants_sync_csv, (const char *)data, size, &v, &b, detail,
                        sizeof(detail))) {
        FUZZ_ASSERT(detail[0] != '\0');
        FUZZ_ASSERT(b.body == NULL && b.rows == NULL);
        vctx_free(&v);
        return 0;
    }
    json_t *items = json_object_get(b.body, "tenants");
    FUZZ_ASSERT(json_is_array(items) && json_object_size(b.body) == 1);
    FUZZ_ASSERT(json_array_size(items) == json_array_size(b.rows));
    json_int_t last = 1;
    json_array_foreach(items, i, e)
    {
        const char *key;
        json_t *value;
        json_int_t row = json_integer_value(json_array_get(b.rows, i));
        FUZZ_ASSERT(row > last);
        last = row;
        FUZZ_ASSERT(json_is_object(e));
        json_object_foreach(e, key, value)
        {
            const struct csv_column *c = column(key);
            FUZZ_ASSERT(c != NULL);
            FUZZ_ASSERT(json_is_null(value) ||
                        (json_is_string(value) && json_string_length(value) > 0));
            if (c->date && json_is_string(value))
                FUZZ_ASSERT(!slashed_date(json_string_value(value)));
        }
    }
    json_array_foreach(v.errors, i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        FUZZ_ASSERT(field != NULL && strncmp(field, "row ", 4) == 0);
    }

    /* Paths of existing records become rows; others stay as they are. */
    size_t n = json_array_size(items);
    json_t *errors = json_pack("[{s:s},{s:s}]", "field", "tenants[0].name", "field", "tenants");
    char path[64];
    snprintf(path, sizeof(path), "tenants[%zu].name", n);
    json_array_append_new(errors, json_pack("{s:s}", "field", path));
    csv_rename_errors(&api_tenants_sync_csv, b.rows, errors);
    const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
    FUZZ_ASSERT((n > 0) == (strncmp(first, "row ", 4) == 0));
    FUZZ_ASSERT(strcmp(json_string_value(json_object_get(json_array_get(errors, 1), "field")),
                       "rows") == 0);
    FUZZ_ASSERT(strcmp(json_string_value(json_object_get(json_array_get(errors, 2), "field")),
                       path) == 0);
    json_decref(errors);
    csv_body_free(&b);
    vctx_free(&v);
    return 0;
}
