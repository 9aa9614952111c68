/*
 * Occupancy snapshots and the space share: the snapshot body and its
 * duplicate check; the history and the share itself are SQL's
 * (schema/functions/31_occupancy.sql).
 */
#include <stdlib.h>
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/http.h"

/* More tenants than any incubator has; the body limit usually binds first. */
#define SNAPSHOT_MAX_TENANTS 100000

static const struct field snapshot_tenant_fields[] = {
    {"external_id", FT_EXTERNAL_ID, F_REQUIRED},
    {"area_m2", FT_AREA, F_REQUIRED},
    {NULL},
};

static const struct field snapshot_tenant = {"", FT_OBJECT, 0, .fields = snapshot_tenant_fields};

const struct field api_occupancy_put_body[] = {
    {"as_of", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"public_service_area_m2", FT_AREA0, F_REQUIRED},
    {"tenants", FT_ARRAY, F_REQUIRED, .max = SNAPSHOT_MAX_TENANTS, .item = &snapshot_tenant},
    {NULL},
};

struct listed_id {
    const char *id;
    size_t position;
};

static int by_id_then_position(const void *a, const void *b)
{
    const struct listed_id *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->position < y->position ? -1 : x->position > y->position;
}

/* A tenant listed twice is an error in the list, not a last-one-wins. */
void api_check_listed_once(struct vctx *v, json_t *tenants)
{
    size_t n = json_array_size(tenants);
    struct listed_id *ids;
    char path[64];
    if (n < 2)
        return;
    ids = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        const char *id =
            json_string_value(json_object_get(json_array_get(tenants, i), "external_id"));
        ids[i].id = id ? id : "";
        ids[i].position = i;
    }
    qsort(ids, n, sizeof(*ids), by_id_then_position);
    for (size_t i = 1; i < n; i++) {
        if (ids[i].id[0] == '\0' || strcmp(ids[i].id, ids[i - 1].id) != 0)
            continue;
        snprintf(path, sizeof(path), "tenants[%zu].external_id", ids[i].position);
        v_error(v, path, "%s is listed twice (first at tenants[%zu])", ids[i].id,
                ids[i - 1].position);
    }
    free(ids);
}

void api_occupancy_put_check(struct req *r, struct vctx *v, json_t *args)
{
    (void)r;
    api_check_listed_once(v, json_object_get(args, "tenants"));
}

const struct query_param api_on_query[] = {
    {"on", Q_DATE, false, NULL},
    {NULL, 0, false, NULL},
};
