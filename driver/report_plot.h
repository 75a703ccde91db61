/*
 * report_plot.h - a raster canvas for the report's figures: lines, dashes,
 * markers, text (the 5x7 font of common/io/colormap.h, also rotated), axes
 * with ticks, and box plots (module report, prefix report_).
 *
 * Coordinates are pixels, (0,0) top-left; everything clips to the canvas.
 * Colours are RGB8 triples.
 *
 * Vector copy: a canvas made by report_canvas_create also records every
 * drawing call as SVG (rectangles, lines, markers, real <text> in a
 * monospace font, blitted images as embedded PNG), and report_canvas_write
 * writes NAME.svg beside NAME.png, for papers. A canvas set up by hand
 * ({w, h, rgb}) records nothing.
 */
#ifndef REPORT_PLOT_H
#define REPORT_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct report_canvas {
    int w, h;
    uint8_t *rgb;   /* [h][w][3] */
    char *svg;      /* the SVG body recorded so far (NULL: not recording) */
    size_t svg_len, svg_cap;
    int svg_depth;  /* > 0 inside a drawing call: its inner calls are not recorded */
} report_canvas_t;

/* A white canvas; NULL on bad size or memory (logged). Free with report_canvas_destroy. */
report_canvas_t *report_canvas_create(int w, int h);
void report_canvas_destroy(report_canvas_t *c);
/* Write as an 8-bit RGB PNG, and (when recording) the SVG copy: the path
 * with ".png" replaced by ".svg". Returns 0 or < 0 (logged). */
int report_canvas_write(const report_canvas_t *c, const char *path);

/* Filled rectangle, corners inclusive. */
void report_fill(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3]);
/* Line of `width` pixels (a square pen), both ends included. */
void report_line(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                 int width);
/* Dashed line: `dash` pixels on, `gap` off, along the line. */
void report_dashed(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                   int width, int dash, int gap);
/* Rectangle outline `width` pixels thick, drawn inside the corners. */
void report_rect(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                 int width);

typedef enum report_align { REPORT_LEFT = 0, REPORT_CENTER, REPORT_RIGHT } report_align_t;
/* Text with its top at y, anchored at x by `align`. Returns its width. */
int report_text(report_canvas_t *c, int x, int y, const char *text, const uint8_t color[3],
                int scale, report_align_t align);
/* Text rotated a quarter turn (read bottom to top), its left edge at x and
 * centred vertically on y. */
void report_text_up(report_canvas_t *c, int x, int y, const char *text, const uint8_t color[3],
                    int scale);
/* Width in pixels of text at scale (the longest line). */
int report_text_width(const char *text, int scale);
/* Copy `text` into out[size], shortened with ".." in the middle to fit max_px at scale. */
void report_text_fit(const char *text, int scale, int max_px, char *out, int size);

/* Markers: 0 circle, 1 square, 2 triangle, 3 diamond, 4 cross, 5 plus (cycled). */
void report_marker(report_canvas_t *c, int x, int y, int shape, int radius, const uint8_t color[3]);

/* Copy an RGB8 image [h][w][3] with its top-left at (x, y). */
void report_blit(report_canvas_t *c, int x, int y, const uint8_t *rgb, int w, int h);

/* The i-th colour of the series palette (matplotlib's tab10, then darker variants). */
const uint8_t *report_series_color(int i);

/* ---- axes ---- */
typedef struct report_axes {
    int left, top, right, bottom;   /* the plot area in pixels (inclusive) */
    double xmin, xmax, ymin, ymax;  /* the data range it shows */
} report_axes_t;

int report_axes_px(const report_axes_t *a, double x);
int report_axes_py(const report_axes_t *a, double y);
/* A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving about
 * `target` intervals over range (> 0). */
double report_nice_step(double range, int target);
/* The frame, y ticks every `step` with labels and light grid lines, and the
 * y-axis label written upwards at the left. */
void report_axes_draw(report_canvas_t *c, const report_axes_t *a, double step, const char *ylabel,
                      int scale);

/* ---- box plots (matplotlib's conventions) ---- */
typedef struct report_box {
    int n;                      /* finite values */
    double q1, median, q3;      /* numpy 'linear' percentiles */
    double whislo, whishi;      /* most extreme values within 1.5 IQR of the box (the box edge
                                   when none) */
    double mean;
    int n_fliers;               /* values outside the whiskers */
} report_box_t;

/*
 * Statistics of the finite values of x[n]: the same numbers as
 * matplotlib.cbook.boxplot_stats(x, whis=1.5). scratch[n] is the caller's; on
 * return it holds the finite values sorted ascending (the fliers are those
 * below whislo or above whishi). Returns 0, or SC_ERR_UNDEFINED when no value
 * is finite (n = 0).
 */
int report_box_stats(const double *x, int n, double *scratch, report_box_t *out);

/* Draw a box at x centre with half width hw: box q1..q3 filled with a light
 * tint of color, median line, whiskers with caps, fliers as small circles
 * (from the sorted values), the mean as a small diamond. */
void report_box_draw(report_canvas_t *c, const report_axes_t *a, int x, int hw,
                     const report_box_t *box, const double *sorted, const uint8_t color[3]);

/* ---- image helpers ---- */

/*
 * Bilinear resize with half-pixel centres (PyTorch align_corners=False, no
 * antialiasing) of src [sh][sw] into dst [dh][dw]; no allocation.
 */
void report_resize_bilinear(const float *src, int sw, int sh, float *dst, int dw, int dh);

/* The ground-truth outline: out[i] = 1 for mask pixels within `width` pixels
 * (Chebyshev distance) of a pixel outside the mask or of the border. */
void report_mask_outline(const uint8_t *mask, int w, int h, int width, uint8_t *out);

#endif
