/*
 * Incubators: the bodies of POST and PATCH /v1/incubators. Everything else
 * about them is SQL (schema/functions/incubators.sql).
 */
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/http.h"

static const char *const levels[] = {"national", "provincial", "municipal",
                                     "district", "unrated",    NULL};
static const char *const kinds[] = {"comprehensive", "professional", "university_park",
                                    "maker_space", NULL};

const struct field api_incubator_create_body[] = {
    {"code", FT_CODE, F_REQUIRED},
    {"name", FT_TEXT, F_REQUIRED, .max = 200},
    {"level", FT_ENUM, F_REQUIRED, .values = levels},
    {"kind", FT_ENUM, F_REQUIRED, .values = kinds},
    {"district", FT_TEXT, F_NULLABLE, .max = 100},
    {"opened_on", FT_DATE, F_NULLABLE},
    {"disposable_area_m2", FT_AREA, F_REQUIRED},
    {"public_service_area_m2", FT_AREA0, F_NULLABLE},
    {NULL},
};

const struct field api_incubator_patch_body[] = {
    {"name", FT_TEXT, 0, .max = 200},
    {"level", FT_ENUM, 0, .values = levels},
    {"kind", FT_ENUM, 0, .values = kinds},
    {"district", FT_TEXT, F_NULLABLE, .max = 100},
    {"disposable_area_m2", FT_AREA, 0},
    {"effective_on", FT_DATE, 0},
    {NULL},
};

/* A change of area holds from a day: the two come together, and a patch changes something. */
void api_incubator_patch_check(struct req *r, struct vctx *v, json_t *args)
{
    bool area = json_object_get(args, "disposable_area_m2") != NULL;
    bool effective = json_object_get(args, "effective_on") != NULL;
    (void)r;
    if (area && !effective)
        v_error(v, "effective_on", "is required with disposable_area_m2");
    if (effective && !area)
        v_error(v, "effective_on", "is only allowed with disposable_area_m2");
    if (json_object_size(r->body) == 0)
        v_error(v, "(body)",
                "must change at least one of name, level, kind, district, "
                "disposable_area_m2");
}

/* POST /v1/incubators/{code}/close: the day and why (the rest is SQL's, 35_closing.sql). */
const struct field api_incubator_close_body[] = {
    {"closed_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"reason", FT_TEXT, F_REQUIRED, .max = 500},
    {NULL},
};

/* Its tokens fail from the next request on, here; other daemons hear it by NOTIFY. */
void api_incubator_close_after(const struct route_answer *a, json_t *doc, json_t *effects)
{
    (void)doc;
    json_object_set(effects, ROUTE_EFFECT_FORGET_INCUBATOR, json_object_get(a->args, "code"));
}
