/*
 * report_table.c - text tables in Markdown, CSV and HTML (report_table.h).
 */
#include "report_table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

struct report_table {
    char *id, *title, *note;
    int n_cols;
    char **header;      /* [n_cols] */
    char **cells;       /* [cap_rows * n_cols], NULL = not set */
    int n_rows, cap_rows, n_in_row;
};

static char *dup_text(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s ? s : "", n + 1);
    return d;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

report_table_t *report_table_create(const char *id, const char *title, int n_cols,
                                    const char *const *header)
{
    if (!id || n_cols <= 0 || !header) {
        SC_ERROR("report_table_create: bad arguments");
        return NULL;
    }
    report_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->id = dup_text(id);
    t->title = dup_text(title);
    t->n_cols = n_cols;
    t->header = calloc((size_t)n_cols, sizeof(char *));
    int ok = t->id && t->title && t->header;
    for (int c = 0; ok && c < n_cols; c++)
        ok = (t->header[c] = dup_text(header[c])) != NULL;
    if (!ok) {
        SC_ERROR("out of memory for a report table");
        report_table_destroy(t);
        return NULL;
    }
    return t;
}

void report_table_destroy(report_table_t *t)
{
    if (!t)
        return;
    for (int c = 0; t->header && c < t->n_cols; c++)
        free(t->header[c]);
    for (long k = 0; t->cells && k < (long)t->n_rows * t->n_cols; k++)
        free(t->cells[k]);
    free(t->header);
    free(t->cells);
    free(t->id);
    free(t->title);
    free(t->note);
    free(t);
}

int report_table_row(report_table_t *t)
{
    if (t->n_rows == t->cap_rows) {
        int cap = t->cap_rows ? 2 * t->cap_rows : 16;
        char **cells = realloc(t->cells, (size_t)cap * t->n_cols * sizeof(char *));
        if (!cells) {
            SC_ERROR("out of memory for a report table");
            return SC_ERR_NOMEM;
        }
        memset(cells + (size_t)t->cap_rows * t->n_cols, 0,
               (size_t)(cap - t->cap_rows) * t->n_cols * sizeof(char *));
        t->cells = cells;
        t->cap_rows = cap;
    }
    t->n_rows++;
    t->n_in_row = 0;
    return 0;
}

int report_table_cell(report_table_t *t, const char *fmt, ...)
{
    if (t->n_rows == 0 || t->n_in_row >= t->n_cols) {
        SC_ERROR("report table '%s': more cells than its %d columns", t->id, t->n_cols);
        return SC_ERR_ARG;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!s)
        return SC_ERR_NOMEM;
    t->cells[(size_t)(t->n_rows - 1) * t->n_cols + t->n_in_row++] = s;
    return 0;
}

int report_table_note(report_table_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!s)
        return SC_ERR_NOMEM;
    free(t->note);
    t->note = s;
    return 0;
}

const char *report_table_id(const report_table_t *t) { return t->id; }
const char *report_table_title(const report_table_t *t) { return t->title; }
int report_table_rows(const report_table_t *t) { return t->n_rows; }
int report_table_cols(const report_table_t *t) { return t->n_cols; }

const char *report_table_get(const report_table_t *t, int row, int col)
{
    if (col < 0 || col >= t->n_cols || row < -1 || row >= t->n_rows)
        return "";
    const char *s = row < 0 ? t->header[col] : t->cells[(size_t)row * t->n_cols + col];
    return s ? s : "";
}

/* "**x**" -> 1 and the inner text span. */
static int emphasised(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n >= 4 && !strncmp(s, "**", 2) && !strcmp(s + n - 2, "**")) {
        *len = n - 4;
        return 1;
    }
    *len = n;
    return 0;
}

int report_table_write_md(const report_table_t *t, FILE *out)
{
    fprintf(out, "## %s\n\n|", t->title);
    for (int r = -1; r < t->n_rows; r++) {
        if (r >= 0)
            fputc('|', out);
        for (int c = 0; c < t->n_cols; c++) {
            fputc(' ', out);
            for (const char *p = report_table_get(t, r, c); *p; p++) {
                if (*p == '|')
                    fputc('\\', out);
                fputc(*p == '\n' ? ' ' : *p, out);
            }
            fputs(" |", out);
        }
        fputc('\n', out);
        if (r == -1) {
            fputc('|', out);
            for (int c = 0; c < t->n_cols; c++)
                fputs("---|", out);
            fputc('\n', out);
        }
    }
    if (t->note && t->note[0])
        fprintf(out, "\n%s\n", t->note);
    fputc('\n', out);
    return ferror(out) ? SC_ERR_IO : 0;
}

static void csv_field(FILE *out, const char *s, size_t len)
{
    int quote = 0;
    for (size_t i = 0; i < len; i++)
        quote |= s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (quote)
        fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', out);
        fputc(s[i], out);
    }
    if (quote)
        fputc('"', out);
}

int report_table_write_csv(const report_table_t *t, FILE *out)
{
    for (int r = -1; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = report_table_get(t, r, c);
            size_t len;
            if (emphasised(s, &len))
                s += 2;
            if (c)
                fputc(',', out);
            csv_field(out, s, len);
        }
        fputc('\n', out);
    }
    return ferror(out) ? SC_ERR_IO : 0;
}

void report_html_escape(FILE *out, const char *text)
{
    for (const char *p = text; p && *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*p, out);
        }
    }
}

int report_table_write_html(const report_table_t *t, FILE *out)
{
    fprintf(out, "<h3 id=\"table-%s\">", t->id);
    report_html_escape(out, t->title);
    fprintf(out, "</h3>\n<table class=\"data\" data-table=\"%s\">\n<thead><tr>", t->id);
    for (int c = 0; c < t->n_cols; c++) {
        fputs("<th>", out);
        report_html_escape(out, t->header[c]);
        fputs("</th>", out);
    }
    fputs("</tr></thead>\n<tbody>\n", out);
    for (int r = 0; r < t->n_rows; r++) {
        fputs("<tr>", out);
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = report_table_get(t, r, c);
            size_t len;
            int strong = emphasised(s, &len);
            fputs(c == 0 ? "<th scope=\"row\">" : "<td>", out);
            if (strong) {
                char *inner = malloc(len + 1);
                if (inner) {
                    memcpy(inner, s + 2, len);
                    inner[len] = 0;
                    fputs("<strong>", out);
                    report_html_escape(out, inner);
                    fputs("</strong>", out);
                    free(inner);
                }
            } else {
                report_html_escape(out, s);
            }
            fputs(c == 0 ? "</th>" : "</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
    if (t->note && t->note[0]) {
        fputs("<p class=\"note\">", out);
        report_html_escape(out, t->note);
        fputs("</p>\n", out);
    }
    return ferror(out) ? SC_ERR_IO : 0;
}
