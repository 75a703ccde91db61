/*
 * test_report.c - the drawing, table and encoding pieces of `salcheck report`:
 * box-plot statistics against matplotlib, base64 against RFC 4648's vectors,
 * Markdown/CSV/HTML tables, tick steps, the bilinear resize against the
 * library's (checked against PyTorch in test_io), the ground-truth outline,
 * and the rotated and shifted glyphs of the figure text.
 *
 * The report's modules live in driver/, which is linked into the salcheck
 * binary and not into libsalcheck.a; the self-contained ones are compiled
 * into this test directly. The end-to-end report (figures, HTML in headless
 * Chromium, partial files) is tests/mpi/test_report.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_html.c"
#include "report_plot.c"
#include "report_table.c"

#include "io/image.h"
#include "rng.h"
#include "testhelp.h"

/* ---- box plots ---- */

static void test_box_stats_by_hand(void)
{
    double x[6] = {4, 1, NAN, 3, 100, 2}, scratch[6];
    report_box_t b;
    TH_EQ_INT(report_box_stats(x, 6, scratch, &b), 0);
    TH_EQ_INT(b.n, 5);
    TH_NEAR(b.q1, 2, 0, 0);
    TH_NEAR(b.median, 3, 0, 0);
    TH_NEAR(b.q3, 4, 0, 0);
    TH_NEAR(b.whislo, 1, 0, 0);   /* 1 >= 2 - 1.5*2 */
    TH_NEAR(b.whishi, 4, 0, 0);   /* 100 > 4 + 3: a flier */
    TH_NEAR(b.mean, 22, 0, 1e-12);
    TH_EQ_INT(b.n_fliers, 1);
    TH_NEAR(scratch[4], 100, 0, 0); /* sorted */
    double none[2] = {NAN, INFINITY};
    TH_EQ_INT(report_box_stats(none, 2, scratch, &b), SC_ERR_UNDEFINED);
    TH_EQ_INT(b.n, 0);
}

static void test_box_stats_vs_matplotlib(void)
{
    if (!th_python_has("numpy, matplotlib"))
        TH_SKIP("%s has no matplotlib (apt-get install python3-matplotlib)", th_python());
    enum { SAMPLES = 10, RANDOM = 8, MAXN = 60 };
    static double values[SAMPLES][MAXN];
    int n[SAMPLES];
    rng_stream_t s;
    rng_stream_init(&s, rng_key(3, "test_report"), 0, 0, 0);
    for (int k = 0; k < RANDOM; k++) {
        n[k] = k == 0 ? 1 : k == 1 ? 2 : 5 + 7 * k;
        for (int i = 0; i < n[k]; i++) {
            double u = rng_stream_uniform(&s);
            values[k][i] = k % 3 == 0 ? u * u : k % 3 == 1 ? round(u * 5) / 5 : u;
        }
        if (k >= 3) { /* outliers on both sides, a NaN */
            values[k][0] = 3.5;
            values[k][1] = -2.0;
            values[k][2] = NAN;
        }
    }
    /* values just beyond and just within 1.5 IQR of the box (q1 2.5, q3 7.5) */
    n[8] = n[9] = 11;
    for (int i = 0; i < 10; i++)
        values[8][i] = values[9][i] = i;
    values[8][10] = 15.2;  /* > 7.5 + 1.5*5: a flier */
    values[9][10] = 14.8;  /* within: the upper whisker */
    const char *build = getenv("BUILD");
    char dir[512], in[600], out[600], cmd[1600];
    snprintf(dir, sizeof dir, "%s/tmp_reportXXXXXX", build && *build ? build : "build");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", build && *build ? build : "build");
    TH_CHECK(system(cmd) == 0 && mkdtemp(dir), "cannot make a temporary directory");
    snprintf(in, sizeof in, "%s/samples.txt", dir);
    snprintf(out, sizeof out, "%s/stats.txt", dir);
    FILE *f = fopen(in, "w");
    TH_CHECK(f != NULL, "cannot write %s", in);
    if (!f)
        return;
    for (int k = 0; k < SAMPLES; k++) {
        for (int i = 0; i < n[k]; i++)
            fprintf(f, "%.17g ", values[k][i]);
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/report_box_ref.py %s %s", th_python(), in, out);
    TH_EQ_INT(system(cmd), 0);
    f = fopen(out, "r");
    TH_CHECK(f != NULL, "cannot read %s", out);
    for (int k = 0; f && k < SAMPLES; k++) {
        double ref[6];
        int fliers = -1;
        TH_EQ_INT(fscanf(f, "%lf %lf %lf %lf %lf %lf %d", &ref[0], &ref[1], &ref[2], &ref[3],
                         &ref[4], &ref[5], &fliers),
                  7);
        double scratch[MAXN];
        report_box_t b;
        TH_EQ_INT(report_box_stats(values[k], n[k], scratch, &b), 0);
        TH_NEAR(b.q1, ref[0], 1e-12, 1e-15);
        TH_NEAR(b.median, ref[1], 1e-12, 1e-15);
        TH_NEAR(b.q3, ref[2], 1e-12, 1e-15);
        TH_NEAR(b.whislo, ref[3], 1e-12, 1e-15);
        TH_NEAR(b.whishi, ref[4], 1e-12, 1e-15);
        TH_NEAR(b.mean, ref[5], 1e-12, 1e-15);
        TH_EQ_INT(b.n_fliers, fliers);
    }
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- base64 ---- */

static void test_base64_rfc4648(void)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(in[i]);
        char out[32];
        TH_EQ_INT(report_base64_size(n), strlen(want[i]) + 1);
        report_base64((const uint8_t *)in[i], n, out);
        TH_CHECK(!strcmp(out, want[i]), "base64(\"%s\") = \"%s\", expected \"%s\"", in[i], out,
                 want[i]);
    }
    const uint8_t bytes[3] = {0xfb, 0xff, 0x00};
    char out[8];
    report_base64(bytes, 3, out);
    TH_CHECK(!strcmp(out, "+/8A"), "base64(fb ff 00) = %s, expected +/8A", out);
}

/* ---- tables ---- */

static char *render(report_table_t *t, int (*fn)(const report_table_t *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(t, f);
    fclose(f);
    return buf;
}

static void test_table_formats(void)
{
    const char *hd[] = {"method", "value, CI", "passes"};
    report_table_t *t = report_table_create("demo", "A <title>", 3, hd);
    TH_CHECK(t != NULL, "create");
    if (!t)
        return;
    report_table_row(t);
    report_table_cell(t, "a|b");
    report_table_cell(t, "%.3f [%.3f, %.3f]", 0.5, 0.25, 0.75);
    report_table_cell(t, "**no**");
    report_table_row(t);
    report_table_cell(t, "say \"hi\"");
    report_table_cell(t, "x<y & z");
    TH_EQ_INT(report_table_cell(t, "yes"), 0);
    TH_EQ_INT(report_table_cell(t, "one too many"), SC_ERR_ARG);
    report_table_note(t, "note");
    TH_EQ_INT(report_table_rows(t), 2);
    TH_CHECK(!strcmp(report_table_get(t, -1, 1), "value, CI"), "header cell");
    TH_CHECK(!strcmp(report_table_get(t, 5, 1), ""), "out of range cell");

    char *md = render(t, report_table_write_md);
    const char *want_md = "## A <title>\n\n| method | value, CI | passes |\n|---|---|---|\n"
                          "| a\\|b | 0.500 [0.250, 0.750] | **no** |\n"
                          "| say \"hi\" | x<y & z | yes |\n\nnote\n\n";
    TH_CHECK(!strcmp(md, want_md), "markdown:\n%s\nexpected:\n%s", md, want_md);
    char *csv = render(t, report_table_write_csv);
    const char *want_csv = "method,\"value, CI\",passes\n"
                           "a|b,\"0.500 [0.250, 0.750]\",no\n"
                           "\"say \"\"hi\"\"\",x<y & z,yes\n";
    TH_CHECK(!strcmp(csv, want_csv), "csv:\n%s\nexpected:\n%s", csv, want_csv);
    char *html = render(t, report_table_write_html);
    TH_CHECK(strstr(html, "<h3 id=\"table-demo\">A &lt;title&gt;</h3>") != NULL, "html title: %s", html);
    TH_CHECK(strstr(html, "<th>value, CI</th>") != NULL, "html header");
    TH_CHECK(strstr(html, "<td><strong>no</strong></td>") != NULL, "html emphasis");
    TH_CHECK(strstr(html, "<th scope=\"row\">say &quot;hi&quot;</th><td>x&lt;y &amp; z</td>") != NULL,
             "html escaping: %s", html);
    TH_CHECK(strstr(html, "<p class=\"note\">note</p>") != NULL, "html note");
    free(md);
    free(csv);
    free(html);
    report_table_destroy(t);
}

/* ---- axes ---- */

static void test_nice_step(void)
{
    TH_NEAR(report_nice_step(1.0, 10), 0.1, 1e-12, 0);
    TH_NEAR(report_nice_step(0.87, 5), 0.2, 1e-12, 0);
    TH_NEAR(report_nice_step(3.0, 4), 1.0, 1e-12, 0);
    TH_NEAR(report_nice_step(24.0, 5), 5.0, 1e-12, 0);
    TH_NEAR(report_nice_step(1.0, 4), 0.25, 1e-12, 0);
    TH_NEAR(report_nice_step(0.05, 5), 0.01, 1e-12, 0);
    report_axes_t a = {.left = 100, .top = 10, .right = 300, .bottom = 210,
                       .xmin = 0, .xmax = 4, .ymin = 0, .ymax = 1};
    TH_EQ_INT(report_axes_px(&a, 0), 100);
    TH_EQ_INT(report_axes_px(&a, 1), 150);
    TH_EQ_INT(report_axes_py(&a, 0), 210);
    TH_EQ_INT(report_axes_py(&a, 0.25), 160);
    TH_EQ_INT(report_axes_py(&a, 1), 10);
}

/* ---- image helpers ---- */

static void test_resize_matches_library(void)
{
    enum { SW = 7, SH = 5 };
    float src[SW * SH];
    rng_stream_t s;
    rng_stream_init(&s, rng_key(4, "test_report"), 0, 0, 0);
    for (int i = 0; i < SW * SH; i++)
        src[i] = (float)rng_stream_uniform(&s);
    const int sizes[3][2] = {{16, 12}, {7, 5}, {3, 2}};
    for (int k = 0; k < 3; k++) {
        int dw = sizes[k][0], dh = sizes[k][1];
        float ours[16 * 12], lib[16 * 12];
        report_resize_bilinear(src, SW, SH, ours, dw, dh);
        TH_EQ_INT(image_resize(src, SW, SH, lib, dw, dh, IMAGE_RESIZE_BILINEAR), 0);
        double worst = 0;
        for (int i = 0; i < dw * dh; i++)
            worst = fmax(worst, fabs((double)ours[i] - lib[i]));
        TH_CHECK(worst < 1e-6, "%dx%d: max |ours - image_resize| = %g", dw, dh, worst);
    }
}

static void test_mask_outline(void)
{
    enum { W = 7, H = 6 };
    uint8_t mask[W * H] = {0}, out[W * H];
    for (int y = 1; y <= 3; y++)
        for (int x = 2; x <= 4; x++)
            mask[y * W + x] = 1;
    mask[5 * W + 0] = 1; /* a pixel on the border */
    report_mask_outline(mask, W, H, 1, out);
    int count = 0;
    for (int i = 0; i < W * H; i++)
        count += out[i];
    TH_EQ_INT(count, 8 + 1);        /* the 3x3 box's ring and the border pixel */
    TH_EQ_INT(out[2 * W + 3], 0);   /* the box's centre is inside */
    TH_EQ_INT(out[1 * W + 2], 1);
    TH_EQ_INT(out[0 * W + 2], 0);   /* outside the mask: never drawn */
    report_mask_outline(mask, W, H, 2, out);
    TH_EQ_INT(out[2 * W + 3], 1);   /* within 2 pixels of the outside */
}

/* ---- text ---- */

/* Ink bounding box of non-white pixels. */
static void ink_box(const report_canvas_t *c, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = c->w;
    *y0 = c->h;
    *x1 = *y1 = -1;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++)
            if (c->rgb[((size_t)y * c->w + x) * 3] != 255) {
                *x0 = x < *x0 ? x : *x0;
                *y0 = y < *y0 ? y : *y0;
                *x1 = x > *x1 ? x : *x1;
                *y1 = y > *y1 ? y : *y1;
            }
}

static void test_text(void)
{
    const uint8_t black[3] = {0, 0, 0};
    report_canvas_t *c = report_canvas_create(60, 60);
    TH_CHECK(c != NULL, "canvas");
    if (!c)
        return;
    int x0, y0, x1, y1;
    /* "HI" at scale 2: 'H' fills columns 0..4 of its 6-wide cell, 'I' columns 1..3 */
    TH_EQ_INT(report_text(c, 10, 10, "HI", black, 2, REPORT_LEFT), 24);
    ink_box(c, &x0, &y0, &x1, &y1);
    TH_EQ_INT(x0, 10);
    TH_EQ_INT(y0, 10);
    TH_EQ_INT(x1 - x0 + 1, 20);     /* (6 + 4) columns of 2 px */
    TH_EQ_INT(y1 - y0 + 1, 14);
    /* rotated: the same ink, a quarter turn: 14 wide, read bottom to top */
    memset(c->rgb, 255, (size_t)c->w * c->h * 3);
    report_text_up(c, 10, 30, "HI", black, 2);
    ink_box(c, &x0, &y0, &x1, &y1);
    TH_EQ_INT(x1 - x0 + 1, 14);
    TH_EQ_INT(y1 - y0 + 1, 20);
    TH_EQ_INT(x0, 10);
    /* 'H' (drawn first) is at the bottom */
    TH_EQ_INT(y1, 30 + 12 - 1);
    /* 'g' drops one row into the descender: ink rows 2..7 of the cell, 'a' rows 2..6 */
    memset(c->rgb, 255, (size_t)c->w * c->h * 3);
    report_text(c, 0, 0, "g", black, 1, REPORT_LEFT);
    ink_box(c, &x0, &y0, &x1, &y1);
    TH_EQ_INT(y0, 2);
    TH_EQ_INT(y1, 7);
    memset(c->rgb, 255, (size_t)c->w * c->h * 3);
    report_text(c, 0, 0, "a", black, 1, REPORT_LEFT);
    ink_box(c, &x0, &y0, &x1, &y1);
    TH_EQ_INT(y0, 2);
    TH_EQ_INT(y1, 6);
    report_canvas_destroy(c);

    char fit[64];
    report_text_fit("phantom-000006", 2, 120, fit, sizeof fit);
    TH_CHECK(!strcmp(fit, "phan..0006"), "fit = %s", fit);
    TH_CHECK(report_text_width(fit, 2) <= 120, "fitted width %d", report_text_width(fit, 2));
    report_text_fit("short", 2, 120, fit, sizeof fit);
    TH_CHECK(!strcmp(fit, "short"), "fit = %s", fit);
}

int main(void)
{
    TH_RUN(test_box_stats_by_hand);
    TH_RUN(test_box_stats_vs_matplotlib);
    TH_RUN(test_base64_rfc4648);
    TH_RUN(test_table_formats);
    TH_RUN(test_nice_step);
    TH_RUN(test_resize_matches_library);
    TH_RUN(test_mask_outline);
    TH_RUN(test_text);
    return th_report();
}
