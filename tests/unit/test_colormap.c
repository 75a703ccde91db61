/*
 * test_colormap.c - the JET colormap against matplotlib's (when python3 has
 * matplotlib) and against values worked out from its published segment data,
 * the overlay blend, and drawing lines, rectangles and text on tiny buffers.
 * Run from the repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/colormap.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

static const uint8_t WHITE[3] = {255, 255, 255};

#define TH_RGB(px, r, g, b)                                                              \
    TH_CHECK((px)[0] == (r) && (px)[1] == (g) && (px)[2] == (b),                         \
             "%s = (%d,%d,%d), expected (%d,%d,%d)", #px, (px)[0], (px)[1], (px)[2], r, g, b)

/* Values worked out by hand from matplotlib's _jet_data with its 256-entry
 * table (entry floor(256 v), position i/255, bytes by truncation):
 *  v=0     entry 0: red 0, green 0, blue y=0.5 -> (0, 0, 127)
 *  v=1     entry 255: red 0.5 -> (127, 0, 0)
 *  v=0.125 entry 32, x=0.12549: green (x-0.125)/0.25 = 0.002 -> 0, blue 1 -> (0, 0, 255)
 *  v=0.5   entry 128, x=0.50196: red (x-0.35)/0.31 = 0.4902 -> 124, green 1,
 *          blue 1-(x-0.34)/0.31 = 0.4776 -> 121 -> (124, 255, 121)
 *  v=0.75  entry 192, x=0.75294: red 1, green 1-(x-0.64)/0.27 = 0.5817 -> 148,
 *          blue 0 -> (255, 148, 0) */
static void test_jet_published_definition(void)
{
    uint8_t c[3];
    cmap_jet(0.0f, c);
    TH_RGB(c, 0, 0, 127);
    cmap_jet(1.0f, c);
    TH_RGB(c, 127, 0, 0);
    cmap_jet(0.125f, c);
    TH_RGB(c, 0, 0, 255);
    cmap_jet(0.5f, c);
    TH_RGB(c, 124, 255, 121);
    cmap_jet(0.75f, c);
    TH_RGB(c, 255, 148, 0);
    /* out of range clamps to the ends, NaN is black */
    cmap_jet(-0.3f, c);
    TH_RGB(c, 0, 0, 127);
    cmap_jet(7.0f, c);
    TH_RGB(c, 127, 0, 0);
    cmap_jet(NAN, c);
    TH_RGB(c, 0, 0, 0);
    /* the blue -> cyan -> yellow -> red order: red never falls before 0.89,
     * blue never rises after 0.34 */
    int bad = 0;
    uint8_t prev[3];
    cmap_jet(0.0f, prev);
    for (int i = 1; i < 256; i++) {
        const double x = i / 255.0; /* the entry's position on the colour bar */
        cmap_jet((i + 0.5f) / 256.0f, c);
        if (x < 0.89 && c[0] < prev[0])
            bad++;
        if (x > 0.34 && c[2] > prev[2])
            bad++;
        memcpy(prev, c, 3);
    }
    TH_EQ_INT(bad, 0);
}

static void test_jet_vs_matplotlib(void)
{
    if (!th_python_has("numpy, matplotlib"))
        TH_SKIP("%s has no matplotlib (apt-get install python3-matplotlib)", th_python());
    enum { N = 256 + 257 + 1000 + 6 };
    static float v[N];
    static uint8_t ours[3 * N], ref[3 * N];
    int k = 0;
    for (int i = 0; i < 256; i++)
        v[k++] = (i + 0.5f) / 256.0f; /* every table entry */
    for (int i = 0; i <= 256; i++)
        v[k++] = i / 256.0f; /* every entry boundary */
    rng_stream_t s;
    rng_stream_init(&s, rng_key(1, "test_colormap"), 0, 0, 0);
    for (int i = 0; i < 1000; i++)
        v[k++] = (float)rng_stream_uniform(&s);
    const float special[6] = {-1.0f, -1e-7f, 1.0f + 1e-6f, 3.0f, 0.99999994f, 1e-30f};
    for (int i = 0; i < 6; i++)
        v[k++] = special[i];

    const char *build = getenv("BUILD");
    char dir[512], in[600], out[600], cmd[1600];
    snprintf(dir, sizeof dir, "%s/tmp_cmapXXXXXX", build && *build ? build : "build");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", build && *build ? build : "build");
    TH_CHECK(system(cmd) == 0 && mkdtemp(dir), "cannot make a temporary directory");
    snprintf(in, sizeof in, "%s/values.f32", dir);
    snprintf(out, sizeof out, "%s/rgb.u8", dir);
    FILE *f = fopen(in, "wb");
    TH_CHECK(f && fwrite(v, sizeof(float), N, f) == N, "cannot write %s", in);
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/colormap_ref.py %s %s", th_python(), in, out);
    TH_EQ_INT(system(cmd), 0);
    f = fopen(out, "rb");
    TH_CHECK(f && fread(ref, 1, 3 * N, f) == 3 * N, "cannot read %s", out);
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);

    cmap_jet_map(v, N, ours);
    int differ = 0;
    for (int i = 0; i < N; i++)
        if (memcmp(ours + 3 * i, ref + 3 * i, 3) != 0) {
            if (differ < 5)
                printf("    v=%.9g: ours (%d,%d,%d) matplotlib (%d,%d,%d)\n", v[i], ours[3 * i],
                       ours[3 * i + 1], ours[3 * i + 2], ref[3 * i], ref[3 * i + 1],
                       ref[3 * i + 2]);
            differ++;
        }
    TH_EQ_INT(differ, 0);
}

static void test_overlay(void)
{
    uint8_t gray[4] = {100, 100, 0, 255}, rgb[12];
    float map[4] = {0.0f, NAN, 1.0f, 0.5f};
    TH_EQ_INT(cmap_overlay(gray, map, 2, 2, 0.5f, rgb), 0);
    TH_RGB(rgb, 50, 50, 114);          /* (100+0)/2, (100+0)/2, (100+127)/2 = 113.5 -> 114 */
    TH_RGB(rgb + 3, 100, 100, 100);    /* NaN keeps the image */
    TH_RGB(rgb + 6, 64, 0, 0);         /* (0+127)/2 = 63.5 -> 64 */
    TH_RGB(rgb + 9, 190, 255, 188);    /* (255+124)/2, 255, (255+121)/2 */
    TH_EQ_INT(cmap_overlay(gray, map, 2, 2, 1.0f, rgb), 0);
    TH_RGB(rgb + 9, 124, 255, 121);
    TH_EQ_INT(cmap_overlay(gray, map, 2, 2, 0.0f, rgb), 0);
    TH_RGB(rgb + 9, 255, 255, 255);
    TH_EQ_INT(cmap_overlay(gray, map, 2, 2, 1.5f, rgb), SC_ERR_ARG);
}

static int count_lit(const uint8_t *rgb, int w, int h)
{
    int n = 0;
    for (int i = 0; i < w * h; i++)
        n += rgb[3 * i] != 0;
    return n;
}

static int lit(const uint8_t *rgb, int w, int x, int y) { return rgb[3 * (y * w + x)] != 0; }

static void test_lines_and_rects(void)
{
    enum { W = 8, H = 6 };
    uint8_t buf[W * H * 3];
    memset(buf, 0, sizeof buf);
    cmap_draw_rect(buf, W, H, 1, 1, 5, 4, WHITE);
    TH_EQ_INT(count_lit(buf, W, H), 2 * 5 + 2 * 2); /* 5 wide, 4 high outline */
    TH_CHECK(lit(buf, W, 1, 1) && lit(buf, W, 5, 4) && lit(buf, W, 5, 1) && lit(buf, W, 1, 4),
             "corners not drawn");
    TH_CHECK(!lit(buf, W, 3, 2) && !lit(buf, W, 0, 0) && !lit(buf, W, 6, 4), "drew off the outline");
    /* partly outside: only the visible edges */
    memset(buf, 0, sizeof buf);
    cmap_draw_rect(buf, W, H, -3, 2, 20, 40, WHITE);
    TH_EQ_INT(count_lit(buf, W, H), W); /* just the top edge, row 2 */
    memset(buf, 0, sizeof buf);
    cmap_draw_line(buf, W, H, 0, 0, 4, 4, WHITE);
    TH_EQ_INT(count_lit(buf, W, H), 5);
    for (int i = 0; i <= 4; i++)
        TH_CHECK(lit(buf, W, i, i), "diagonal pixel %d missing", i);
    memset(buf, 0, sizeof buf);
    cmap_draw_line(buf, W, H, 7, 5, 0, 5, WHITE); /* right to left, bottom row */
    TH_EQ_INT(count_lit(buf, W, H), 8);
    memset(buf, 0, sizeof buf);
    cmap_draw_line(buf, W, H, 0, 0, 7, 2, WHITE); /* shallow: one pixel per column */
    TH_EQ_INT(count_lit(buf, W, H), 8);
    TH_CHECK(lit(buf, W, 0, 0) && lit(buf, W, 7, 2), "end points missing");
    memset(buf, 0, sizeof buf);
    cmap_draw_line(buf, W, H, -10, 3, 100, 3, WHITE); /* clipped */
    TH_EQ_INT(count_lit(buf, W, H), W);
}

static void test_text(void)
{
    /* the font: 95 glyphs, all distinct, ink in every one but the space */
    uint8_t rows[95][7];
    int empty = 0, same = 0;
    for (int ch = 32; ch <= 126; ch++) {
        TH_EQ_INT(cmap_glyph((char)ch, rows[ch - 32]), 0);
        int ink = 0;
        for (int r = 0; r < 7; r++)
            ink |= rows[ch - 32][r];
        empty += ink == 0;
        for (int o = 32; o < ch; o++)
            same += memcmp(rows[o - 32], rows[ch - 32], 7) == 0;
    }
    TH_EQ_INT(empty, 1);
    TH_EQ_INT(same, 0);
    uint8_t q[7];
    TH_EQ_INT(cmap_glyph('\t', q), -1);
    TH_CHECK(memcmp(q, rows['?' - 32], 7) == 0, "non-printable must draw as '?'");

    /* '1' at scale 1: rows ..#.. .##.. ..#.. x4 .###. -> 10 pixels */
    enum { W = 14, H = 18 };
    uint8_t buf[W * H * 3];
    memset(buf, 0, sizeof buf);
    int width = cmap_draw_text(buf, W, H, 0, 0, "1", WHITE, 1);
    TH_EQ_INT(width, 6);
    TH_EQ_INT(count_lit(buf, W, H), 10);
    TH_CHECK(lit(buf, W, 2, 0) && lit(buf, W, 1, 1) && lit(buf, W, 1, 6) && lit(buf, W, 3, 6),
             "'1' drawn wrong");
    TH_CHECK(!lit(buf, W, 0, 6) && !lit(buf, W, 4, 6), "'1' foot too wide");
    /* scale 2: four times the pixels; two characters side by side */
    memset(buf, 0, sizeof buf);
    TH_EQ_INT(cmap_draw_text(buf, W, H, 0, 0, "1", WHITE, 2), 12);
    TH_EQ_INT(count_lit(buf, W, H), 40);
    memset(buf, 0, sizeof buf);
    TH_EQ_INT(cmap_draw_text(buf, W, H, 1, 1, "-.", WHITE, 1), 12);
    TH_EQ_INT(count_lit(buf, W, H), 5 + 4); /* '-' one row of 5, '.' a 2x2 block */
    TH_CHECK(lit(buf, W, 1, 4) && lit(buf, W, 5, 4) && lit(buf, W, 8, 6) && lit(buf, W, 9, 7),
             "'-.' drawn at the wrong place");
    /* clipping at the buffer edge, and a second line */
    memset(buf, 0, sizeof buf);
    cmap_draw_text(buf, W, H, 10, 12, "H\nH", WHITE, 1);
    /* visible: columns 10..13 of rows 12..17 -> the left stem (6 rows) and 3
     * pixels of the bar (row 15); the right stem and the second line are off */
    TH_EQ_INT(count_lit(buf, W, H), 6 + 3);
    TH_CHECK(lit(buf, W, 10, 17) && lit(buf, W, 13, 15) && !lit(buf, W, 13, 14), "clipped 'H'");
    int tw, th;
    cmap_text_size("ab\nlonger", 3, &tw, &th);
    TH_EQ_INT(tw, 6 * 6 * 3);
    TH_EQ_INT(th, 2 * 8 * 3);
}

int main(void)
{
    TH_RUN(test_jet_published_definition);
    TH_RUN(test_jet_vs_matplotlib);
    TH_RUN(test_overlay);
    TH_RUN(test_lines_and_rects);
    TH_RUN(test_text);
    return th_report();
}
