/*
 * report_table.h - a small text table written as Markdown, CSV or HTML
 * (module report, prefix report_table_).
 *
 * The report builds each table once (report_tables.c) and writes it in the
 * three forms, so tables.md, the CSV files and index.html cannot disagree.
 * Cells are text; a cell written as "**text**" is emphasised (bold in Markdown,
 * <strong> in HTML, plain in CSV).
 */
#ifndef REPORT_TABLE_H
#define REPORT_TABLE_H

#include <stdio.h>

typedef struct report_table report_table_t;

/* A table with `n_cols` columns named by header[n_cols]; `id` names its CSV
 * file (id.csv). Returns NULL on bad arguments or memory (logged). */
report_table_t *report_table_create(const char *id, const char *title, int n_cols,
                                    const char *const *header);
void report_table_destroy(report_table_t *t);

/* Start a new row; then report_table_cell once per column. Returns 0 or < 0. */
int report_table_row(report_table_t *t);
/* Append a printf-formatted cell to the current row (extra cells are an
 * error: SC_ERR_ARG). */
int report_table_cell(report_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note printed under the table (replaces an earlier one). */
int report_table_note(report_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *report_table_id(const report_table_t *t);
const char *report_table_title(const report_table_t *t);
int report_table_rows(const report_table_t *t);
int report_table_cols(const report_table_t *t);
/* Cell text ("" for a missing cell); row -1 is the header. */
const char *report_table_get(const report_table_t *t, int row, int col);

/* "## title", the pipe table, the note. '|' in cells is escaped. */
int report_table_write_md(const report_table_t *t, FILE *out);
/* RFC 4180: header line, then rows; fields with , " or newlines are quoted. */
int report_table_write_csv(const report_table_t *t, FILE *out);
/* <h3>title</h3><table>...</table><p class="note">; text HTML-escaped. */
int report_table_write_html(const report_table_t *t, FILE *out);

/* Write text HTML-escaped (& < > " '). */
void report_html_escape(FILE *out, const char *text);

#endif
