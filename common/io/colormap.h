/*
 * colormap.h - heat-map colouring and small drawing helpers for figures.
 *
 * Owned by common/io. The JET colormap is matplotlib's 'jet' (the published
 * piecewise-linear segment data, sampled into matplotlib's 256-entry table),
 * and a value maps to bytes exactly as matplotlib's cmap(v, bytes=True) does:
 * entry floor(256 v) (v = 1 -> the last entry; below 0 -> the first; above 1
 * -> the last), channel = floor(255 * table value). Buffers are RGB8,
 * row-major [h][w][3]; writing them to PNG is png_write_rgb8's job (common/io/png.h).
 * Drawing clips to the buffer: shapes partly outside are drawn partly.
 */
#ifndef COLORMAP_H
#define COLORMAP_H

#include <stddef.h>
#include <stdint.h>

/* JET colour of v (NaN gives black). */
void cmap_jet(float v, uint8_t rgb[3]);

/* JET colours of n values into rgb[3n] (caller's buffer). */
void cmap_jet_map(const float *values, size_t n, uint8_t *rgb);

/*
 * Overlay a map in [0,1] on a gray image: out = round((1-alpha)*gray +
 * alpha*jet(map)) per channel (halves round up); NaN map pixels keep the gray
 * value. gray [h,w] 0..255, map [h,w], rgb [h,w,3] (caller's). alpha in [0,1]
 * (the figures use 0.5). Returns 0 or SC_ERR_ARG.
 */
int cmap_overlay(const uint8_t *gray, const float *map, int h, int w, float alpha, uint8_t *rgb);

/* One-pixel rectangle outline with corners (x0,y0) and (x1,y1), inclusive. */
void cmap_draw_rect(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1,
                    const uint8_t color[3]);

/* One-pixel line from (x0,y0) to (x1,y1), both ends included (Bresenham). */
void cmap_draw_line(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1,
                    const uint8_t color[3]);

/*
 * Text in the built-in 5x7 font (printable ASCII; other bytes draw as '?';
 * '\n' starts a new line) with its top-left corner at (x, y). Each glyph sits
 * in a 6x8 cell, all magnified by `scale` (>= 1). Only glyph pixels are
 * painted. Returns the width of the longest line in pixels.
 */
int cmap_draw_text(uint8_t *rgb, int w, int h, int x, int y, const char *text,
                   const uint8_t color[3], int scale);

/* Width and height in pixels that cmap_draw_text would cover. */
void cmap_text_size(const char *text, int scale, int *width, int *height);

/* The 5x7 glyph of character ch: 7 rows, bit 4 = leftmost column. Returns 0
 * for printable ASCII, -1 otherwise (rows then hold the '?' glyph). */
int cmap_glyph(char ch, uint8_t rows[7]);

/* Rows by which glyph ch is drawn below the top of its 6x8 cell: 1 for 'g',
 * whose 7-row glyph would read as a '9' on the baseline, else 0. */
int cmap_glyph_drop(char ch);

#endif /* COLORMAP_H */
