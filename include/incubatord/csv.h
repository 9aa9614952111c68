/*
 * CSV request bodies (RFC 4180), parsed with Debian's libcsv: a header row
 * naming the columns (by field name or by a name of its own, such as the
 * Chinese column names of a spreadsheet), then one record per row. A body is
 * turned into the JSON a route's field table validates, {"<list>": [{...},
 * ...]}, so that CSV and JSON go through the same checks and the same SQL.
 */
#ifndef INCUBATORD_CSV_H
#define INCUBATORD_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "incubatord/common.h"
#include "incubatord/validate.h"

/* One column a CSV body may have. */
struct csv_column {
    const char *field; /* the JSON field it fills, also accepted as its header */
    const char *alias; /* another header naming it (a spreadsheet's), or NULL */
    bool required;     /* the header must name it */
    bool date;         /* a date: YYYY-MM-DD, or YYYY/MM/DD (also YYYY/M/D) */
};

/* What a route takes as text/csv. */
struct csv_spec {
    const char *list;                 /* the body's array of records, e.g. "tenants" */
    const struct csv_column *columns; /* {NULL}-terminated */
};

/*
 * The result of parsing: body = {"<list>": [...]} and rows = the row number
 * of each record (the header is row 1; records with every cell empty are
 * skipped, so the numbers may leave gaps).
 */
struct csv_body {
    json_t *body;
    json_t *rows;
};

/*
 * Parses a CSV body. A BOM is skipped, cells are trimmed of spaces and tabs,
 * an empty cell is null. Returns false with a reason in detail when the body
 * is not CSV at all (malformed quoting, not UTF-8, no header): a 400. A header
 * naming an unknown column (or one twice, or missing a required one) and a
 * record with another number of cells than the header are errors in v, named
 * "row N: column" (a 422); out then holds what could be read.
 */
bool csv_parse_body(const struct csv_spec *spec, const char *data, size_t len, struct vctx *v,
                    struct csv_body *out, char *detail, size_t detail_len) WARN_UNUSED;

/*
 * Renames the fields of validation errors from JSON paths to rows:
 * "<list>[i].name" becomes "row N: name" with N = rows[i], and "<list>"
 * itself "rows".
 */
void csv_rename_errors(const struct csv_spec *spec, json_t *rows, json_t *errors);

void csv_body_free(struct csv_body *b);

#endif
