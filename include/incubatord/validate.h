/*
 * Validation at the edge, once: a request body is checked against a
 * declarative table of fields (struct field) and turned into a normalised
 * JSON object for SQL, or into a list of {"field", "message"} errors naming
 * every offending field. Query parameters have a smaller table of their own.
 *
 * Normal forms handed to SQL: dates "YYYY-MM-DD", periods "YYYY-MM", areas
 * and ratios as decimal text ("420.50"), money as JSON integers; an optional
 * field left out becomes null (PUT replaces the whole document) unless the
 * object is validated as a patch.
 */
#ifndef INCUBATORD_VALIDATE_H
#define INCUBATORD_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "incubatord/common.h"
#include "incubatord/dates.h"

#define AREA_MAX_M2 10000000
/*
 * The largest amount of money a request may carry, 10^15 fen (10 trillion
 * CNY): far beyond any real figure, and small enough that SQL may add a few
 * thousand of them in bigint without overflowing.
 */
#define FEN_MAX 1000000000000000LL

enum field_type {
    FT_TEXT,        /* a string of 1..max characters, no control characters, not blank */
    FT_ENUM,        /* one of values */
    FT_DATE,        /* "YYYY-MM-DD", a real calendar day */
    FT_PERIOD,      /* "YYYY-MM" */
    FT_AREA,        /* a number of square metres, at most 2 decimals, 0 < a <= AREA_MAX_M2 */
    FT_AREA0,       /* the same, 0 allowed */
    FT_FEN,         /* an integer amount of money in fen, 0..FEN_MAX (or 0..max if set) */
    FT_INT,         /* an integer within [min, max] */
    FT_RATIO,       /* a number within [min, max] / 10000, at most 4 decimals */
    FT_USCC,        /* an 18-character Unified Social Credit Code with a valid check character */
    FT_CODE,        /* an incubator code */
    FT_EXTERNAL_ID, /* a tenant's external id */
    FT_YEAR_MAP,    /* an object whose keys are years (YYYY) and values amounts in fen */
    FT_OBJECT,      /* an object checked against fields */
    FT_ARRAY,       /* an array of items checked as item (its name is unused) */
    FT_BOOL,        /* true or false */
    FT_URL,         /* an http:// or https:// URL with a host, at most max (default 2000) bytes */
    FT_EMAIL,       /* an e-mail address local@domain, at most 254 bytes */
};

enum field_flags {
    F_REQUIRED = 1 << 0,   /* must be present and not null */
    F_NULLABLE = 1 << 1,   /* null is accepted (an optional field may always be left out) */
    F_NOT_FUTURE = 1 << 2, /* FT_DATE: not after tomorrow */
    F_ANY_KEYS = 1 << 3,   /* FT_OBJECT: keys are data, checked by the item spec */
};

struct vctx;

struct field {
    const char *name;
    enum field_type type;
    unsigned flags;
    int64_t min, max;           /* FT_INT, FT_RATIO (in 1/10000), FT_TEXT (max length) */
    const char *const *values;  /* FT_ENUM: NULL-terminated */
    const struct field *fields; /* FT_OBJECT: {NULL}-terminated */
    const struct field *item;   /* FT_ARRAY: each item; FT_OBJECT with F_ANY_KEYS: each value */
};

struct vctx {
    json_t *errors; /* array of {"field", "message"} */
    day_t today;
};

void vctx_init(struct vctx *v, day_t today);
void vctx_free(struct vctx *v);
bool vctx_ok(const struct vctx *v);
/* Records an error about a field (path like "tenants[3].area_m2"). */
void v_error(struct vctx *v, const char *path, const char *fmt, ...) PRINTF_LIKE(3, 4);

/*
 * Checks obj against fields. Unknown keys, missing required keys and bad
 * values are recorded in v. Returns the normalised object (a new reference;
 * partial when errors were recorded). With patch, absent keys stay absent.
 */
json_t *validate_object(struct vctx *v, const char *path, json_t *obj, const struct field *fields,
                        bool patch);

/* Checks one value against a field spec; returns the normalised value or NULL. */
json_t *validate_value(struct vctx *v, const char *path, json_t *value, const struct field *f);

/* Parses an area (square metres, <= 2 decimals) into hundredths; false if not one. */
bool area_to_centi(json_t *value, int64_t *centi) WARN_UNUSED;
/*
 * The syntax of an incubator code (1-32 of [A-Za-z0-9._-], starting with a
 * letter or digit) and of a tenant's external_id (1-64, ':' too): the one
 * rule for bodies, queries and path parameters.
 */
bool validate_code(const char *s, size_t len);
bool validate_external_id(const char *s, size_t len);

/* Writes hundredths as "123.45". */
void centi_format(int64_t centi, char *out, size_t len);

/* Query parameters: the same idea, for ?key=value. */
enum query_type {
    Q_LIMIT,  /* 1..500, default 100 */
    Q_CURSOR, /* opaque, 1..200 base64url characters */
    Q_DATE,
    Q_PERIOD,
    Q_YEAR, /* 1900..2999 */
    Q_ENUM,
    Q_CODE, /* an incubator code */
};

struct query_param {
    const char *name;
    enum query_type type;
    bool required;
    const char *const *values; /* Q_ENUM */
};

/*
 * Checks one decoded ?key=value against a route's table ({NULL}-terminated,
 * or NULL: no parameters) into args (normalised: limit and year as
 * integers); an unknown key, one given twice or a bad value is an error in v.
 */
void validate_query_param(struct vctx *v, const struct query_param *table, const char *key,
                          const char *value, json_t *args);
/* After the last parameter: the ones left out get their default (limit 100, else null). */
void validate_query_finish(struct vctx *v, const struct query_param *table, json_t *args);

#endif
