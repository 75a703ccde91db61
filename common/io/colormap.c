/*
 * colormap.c - matplotlib's JET colormap, overlays, and a 5x7 bitmap font with
 * line and rectangle drawing for figures (see colormap.h).
 *
 * Owned by common/io. The colormap table is not stored: an entry is computed
 * from the segment data when needed (a handful of operations), the same way
 * matplotlib builds its table (LinearSegmentedColormap, N = 256).
 */
#include "colormap.h"

#include <math.h>
#include <stdlib.h>

#include "sc.h"

/* ------------------------------------------------------------------ JET */

/* matplotlib's _jet_data: per channel, rows (x, y_below, y_above). */
typedef struct jet_point { double x, y0, y1; } jet_point_t;

static const jet_point_t jet_red[] = {
    {0.0, 0, 0}, {0.35, 0, 0}, {0.66, 1, 1}, {0.89, 1, 1}, {1.0, 0.5, 0.5}};
static const jet_point_t jet_green[] = {
    {0.0, 0, 0}, {0.125, 0, 0}, {0.375, 1, 1}, {0.64, 1, 1}, {0.91, 0, 0}, {1.0, 0, 0}};
static const jet_point_t jet_blue[] = {
    {0.0, 0.5, 0.5}, {0.11, 1, 1}, {0.34, 1, 1}, {0.65, 0, 0}, {1.0, 0, 0}};

#define JET_N 256

/* Table entry i (0..255) of one channel, as a byte. */
static uint8_t jet_channel(const jet_point_t *pts, int n_pts, int i)
{
    double v;
    if (i == 0) {
        v = pts[0].y1;
    } else if (i == JET_N - 1) {
        v = pts[n_pts - 1].y0;
    } else {
        /* matplotlib works in table units: x*(N-1) and (N-1)*linspace(0, 1, N) */
        const double n1 = (double)(JET_N - 1);
        const double xi = n1 * ((double)i * (1.0 / n1));
        int k = 0;
        while (k < n_pts && pts[k].x * n1 < xi) /* first point with x >= xi */
            k++;
        const double dist = (xi - pts[k - 1].x * n1) / (pts[k].x * n1 - pts[k - 1].x * n1);
        v = dist * (pts[k].y0 - pts[k - 1].y1) + pts[k - 1].y1;
    }
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    return (uint8_t)(v * 255.0); /* truncation, as matplotlib's bytes=True */
}

void cmap_jet(float v, uint8_t rgb[3])
{
    if (isnan(v)) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    float scaled = v * (float)JET_N;
    int i = scaled < 0.0f ? 0 : (scaled >= (float)JET_N ? JET_N - 1 : (int)scaled);
    rgb[0] = jet_channel(jet_red, (int)(sizeof jet_red / sizeof jet_red[0]), i);
    rgb[1] = jet_channel(jet_green, (int)(sizeof jet_green / sizeof jet_green[0]), i);
    rgb[2] = jet_channel(jet_blue, (int)(sizeof jet_blue / sizeof jet_blue[0]), i);
}

void cmap_jet_map(const float *values, size_t n, uint8_t *rgb)
{
    for (size_t i = 0; i < n; i++)
        cmap_jet(values[i], rgb + 3 * i);
}

int cmap_overlay(const uint8_t *gray, const float *map, int h, int w, float alpha, uint8_t *rgb)
{
    int rc = 0;
    CHECK(gray && map && rgb, SC_ERR_ARG, "cmap_overlay: NULL argument");
    CHECK(h >= 1 && w >= 1, SC_ERR_ARG, "cmap_overlay: invalid size %d x %d", h, w);
    CHECK(alpha >= 0.0f && alpha <= 1.0f, SC_ERR_ARG, "cmap_overlay: alpha %g not in [0, 1]",
          (double)alpha);
    const size_t n = (size_t)h * (size_t)w;
    for (size_t i = 0; i < n; i++) {
        uint8_t *px = rgb + 3 * i;
        if (isnan(map[i])) {
            px[0] = px[1] = px[2] = gray[i];
            continue;
        }
        uint8_t c[3];
        cmap_jet(map[i], c);
        for (int k = 0; k < 3; k++) {
            float v = (1.0f - alpha) * (float)gray[i] + alpha * (float)c[k] + 0.5f;
            px[k] = (uint8_t)(v > 255.0f ? 255.0f : v);
        }
    }
cleanup:
    return rc;
}

/* -------------------------------------------------------------- drawing */

static inline void put_pixel(uint8_t *rgb, int w, int h, int x, int y, const uint8_t color[3])
{
    if (x < 0 || y < 0 || x >= w || y >= h)
        return;
    uint8_t *px = rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
    px[0] = color[0];
    px[1] = color[1];
    px[2] = color[2];
}

void cmap_draw_line(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1,
                    const uint8_t color[3])
{
    const int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        put_pixel(rgb, w, h, x0, y0, color);
        if (x0 == x1 && y0 == y1)
            break;
        const int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

void cmap_draw_rect(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1,
                    const uint8_t color[3])
{
    if (x0 > x1) {
        int t = x0;
        x0 = x1;
        x1 = t;
    }
    if (y0 > y1) {
        int t = y0;
        y0 = y1;
        y1 = t;
    }
    /* clip the spans to the buffer so huge rectangles cost nothing extra */
    const int xa = x0 < 0 ? 0 : x0, xb = x1 >= w ? w - 1 : x1;
    const int ya = y0 < 0 ? 0 : y0, yb = y1 >= h ? h - 1 : y1;
    for (int x = xa; x <= xb; x++) {
        put_pixel(rgb, w, h, x, y0, color);
        put_pixel(rgb, w, h, x, y1, color);
    }
    for (int y = ya; y <= yb; y++) {
        put_pixel(rgb, w, h, x0, y, color);
        put_pixel(rgb, w, h, x1, y, color);
    }
}

/* ----------------------------------------------------------------- font */

/* Printable ASCII from ' ' (32) to '~' (126): 7 rows of 5 columns, rows
 * separated by a space, '#' = ink. */
static const char *const font_5x7[95] = {
    "..... ..... ..... ..... ..... ..... .....", /*   */
    "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..", /* ! */
    ".#.#. .#.#. ..... ..... ..... ..... .....", /* " */
    ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.", /* # */
    "..#.. .#### #.#.. .###. ..#.# ####. ..#..", /* $ */
    "##... ##..# ...#. ..#.. .#... #..## ...##", /* % */
    ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#", /* & */
    "..#.. ..#.. ..... ..... ..... ..... .....", /* ' */
    "...#. ..#.. .#... .#... .#... ..#.. ...#.", /* ( */
    ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", /* ) */
    "..... ..#.. #.#.# .###. #.#.# ..#.. .....", /* * */
    "..... ..#.. ..#.. ##### ..#.. ..#.. .....", /* + */
    "..... ..... ..... ..... .##.. ..#.. .#...", /* , */
    "..... ..... ..... ##### ..... ..... .....", /* - */
    "..... ..... ..... ..... ..... .##.. .##..", /* . */
    "..... ....# ...#. ..#.. .#... #.... .....", /* / */
    ".###. #...# #..## #.#.# ##..# #...# .###.", /* 0 */
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.", /* 1 */
    ".###. #...# ....# ...#. ..#.. .#... #####", /* 2 */
    "##### ...#. ..#.. ...#. ....# #...# .###.", /* 3 */
    "...#. ..##. .#.#. #..#. ##### ...#. ...#.", /* 4 */
    "##### #.... ####. ....# ....# #...# .###.", /* 5 */
    "..##. .#... #.... ####. #...# #...# .###.", /* 6 */
    "##### ....# ...#. ..#.. .#... .#... .#...", /* 7 */
    ".###. #...# #...# .###. #...# #...# .###.", /* 8 */
    ".###. #...# #...# .#### ....# ...#. .##..", /* 9 */
    "..... .##.. .##.. ..... .##.. .##.. .....", /* : */
    "..... .##.. .##.. ..... .##.. ..#.. .#...", /* ; */
    "...#. ..#.. .#... #.... .#... ..#.. ...#.", /* < */
    "..... ..... ##### ..... ##### ..... .....", /* = */
    ".#... ..#.. ...#. ....# ...#. ..#.. .#...", /* > */
    ".###. #...# ....# ...#. ..#.. ..... ..#..", /* ? */
    ".###. #...# ....# .##.# #.#.# #.#.# .###.", /* @ */
    ".###. #...# #...# ##### #...# #...# #...#", /* A */
    "####. #...# #...# ####. #...# #...# ####.", /* B */
    ".###. #...# #.... #.... #.... #...# .###.", /* C */
    "###.. #..#. #...# #...# #...# #..#. ###..", /* D */
    "##### #.... #.... ####. #.... #.... #####", /* E */
    "##### #.... #.... ####. #.... #.... #....", /* F */
    ".###. #...# #.... #.### #...# #...# .####", /* G */
    "#...# #...# #...# ##### #...# #...# #...#", /* H */
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", /* I */
    "..### ...#. ...#. ...#. ...#. #..#. .##..", /* J */
    "#...# #..#. #.#.. ##... #.#.. #..#. #...#", /* K */
    "#.... #.... #.... #.... #.... #.... #####", /* L */
    "#...# ##.## #.#.# #.#.# #...# #...# #...#", /* M */
    "#...# #...# ##..# #.#.# #..## #...# #...#", /* N */
    ".###. #...# #...# #...# #...# #...# .###.", /* O */
    "####. #...# #...# ####. #.... #.... #....", /* P */
    ".###. #...# #...# #...# #.#.# #..#. .##.#", /* Q */
    "####. #...# #...# ####. #.#.. #..#. #...#", /* R */
    ".#### #.... #.... .###. ....# ....# ####.", /* S */
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", /* T */
    "#...# #...# #...# #...# #...# #...# .###.", /* U */
    "#...# #...# #...# #...# #...# .#.#. ..#..", /* V */
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", /* W */
    "#...# #...# .#.#. ..#.. .#.#. #...# #...#", /* X */
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", /* Y */
    "##### ....# ...#. ..#.. .#... #.... #####", /* Z */
    ".###. .#... .#... .#... .#... .#... .###.", /* [ */
    "..... #.... .#... ..#.. ...#. ....# .....", /* backslash */
    ".###. ...#. ...#. ...#. ...#. ...#. .###.", /* ] */
    "..#.. .#.#. #...# ..... ..... ..... .....", /* ^ */
    "..... ..... ..... ..... ..... ..... #####", /* _ */
    ".#... ..#.. ..... ..... ..... ..... .....", /* ` */
    "..... ..... .###. ....# .#### #...# .####", /* a */
    "#.... #.... #.##. ##..# #...# #...# ####.", /* b */
    "..... ..... .###. #.... #.... #...# .###.", /* c */
    "....# ....# .##.# #..## #...# #...# .####", /* d */
    "..... ..... .###. #...# ##### #.... .###.", /* e */
    "..##. .#..# .#... ###.. .#... .#... .#...", /* f */
    "..... .#### #...# #...# .#### ....# .###.", /* g */
    "#.... #.... #.##. ##..# #...# #...# #...#", /* h */
    "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.", /* i */
    "...#. ..... ..##. ...#. ...#. #..#. .##..", /* j */
    "#.... #.... #..#. #.#.. ##... #.#.. #..#.", /* k */
    ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", /* l */
    "..... ..... ##.#. #.#.# #.#.# #...# #...#", /* m */
    "..... ..... #.##. ##..# #...# #...# #...#", /* n */
    "..... ..... .###. #...# #...# #...# .###.", /* o */
    "..... ..... ####. #...# ####. #.... #....", /* p */
    "..... ..... .##.# #..## .#### ....# ....#", /* q */
    "..... ..... #.##. ##..# #.... #.... #....", /* r */
    "..... ..... .###. #.... .###. ....# ####.", /* s */
    ".#... .#... ###.. .#... .#... .#..# ..##.", /* t */
    "..... ..... #...# #...# #...# #..## .##.#", /* u */
    "..... ..... #...# #...# #...# .#.#. ..#..", /* v */
    "..... ..... #...# #...# #.#.# #.#.# .#.#.", /* w */
    "..... ..... #...# .#.#. ..#.. .#.#. #...#", /* x */
    "..... ..... #...# #...# .#### ....# .###.", /* y */
    "..... ..... ##### ...#. ..#.. .#... #####", /* z */
    "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.", /* { */
    "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", /* | */
    ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...", /* } */
    "..... ..... .#... #.#.# ...#. ..... .....", /* ~ */
};

#define GLYPH_W 5
#define GLYPH_H 7
#define CELL_W 6
#define CELL_H 8

int cmap_glyph(char ch, uint8_t rows[7])
{
    const unsigned char u = (unsigned char)ch;
    const int printable = u >= 32 && u <= 126;
    const char *g = font_5x7[(printable ? u : '?') - 32];
    for (int r = 0; r < GLYPH_H; r++) {
        uint8_t bits = 0;
        for (int c = 0; c < GLYPH_W; c++)
            bits = (uint8_t)((bits << 1) | (g[r * (GLYPH_W + 1) + c] == '#'));
        rows[r] = bits;
    }
    return printable ? 0 : -1;
}

void cmap_text_size(const char *text, int scale, int *width, int *height)
{
    if (scale < 1)
        scale = 1;
    int longest = 0, cur = 0, lines = 1;
    for (const char *p = text; p && *p; p++) {
        if (*p == '\n') {
            lines++;
            cur = 0;
            continue;
        }
        cur++;
        longest = cur > longest ? cur : longest;
    }
    if (width)
        *width = longest * CELL_W * scale;
    if (height)
        *height = lines * CELL_H * scale;
}

int cmap_glyph_drop(char ch)
{
    return ch == 'g';
}

int cmap_draw_text(uint8_t *rgb, int w, int h, int x, int y, const char *text,
                   const uint8_t color[3], int scale)
{
    if (!text)
        return 0;
    if (scale < 1)
        scale = 1;
    int pen_x = x, pen_y = y;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            pen_x = x;
            pen_y += CELL_H * scale;
            continue;
        }
        uint8_t rows[GLYPH_H];
        cmap_glyph(*p, rows);
        const int drop = cmap_glyph_drop(*p);
        for (int r = 0; r < GLYPH_H; r++)
            for (int c = 0; c < GLYPH_W; c++) {
                if (!(rows[r] & (1u << (GLYPH_W - 1 - c))))
                    continue;
                for (int sy = 0; sy < scale; sy++)
                    for (int sx = 0; sx < scale; sx++)
                        put_pixel(rgb, w, h, pen_x + c * scale + sx,
                                  pen_y + (r + drop) * scale + sy, color);
            }
        pen_x += CELL_W * scale;
    }
    int width = 0;
    cmap_text_size(text, scale, &width, NULL);
    return width;
}
