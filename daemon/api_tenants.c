/*
 * Tenants: the bodies of the profile PUT, graduation and exit, and the checks
 * between their fields. The lifecycle rules that need stored data (status,
 * frozen history, the policy's thresholds) are SQL's (schema/functions/30_tenants.sql).
 */
#include <string.h>

#include "incubatord/api.h"
#include "incubatord/csv.h"
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

/* A tenant's profile: the body of its PUT, and each item of a bulk sync. */
/* clang-format off */
#define TENANT_PROFILE_FIELDS                                                \
    {"name", FT_TEXT, F_REQUIRED, .max = 200},                               \
    {"credit_code", FT_USCC, F_REQUIRED},                                    \
    {"founded_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},                      \
    {"admitted_on", FT_DATE, F_REQUIRED | F_NOT_FUTURE},                     \
    {"field", FT_ENUM, F_REQUIRED, .values = api_tenant_fields},             \
    {"tech_certified_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE},               \
    {"high_tech_certified_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE},          \
    {"founder_origin", FT_ENUM, F_NULLABLE, .values = origins},              \
    {"annual_revenue_fen", FT_YEAR_MAP, F_NULLABLE},                         \
    {"listed_on", FT_DATE, F_NULLABLE | F_NOT_FUTURE}
/* clang-format on */

const struct field api_tenant_put_body[] = {
    TENANT_PROFILE_FIELDS,
    {NULL},
};

/* Dates of one enterprise's life come in order: founded, then the rest. */
static void check_profile_dates(struct vctx *v, const char *prefix, json_t *profile)
{
    static const char *const after_founding[] = {"admitted_on", "tech_certified_on",
                                                 "high_tech_certified_on", "listed_on"};
    const char *founded = json_string_value(json_object_get(profile, "founded_on"));
    char path[96];
    for (size_t i = 0; i < ARRAY_LEN(after_founding); i++) {
        const char *d = json_string_value(json_object_get(profile, after_founding[i]));
        /* ISO dates compare as text. */
        if (founded && d && strcmp(d, founded) < 0) {
            snprintf(path, sizeof(path), "%s%s", prefix, after_founding[i]);
            v_error(v, path, "must not be before founded_on (%s)", founded);
        }
    }
}

void api_tenant_put_check(struct req *r, struct vctx *v, json_t *args)
{
    (void)r;
    check_profile_dates(v, "", args);
}

static const struct field sync_tenant_fields[] = {
    {"external_id", FT_EXTERNAL_ID, F_REQUIRED},
    TENANT_PROFILE_FIELDS,
    {NULL},
};

static const struct field sync_tenant = {"", FT_OBJECT, 0, .fields = sync_tenant_fields};

const struct field api_tenants_sync_body[] = {
    {"tenants", FT_ARRAY, F_REQUIRED, .max = API_SYNC_MAX_TENANTS, .item = &sync_tenant},
    {NULL},
};

/*
 * The bulk sync as text/csv: columns named by field or by the Chinese names
 * of API.md (a register kept in a spreadsheet), dates also as YYYY/MM/DD.
 * annual_revenue_fen, a map, has no column.
 */
static const struct csv_column sync_csv_columns[] = {
    {"external_id", "企业编号", true, false},
    {"name", "企业名称", true, false},
    {"credit_code", "统一社会信用代码", true, false},
    {"founded_on", "成立时间", true, true},
    {"admitted_on", "入驻时间", true, true},
    {"field", "技术领域", true, false},
    {"tech_certified_on", "科技型中小企业认定日期", false, true},
    {"high_tech_certified_on", "高新技术企业认定日期", false, true},
    {"founder_origin", "创业者类型", false, false},
    {"listed_on", "上市日期", false, true},
    {NULL, NULL, false, false},
};

const struct csv_spec api_tenants_sync_csv = {"tenants", sync_csv_columns};

/* Each tenant's dates in order, and no external_id listed twice. */
void api_tenants_sync_check(struct req *r, struct vctx *v, json_t *args)
{
    json_t *tenants = json_object_get(args, "tenants");
    char prefix[40];
    (void)r;
    for (size_t i = 0; i < json_array_size(tenants); i++) {
        snprintf(prefix, sizeof(prefix), "tenants[%zu].", i);
        check_profile_dates(v, prefix, json_array_get(tenants, i));
    }
    api_check_listed_once(v, tenants);
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
