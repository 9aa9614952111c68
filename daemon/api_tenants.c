/*
 * Tenants: the bodies of the profile PUT, graduation and exit, and the checks
 * between their fields. The lifecycle rules that need stored data (status,
 * frozen history, the policy's thresholds) are SQL's (schema/functions/30_tenants.sql).
 */
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/http.h"

const char *const api_tenant_fields[] = {"electronic_information",
                                         "biomedicine",
                                         "aerospace",
                                         "new_materials",
                                         "high_tech_services",
                                         "new_energy",
                                         "resources_environment",
                                         "advanced_manufacturing",
                                         "modern_agriculture",
                                         "integrated_circuit",
                                         "other",
                                         NULL};
static const char *const origins[] = {
    "university", "research_institute", "returnee", "student", "soe", "other", NULL};
static const char *const bases[] = {"high_tech", "investment", "revenue", "acquired_or_listed",
                                    NULL};
static const char *const reasons[] = {"relocated", "closed", "expelled", "other", NULL};
static const char *const statuses[] = {"incubating", "graduated", "exited", NULL};

const struct field api_tenant_put_body[] = {
    {"name", FT_TEXT, F_REQUIRED, .max = 200},
    {"credit_code", FT_USCC, F_REQUIRED},
    {"founded_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"admitted_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"field", FT_ENUM, F_REQUIRED, .values = api_tenant_fields},
    {"tech_certified_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE},
    {"high_tech_certified_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE},
    {"founder_origin", FT_ENUM, F_NULLABLE, .values = origins},
    {"annual_revenue_fen", FT_YEAR_MAP, F_NULLABLE},
    {"listed_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE},
    {NULL},
};

/* Dates of one enterprise's life come in order: founded, then the rest. */
void api_tenant_put_check(struct req *r, struct vctx *v, json_t *args)
{
    static const char *const after_founding[] = {"admitted_on", "tech_certified_on",
                                                 "high_tech_certified_on", "listed_on"};
    const char *founded = json_string_value(json_object_get(args, "founded_on"));
    (void)r;
    for (size_t i = 0; i < ARRAY_LEN(after_founding); i++) {
        const char *d = json_string_value(json_object_get(args, after_founding[i]));
        /* ISO dates compare as text. */
        if (founded && d && strcmp(d, founded) < 0)
            v_error(v, after_founding[i], "must not be before founded_on (%s)", founded);
    }
}

static const struct field evidence_fields[] = {
    {"investment_total_fen", FT_FEN, 0},
    {"revenue_fen", FT_YEAR_MAP, 0},
    {"event", FT_TEXT, 0, .max = 500},
    {NULL},
};

const struct field api_tenant_graduate_body[] = {
    {"graduated_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"basis", FT_ENUM, F_REQUIRED, .values = bases},
    {"evidence", FT_OBJECT, F_NULLABLE, .fields = evidence_fields},
    {NULL},
};

/* Each basis carries its own evidence, and only that. */
void api_tenant_graduate_check(struct req *r, struct vctx *v, json_t *args)
{
    static const struct {
        const char *basis;
        const char *needs; /* NULL: no evidence */
    } evidence_of[] = {
        {"high_tech", NULL},
        {"investment", "investment_total_fen"},
        {"revenue", "revenue_fen"},
        {"acquired_or_listed", "event"},
    };
    const char *basis = json_string_value(json_object_get(args, "basis"));
    json_t *evidence = json_object_get(args, "evidence");
    const char *key;
    json_t *value;
    char path[96];
    (void)r;
    for (size_t i = 0; i < ARRAY_LEN(evidence_of); i++) {
        if (strcmp(basis, evidence_of[i].basis) != 0)
            continue;
        const char *needs = evidence_of[i].needs;
        /* The validated evidence has every field, null when it was left out. */
        json_t *given = needs ? json_object_get(evidence, needs) : NULL;
        if (needs && (given == NULL || json_is_null(given))) {
            snprintf(path, sizeof(path), "evidence.%s", needs);
            v_error(v, path, "is required for basis %s", basis);
        }
        if (json_is_object(evidence)) {
            json_object_foreach(evidence, key, value)
            {
                if (json_is_null(value) || (needs && strcmp(key, needs) == 0))
                    continue;
                snprintf(path, sizeof(path), "evidence.%s", key);
                v_error(v, path, "is not evidence for basis %s", basis);
            }
        }
    }
}

const struct field api_tenant_exit_body[] = {
    {"exited_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},
    {"reason", FT_ENUM, F_REQUIRED, .values = reasons},
    {NULL},
};

const struct query_param api_tenant_list_query[] = {
    {"status", Q_ENUM, false, statuses},
    {"limit", Q_LIMIT, false, NULL},
    {"cursor", Q_CURSOR, false, NULL},
    {"lang", Q_ENUM, false, api_csv_langs},
    {NULL, 0, false, NULL},
};
