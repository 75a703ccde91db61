/*
 * report_html.c - index.html of the report (report_html.h).
 */
#include "report_html.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

size_t report_base64_size(size_t n)
{
    return 4 * ((n + 2) / 3) + 1;
}

void report_base64(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = digits[v >> 6 & 63];
        out[o++] = digits[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

/* The PNG file as base64 text (caller frees); NULL when unreadable. */
static char *file_base64(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    uint8_t *bytes = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
            bytes = malloc((size_t)n);
            text = malloc(report_base64_size((size_t)n));
            if (bytes && text && fread(bytes, 1, (size_t)n, f) == (size_t)n) {
                report_base64(bytes, (size_t)n, text);
            } else {
                free(text);
                text = NULL;
            }
        }
    }
    free(bytes);
    fclose(f);
    return text;
}

static const char *STYLE =
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0 auto;"
    "max-width:1400px;padding:0 24px 48px;color:#1b1b1b;line-height:1.45}"
    "h1{margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:40px}"
    "h3{margin:28px 0 8px;font-size:1.05em}"
    ".meta{color:#555;margin:0 0 12px}"
    ".status{padding:10px 14px;border-radius:4px;margin:12px 0}"
    ".complete{background:#e8f5e9;border:1px solid #a5d6a7}"
    ".partial{background:#fff3e0;border:1px solid #ffb74d}"
    "table.data{border-collapse:collapse;font-size:13px;margin:6px 0;"
    "font-variant-numeric:tabular-nums}"
    "table.data th,table.data td{border:1px solid #ccc;padding:3px 8px;text-align:right;"
    "white-space:nowrap}"
    "table.data thead th{background:#f2f2f2;text-align:center}"
    "table.data tbody th{text-align:left;background:#fafafa}"
    "table.data td strong{color:#b71c1c}"
    ".scroll{overflow-x:auto}"
    "p.note{color:#555;font-size:13px;max-width:1000px;margin:4px 0 0}"
    "figure{margin:24px 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}"
    "figcaption{color:#333;font-size:14px;max-width:1000px;margin-top:6px}"
    "nav ul{columns:2;font-size:14px}"
    "pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}";

int report_html_write(const char *path, const report_data_t *d, const report_tables_t *tables,
                      const report_figures_t *figs, const char *fig_dir, const char *status,
                      int complete)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        SC_ERROR("cannot write '%s'", path);
        return SC_ERR_IO;
    }
    const char *base = strrchr(d->path, '/');
    base = base ? base + 1 : d->path;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    fputs("salcheck report: ", out);
    report_html_escape(out, base);
    fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>salcheck report: ", STYLE);
    report_html_escape(out, base);
    fputs("</h1>\n<p class=\"meta\">", out);
    report_html_escape(out, d->path);
    if (d->created[0]) {
        fputs(" &middot; created ", out);
        report_html_escape(out, d->created);
    }
    if (d->version[0]) {
        fputs(" &middot; salcheck ", out);
        report_html_escape(out, d->version);
    }
    fprintf(out, " &middot; seed %lld &middot; %lld rank%s &middot; %d images of %dx%d, %d model "
                 "variants, %d methods</p>\n",
            d->seed, d->ranks, d->ranks == 1 ? "" : "s", d->n_images, d->w, d->h, d->n_variants,
            d->n_methods);
    fprintf(out, "<div class=\"status %s\" id=\"status\">", complete ? "complete" : "partial");
    report_html_escape(out, status);
    fputs("</div>\n", out);
    if (figs->notes[0]) {
        fputs("<p class=\"note\" id=\"figure-notes\">Figures: ", out);
        report_html_escape(out, figs->notes);
        fputs("</p>\n", out);
    }
    /* contents */
    fputs("<nav><ul>\n", out);
    for (int i = 0; i < tables->n_display; i++) {
        fprintf(out, "<li><a href=\"#table-%s\">", report_table_id(tables->display[i]));
        report_html_escape(out, report_table_title(tables->display[i]));
        fputs("</a></li>\n", out);
    }
    for (int i = 0; i < figs->n; i++) {
        fprintf(out, "<li><a href=\"#figure-%d\">Figure %d: ", i + 1, i + 1);
        report_html_escape(out, figs->items[i].title);
        fputs("</a></li>\n", out);
    }
    fputs("</ul></nav>\n<h2 id=\"tables\">Tables</h2>\n", out);
    for (int i = 0; i < tables->n_display; i++) {
        fputs("<div class=\"scroll\">\n", out);
        report_table_write_html(tables->display[i], out);
        fputs("</div>\n", out);
    }
    fputs("<h2 id=\"figures\">Figures</h2>\n", out);
    int missing = 0;
    for (int i = 0; i < figs->n; i++) {
        const report_figure_t *g = &figs->items[i];
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/%s", fig_dir, g->file);
        char *b64 = file_base64(file);
        fprintf(out, "<figure id=\"figure-%d\">\n", i + 1);
        if (b64) {
            fprintf(out, "<img src=\"data:image/png;base64,%s\" width=\"%d\" height=\"%d\" alt=\"",
                    b64, g->w, g->h);
            report_html_escape(out, g->title);
            fputs("\">\n", out);
        } else {
            missing++;
            fputs("<p class=\"note\">(figure file missing)</p>\n", out);
        }
        free(b64);
        fprintf(out, "<figcaption><strong>Figure %d: ", i + 1);
        report_html_escape(out, g->title);
        fputs(".</strong> ", out);
        report_html_escape(out, g->caption);
        fputs("</figcaption>\n</figure>\n", out);
    }
    fputs("<h2 id=\"files\">Files</h2>\n<p>Next to this page: <code>tables.md</code> (the tables "
          "in Markdown), <code>tables/*.csv</code> (one row per group, numeric: ",
          out);
    for (int i = 0; i < tables->n_csv; i++)
        fprintf(out, "%s<code>%s.csv</code>", i ? ", " : "", report_table_id(tables->csv[i]));
    fputs("), <code>figures/*.png</code> (and each figure as <code>figures/*.svg</code>, vector "
          "with real text, for papers). Per-image values: the results file itself "
          "(<code>examples/analysis.py</code> loads it into pandas).</p>\n",
          out);
    if (d->job_text[0]) {
        fputs("<details><summary>The job file", out);
        if (d->job_path[0]) {
            fputs(" (", out);
            report_html_escape(out, d->job_path);
            fputs(")", out);
        }
        fputs("</summary>\n<pre>", out);
        report_html_escape(out, d->job_text);
        fputs("</pre></details>\n", out);
    }
    fputs("</body>\n</html>\n", out);
    int bad = ferror(out);
    bad |= fclose(out) != 0;
    if (bad || missing) {
        SC_ERROR("cannot write '%s'%s", path, missing ? " (a figure file could not be read)" : "");
        return SC_ERR_IO;
    }
    return 0;
}
