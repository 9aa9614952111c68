/*
 * CSV request bodies, on libcsv. See csv.h.
 *
 * libcsv does the RFC 4180 part (quoted cells, doubled quotes, commas and
 * line breaks inside quotes, CRLF or LF); in strict mode it refuses a quote
 * inside an unquoted cell and an unterminated quote. This file maps the
 * header to columns and each record to a JSON object of the route's fields.
 */
#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incubatord/csv.h"

#define MAX_COLUMNS 32

/* The parse in progress: libcsv calls cell() per cell and record() per record. */
struct parse {
    const struct csv_spec *spec;
    struct vctx *v;
    json_t *items;
    json_t *rows;
    size_t row;                                    /* the record being read, from 1 */
    size_t ncells;                                 /* cells of that record so far */
    size_t ncolumns;                               /* of the header */
    const struct csv_column *by_cell[MAX_COLUMNS]; /* the header's columns, NULL: unknown */
    json_t *record;                                /* the record being read */
    bool nonempty;                                 /* it has a non-empty cell */
    bool bad_utf8;
    bool header_done;
};

/* An error about the record being read, or one of its columns (what). */
static void row_error(struct parse *p, const char *what, const char *message)
{
    char path[200];
    if (what)
        snprintf(path, sizeof(path), "row %zu: %s", p->row, what);
    else
        snprintf(path, sizeof(path), "row %zu", p->row);
    v_error(p->v, path, "%s", message);
}

static const struct csv_column *column_named(const struct csv_spec *spec, const char *name)
{
    for (const struct csv_column *c = spec->columns; c->field; c++)
        if (strcmp(c->field, name) == 0 || (c->alias && strcmp(c->alias, name) == 0))
            return c;
    return NULL;
}

/* Reads 1..max digits at *s; -1 if there are none. */
static int digits(const char **s, int max)
{
    int n = 0, v = 0;
    while (n < max && **s >= '0' && **s <= '9') {
        v = v * 10 + (**s - '0');
        (*s)++;
        n++;
    }
    return n ? v : -1;
}

/* "2025/6/1" or "2025/06/01" as "2025-06-01"; anything else unchanged. text
 * has room for 11 bytes. */
static void normalise_date(char *text)
{
    char out[32];
    const char *s = text;
    int y, m, d;
    if (strlen(text) > 10 || (y = digits(&s, 4)) < 0 || s - text != 4 || *s++ != '/' ||
        (m = digits(&s, 2)) < 0 || *s++ != '/' || (d = digits(&s, 2)) < 0 || *s != '\0')
        return;
    snprintf(out, sizeof(out), "%04d-%02d-%02d", y, m, d);
    memcpy(text, out, 11);
}

static void header_cell(struct parse *p, const char *name)
{
    const struct csv_column *c = column_named(p->spec, name);
    if (p->ncells >= MAX_COLUMNS) {
        if (p->ncells == MAX_COLUMNS)
            row_error(p, NULL, "has more than 32 columns");
        return;
    }
    p->by_cell[p->ncells] = c;
    if (c == NULL) {
        row_error(p, name[0] ? name : "(empty)", "is not a column of this list");
        return;
    }
    for (size_t i = 0; i < p->ncells; i++)
        if (p->by_cell[i] == c)
            row_error(p, name, "names a column a second time");
}

static void cell(void *s, size_t len, void *arg)
{
    struct parse *p = arg;
    char *text = xmalloc(len + 11); /* room for a date written out in full */
    memcpy(text, s, len);
    text[len] = '\0';
    /* Each record's first cell: its row number is known now. */
    if (p->ncells == 0)
        p->row++;
    if (p->row == 1 && p->ncells == 0 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        memmove(text, text + 3, len - 2); /* the BOM, which spreadsheets write first */
    if (!p->header_done) {
        header_cell(p, text);
    } else if (p->ncells < p->ncolumns && p->by_cell[p->ncells]) {
        const struct csv_column *c = p->by_cell[p->ncells];
        json_t *value;
        if (text[0] == '\0') {
            value = json_null();
        } else {
            if (c->date)
                normalise_date(text);
            value = json_string(text); /* NULL: not UTF-8 */
            if (value == NULL) {
                p->bad_utf8 = true;
                value = json_null();
            }
            p->nonempty = true;
        }
        json_object_set_new(p->record, c->field, value);
    } else if (len > 0) {
        p->nonempty = true;
    }
    free(text);
    p->ncells++;
}

static void record(int terminator, void *arg)
{
    struct parse *p = arg;
    char msg[80];
    (void)terminator;
    if (!p->header_done) {
        p->ncolumns = p->ncells < MAX_COLUMNS ? p->ncells : MAX_COLUMNS;
        for (const struct csv_column *c = p->spec->columns; c->field; c++) {
            bool given = false;
            for (size_t i = 0; i < p->ncolumns; i++)
                given = given || p->by_cell[i] == c;
            if (c->required && !given)
                row_error(p, c->field, "is a required column, missing from the header");
        }
        p->header_done = true;
    } else if (p->nonempty) {
        if (p->ncells != p->ncolumns) {
            snprintf(msg, sizeof(msg), "has %zu cells; the header has %zu", p->ncells, p->ncolumns);
            row_error(p, NULL, msg);
        }
        json_array_append(p->items, p->record);
        json_array_append_new(p->rows, json_integer((json_int_t)p->row));
    }
    json_decref(p->record);
    p->record = json_object();
    p->ncells = 0;
    p->nonempty = false;
}

bool csv_parse_body(const struct csv_spec *spec, const char *data, size_t len, struct vctx *v,
                    struct csv_body *out, char *detail, size_t detail_len)
{
    struct csv_parser parser;
    struct parse p = {.spec = spec, .v = v};
    bool ok = true;

    out->body = NULL;
    out->rows = NULL;
    if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        snprintf(detail, detail_len, "the CSV parser could not start");
        return false;
    }
    p.items = json_array();
    p.rows = json_array();
    p.record = json_object();
    if (csv_parse(&parser, data, len, cell, record, &p) != len ||
        csv_fini(&parser, cell, record, &p) != 0) {
        /* The record being read when it went wrong: p.row, or the next one
         * if none of its cells had been read yet. */
        snprintf(detail, detail_len, "malformed CSV at row %zu: %s",
                 p.row + (p.ncells == 0 ? 1 : 0), csv_strerror(csv_error(&parser)));
        ok = false;
    } else if (p.bad_utf8) {
        snprintf(detail, detail_len, "the CSV is not UTF-8 (save it as \"CSV UTF-8\")");
        ok = false;
    } else if (!p.header_done) {
        snprintf(detail, detail_len, "the CSV is empty: it needs a header row naming its columns");
        ok = false;
    }
    csv_free(&parser);
    json_decref(p.record);
    if (!ok) {
        json_decref(p.items);
        json_decref(p.rows);
        return false;
    }
    out->body = json_pack("{s:o}", spec->list, p.items);
    out->rows = p.rows;
    return true;
}

void csv_rename_errors(const struct csv_spec *spec, json_t *rows, json_t *errors)
{
    size_t i, listlen = strlen(spec->list);
    json_t *e;
    char path[300];

    json_array_foreach(errors, i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *rest;
        char *end;
        if (field == NULL || strncmp(field, spec->list, listlen) != 0)
            continue;
        rest = field + listlen;
        if (*rest == '\0') {
            json_object_set_new(e, "field", json_string("rows"));
            continue;
        }
        if (*rest != '[')
            continue;
        unsigned long index = strtoul(rest + 1, &end, 10);
        if (*end != ']' || index >= json_array_size(rows))
            continue;
        end++;
        long long row = (long long)json_integer_value(json_array_get(rows, index));
        if (*end == '.')
            snprintf(path, sizeof(path), "row %lld: %s", row, end + 1);
        else
            snprintf(path, sizeof(path), "row %lld", row);
        json_object_set_new(e, "field", json_string(path));
    }
}

void csv_body_free(struct csv_body *b)
{
    json_decref(b->body);
    json_decref(b->rows);
    b->body = NULL;
    b->rows = NULL;
}
