/*
 * report_plot.c - raster drawing for the report's figures (report_plot.h).
 */
#include "report_plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "io/colormap.h"
#include "io/png.h"
#include "sc.h"

/* ---- the SVG copy ---- */

/* Append printf-style text to the canvas's SVG body (no-op when not recording
 * or inside another drawing call). A failed allocation stops the recording. */
static void svg_add(report_canvas_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void svg_add(report_canvas_t *c, const char *fmt, ...)
{
    if (!c->svg || c->svg_depth > 0)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->svg + c->svg_len, c->svg_cap - c->svg_len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (c->svg_len + (size_t)n < c->svg_cap) {
            c->svg_len += (size_t)n;
            return;
        }
        size_t cap = (c->svg_cap + (size_t)n + 1) * 2;
        char *grown = realloc(c->svg, cap);
        if (!grown) {
            free(c->svg);
            c->svg = NULL;
            SC_WARN("out of memory for a figure's SVG copy: it is not written");
            return;
        }
        c->svg = grown;
        c->svg_cap = cap;
    }
}

static void svg_text_escaped(report_canvas_t *c, const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '<')
            svg_add(c, "&lt;");
        else if (ch == '>')
            svg_add(c, "&gt;");
        else if (ch == '&')
            svg_add(c, "&amp;");
        else if (ch == '"')
            svg_add(c, "&quot;");
        else if ((unsigned char)ch >= 32)
            svg_add(c, "%c", ch);
    }
}

#define SVG_RGB(col) (col)[0], (col)[1], (col)[2]

report_canvas_t *report_canvas_create(int w, int h)
{
    if (w <= 0 || h <= 0 || (long)w * h > 64L * 1024 * 1024) {
        SC_ERROR("figure size %d x %d is out of range", w, h);
        return NULL;
    }
    report_canvas_t *c = calloc(1, sizeof *c);
    if (c)
        c->rgb = malloc((size_t)w * h * 3);
    if (!c || !c->rgb) {
        SC_ERROR("out of memory for a %d x %d figure", w, h);
        if (c)
            free(c);
        return NULL;
    }
    c->w = w;
    c->h = h;
    memset(c->rgb, 255, (size_t)w * h * 3);
    c->svg_cap = 4096;
    c->svg = malloc(c->svg_cap); /* NULL: no SVG copy, the PNG still works */
    if (c->svg)
        c->svg[0] = 0;
    return c;
}

void report_canvas_destroy(report_canvas_t *c)
{
    if (!c)
        return;
    free(c->rgb);
    free(c->svg);
    free(c);
}

int report_canvas_write(const report_canvas_t *c, const char *path)
{
    int rc = png_write_rgb8(path, c->w, c->h, c->rgb);
    if (rc < 0 || !c->svg)
        return rc;
    char svg_path[4096];
    size_t len = strlen(path);
    if (len > 4 && !strcmp(path + len - 4, ".png"))
        snprintf(svg_path, sizeof svg_path, "%.*s.svg", (int)(len - 4), path);
    else
        snprintf(svg_path, sizeof svg_path, "%s.svg", path);
    FILE *f = fopen(svg_path, "w");
    if (!f) {
        SC_ERROR("cannot write '%s'", svg_path);
        return SC_ERR_IO;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" "
               "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">\n"
               "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
            c->w, c->h, c->w, c->h, c->w, c->h);
    fwrite(c->svg, 1, c->svg_len, f);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        SC_ERROR("cannot write '%s'", svg_path);
        return SC_ERR_IO;
    }
    return 0;
}

static inline void put(report_canvas_t *c, int x, int y, const uint8_t color[3])
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    p[0] = color[0];
    p[1] = color[1];
    p[2] = color[2];
}

void report_fill(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3])
{
    svg_add(c, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n",
            x0 < x1 ? x0 : x1, y0 < y1 ? y0 : y1, abs(x1 - x0) + 1, abs(y1 - y0) + 1,
            SVG_RGB(color));
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
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= c->w ? c->w - 1 : x1;
    y1 = y1 >= c->h ? c->h - 1 : y1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            put(c, x, y, color);
}

static void pen(report_canvas_t *c, int x, int y, const uint8_t color[3], int width)
{
    if (width <= 1) {
        put(c, x, y, color);
        return;
    }
    int lo = -(width - 1) / 2, hi = width / 2;
    report_fill(c, x + lo, y + lo, x + hi, y + hi, color);
}

/* Bresenham; `on(step)` decides which steps are painted (dashes). */
static void stroke(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                   int width, int dash, int gap)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy, step = 0;
    for (;;) {
        if (dash <= 0 || step % (dash + gap) < dash)
            pen(c, x0, y0, color, width);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
        step++;
    }
}

/* A line in the SVG copy: pixel centres, square caps as the raster pen draws. */
static void svg_line(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                     int width, int dash, int gap)
{
    double off = (width % 2) ? 0.5 : 0.0;
    svg_add(c, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#%02x%02x%02x\" "
               "stroke-width=\"%d\" stroke-linecap=\"square\"",
            x0 + off, y0 + off, x1 + off, y1 + off, SVG_RGB(color), width < 1 ? 1 : width);
    if (dash > 0)
        svg_add(c, " stroke-dasharray=\"%d %d\"", dash, gap);
    svg_add(c, "/>\n");
}

void report_line(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                 int width)
{
    svg_line(c, x0, y0, x1, y1, color, width, 0, 0);
    c->svg_depth++;
    stroke(c, x0, y0, x1, y1, color, width, 0, 0);
    c->svg_depth--;
}

void report_dashed(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                   int width, int dash, int gap)
{
    svg_line(c, x0, y0, x1, y1, color, width, dash > 0 ? dash : 1, gap > 0 ? gap : 1);
    c->svg_depth++;
    stroke(c, x0, y0, x1, y1, color, width, dash > 0 ? dash : 1, gap > 0 ? gap : 1);
    c->svg_depth--;
}

void report_rect(report_canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t color[3],
                 int width)
{
    /* the raster draws `width` one-pixel outlines inward from the corners */
    double inset = width / 2.0;
    svg_add(c, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
               "stroke=\"#%02x%02x%02x\" stroke-width=\"%d\"/>\n",
            x0 + inset, y0 + inset, x1 - x0 + 1 - 2 * inset, y1 - y0 + 1 - 2 * inset,
            SVG_RGB(color), width);
    for (int k = 0; k < width; k++)
        cmap_draw_rect(c->rgb, c->w, c->h, x0 + k, y0 + k, x1 - k, y1 - k, color);
}

int report_text_width(const char *text, int scale)
{
    int w = 0, h = 0;
    cmap_text_size(text, scale, &w, &h);
    return w;
}

/* Glyph ch with its cell's top-left at (x, y); rotated: a quarter turn
 * counter-clockwise with the cell's bottom-left at (x, y). */
static void draw_glyph(report_canvas_t *c, int x, int y, char ch, const uint8_t color[3], int scale,
                       int rotated)
{
    uint8_t rows[7];
    cmap_glyph(ch, rows);
    int drop = cmap_glyph_drop(ch);
    for (int r = 0; r < 7; r++)
        for (int col = 0; col < 5; col++) {
            if (!(rows[r] & (1u << (4 - col))))
                continue;
            int gx = col, gy = r + drop;
            int px, py;
            if (!rotated) {
                px = x + gx * scale;
                py = y + gy * scale;
            } else {
                px = x + gy * scale;
                py = y - (gx + 1) * scale;
            }
            report_fill(c, px, py, px + scale - 1, py + scale - 1, color);
        }
}

int report_text(report_canvas_t *c, int x, int y, const char *text, const uint8_t color[3],
                int scale, report_align_t align)
{
    int w = report_text_width(text, scale);
    if (align == REPORT_CENTER)
        x -= w / 2;
    else if (align == REPORT_RIGHT)
        x -= w;
    /* real text in the SVG copy: one <text> per line, the glyph cell's 6 x 8 pitch */
    const char *line = text;
    for (int row = 0;; row++) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > 0) {
            svg_add(c, "<text x=\"%d\" y=\"%d\" font-family=\"DejaVu Sans Mono, monospace\" "
                       "font-size=\"%d\" textLength=\"%d\" fill=\"#%02x%02x%02x\">",
                    x, y + row * 8 * scale + 7 * scale, 9 * scale, (int)n * 6 * scale - scale,
                    SVG_RGB(color));
            svg_text_escaped(c, line, n);
            svg_add(c, "</text>\n");
        }
        if (!end)
            break;
        line = end + 1;
    }
    c->svg_depth++;
    int cx = x, cy = y;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            cx = x;
            cy += 8 * scale;
            continue;
        }
        draw_glyph(c, cx, cy, *p, color, scale, 0);
        cx += 6 * scale;
    }
    c->svg_depth--;
    return w;
}

void report_text_up(report_canvas_t *c, int x, int y, const char *text, const uint8_t color[3],
                    int scale)
{
    int len = (int)strlen(text);
    int bottom = y + len * 6 * scale / 2;
    if (len > 0) {
        int bx = x + 7 * scale;
        svg_add(c, "<text transform=\"translate(%d %d) rotate(-90)\" "
                   "font-family=\"DejaVu Sans Mono, monospace\" font-size=\"%d\" "
                   "textLength=\"%d\" fill=\"#%02x%02x%02x\">",
                bx, bottom, 9 * scale, len * 6 * scale - scale, SVG_RGB(color));
        svg_text_escaped(c, text, (size_t)len);
        svg_add(c, "</text>\n");
    }
    c->svg_depth++;
    for (int k = 0; k < len; k++)
        draw_glyph(c, x, bottom - k * 6 * scale, text[k], color, scale, 1);
    c->svg_depth--;
}

void report_text_fit(const char *text, int scale, int max_px, char *out, int size)
{
    int max_chars = max_px / (6 * scale);
    int len = (int)strlen(text);
    if (size <= 0)
        return;
    if (len <= max_chars || max_chars < 5) {
        snprintf(out, (size_t)size, "%.*s", max_chars < 5 && len > max_chars ? max_chars : len,
                 text);
        return;
    }
    int head = (max_chars - 2 + 1) / 2, tail = max_chars - 2 - head;
    snprintf(out, (size_t)size, "%.*s..%s", head, text, text + len - tail);
}

void report_marker(report_canvas_t *c, int x, int y, int shape, int r, const uint8_t color[3])
{
    double cx = x + 0.5, cy = y + 0.5;
    switch (((shape % 6) + 6) % 6) {
    case 0:
        svg_add(c, "<circle cx=\"%g\" cy=\"%g\" r=\"%g\" fill=\"#%02x%02x%02x\"/>\n", cx, cy,
                r + 0.5, SVG_RGB(color));
        break;
    case 1:
        svg_add(c, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>\n",
                x - r + 1, y - r + 1, 2 * r - 1, 2 * r - 1, SVG_RGB(color));
        break;
    case 2:
        svg_add(c, "<polygon points=\"%g,%g %g,%g %g,%g\" fill=\"#%02x%02x%02x\"/>\n", cx, cy - r,
                cx + r + 0.5, cy + r + 0.5, cx - r - 0.5, cy + r + 0.5, SVG_RGB(color));
        break;
    case 3:
        svg_add(c, "<polygon points=\"%g,%g %g,%g %g,%g %g,%g\" fill=\"#%02x%02x%02x\"/>\n", cx,
                cy - r - 0.5, cx + r + 0.5, cy, cx, cy + r + 0.5, cx - r - 0.5, cy, SVG_RGB(color));
        break;
    case 4:
        svg_add(c, "<path d=\"M%g %gL%g %gM%g %gL%g %g\" stroke=\"#%02x%02x%02x\" "
                   "stroke-width=\"2\"/>\n", cx - r, cy - r, cx + r, cy + r, cx - r, cy + r,
                cx + r, cy - r, SVG_RGB(color));
        break;
    default:
        svg_add(c, "<path d=\"M%g %gL%g %gM%g %gL%g %g\" stroke=\"#%02x%02x%02x\" "
                   "stroke-width=\"2\"/>\n", cx - r, cy, cx + r, cy, cx, cy - r, cx, cy + r,
                SVG_RGB(color));
        break;
    }
    c->svg_depth++;
    switch (((shape % 6) + 6) % 6) {
    case 0: /* circle */
        for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++)
                if (dx * dx + dy * dy <= r * r + r / 2)
                    put(c, x + dx, y + dy, color);
        break;
    case 1:
        report_fill(c, x - r + 1, y - r + 1, x + r - 1, y + r - 1, color);
        break;
    case 2: /* triangle, apex up */
        for (int dy = -r; dy <= r; dy++) {
            int half = (dy + r) / 2;
            report_fill(c, x - half, y + dy, x + half, y + dy, color);
        }
        break;
    case 3: /* diamond */
        for (int dy = -r; dy <= r; dy++) {
            int half = r - abs(dy);
            report_fill(c, x - half, y + dy, x + half, y + dy, color);
        }
        break;
    case 4: /* cross */
        report_line(c, x - r, y - r, x + r, y + r, color, 2);
        report_line(c, x - r, y + r, x + r, y - r, color, 2);
        break;
    default: /* plus */
        report_fill(c, x - r, y - 1, x + r, y, color);
        report_fill(c, x - 1, y - r, x, y + r, color);
        break;
    }
    c->svg_depth--;
}

/* Base64 of n bytes into the SVG body. */
static void svg_base64(report_canvas_t *c, const uint8_t *data, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char quad[5] = {0};
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < n)
            v |= data[i + 2];
        quad[0] = alphabet[(v >> 18) & 63];
        quad[1] = alphabet[(v >> 12) & 63];
        quad[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < n ? alphabet[v & 63] : '=';
        svg_add(c, "%s", quad);
    }
}

void report_blit(report_canvas_t *c, int x, int y, const uint8_t *rgb, int w, int h)
{
    if (c->svg && c->svg_depth == 0 && w > 0 && h > 0) {
        /* the image itself stays a raster: an embedded PNG (libpng's simplified API) */
        png_image img;
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        img.width = (png_uint_32)w;
        img.height = (png_uint_32)h;
        img.format = PNG_FORMAT_RGB;
        png_alloc_size_t size = 0;
        if (png_image_write_to_memory(&img, NULL, &size, 0, rgb, 0, NULL) && size > 0) {
            uint8_t *buf = malloc(size);
            if (buf && png_image_write_to_memory(&img, buf, &size, 0, rgb, 0, NULL)) {
                svg_add(c, "<image x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                           "image-rendering=\"pixelated\" xlink:href=\"data:image/png;base64,",
                        x, y, w, h);
                svg_base64(c, buf, size);
                svg_add(c, "\"/>\n");
            }
            free(buf);
        }
        png_image_free(&img);
    }
    for (int r = 0; r < h; r++) {
        int yy = y + r;
        if (yy < 0 || yy >= c->h)
            continue;
        for (int col = 0; col < w; col++) {
            int xx = x + col;
            if (xx < 0 || xx >= c->w)
                continue;
            memcpy(c->rgb + ((size_t)yy * c->w + xx) * 3, rgb + ((size_t)r * w + col) * 3, 3);
        }
    }
}

const uint8_t *report_series_color(int i)
{
    static const uint8_t palette[][3] = {
        {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
        {0, 0, 0},      {23, 60, 90},   {128, 64, 7},   {22, 80, 22},   {107, 20, 20},
        {74, 52, 95},
    };
    int n = (int)(sizeof palette / sizeof palette[0]);
    return palette[((i % n) + n) % n];
}

int report_axes_px(const report_axes_t *a, double x)
{
    double t = (x - a->xmin) / (a->xmax - a->xmin);
    return a->left + (int)lround(t * (a->right - a->left));
}

int report_axes_py(const report_axes_t *a, double y)
{
    double t = (y - a->ymin) / (a->ymax - a->ymin);
    return a->bottom - (int)lround(t * (a->bottom - a->top));
}

double report_nice_step(double range, int target)
{
    if (!(range > 0) || target < 1)
        return 1.0;
    double raw = range / target;
    double p = pow(10.0, floor(log10(raw)));
    const double steps[] = {1.0, 2.0, 2.5, 5.0, 10.0};
    for (int i = 0; i < 5; i++)
        if (steps[i] * p >= raw * (1 - 1e-9))
            return steps[i] * p;
    return 10.0 * p;
}

void report_axes_draw(report_canvas_t *c, const report_axes_t *a, double step, const char *ylabel,
                      int scale)
{
    static const uint8_t grid[3] = {225, 225, 225}, black[3] = {0, 0, 0};
    int label_w = 0;
    if (step > 0) {
        double first = ceil(a->ymin / step - 1e-9) * step;
        for (double y = first; y <= a->ymax + 1e-9 * step; y += step) {
            int py = report_axes_py(a, y);
            report_line(c, a->left + 1, py, a->right - 1, py, grid, 1);
            report_line(c, a->left - 6, py, a->left, py, black, 2);
            char buf[32];
            double shown = fabs(y) < 1e-12 ? 0.0 : y;
            if (step >= 1)
                snprintf(buf, sizeof buf, "%.0f", shown);
            else if (step >= 0.1 && fabs(step * 10 - round(step * 10)) < 1e-9)
                snprintf(buf, sizeof buf, "%.1f", shown);
            else
                snprintf(buf, sizeof buf, "%.2f", shown);
            int w = report_text(c, a->left - 10, py - 4 * scale + 1, buf, black, scale, REPORT_RIGHT);
            label_w = w > label_w ? w : label_w;
        }
    }
    report_rect(c, a->left - 1, a->top - 1, a->right + 1, a->bottom + 1, black, 2);
    if (ylabel && ylabel[0])
        report_text_up(c, a->left - 10 - label_w - 12 - 8 * scale, (a->top + a->bottom) / 2,
                       ylabel, black, scale);
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static double percentile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : n - 1;
    double frac = pos - lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

int report_box_stats(const double *x, int n, double *scratch, report_box_t *out)
{
    memset(out, 0, sizeof *out);
    int k = 0;
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) {
            scratch[k++] = x[i];
            sum += x[i];
        }
    out->n = k;
    if (k == 0) {
        out->q1 = out->median = out->q3 = out->whislo = out->whishi = out->mean = NAN;
        return SC_ERR_UNDEFINED;
    }
    qsort(scratch, (size_t)k, sizeof(double), cmp_double);
    out->mean = sum / k;
    out->q1 = percentile(scratch, k, 0.25);
    out->median = percentile(scratch, k, 0.50);
    out->q3 = percentile(scratch, k, 0.75);
    double iqr = out->q3 - out->q1;
    double lo = out->q1 - 1.5 * iqr, hi = out->q3 + 1.5 * iqr;
    /* matplotlib: the lowest value >= lo (the box edge if that lies inside the box) */
    double wlo = NAN, whi = NAN;
    for (int i = 0; i < k; i++)
        if (scratch[i] >= lo) {
            wlo = scratch[i];
            break;
        }
    for (int i = k - 1; i >= 0; i--)
        if (scratch[i] <= hi) {
            whi = scratch[i];
            break;
        }
    out->whislo = isnan(wlo) || wlo > out->q1 ? out->q1 : wlo;
    out->whishi = isnan(whi) || whi < out->q3 ? out->q3 : whi;
    for (int i = 0; i < k; i++)
        out->n_fliers += scratch[i] < out->whislo || scratch[i] > out->whishi;
    return 0;
}

void report_box_draw(report_canvas_t *c, const report_axes_t *a, int x, int hw,
                     const report_box_t *box, const double *sorted, const uint8_t color[3])
{
    static const uint8_t black[3] = {0, 0, 0};
    if (box->n == 0)
        return;
    uint8_t tint[3];
    for (int k = 0; k < 3; k++)
        tint[k] = (uint8_t)(255 - (255 - color[k]) * 35 / 100);
    int y_q1 = report_axes_py(a, box->q1), y_q3 = report_axes_py(a, box->q3);
    int y_lo = report_axes_py(a, box->whislo), y_hi = report_axes_py(a, box->whishi);
    /* whiskers and caps */
    report_line(c, x, y_q1, x, y_lo, color, 2);
    report_line(c, x, y_q3, x, y_hi, color, 2);
    report_line(c, x - hw / 2, y_lo, x + hw / 2, y_lo, color, 2);
    report_line(c, x - hw / 2, y_hi, x + hw / 2, y_hi, color, 2);
    /* box */
    report_fill(c, x - hw, y_q3, x + hw, y_q1, tint);
    report_rect(c, x - hw, y_q3, x + hw, y_q1, color, 2);
    /* median */
    int y_med = report_axes_py(a, box->median);
    report_line(c, x - hw, y_med, x + hw, y_med, black, 3);
    /* fliers */
    for (int i = 0; i < box->n; i++)
        if (sorted[i] < box->whislo || sorted[i] > box->whishi) {
            int py = report_axes_py(a, sorted[i]);
            for (int dy = -3; dy <= 3; dy++)
                for (int dx = -3; dx <= 3; dx++) {
                    int rr = dx * dx + dy * dy;
                    if (rr <= 10 && rr >= 5)
                        put(c, x + dx, py + dy, color);
                }
        }
    /* mean */
    report_marker(c, x, report_axes_py(a, box->mean), 3, 4, black);
}

void report_resize_bilinear(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    for (int y = 0; y < dh; y++) {
        double fy = (y + 0.5) * sh / dh - 0.5;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy;
        if (y0 > sh - 1)
            y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        double ty = fy - y0;
        for (int x = 0; x < dw; x++) {
            double fx = (x + 0.5) * sw / dw - 0.5;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx;
            if (x0 > sw - 1)
                x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            double tx = fx - x0;
            double top = src[(size_t)y0 * sw + x0] * (1 - tx) + src[(size_t)y0 * sw + x1] * tx;
            double bot = src[(size_t)y1 * sw + x0] * (1 - tx) + src[(size_t)y1 * sw + x1] * tx;
            dst[(size_t)y * dw + x] = (float)(top * (1 - ty) + bot * ty);
        }
    }
}

void report_mask_outline(const uint8_t *mask, int w, int h, int width, uint8_t *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t edge = 0;
            if (mask[(size_t)y * w + x])
                for (int dy = -width; dy <= width && !edge; dy++)
                    for (int dx = -width; dx <= width && !edge; dx++) {
                        int yy = y + dy, xx = x + dx;
                        edge = yy < 0 || xx < 0 || yy >= h || xx >= w || !mask[(size_t)yy * w + xx];
                    }
            out[(size_t)y * w + x] = edge;
        }
}
