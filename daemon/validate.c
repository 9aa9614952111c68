/*
 * The field-table validator. See validate.h.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/uscc.h"
#include "incubatord/validate.h"

void vctx_init(struct vctx *v, day_t today)
{
    v->errors = json_array();
    v->today = today;
}

void vctx_free(struct vctx *v)
{
    json_decref(v->errors);
    v->errors = NULL;
}

bool vctx_ok(const struct vctx *v)
{
    return json_array_size(v->errors) == 0;
}

void v_error(struct vctx *v, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_array_append_new(
        v->errors, json_pack("{s:s, s:s}", "field", path[0] ? path : "(body)", "message", msg));
}

static const char *json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/*
 * Whether x is a decimal with at most log10(scale) decimals, and if so its
 * value in 1/scale units. Jansson reads a number with strtod, which rounds
 * the client's text to the nearest double, and IEEE division is correctly
 * rounded too: so n / scale == x exactly when the text was n / scale, and
 * any further non-zero digit a double can hold makes them differ. (A fixed
 * tolerance instead let 1500.000000001 or 0.000000001 pass as 2 decimals.)
 */
static bool decimal_exact(double x, double scale, int64_t *out)
{
    double n = round(x * scale);
    if (!isfinite(n) || fabs(n) > 9e15 || n / scale != x)
        return false;
    *out = (int64_t)n;
    return true;
}

bool area_to_centi(json_t *value, int64_t *centi)
{
    if (json_is_integer(value)) {
        json_int_t n = json_integer_value(value);
        if (n < -AREA_MAX_M2 * 10LL || n > AREA_MAX_M2 * 10LL)
            return false;
        *centi = n * 100;
        return true;
    }
    if (!json_is_real(value))
        return false;
    double x = json_real_value(value);
    if (!isfinite(x) || fabs(x) > AREA_MAX_M2 * 10.0)
        return false;
    return decimal_exact(x, 100.0, centi);
}

void centi_format(int64_t centi, char *out, size_t len)
{
    const char *sign = centi < 0 ? "-" : "";
    int64_t a = centi < 0 ? -centi : centi;
    snprintf(out, len, "%s%lld.%02lld", sign, (long long)(a / 100), (long long)(a % 100));
}

/* Counts UTF-8 code points (Jansson has checked the encoding). */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

/* ^[A-Za-z0-9][A-Za-z0-9<extra>]{0,max-1}$ */
static bool identifier_ok(const char *s, size_t n, size_t max, const char *extra)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || strchr(extra, c) == NULL))
            return false;
    }
    return true;
}

bool validate_code(const char *s, size_t len)
{
    return identifier_ok(s, len, 32, "._-");
}

bool validate_external_id(const char *s, size_t len)
{
    return identifier_ok(s, len, 64, "._:-");
}

/* {"2025": 320000000, ...}: years as keys, whole fen as values. */
static json_t *check_year_map(struct vctx *v, const char *path, json_t *value)
{
    static const struct field fen = {"", FT_FEN, 0};
    json_t *out = json_object();
    const char *key;
    json_t *item;
    char sub[256];
    bool ok = true;
    json_object_foreach(value, key, item)
    {
        char *end;
        long year = strtol(key, &end, 10);
        snprintf(sub, sizeof(sub), "%s.%s", path, key);
        if (strlen(key) != 4 || *end != '\0' || year < DATE_MIN_YEAR || year > DATE_MAX_YEAR) {
            v_error(v, sub, "must be keyed by a year YYYY");
            ok = false;
            continue;
        }
        json_t *norm = validate_value(v, sub, item, &fen);
        if (norm == NULL) {
            ok = false;
            continue;
        }
        json_object_set_new(out, key, norm);
    }
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *check_text(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    const char *s = json_string_value(value);
    int64_t max = f->max ? f->max : 200;
    if (s[0] == '\0' || is_blank(s)) {
        v_error(v, path, "must not be empty");
        return NULL;
    }
    if ((int64_t)utf8_length(s) > max) {
        v_error(v, path, "must be at most %lld characters", (long long)max);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            v_error(v, path, "must not contain control characters");
            return NULL;
        }
    }
    return json_incref(value);
}

static json_t *check_enum(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    const char *s = json_string_value(value);
    char list[512] = "";
    for (const char *const *e = f->values; *e; e++) {
        if (strcmp(*e, s) == 0)
            return json_incref(value);
        if (strlen(list) + strlen(*e) + 3 < sizeof(list)) {
            if (list[0])
                strcat(list, ", ");
            strcat(list, *e);
        }
    }
    v_error(v, path, "must be one of: %s", list);
    return NULL;
}

/*
 * http(s)://host[:port][/path][?query]: a scheme of the two, a host of
 * letters, digits, '.', '-', ':' or a bracketed IPv6 address, no spaces or
 * control characters, no user:password@.
 */
static json_t *check_url(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    const char *s = json_string_value(value);
    size_t max = f->max ? (size_t)f->max : 2000;
    const char *host;
    if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else {
        v_error(v, path, "must be an http:// or https:// URL");
        return NULL;
    }
    if (strlen(s) > max) {
        v_error(v, path, "must be at most %zu bytes", max);
        return NULL;
    }
    size_t hl = strcspn(host, "/?#");
    bool ok = hl > 0 && memchr(host, '@', hl) == NULL;
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            ok = false;
    for (size_t i = 0; ok && i < hl; i++)
        if (!isalnum((unsigned char)host[i]) && strchr(".-:[]", host[i]) == NULL)
            ok = false;
    if (!ok) {
        v_error(v, path, "must be an http:// or https:// URL with a host name or address");
        return NULL;
    }
    return json_incref(value);
}

/* local@domain: printable ASCII without spaces, quotes, brackets or commas; a dotted domain. */
static json_t *check_email(struct vctx *v, const char *path, json_t *value)
{
    const char *s = json_string_value(value);
    const char *at = strchr(s, '@');
    bool ok = at != NULL && at != s && strchr(at + 1, '@') == NULL && strlen(s) <= 254 &&
              (size_t)(at - s) <= 64 && strchr(at + 1, '.') != NULL && at[1] != '.' &&
              s[strlen(s) - 1] != '.';
    for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),:;<>[]\\", *p) != NULL)
            ok = false;
    for (const char *p = at ? at + 1 : ""; ok && *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            ok = false;
    if (!ok) {
        v_error(v, path, "must be an e-mail address like name@example.gov.cn");
        return NULL;
    }
    return json_incref(value);
}

static json_t *check_date(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    day_t d;
    char tomorrow[11];
    if (!date_parse(json_string_value(value), &d)) {
        v_error(v, path, "must be a calendar date YYYY-MM-DD between %d and %d", DATE_MIN_YEAR,
                DATE_MAX_YEAR);
        return NULL;
    }
    if ((f->flags & F_NOT_FUTURE) && d > v->today + 1) {
        date_format(v->today + 1, tomorrow);
        v_error(v, path, "must not be later than tomorrow (%s)", tomorrow);
        return NULL;
    }
    return json_incref(value);
}

static json_t *check_area(struct vctx *v, const char *path, json_t *value, bool zero_ok)
{
    int64_t centi;
    char text[32];
    if (!json_is_number(value)) {
        v_error(v, path, "must be a number of square metres, not %s", json_type_name(value));
        return NULL;
    }
    if (!area_to_centi(value, &centi)) {
        v_error(v, path, "must have at most 2 decimals and be at most %d", AREA_MAX_M2);
        return NULL;
    }
    if (centi < 0 || (centi == 0 && !zero_ok)) {
        v_error(v, path, zero_ok ? "must not be negative" : "must be greater than 0");
        return NULL;
    }
    if (centi > (int64_t)AREA_MAX_M2 * 100) {
        v_error(v, path, "must be at most %d", AREA_MAX_M2);
        return NULL;
    }
    centi_format(centi, text, sizeof(text));
    return json_string(text);
}

static json_t *check_ratio(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    char text[32];
    if (!json_is_number(value)) {
        v_error(v, path, "must be a number, not %s", json_type_name(value));
        return NULL;
    }
    double x = json_number_value(value);
    int64_t n;
    if (!isfinite(x) || fabs(x) > 1e9 || !decimal_exact(x, 10000.0, &n)) {
        v_error(v, path, "must have at most 4 decimals");
        return NULL;
    }
    if (n < f->min || n > f->max) {
        v_error(v, path, "must be between %g and %g", f->min / 10000.0, f->max / 10000.0);
        return NULL;
    }
    snprintf(text, sizeof(text), "%s%lld.%04lld", n < 0 ? "-" : "", (long long)llabs(n) / 10000,
             (long long)llabs(n) % 10000);
    return json_string(text);
}

static json_t *check_array(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    json_t *out = json_array();
    size_t i;
    json_t *item;
    char sub[256];
    if (f->max && (int64_t)json_array_size(value) > f->max) {
        v_error(v, path, "must have at most %lld items", (long long)f->max);
        json_decref(out);
        return NULL;
    }
    if ((int64_t)json_array_size(value) < f->min) {
        v_error(v, path, "must have at least %lld item%s", (long long)f->min,
                f->min == 1 ? "" : "s");
        json_decref(out);
        return NULL;
    }
    json_array_foreach(value, i, item)
    {
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        json_t *norm = validate_value(v, sub, item, f->item);
        json_array_append_new(out, norm ? norm : json_null());
    }
    return out;
}

/* An object whose keys are data (e.g. years), every value checked as f->item. */
static json_t *check_map(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    json_t *out = json_object();
    const char *key;
    json_t *item;
    char sub[256];
    json_object_foreach(value, key, item)
    {
        snprintf(sub, sizeof(sub), "%s.%s", path, key);
        json_t *norm = validate_value(v, sub, item, f->item);
        if (norm)
            json_object_set_new(out, key, norm);
    }
    return out;
}

/* The JSON type each field type needs, for the "must be a string" kind of error. */
static bool type_matches(const struct field *f, json_t *value, const char **want)
{
    /* Set on every path: GCC -O2 cannot tell that the switch covers them all. */
    *want = "";
    switch (f->type) {
    case FT_TEXT:
    case FT_ENUM:
    case FT_DATE:
    case FT_PERIOD:
    case FT_USCC:
    case FT_CODE:
    case FT_EXTERNAL_ID:
        *want = "a string";
        return json_is_string(value);
    case FT_FEN:
    case FT_INT:
        *want = "an integer";
        return json_is_integer(value);
    case FT_AREA:
    case FT_AREA0:
    case FT_RATIO:
        *want = "a number";
        return json_is_number(value);
    case FT_OBJECT:
    case FT_YEAR_MAP:
        *want = "an object";
        return json_is_object(value);
    case FT_ARRAY:
        *want = "an array";
        return json_is_array(value);
    case FT_BOOL:
        *want = "true or false";
        return json_is_boolean(value);
    case FT_URL:
    case FT_EMAIL:
        *want = "a string";
        return json_is_string(value);
    }
    return false;
}

json_t *validate_value(struct vctx *v, const char *path, json_t *value, const struct field *f)
{
    const char *want = "a value of the declared type";
    if (json_is_null(value)) {
        if (f->flags & F_NULLABLE)
            return json_null();
        v_error(v, path, "must not be null");
        return NULL;
    }
    if (!type_matches(f, value, &want)) {
        v_error(v, path, "must be %s, not %s", want, json_type_name(value));
        return NULL;
    }
    switch (f->type) {
    case FT_TEXT:
        return check_text(v, path, value, f);
    case FT_ENUM:
        return check_enum(v, path, value, f);
    case FT_DATE:
        return check_date(v, path, value, f);
    case FT_PERIOD: {
        int y, m;
        if (!period_parse(json_string_value(value), &y, &m)) {
            v_error(v, path, "must be a month YYYY-MM");
            return NULL;
        }
        return json_incref(value);
    }
    case FT_AREA:
    case FT_AREA0:
        return check_area(v, path, value, f->type == FT_AREA0);
    case FT_FEN: {
        json_int_t n = json_integer_value(value);
        int64_t max = f->max ? f->max : FEN_MAX;
        if (n < 0 || n > max) {
            v_error(v, path, "must be a whole number of fen from 0 to %lld", (long long)max);
            return NULL;
        }
        return json_incref(value);
    }
    case FT_INT: {
        json_int_t n = json_integer_value(value);
        if (n < f->min || n > f->max) {
            v_error(v, path, "must be an integer from %lld to %lld", (long long)f->min,
                    (long long)f->max);
            return NULL;
        }
        return json_incref(value);
    }
    case FT_RATIO:
        return check_ratio(v, path, value, f);
    case FT_USCC: {
        const char *s = json_string_value(value);
        if (!uscc_valid(s)) {
            v_error(v, path,
                    "must be an 18-character Unified Social Credit Code (GB 32100-2015) in "
                    "upper case with a valid check character");
            return NULL;
        }
        return json_incref(value);
    }
    case FT_CODE:
        if (!validate_code(json_string_value(value), json_string_length(value))) {
            v_error(v, path,
                    "must be 1-32 letters, digits, '.', '_' or '-', starting with a letter or "
                    "digit");
            return NULL;
        }
        return json_incref(value);
    case FT_EXTERNAL_ID:
        if (!validate_external_id(json_string_value(value), json_string_length(value))) {
            v_error(v, path,
                    "must be 1-64 letters, digits, '.', '_', ':' or '-', starting with a letter "
                    "or digit");
            return NULL;
        }
        return json_incref(value);
    case FT_YEAR_MAP:
        return check_year_map(v, path, value);
    case FT_OBJECT:
        if (f->flags & F_ANY_KEYS)
            return check_map(v, path, value, f);
        return validate_object(v, path, value, f->fields, false);
    case FT_ARRAY:
        return check_array(v, path, value, f);
    case FT_BOOL:
        return json_incref(value);
    case FT_URL:
        return check_url(v, path, value, f);
    case FT_EMAIL:
        return check_email(v, path, value);
    }
    return NULL;
}

json_t *validate_object(struct vctx *v, const char *path, json_t *obj, const struct field *fields,
                        bool patch)
{
    json_t *out = json_object();
    const char *key;
    json_t *value;
    char sub[256];

    if (!json_is_object(obj)) {
        v_error(v, path, "must be an object, not %s", json_type_name(obj));
        return out;
    }
    json_object_foreach(obj, key, value)
    {
        const struct field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
        if (f->name == NULL)
            v_error(v, sub, "unknown field");
    }
    for (const struct field *f = fields; f->name; f++) {
        snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", f->name);
        value = json_object_get(obj, f->name);
        if (value == NULL) {
            if ((f->flags & F_REQUIRED) && !patch)
                v_error(v, sub, "is required");
            else if (!patch)
                json_object_set_new(out, f->name, json_null());
            continue;
        }
        if (json_is_null(value) && (f->flags & F_REQUIRED)) {
            v_error(v, sub, "is required");
            continue;
        }
        json_t *norm = validate_value(v, sub, value, f);
        if (norm)
            json_object_set_new(out, f->name, norm);
    }
    return out;
}

/* The value of one query parameter, normalised; NULL after v_error(). */
static json_t *query_value(struct vctx *v, const struct query_param *q, const char *s)
{
    static const char *const what[] = {
        [Q_LIMIT] = "an integer from 1 to 500",
        [Q_CURSOR] = "a cursor returned by an earlier page",
        [Q_DATE] = "a calendar date YYYY-MM-DD",
        [Q_PERIOD] = "a month YYYY-MM",
        [Q_YEAR] = "a year YYYY",
        [Q_ENUM] = "one of the listed values",
        [Q_CODE] = "an incubator code",
    };
    size_t len = strlen(s);
    day_t d;
    int y, m;

    switch (q->type) {
    case Q_LIMIT:
    case Q_YEAR: {
        /* Digits only: strtol would take " 5" and "+5" too. */
        size_t max_len = q->type == Q_LIMIT ? 3 : 4;
        long n = 0;
        if (len == 0 || len > max_len || strspn(s, "0123456789") != len ||
            (q->type == Q_YEAR && len != 4))
            break;
        n = strtol(s, NULL, 10);
        if (q->type == Q_LIMIT ? n < 1 || n > 500 : n < DATE_MIN_YEAR || n > DATE_MAX_YEAR)
            break;
        return json_integer(n);
    }
    case Q_CURSOR:
        if (len == 0 || len > 200 ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijk"
                      "lmnopqrstuvwxyz0123456789-_") != len)
            break;
        return json_string(s);
    case Q_DATE:
        if (!date_parse(s, &d))
            break;
        return json_string(s);
    case Q_PERIOD:
        if (!period_parse(s, &y, &m))
            break;
        return json_string(s);
    case Q_ENUM:
        for (const char *const *e = q->values; *e; e++)
            if (strcmp(*e, s) == 0)
                return json_string(s);
        break;
    case Q_CODE:
        if (!validate_code(s, len))
            break;
        return json_string(s);
    }
    if (q->type == Q_ENUM) {
        char list[256] = "";
        for (const char *const *e = q->values; *e; e++) {
            if (strlen(list) + strlen(*e) + 3 >= sizeof(list))
                break;
            if (list[0])
                strcat(list, ", ");
            strcat(list, *e);
        }
        v_error(v, q->name, "must be one of: %s", list);
    } else {
        v_error(v, q->name, "must be %s", what[q->type]);
    }
    return NULL;
}

void validate_query_param(struct vctx *v, const struct query_param *table, const char *key,
                          const char *value, json_t *args)
{
    const struct query_param *q = table;
    while (q && q->name && strcmp(q->name, key) != 0)
        q++;
    if (q == NULL || q->name == NULL) {
        v_error(v, key, "unknown query parameter");
        return;
    }
    if (json_object_get(args, q->name) != NULL) {
        v_error(v, key, "given twice");
        return;
    }
    json_t *norm = query_value(v, q, value);
    if (norm)
        json_object_set_new(args, q->name, norm);
}

void validate_query_finish(struct vctx *v, const struct query_param *table, json_t *args)
{
    for (const struct query_param *q = table; q && q->name; q++) {
        if (json_object_get(args, q->name) != NULL)
            continue;
        if (q->required)
            v_error(v, q->name, "is required");
        else if (q->type == Q_LIMIT)
            json_object_set_new(args, q->name, json_integer(100));
        else
            json_object_set_new(args, q->name, json_null());
    }
}
