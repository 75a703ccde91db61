/*
 * report_figures.c - the report's PNG figures (report_figures.h).
 *
 * Heat maps follow the paper's figures: the post-processed map in [0,1]
 * (docs/methods.md section 4) coloured with JET and blended at 50% over the gray
 * radiograph (cmap_overlay), the ground truth outlined. Statistics shown in
 * the plots are the summary tables' (aggregate_compute) or, for box plots,
 * matplotlib's box statistics of the per-image values (report_box_stats).
 */
#include "report_figures.h"
#include "io/h5attr.h"

#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/imdir.h"
#include "io/imread.h"
#include "io/colormap.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/png.h"
#include "io/results.h"
#include "report_plot.h"
#include "report_tables.h"
#include "sc.h"

#define CHK_PCT_CAP 32
#define MAX_COLS 64

static const uint8_t BLACK[3] = {0, 0, 0}, WHITE[3] = {255, 255, 255}, GRAY[3] = {110, 110, 110},
                     LIGHT[3] = {235, 235, 235};

/* ---- small image helpers ---- */

/* Nearest-neighbour resize of a mask (cell centres). */
static void resize_mask(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    for (int y = 0; y < dh; y++) {
        int sy = (int)((y + 0.5) * sh / dh);
        sy = sy >= sh ? sh - 1 : sy;
        for (int x = 0; x < dw; x++) {
            int sx = (int)((x + 0.5) * sw / dw);
            sx = sx >= sw ? sw - 1 : sx;
            dst[(size_t)y * dw + x] = src[(size_t)sy * sw + sx] != 0;
        }
    }
}

/* ---- the data set ---- */

typedef struct data_dir_search {
    char dir[1024];
} data_dir_search_t;

static int job_handler(void *user, const char *section, const char *name, const char *value)
{
    data_dir_search_t *s = user;
    if (!strcmp(section, "data") && !strcmp(name, "dir"))
        snprintf(s->dir, sizeof s->dir, "%s", value);
    return 1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* An index of the image files under a data folder, opened on first use. */
typedef struct image_index {
    imdir_t *images;
    int tried;
} image_index_t;

/*
 * The image file of id under the data folder dir into buf, tried in this
 * order: images/<id>.png; CheXpert's <patient>/<study>/<view>.jpg|png of a
 * CheXlocalize id under dir or its usual image folders (whose file names
 * repeat across patients, so the index below cannot hold them); a PNG, JPEG
 * or DICOM named <id> anywhere under dir (the index, walked once). Returns 1
 * when found.
 */
static int find_image(const char *dir, image_index_t *index, const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/images/%s.png", dir, id);
    if (file_exists(buf))
        return 1;
    const char *subdirs[] = {"", "/images", "/valid", "/val", "/test"}, *exts[] = {"jpg", "png"};
    if (strchr(id, '_'))
        for (size_t k = 0; k < sizeof subdirs / sizeof subdirs[0]; k++)
            for (size_t e = 0; e < 2; e++) {
                char images_dir[PATH_MAX];
                snprintf(images_dir, sizeof images_dir, "%s%s", dir, subdirs[k]);
                if (dataset_chexpert_path(images_dir, id, exts[e], buf, size) == SC_OK && file_exists(buf))
                    return 1;
            }
    if (!index->tried++ && imdir_open(dir, &index->images) < 0)
        index->images = NULL;
    const char *found = index->images ? imdir_find(index->images, id) : NULL;
    if (found) {
        snprintf(buf, size, "%s", found);
        return 1;
    }
    return 0;
}

/* Does dir hold the image file of one of the first images (see find_image)? */
static int holds_images(const report_data_t *d, const char *dir)
{
    image_index_t index = {NULL, 0};
    int found = 0;
    for (int i = 0; i < d->n_images && i < 8 && !found; i++) {
        char path[PATH_MAX];
        found = find_image(dir, &index, d->image_ids[i], path, sizeof path);
    }
    imdir_destroy(index.images);
    return found;
}

int report_figures_find_data(const report_data_t *d, const char *override, char *out, size_t size,
                             char *why, size_t why_size)
{
    out[0] = 0;
    if (why_size)
        why[0] = 0;
    if (override) {
        if (holds_images(d, override)) {
            snprintf(out, size, "%s", override);
            return 0;
        }
        snprintf(why, why_size, "--data %s: no image file for the file's images (e.g. %s: looked for %s/images/<id>.png, "
                 "a PNG, JPEG or DICOM named <id> below it, and CheXpert's <patient>/<study>/<view>.jpg)",
                 override, override, d->n_images ? d->image_ids[0] : "?");
        SC_ERROR("%s", why);
        return SC_ERR_IO;
    }
    data_dir_search_t s = {{0}};
    if (d->job_text[0])
        ini_parse_string(d->job_text, job_handler, &s);
    if (!s.dir[0]) {
        snprintf(why, why_size, "the job stored in the results file names no [data] dir");
        return SC_ERR_IO;
    }
    if (holds_images(d, s.dir)) { /* absolute, or relative to the current directory */
        snprintf(out, size, "%s", s.dir);
        return 0;
    }
    if (s.dir[0] != '/') {
        /* relative to where the run started: try the results file's directory and its parents */
        char base[PATH_MAX];
        if (realpath(d->path, base)) {
            char *slash;
            while ((slash = strrchr(base, '/')) != NULL) {
                *slash = 0;
                char cand[PATH_MAX + 1100];
                snprintf(cand, sizeof cand, "%s/%s", base[0] ? base : "", s.dir);
                if (holds_images(d, cand)) {
                    snprintf(out, size, "%s", cand);
                    return 0;
                }
                if (!base[0])
                    break;
            }
        }
    }
    snprintf(why, why_size,
             "the data set '%s' named by the job was not found (relative to the current directory, "
             "the results file's directory or its parents); give it with --data DIR",
             s.dir);
    return SC_ERR_IO;
}

/* ---- tiles: one heat map over its radiograph ---- */

typedef struct tiler {
    report_data_t *d;
    int T;                      /* tile size in pixels */
    char data_dir[1024];        /* "" = neutral background */
    image_index_t index;        /* image files under data_dir by id (built on first use) */
    image_loader_t *loader;
    int loader_mode;
    float *map, *map_t, *gray_f;   /* [H*W], [T*T], [T*T] */
    uint8_t *gray, *mask_t, *outline, *rgb; /* [T*T], [T*T], [T*T], [T*T*3] */
    int gray_image;             /* image whose gray plane is loaded (-1 none) */
    int missing_images;         /* radiographs that could not be read */
} tiler_t;

static void tiler_free(tiler_t *t)
{
    image_loader_destroy(t->loader);
    imdir_destroy(t->index.images);
    sc_free(t->map);
    sc_free(t->map_t);
    sc_free(t->gray_f);
    sc_free(t->gray);
    sc_free(t->mask_t);
    sc_free(t->outline);
    sc_free(t->rgb);
    memset(t, 0, sizeof *t);
}

static int tile_size(int size)
{
    if (size < 128)
        return size * ((128 + size - 1) / size);
    return size > 256 ? 256 : size;
}

static int tiler_init(tiler_t *t, report_data_t *d, const char *data_dir)
{
    int rc = 0;
    memset(t, 0, sizeof *t);
    t->d = d;
    t->gray_image = -1;
    int size = d->h > d->w ? d->h : d->w;
    t->T = tile_size(size);
    size_t n = (size_t)t->T * t->T;
    snprintf(t->data_dir, sizeof t->data_dir, "%s", data_dir ? data_dir : "");
    t->map = sc_calloc((size_t)d->h * d->w, sizeof(float));
    t->map_t = sc_calloc(n, sizeof(float));
    t->gray_f = sc_calloc(n, sizeof(float));
    t->gray = sc_calloc(n, 1);
    t->mask_t = sc_calloc(n, 1);
    t->outline = sc_calloc(n, 1);
    t->rgb = sc_calloc(n * 3, 1);
    CHECK(t->map && t->map_t && t->gray_f && t->gray && t->mask_t && t->outline && t->rgb,
          SC_ERR_NOMEM, "out of memory for the figure tiles");
cleanup:
    if (rc < 0)
        tiler_free(t);
    return rc;
}

/* The gray radiograph of image i at T x T into t->gray (neutral when unavailable). */
static void tiler_gray(tiler_t *t, int i)
{
    if (t->gray_image == i)
        return;
    t->gray_image = i;
    size_t n = (size_t)t->T * t->T;
    if (t->data_dir[0]) {
        char path[PATH_MAX];
        find_image(t->data_dir, &t->index, t->d->image_ids[i], path, sizeof path);
        int sw = 0, sh = 0;
        char why[512];
        if (imread_probe(path, &sw, &sh, why, sizeof why) == 0) {
            image_resize_t mode = sw > t->T ? IMAGE_RESIZE_AREA : IMAGE_RESIZE_BILINEAR;
            if (!t->loader || t->loader_mode != (int)mode) {
                image_loader_destroy(t->loader);
                t->loader = image_loader_create(t->T, mode, IMAGE_NORM_UNIT);
                t->loader_mode = (int)mode;
            }
            if (t->loader && image_loader_load(t->loader, path, NULL, t->gray_f) == 0) {
                for (size_t k = 0; k < n; k++) {
                    float v = t->gray_f[k];
                    t->gray[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrintf(v));
                }
                return;
            }
        }
        t->missing_images++;
    }
    memset(t->gray, 150, n);
}

/*
 * Draw the tile of (method m, variant v, image i) into t->rgb: the overlay,
 * then the ground-truth outline in white. Not done cells give a light gray
 * tile with "not done". Returns 1 when a map was drawn.
 */
static int tiler_draw(tiler_t *t, int m, int v, int i)
{
    report_data_t *d = t->d;
    int T = t->T;
    size_t n = (size_t)T * T;
    tiler_gray(t, i);
    int drawn = 0;
    if (report_data_cell_done(d, v, i) && report_data_read_map(d, m, v, i, t->map) == 0) {
        report_resize_bilinear(t->map, d->w, d->h, t->map_t, T, T);
        cmap_overlay(t->gray, t->map_t, T, T, 0.5f, t->rgb);
        drawn = 1;
    } else {
        for (size_t k = 0; k < n; k++)
            t->rgb[3 * k] = t->rgb[3 * k + 1] = t->rgb[3 * k + 2] = (uint8_t)(200 + t->gray[k] / 8);
    }
    resize_mask(d->gt + (size_t)i * d->h * d->w, d->w, d->h, t->mask_t, T, T);
    report_mask_outline(t->mask_t, T, T, T >= 96 ? 2 : 1, t->outline);
    for (size_t k = 0; k < n; k++)
        if (t->outline[k])
            t->rgb[3 * k] = t->rgb[3 * k + 1] = t->rgb[3 * k + 2] = 255;
    if (!drawn) {
        report_canvas_t view = {.w = T, .h = T, .rgb = t->rgb};
        int scale = T >= 120 ? 2 : 1, tw = report_text_width("not done", scale);
        report_fill(&view, (T - tw) / 2 - 4, T / 2 - 6 * scale, (T + tw) / 2 + 4, T / 2 + 5 * scale,
                    WHITE);
        report_text(&view, T / 2, T / 2 - 4 * scale + 1, "not done", BLACK, scale, REPORT_CENTER);
    }
    return drawn;
}

/* ---- shared decorations ---- */

/* A horizontal JET colour bar with ticks at 0, .25, .5, .75, 1. Returns its height. */
static int draw_colorbar(report_canvas_t *c, int x, int y, int w, const char *label)
{
    int bar_h = 16;
    for (int k = 0; k < w; k++) {
        uint8_t rgb[3];
        cmap_jet((float)k / (float)(w - 1), rgb);
        report_fill(c, x + k, y, x + k, y + bar_h - 1, rgb);
    }
    report_rect(c, x - 1, y - 1, x + w, y + bar_h, BLACK, 1);
    const char *ticks[] = {"0", "0.25", "0.5", "0.75", "1"};
    for (int k = 0; k < 5; k++) {
        int px = x + (w - 1) * k / 4;
        report_line(c, px, y + bar_h, px, y + bar_h + 5, BLACK, 2);
        report_text(c, px, y + bar_h + 9, ticks[k], BLACK, 2, REPORT_CENTER);
    }
    report_text(c, x + w / 2, y + bar_h + 31, label, BLACK, 2, REPORT_CENTER);
    return bar_h + 31 + 16;
}

/* The legend entry for the ground-truth outline. */
static void draw_gt_legend(report_canvas_t *c, int x, int y)
{
    report_fill(c, x, y, x + 40, y + 24, (const uint8_t[3]){60, 60, 60});
    report_rect(c, x + 6, y + 4, x + 34, y + 20, WHITE, 2);
    report_text(c, x + 50, y + 5, "ground truth", BLACK, 2, REPORT_LEFT);
}

static int add_figure(report_figures_t *f, const char *file, const char *title, int w, int h,
                      const char *caption)
{
    report_figure_t *items = realloc(f->items, (size_t)(f->n + 1) * sizeof *items);
    if (!items)
        return SC_ERR_NOMEM;
    f->items = items;
    report_figure_t *g = &items[f->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->file, sizeof g->file, "%s", file);
    snprintf(g->title, sizeof g->title, "%s", title);
    snprintf(g->caption, sizeof g->caption, "%s", caption);
    g->w = w;
    g->h = h;
    return 0;
}

static void add_note(report_figures_t *f, const char *fmt, const char *arg)
{
    size_t used = strlen(f->notes);
    if (used + 2 < sizeof f->notes) {
        if (used)
            f->notes[used++] = ' ';
        snprintf(f->notes + used, sizeof f->notes - used, fmt, arg);
    }
}

static void safe_name(const char *in, char *out, size_t size)
{
    snprintf(out, size, "%s", in);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            *p = '_';
}

static int write_canvas(report_canvas_t *c, const char *dir, const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return report_canvas_write(c, path);
}

static int method_label_width(const report_data_t *d)
{
    int w = 0;
    for (int m = 0; m < d->n_methods; m++) {
        int k = report_text_width(d->methods[m], 2);
        w = k > w ? k : w;
    }
    return w;
}

/* An image id centred at x over a column of width T: one line at scale 2
 * when it fits, else two lines split at the last '-', '_' or '.' (or the
 * middle), each shortened with ".." if still too long. 36 pixels high. */
static void draw_id_header(report_canvas_t *c, int x, int y, const char *id, int T)
{
    char line[2][128];
    int len = (int)strlen(id);
    if (report_text_width(id, 2) <= T || len < 2) {
        report_text_fit(id, 2, T, line[0], sizeof line[0]);
        report_text(c, x, y + 18, line[0], BLACK, 2, REPORT_CENTER);
        return;
    }
    int cut = len / 2;
    for (int k = len - 2; k > 0; k--)
        if (id[k] == '-' || id[k] == '_' || id[k] == '.') {
            cut = k + 1;
            break;
        }
    char head[128];
    snprintf(head, sizeof head, "%.*s", cut < 127 ? cut : 127, id);
    report_text_fit(head, 2, T, line[0], sizeof line[0]);
    report_text_fit(id + cut, 2, T, line[1], sizeof line[1]);
    report_text(c, x, y, line[0], BLACK, 2, REPORT_CENTER);
    report_text(c, x, y + 18, line[1], BLACK, 2, REPORT_CENTER);
}

/* ---- montage: methods x images ---- */

static int fig_montage(report_data_t *d, const report_fig_options_t *opt, tiler_t *t,
                       const char *dir, report_figures_t *f)
{
    int rc = 0;
    report_canvas_t *c = NULL;
    int v = -1;
    if (opt->variant) {
        v = report_data_variant(d, opt->variant);
        CHECK(v >= 0, SC_ERR_ARG, "--variant %s: the results file has no such model variant",
              opt->variant);
    }
    /* default: the first trained model; on a partial file the first with done cells */
    for (int pass = 0; pass < 3 && v < 0 && !opt->variant; pass++)
        for (int u = 0; u < d->n_variants && v < 0; u++) {
            int done = 0;
            for (int i = 0; i < d->n_images; i++)
                done += report_data_cell_done(d, u, i);
            if ((pass == 0 && !strcmp(d->kinds[u], "trained") && done) ||
                (pass == 1 && done) || (pass == 2 && !strcmp(d->kinds[u], "trained")))
                v = u;
        }
    if (v < 0)
        v = 0;
    int want = opt->n_images > 0 ? opt->n_images : 6;
    if (want > MAX_COLS)
        want = MAX_COLS;
    int images[MAX_COLS], n_img = 0;
    for (int i = 0; i < d->n_images && n_img < want; i++)
        if (report_data_cell_done(d, v, i))
            images[n_img++] = i;
    if (!n_img || !d->has_maps) {
        add_note(f, "montage: %s.", !d->has_maps ? "the file stores no maps (maps = none)"
                                                 : "no image of the model is done yet");
        return 0;
    }
    int k_auprc = report_data_metric(d, "auprc");
    int T = t->T, gap = 6, under = k_auprc >= 0 ? 22 : 4;
    int label_w = method_label_width(d) + 20;
    int left = 16 + label_w, top = 16 + 24 + 8 + 40;
    int grid_w = n_img * (T + gap) - gap, grid_h = d->n_methods * (T + under + gap);
    int bottom_h = 110;
    int W = left + grid_w + 24, H = top + grid_h + bottom_h;
    if (W < 760)
        W = 760;
    c = report_canvas_create(W, H);
    CHECK(c, SC_ERR_NOMEM, "cannot allocate the montage");
    char title[512];
    snprintf(title, sizeof title, "Saliency maps of model %s (JET at 50%% over the radiograph)",
             d->variants[v]);
    report_text(c, 16, 16, title, BLACK, 2, REPORT_LEFT);
    for (int col = 0; col < n_img; col++)
        draw_id_header(c, left + col * (T + gap) + T / 2, top - 40, d->image_ids[images[col]], T);
    for (int m = 0; m < d->n_methods; m++) {
        int y = top + m * (T + under + gap);
        report_text(c, left - 12, y + T / 2 - 7, d->methods[m], BLACK, 2, REPORT_RIGHT);
        for (int col = 0; col < n_img; col++) {
            int x = left + col * (T + gap), i = images[col];
            tiler_draw(t, m, v, i);
            report_blit(c, x, y, t->rgb, T, T);
            if (k_auprc >= 0) {
                double a = report_data_metric_value(d, k_auprc, m, v, i);
                char buf[48];
                if (isfinite(a))
                    snprintf(buf, sizeof buf, "AUPRC %.2f", a);
                else
                    snprintf(buf, sizeof buf, "AUPRC n/a");
                report_text(c, x + T / 2, y + T + 4, buf, BLACK, T >= 120 ? 2 : 1, REPORT_CENTER);
            }
        }
    }
    int yb = top + grid_h + 10;
    int bar_w = grid_w < 420 ? grid_w : 420;
    if (bar_w < 300)
        bar_w = 300;
    draw_colorbar(c, left, yb, bar_w, "map value");
    draw_gt_legend(c, left + bar_w + 40, yb);
    if (!t->data_dir[0] || t->missing_images) {
        report_text(c, left + bar_w + 40, yb + 40, "radiographs not found:", GRAY, 2, REPORT_LEFT);
        report_text(c, left + bar_w + 40, yb + 60, "neutral gray background", GRAY, 2, REPORT_LEFT);
    }
    CHECK_RC(write_canvas(c, dir, "montage.png"));
    char caption[2048];
    snprintf(caption, sizeof caption,
             "Rows: saliency methods; columns: the first %d evaluated images of model %s. Each map "
             "(post-processed to [0,1], docs/methods.md section 4) is coloured with JET and blended at "
             "50%% over the radiograph; the white outline is the ground truth; under each map its "
             "AUPRC against the ground truth.%s",
             n_img, d->variants[v],
             t->data_dir[0] && !t->missing_images
                 ? ""
                 : " The radiographs were not found (salcheck report --data DIR): the maps are drawn "
                   "over a neutral gray background.");
    CHECK_RC(add_figure(f, "montage.png", "Saliency maps per method and image", W, H, caption));
cleanup:
    report_canvas_destroy(c);
    return rc;
}

/* ---- cascading strip: methods x states for one image ---- */

static int fig_strip(report_data_t *d, const report_fig_options_t *opt, tiler_t *t, int base,
                     const char *dir, report_figures_t *f)
{
    int rc = 0;
    report_canvas_t *c = NULL;
    int cols[MAX_COLS], n_cols = 0;
    cols[n_cols++] = base;
    n_cols += report_data_variants_of(d, "cascading", d->bases[base], cols + 1, MAX_COLS - 2);
    if (n_cols == 1)
        return 0;
    n_cols += report_data_variants_of(d, "untrained", d->bases[base], cols + n_cols, 1);
    int ssim = report_data_sim(d, report_tables_ssim_name(d) ? report_tables_ssim_name(d) : "ssim");
    /* the image: the option, else the first done in the most states */
    int img = -1, best = -1;
    if (opt->image) {
        for (int i = 0; i < d->n_images; i++)
            if (!strcmp(d->image_ids[i], opt->image))
                img = i;
        CHECK(img >= 0, SC_ERR_ARG, "--image %s: the results file has no such image", opt->image);
    } else {
        for (int i = 0; i < d->n_images; i++) {
            int n = 0;
            for (int k = 0; k < n_cols; k++)
                n += report_data_cell_done(d, cols[k], i);
            if (n > best) {
                best = n;
                img = i;
            }
        }
    }
    char name[AGGREGATE_NAME_W + 32], file[AGGREGATE_NAME_W + 48];
    safe_name(d->bases[base], name, sizeof name);
    snprintf(file, sizeof file, "cascading_%s.png", name);
    if (img < 0 || best == 0 || !d->has_maps) {
        add_note(f, "cascading strip of %s: no state is done yet.", d->bases[base]);
        return 0;
    }
    int T = t->T, gap = 6, under = 22;
    int label_w = method_label_width(d) + 20;
    int left = 16 + label_w, top = 16 + 24 + 8 + 24;
    int grid_w = n_cols * (T + gap) - gap, grid_h = d->n_methods * (T + under + gap);
    int W = left + grid_w + 24, H = top + grid_h + 110;
    if (W < 760)
        W = 760;
    c = report_canvas_create(W, H);
    CHECK(c, SC_ERR_NOMEM, "cannot allocate the cascading strip");
    char title[512];
    snprintf(title, sizeof title, "Cascading randomization of %s, image %s", d->bases[base],
             d->image_ids[img]);
    report_text(c, 16, 16, title, BLACK, 2, REPORT_LEFT);
    for (int k = 0; k < n_cols; k++) {
        const char *label = k == 0 ? "original"
                            : !strcmp(d->kinds[cols[k]], "untrained")
                                ? "all random"
                                : report_data_variant_label(d, cols[k]);
        char fit[64];
        report_text_fit(label, 2, T, fit, sizeof fit);
        report_text(c, left + k * (T + gap) + T / 2, top - 24, fit, BLACK, 2, REPORT_CENTER);
    }
    for (int m = 0; m < d->n_methods; m++) {
        int y = top + m * (T + under + gap);
        report_text(c, left - 12, y + T / 2 - 7, d->methods[m], BLACK, 2, REPORT_RIGHT);
        for (int k = 0; k < n_cols; k++) {
            int x = left + k * (T + gap);
            tiler_draw(t, m, cols[k], img);
            report_blit(c, x, y, t->rgb, T, T);
            if (k == 0 || ssim < 0)
                continue;
            int exp = !strcmp(d->kinds[cols[k]], "untrained") ? RESULTS_EXP_UNTRAINED
                                                                 : RESULTS_EXP_CASCADING;
            int p = report_data_find_pair(d, exp, cols[k], img, base, img);
            double s = p >= 0 ? report_data_sim_value(d, ssim, m, p) : NAN;
            char buf[48];
            if (isfinite(s))
                snprintf(buf, sizeof buf, "SSIM %.2f", s);
            else
                snprintf(buf, sizeof buf, "%s", p >= 0 && !d->pair_done[p] ? "pending" : "SSIM n/a");
            report_text(c, x + T / 2, y + T + 4, buf, BLACK, T >= 120 ? 2 : 1, REPORT_CENTER);
        }
    }
    int yb = top + grid_h + 10;
    draw_colorbar(c, left, yb, 360, "map value");
    draw_gt_legend(c, left + 400, yb);
    CHECK_RC(write_canvas(c, dir, file));
    char caption[2048], ftitle[AGGREGATE_NAME_W + 64];
    snprintf(ftitle, sizeof ftitle, "Cascading randomization of %s", d->bases[base]);
    snprintf(caption, sizeof caption,
             "Maps of image %s as the blocks of model %s are re-initialized cumulatively from the "
             "top (left to right; \"all random\" is the fully re-initialized model). Under each "
             "map: its SSIM to the original map. A trustworthy method's maps change as the "
             "weights are randomized (Adebayo et al. 2018; the paper's figure 3).",
             d->image_ids[img], d->bases[base]);
    CHECK_RC(add_figure(f, file, ftitle, W, H, caption));
cleanup:
    report_canvas_destroy(c);
    return rc;
}

/* ---- x-axis category labels, staggered onto two rows when they would collide ---- */

static int draw_categories(report_canvas_t *c, const report_axes_t *a, const int *xs,
                           char labels[][64], int n, int spacing)
{
    int widest = 0;
    for (int k = 0; k < n; k++) {
        int w = report_text_width(labels[k], 2);
        widest = w > widest ? w : widest;
    }
    int stagger = widest > spacing - 6, lines = 1;
    for (int k = 0; k < n; k++) {
        int h = 0;
        cmap_text_size(labels[k], 2, NULL, &h);
        lines = h / 16 > lines ? h / 16 : lines;
    }
    int row_h = 16 * lines + 4;
    for (int k = 0; k < n; k++) {
        report_line(c, xs[k], a->bottom, xs[k], a->bottom + 6, BLACK, 2);
        int y = a->bottom + 12 + (stagger && (k % 2) ? row_h : 0);
        if (stagger && (k % 2))
            report_line(c, xs[k], a->bottom + 6, xs[k], y - 3, LIGHT, 1);
        report_text(c, xs[k], y, labels[k], BLACK, 2, REPORT_CENTER);
    }
    return (stagger ? 2 * row_h : row_h) + 4;
}

/* ---- SSIM versus randomization state ---- */

static int fig_ssim_states(report_data_t *d, int base, const char *dir, report_figures_t *f)
{
    int rc = 0;
    report_canvas_t *c = NULL;
    double *ys = NULL, *baseline = NULL;
    const char *sim = report_tables_ssim_name(d);
    if (!sim)
        return 0;
    int cols[MAX_COLS], n_states;
    n_states = report_data_variants_of(d, "cascading", d->bases[base], cols, MAX_COLS - 2);
    if (!n_states)
        return 0;
    int n_untrained = report_data_variants_of(d, "untrained", d->bases[base], cols + n_states, 1);
    int n_x = 1 + n_states + n_untrained;
    int M = d->n_methods;
    ys = calloc((size_t)M * n_x + 1, sizeof(double));
    baseline = calloc((size_t)M + 1, sizeof(double));
    CHECK_ALLOC(ys);
    CHECK_ALLOC(baseline);
    double ymin = 0.0;
    int any = 0;
    for (int m = 0; m < M; m++) {
        ys[(size_t)m * n_x] = 1.0; /* SSIM(map, map) */
        for (int k = 0; k < n_states + n_untrained; k++) {
            const char *exp = k < n_states ? "cascading" : "untrained";
            double y = NAN;
            for (size_t r = 0; r < d->tables.n_pairs; r++) {
                const aggregate_pair_row_t *p = &d->tables.pairs[r];
                if (!strcmp(p->experiment, exp) && !strcmp(p->variant_a, d->variants[cols[k]]) &&
                    !strcmp(p->variant_b, d->variants[base]) && !strcmp(p->method, d->methods[m]) &&
                    !strcmp(p->similarity, sim) && p->n)
                    y = p->mean;
            }
            ys[(size_t)m * n_x + 1 + k] = y;
            if (isfinite(y)) {
                any = 1;
                ymin = y < ymin ? y : ymin;
            }
        }
        baseline[m] = NAN;
        for (size_t r = 0; r < d->tables.n_pairs; r++) {
            const aggregate_pair_row_t *p = &d->tables.pairs[r];
            if (!strcmp(p->experiment, "baseline") && !strcmp(p->variant_a, d->variants[base]) &&
                !strcmp(p->method, d->methods[m]) && !strcmp(p->similarity, sim) && p->n)
                baseline[m] = p->mean;
        }
        if (isfinite(baseline[m]) && baseline[m] < ymin)
            ymin = baseline[m];
    }
    if (!any) {
        add_note(f, "SSIM versus state of %s: no cascading pair is done yet.", d->bases[base]);
        goto cleanup;
    }
    ymin = ymin < 0 ? floor(ymin / 0.2) * 0.2 : 0.0;
    int legend_w = method_label_width(d) + 90;
    int W = 1100 + legend_w, H = 620;
    c = report_canvas_create(W, H);
    CHECK(c, SC_ERR_NOMEM, "cannot allocate the SSIM plot");
    report_axes_t a = {.left = 130, .top = 70, .right = W - legend_w - 40, .bottom = H - 100,
                       .xmin = -0.5, .xmax = n_x - 0.5, .ymin = ymin, .ymax = 1.05};
    char title[512];
    snprintf(title, sizeof title, "Cascading randomization of %s: mean %s(state, original)",
             d->bases[base], report_tables_sim_label(sim));
    report_text(c, a.left, 20, title, BLACK, 2, REPORT_LEFT);
    report_axes_draw(c, &a, 0.1 * (1.05 - ymin > 1.5 ? 2 : 1), "mean SSIM to the original map", 2);
    int xs[MAX_COLS];
    char labels[MAX_COLS][64];
    for (int k = 0; k < n_x; k++) {
        xs[k] = report_axes_px(&a, k);
        if (k == 0)
            snprintf(labels[k], sizeof labels[k], "original");
        else if (k > n_states)
            snprintf(labels[k], sizeof labels[k], "all");
        else {
            const char *lab = report_data_variant_label(d, cols[k - 1]);
            const char *colon = strchr(lab, ':');
            snprintf(labels[k], sizeof labels[k], "%s", colon ? colon + 1 : lab);
        }
    }
    /* a partial file: the pairs behind each point, under its label */
    int partial = 0, planned[MAX_COLS] = {0}, done[MAX_COLS] = {0};
    for (int k = 1; k < n_x; k++) {
        report_tables_pair_counts(d, k > n_states ? RESULTS_EXP_UNTRAINED : RESULTS_EXP_CASCADING,
                                  cols[k - 1], base, &planned[k], &done[k]);
        partial |= done[k] < planned[k];
    }
    for (int k = 1; k < n_x && partial; k++) {
        size_t len = strlen(labels[k]);
        snprintf(labels[k] + len, sizeof labels[k] - len, "\n%d/%d", done[k], planned[k]);
    }
    int used = draw_categories(c, &a, xs, labels, n_x, n_x > 1 ? xs[1] - xs[0] : 200);
    report_text(c, (a.left + a.right) / 2, a.bottom + 14 + used,
                partial ? "blocks re-initialized cumulatively, top first (k/n: pairs done so far)"
                        : "blocks re-initialized cumulatively, top first (all = fully randomized)",
                BLACK, 2, REPORT_CENTER);
    /* baselines (dashed), then the lines on top */
    for (int m = 0; m < M; m++)
        if (isfinite(baseline[m])) {
            int py = report_axes_py(&a, baseline[m]);
            report_dashed(c, a.left + 2, py, a.right - 2, py, report_series_color(m), 2, 10, 7);
        }
    for (int m = 0; m < M; m++) {
        const uint8_t *col = report_series_color(m);
        for (int k = 0; k + 1 < n_x; k++) {
            double y0 = ys[(size_t)m * n_x + k], y1 = ys[(size_t)m * n_x + k + 1];
            if (isfinite(y0) && isfinite(y1))
                report_line(c, xs[k], report_axes_py(&a, y0), xs[k + 1], report_axes_py(&a, y1),
                            col, 3);
        }
        for (int k = 0; k < n_x; k++) {
            double y = ys[(size_t)m * n_x + k];
            if (isfinite(y))
                report_marker(c, xs[k], report_axes_py(&a, y), m, 5, col);
        }
    }
    /* legend */
    int lx = a.right + 30, ly = a.top;
    report_text(c, lx, ly, "method", BLACK, 2, REPORT_LEFT);
    ly += 26;
    for (int m = 0; m < M; m++) {
        const uint8_t *col = report_series_color(m);
        report_line(c, lx, ly + 7, lx + 30, ly + 7, col, 3);
        report_marker(c, lx + 15, ly + 7, m, 5, col);
        report_text(c, lx + 40, ly, d->methods[m], BLACK, 2, REPORT_LEFT);
        ly += 24;
    }
    ly += 12;
    report_dashed(c, lx, ly + 7, lx + 30, ly + 7, BLACK, 2, 10, 7);
    report_text(c, lx + 40, ly, "baseline", BLACK, 2, REPORT_LEFT);
    report_text(c, lx, ly + 22, "(same colour)", GRAY, 2, REPORT_LEFT);
    char name[AGGREGATE_NAME_W + 32], file[AGGREGATE_NAME_W + 48];
    safe_name(d->bases[base], name, sizeof name);
    snprintf(file, sizeof file, "ssim_states_%s.png", name);
    CHECK_RC(write_canvas(c, dir, file));
    char caption[2048], ftitle[AGGREGATE_NAME_W + 64];
    snprintf(ftitle, sizeof ftitle, "SSIM versus randomization state of %s", d->bases[base]);
    snprintf(caption, sizeof caption,
             "Mean %s between the maps of each cascading state and the original maps of %s, over "
             "the randomization images (the original is 1 by definition). Dashed, in the method's "
             "colour: its randomization baseline, the mean %s between maps of different images of "
             "the trained model. A method passes the sanity check when its line falls below its "
             "baseline.",
             report_tables_sim_label(sim), d->bases[base], report_tables_sim_label(sim));
    CHECK_RC(add_figure(f, file, ftitle, W, H, caption));
cleanup:
    free(ys);
    free(baseline);
    report_canvas_destroy(c);
    return rc;
}

/* ---- box plots ---- */

typedef struct box_series {
    char label[AGGREGATE_NAME_W + 64];
    double *values;  /* [M][n_max] */
    int *count;      /* [M] */
} box_series_t;

/*
 * One grouped box plot: groups = methods, one box per series. values of
 * series s and method m: series[s].values[m * n_max .. + count[m]].
 * hline: a dashed reference line (NaN: none) with its label.
 */
static int draw_boxes(report_data_t *d, const char *dir, const char *file, const char *title,
                      const char *ylabel, box_series_t *series, int n_series, int n_max,
                      double hline, const char *hline_label, report_canvas_t **out)
{
    int rc = 0;
    int M = d->n_methods;
    double *scratch = calloc((size_t)n_max + 1, sizeof(double));
    report_canvas_t *c = NULL;
    CHECK_ALLOC(scratch);
    double ymin = 0, ymax = 1;
    for (int s = 0; s < n_series; s++)
        for (int m = 0; m < M; m++)
            for (int k = 0; k < series[s].count[m]; k++) {
                double v = series[s].values[(size_t)m * n_max + k];
                if (isfinite(v)) {
                    ymin = v < ymin ? v : ymin;
                    ymax = v > ymax ? v : ymax;
                }
            }
    ymin = ymin < 0 ? floor(ymin / 0.2) * 0.2 : 0;
    ymax = ymax > 1 ? ceil(ymax / 0.2) * 0.2 : 1;
    ymax += 0.04 * (ymax - ymin); /* room for values at the top */
    int label_w = method_label_width(d);
    int box_hw = 12, slot = 2 * box_hw + 8;
    int group_w = n_series * slot + 24;
    if (group_w < label_w + 16)
        group_w = label_w + 16;
    int W = 130 + M * group_w + 40, H = 620;
    if (W < 900)
        W = 900;
    c = report_canvas_create(W, H);
    CHECK(c, SC_ERR_NOMEM, "cannot allocate a box plot");
    report_axes_t a = {.left = 130, .top = 100, .right = W - 40, .bottom = H - 80,
                       .xmin = 0, .xmax = 1, .ymin = ymin, .ymax = ymax};
    report_text(c, a.left, 20, title, BLACK, 2, REPORT_LEFT);
    report_axes_draw(c, &a, report_nice_step(ymax - ymin, 10), ylabel, 2);
    /* legend under the title */
    int lx = a.left;
    for (int s = 0; s < n_series; s++) {
        const uint8_t *col = report_series_color(s);
        report_fill(c, lx, 52, lx + 22, 66, col);
        lx += 30 + report_text(c, lx + 30, 53, series[s].label, BLACK, 2, REPORT_LEFT) + 24;
    }
    if (isfinite(hline)) {
        report_dashed(c, lx, 59, lx + 36, 59, BLACK, 2, 8, 5);
        lx += 46 + report_text(c, lx + 46, 53, hline_label, BLACK, 2, REPORT_LEFT) + 24;
    }
    report_marker(c, lx + 6, 59, 3, 5, BLACK);
    report_text(c, lx + 18, 53, "mean", BLACK, 2, REPORT_LEFT);
    int xs[MAX_COLS * 4];
    char labels[MAX_COLS * 4][64];
    int span = a.right - a.left;
    int n_groups = M < MAX_COLS * 4 ? M : MAX_COLS * 4;
    if (isfinite(hline)) {
        int py = report_axes_py(&a, hline);
        report_dashed(c, a.left + 2, py, a.right - 2, py, BLACK, 2, 8, 5);
    }
    for (int m = 0; m < n_groups; m++) {
        int cx = a.left + (int)((m + 0.5) * span / n_groups);
        xs[m] = cx;
        snprintf(labels[m], sizeof labels[m], "%s", d->methods[m]);
        if (m > 0) {
            int sep = a.left + m * span / n_groups;
            report_line(c, sep, a.top + 2, sep, a.bottom - 2, LIGHT, 1);
        }
        for (int s = 0; s < n_series; s++) {
            int bx = cx + (int)((s - (n_series - 1) / 2.0) * slot);
            report_box_t box;
            if (report_box_stats(series[s].values + (size_t)m * n_max, series[s].count[m], scratch,
                                 &box) == 0)
                report_box_draw(c, &a, bx, box_hw, &box, scratch, report_series_color(s));
        }
    }
    int used = draw_categories(c, &a, xs, labels, n_groups, n_groups > 1 ? xs[1] - xs[0] : span);
    report_text(c, (a.left + a.right) / 2, a.bottom + 14 + used, "saliency method", BLACK, 2,
                REPORT_CENTER);
    CHECK_RC(write_canvas(c, dir, file));
    *out = c;
    c = NULL;
cleanup:
    free(scratch);
    report_canvas_destroy(c);
    return rc;
}

/* Box series of metric k for trained variant v and, when planned, its fully
 * randomized state: values of the done cells per method. *total = values. */
static int metric_series(report_data_t *d, int v, int k, box_series_t series[2], int *n_series,
                         int *total)
{
    int rc = 0;
    int vs[2] = {v, -1};
    *n_series = 1;
    *total = 0;
    if (report_data_variants_of(d, "untrained", d->bases[v], &vs[1], 1) == 1)
        *n_series = 2;
    int N = d->n_images, M = d->n_methods;
    for (int s = 0; s < *n_series; s++) {
        series[s].values = calloc((size_t)M * N + 1, sizeof(double));
        series[s].count = calloc((size_t)M + 1, sizeof(int));
        CHECK_ALLOC(series[s].values);
        CHECK_ALLOC(series[s].count);
        int planned = 0, done = 0;
        for (int i = 0; i < N; i++) {
            planned += report_data_cell_planned(d, vs[s], i);
            done += report_data_cell_done(d, vs[s], i);
        }
        char part[48] = "";
        if (done < planned)
            snprintf(part, sizeof part, done ? ", %d/%d images" : ", not done", done, planned);
        snprintf(series[s].label, sizeof series[s].label, "%s (%s%s)", d->variants[vs[s]],
                 s ? "fully randomized" : "trained", part);
        for (int m = 0; m < M; m++)
            for (int i = 0; i < N; i++)
                if (report_data_cell_done(d, vs[s], i)) {
                    series[s].values[(size_t)m * N + series[s].count[m]++] =
                        report_data_metric_value(d, k, m, vs[s], i);
                    (*total)++;
                }
    }
cleanup:
    return rc;
}

static int first_trained(const report_data_t *d, const report_fig_options_t *opt)
{
    int v = opt->variant ? report_data_variant(d, opt->variant) : -1;
    for (int u = 0; u < d->n_variants && v < 0; u++)
        if (!strcmp(d->kinds[u], "trained"))
            v = u;
    return v;
}

static int fig_auprc_box(report_data_t *d, const report_fig_options_t *opt, const char *dir,
                         report_figures_t *f)
{
    int rc = 0;
    int k = report_data_metric(d, "auprc");
    box_series_t series[2];
    memset(series, 0, sizeof series);
    report_canvas_t *c = NULL;
    if (k < 0)
        return 0;
    int v = first_trained(d, opt);
    if (v < 0)
        return 0;
    int N = d->n_images, n_series = 1, total = 0;
    CHECK_RC(metric_series(d, v, k, series, &n_series, &total));
    if (!total) {
        add_note(f, "AUPRC box plot: no cell of %s is done yet.", d->variants[v]);
        goto cleanup;
    }
    int avg = report_data_method(d, "avgmask");
    double hline = NAN;
    if (avg >= 0) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < series[0].count[avg]; i++)
            if (isfinite(series[0].values[(size_t)avg * N + i])) {
                sum += series[0].values[(size_t)avg * N + i];
                n++;
            }
        hline = n ? sum / n : NAN;
    }
    char title[512];
    snprintf(title, sizeof title, "Localization utility: AUPRC per image of model %s",
             d->variants[v]);
    CHECK_RC(draw_boxes(d, dir, "auprc_box.png", title, "AUPRC", series, n_series, N, hline,
                        "average mask (mean)", &c));
    char caption[2048];
    snprintf(caption, sizeof caption,
             "AUPRC of each method's map against the ground truth, per image (box: quartiles; "
             "black bar: median; diamond: mean; whiskers: the most extreme values within 1.5 IQR; "
             "circles: the values beyond). %s The dashed line is the mean AUPRC of the average "
             "training mask, a map that knows nothing about the image.",
             n_series == 2 ? "Blue: the trained model; orange: the same architecture with every "
                             "weight re-initialized."
                           : "");
    CHECK_RC(add_figure(f, "auprc_box.png", "AUPRC per method", c->w, c->h, caption));
cleanup:
    for (int s = 0; s < 2; s++) {
        free(series[s].values);
        free(series[s].count);
    }
    report_canvas_destroy(c);
    return rc;
}

/* One box plot per listed check beyond the paper (docs/methods.md). */
static int fig_checks_box(report_data_t *d, const report_fig_options_t *opt, const char *dir,
                          report_figures_t *f)
{
    static const char *const names[] = {"sparseness", "complexity", "deletion", "insertion",
                                        "road_morf", "road_lerf", "random_logit",
                                        "max_sensitivity", "avg_sensitivity", NULL};
    static const char *const what[] = {
        "Sparseness: Gini index of the map (higher: fewer pixels carry the mass)",
        "Complexity: entropy of the map's mass (lower: simpler)",
        "Deletion: area under the probability as salient pixels go (lower is better)",
        "Insertion: area under the probability as salient pixels return (higher is better)",
        "ROAD MoRF: mean probability, most salient pixels imputed (lower is better)",
        "ROAD LeRF: mean probability, least salient pixels imputed (higher is better)",
        "Random logit: SSIM with the map of another class (lower is better)",
        "Max-sensitivity: largest relative map change under input noise (lower is better)",
        "Avg-sensitivity: mean relative map change under input noise (lower is better)"};
    static const char *const short_title[] = {
        "Sparseness (higher: sparser)", "Complexity (lower: simpler)", "Deletion (lower is better)",
        "Insertion (higher is better)", "ROAD MoRF (lower is better)", "ROAD LeRF (higher is better)",
        "Random logit (lower is better)", "Max-sensitivity (lower is better)",
        "Avg-sensitivity (lower is better)"};
    int rc = 0;
    int v = first_trained(d, opt);
    if (v < 0)
        return 0;
    for (int q = 0; names[q]; q++) {
        int k = report_data_metric(d, names[q]);
        if (k < 0)
            continue;
        box_series_t series[2];
        memset(series, 0, sizeof series);
        report_canvas_t *c = NULL;
        int n_series = 1, total = 0;
        rc = metric_series(d, v, k, series, &n_series, &total);
        if (rc >= 0 && total > 0) {
            char file[96], title[512], caption[1024];
            snprintf(file, sizeof file, "checks_%s.png", names[q]);
            snprintf(title, sizeof title, "%s, model %s", short_title[q], d->variants[v]);
            rc = draw_boxes(d, dir, file, title, names[q], series, n_series, d->n_images, NAN, "",
                            &c);
            snprintf(caption, sizeof caption,
                     "%s, per image (box: quartiles; bar: median; diamond: mean; whiskers: 1.5 "
                     "IQR). %s Definition and parameters: docs/methods.md, 'Checks beyond the "
                     "paper'; the values of this run are in /methods params of the results file.",
                     what[q], n_series == 2 ? "Blue: the trained model; orange: the fully "
                                              "randomized model." : "");
            if (rc >= 0)
                rc = add_figure(f, file, short_title[q], c->w, c->h, caption);
        }
        for (int s = 0; s < 2; s++) {
            free(series[s].values);
            free(series[s].count);
        }
        report_canvas_destroy(c);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int fig_similarity_box(report_data_t *d, const char *dir, report_figures_t *f)
{
    int rc = 0;
    const char *sim = report_tables_ssim_name(d);
    report_canvas_t *c = NULL;
    box_series_t series[8];
    memset(series, 0, sizeof series);
    int n_series = 0, M = d->n_methods, P = d->n_pairs;
    if (!sim || !P)
        return 0;
    int s_idx = report_data_sim(d, sim);
    const int exps[2] = {RESULTS_EXP_REPEATABILITY, RESULTS_EXP_REPRODUCIBILITY};
    int total = 0;
    for (int e = 0; e < 2; e++) {
        int groups[8][2], n_groups = 0;
        for (int q = 0; q < P && n_groups < 8; q++) {
            if (d->pair_exp[q] != exps[e])
                continue;
            int va = d->pair_index[4 * q], vb = d->pair_index[4 * q + 2], dup = 0;
            for (int g = 0; g < n_groups; g++)
                dup |= groups[g][0] == va && groups[g][1] == vb;
            if (!dup) {
                groups[n_groups][0] = va;
                groups[n_groups][1] = vb;
                n_groups++;
            }
        }
        for (int g = 0; g < n_groups && n_series < 8; g++) {
            box_series_t *s = &series[n_series++];
            s->values = calloc((size_t)M * P + 1, sizeof(double));
            s->count = calloc((size_t)M + 1, sizeof(int));
            CHECK_ALLOC(s->values);
            CHECK_ALLOC(s->count);
            int planned, done;
            report_tables_pair_counts(d, exps[e], groups[g][0], groups[g][1], &planned, &done);
            char part[48] = "";
            if (done < planned)
                snprintf(part, sizeof part, done ? " (%d/%d pairs)" : " (not done)", done, planned);
            snprintf(s->label, sizeof s->label, "%s %s vs %s%s",
                     e == 0 ? "repeatability" : "reproducibility", d->variants[groups[g][0]],
                     d->variants[groups[g][1]], part);
            for (int q = 0; q < P; q++)
                if (d->pair_exp[q] == exps[e] && d->pair_index[4 * q] == groups[g][0] &&
                    d->pair_index[4 * q + 2] == groups[g][1] && d->pair_done[q])
                    for (int m = 0; m < M; m++) {
                        s->values[(size_t)m * P + s->count[m]++] =
                            report_data_sim_value(d, s_idx, m, q);
                        total++;
                    }
        }
    }
    if (!n_series)
        return 0;
    if (!total) {
        add_note(f, "%s", "similarity box plot: no repeatability or reproducibility pair is done yet.");
        goto cleanup;
    }
    char title[256], ylabel[64];
    snprintf(title, sizeof title, "Repeatability and reproducibility: %s per image",
             report_tables_sim_label(sim));
    snprintf(ylabel, sizeof ylabel, "%s between the two models' maps", report_tables_sim_label(sim));
    CHECK_RC(draw_boxes(d, dir, "similarity_box.png", title, ylabel, series, n_series, P, NAN, "",
                        &c));
    char caption[2048];
    snprintf(caption, sizeof caption,
             "%s per image between the maps of two replicates of one architecture trained with "
             "different seeds (repeatability) and of two architectures (reproducibility); boxes as "
             "in the AUPRC figure. Higher is more repeatable / reproducible; the paper reports "
             "medians around 0.3 for gradient methods and 0.7-0.85 for Grad-CAM and XRAI.",
             report_tables_sim_label(sim));
    CHECK_RC(add_figure(f, "similarity_box.png", "Repeatability and reproducibility", c->w, c->h,
                        caption));
cleanup:
    for (int s = 0; s < 8; s++) {
        free(series[s].values);
        free(series[s].count);
    }
    report_canvas_destroy(c);
    return rc;
}

/* The removal percentages ROAD used, from the run's stored parameters. */
static int road_percentages(const report_data_t *d, double *pct, int cap)
{
    char text[4096];
    hid_t g = H5Gopen2(d->file, "methods", H5P_DEFAULT);
    if (g < 0)
        return 0;
    int rc = h5attr_read_str(g, "params", text, sizeof text);
    H5Gclose(g);
    if (rc < 0)
        return 0;
    const char *at = strstr(text, "road.percentages = ");
    if (!at)
        return 0;
    at += strlen("road.percentages = ");
    int n = 0;
    while (n < cap && *at >= '0' && *at <= '9') {
        char *end;
        pct[n++] = strtod(at, &end) / 100.0;
        at = *end == ',' ? end + 1 : end;
    }
    return n;
}

/*
 * Mean curves of the checks beyond the paper on the first trained model:
 * deletion and insertion (probability against the fraction of pixels
 * replaced) in one figure, ROAD MoRF and LeRF (probability against the
 * percentage imputed) in another; one line per method, its mean area or
 * mean probability in the legend.
 */
static int fig_checks_curves(report_data_t *d, const report_fig_options_t *opt, const char *dir,
                             report_figures_t *f)
{
    static const char *const fam[2][2] = {{"deletion", "insertion"}, {"road_morf", "road_lerf"}};
    int rc = 0;
    int v = first_trained(d, opt);
    if (v < 0 || !H5Lexists(d->file, "curves", H5P_DEFAULT))
        return 0;
    const int M = d->n_methods, N = d->n_images, V = d->n_variants;
    for (int fi = 0; fi < 2; fi++) {
        double *vals[2] = {NULL, NULL}, *mean[2] = {NULL, NULL};
        int len[2] = {0, 0}, have = 0;
        report_canvas_t *c = NULL;
        for (int q = 0; q < 2; q++) {
            char name[64];
            snprintf(name, sizeof name, "curves/%s", fam[fi][q]);
            if (!H5Lexists(d->file, "curves", H5P_DEFAULT) ||
                H5Lexists(d->file, name, H5P_DEFAULT) <= 0)
                continue;
            hid_t ds = H5Dopen2(d->file, name, H5P_DEFAULT);
            hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
            hsize_t dims[4] = {0, 0, 0, 0};
            if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 4)
                H5Sget_simple_extent_dims(sp, dims, NULL);
            if (dims[0] == (hsize_t)M && dims[1] == (hsize_t)V && dims[2] == (hsize_t)N &&
                dims[3] > 0) {
                len[q] = (int)dims[3];
                vals[q] = malloc(sizeof(double) * (size_t)M * V * N * len[q]);
                mean[q] = calloc((size_t)M * len[q], sizeof(double));
                if (vals[q] && mean[q] &&
                    H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals[q]) >= 0)
                    have++;
                else
                    len[q] = 0;
            }
            if (sp >= 0)
                H5Sclose(sp);
            if (ds >= 0)
                H5Dclose(ds);
        }
        double xs_road[CHK_PCT_CAP];
        int n_pct = fi == 1 ? road_percentages(d, xs_road, CHK_PCT_CAP) : 0;
        if (!have || (fi == 1 && n_pct != (len[0] ? len[0] : len[1]))) {
            for (int q = 0; q < 2; q++) {
                free(vals[q]);
                free(mean[q]);
            }
            continue;
        }
        /* mean over the done images of variant v, per method and point */
        for (int q = 0; q < 2; q++)
            for (int m = 0; m < M && len[q]; m++)
                for (int t = 0; t < len[q]; t++) {
                    double s = 0;
                    int n = 0;
                    for (int i = 0; i < N; i++) {
                        double x = vals[q][(((size_t)m * V + v) * N + i) * len[q] + t];
                        if (report_data_cell_done(d, v, i) && isfinite(x)) {
                            s += x;
                            n++;
                        }
                    }
                    mean[q][(size_t)m * len[q] + t] = n ? s / n : NAN;
                }
        int panel_w = 560, W = 120 + 2 * (panel_w + 60) + 360, H = 620;
        c = report_canvas_create(W, H);
        CHECK(c, SC_ERR_NOMEM, "cannot allocate the curves figure");
        char title[256];
        snprintf(title, sizeof title, "%s, mean over the images of model %s",
                 fi ? "ROAD: probability after imputing the most (MoRF) and least (LeRF) "
                      "salient pixels"
                    : "Deletion and insertion: probability as the most salient pixels go or return",
                 d->variants[v]);
        report_text(c, 40, 20, title, BLACK, 2, REPORT_LEFT);
        for (int q = 0; q < 2; q++) {
            if (!len[q])
                continue;
            report_axes_t a = {.left = 120 + q * (panel_w + 60), .top = 90,
                               .right = 120 + q * (panel_w + 60) + panel_w, .bottom = H - 90,
                               .xmin = 0, .xmax = 1, .ymin = 0, .ymax = 1.04};
            report_axes_draw(c, &a, 0.2, q == 0 ? "probability of the explained class" : "", 2);
            report_text(c, (a.left + a.right) / 2, a.top - 26,
                        fi ? (q ? "LeRF (higher is better)" : "MoRF (lower is better)")
                           : (q ? "insertion (higher is better)" : "deletion (lower is better)"),
                        BLACK, 2, REPORT_CENTER);
            for (int k = 0; k <= 5; k++) { /* x ticks */
                double x = k / 5.0;
                int px = report_axes_px(&a, x);
                char lab[16];
                snprintf(lab, sizeof lab, fi ? "%.0f%%" : "%.1f", fi ? 100 * x : x);
                report_line(c, px, a.bottom, px, a.bottom + 6, BLACK, 2);
                report_text(c, px, a.bottom + 12, lab, BLACK, 2, REPORT_CENTER);
            }
            report_text(c, (a.left + a.right) / 2, a.bottom + 40,
                        fi ? "pixels imputed" : "fraction of pixels replaced", BLACK, 2,
                        REPORT_CENTER);
            for (int m = 0; m < M; m++) {
                const uint8_t *col = report_series_color(m);
                int prev_x = 0, prev_y = 0, has_prev = 0;
                for (int t = 0; t < len[q]; t++) {
                    double x = fi ? xs_road[t] : (double)t / (len[q] - 1);
                    double y = mean[q][(size_t)m * len[q] + t];
                    if (!isfinite(y)) {
                        has_prev = 0;
                        continue;
                    }
                    int px = report_axes_px(&a, x), py = report_axes_py(&a, y);
                    if (has_prev)
                        report_line(c, prev_x, prev_y, px, py, col, 2);
                    if (fi)
                        report_marker(c, px, py, m, 4, col);
                    prev_x = px;
                    prev_y = py;
                    has_prev = 1;
                }
            }
        }
        /* legend: method and its mean score per panel */
        int lx = 120 + 2 * (panel_w + 60) - 20, ly = 90;
        report_text(c, lx, ly, fi ? "method      MoRF  LeRF" : "method      del.  ins.", BLACK,
                    2, REPORT_LEFT);
        ly += 26;
        for (int m = 0; m < M; m++) {
            const uint8_t *col = report_series_color(m);
            report_line(c, lx, ly + 7, lx + 24, ly + 7, col, 3);
            report_marker(c, lx + 12, ly + 7, m, 4, col);
            char lab[96], num[2][16];
            for (int q = 0; q < 2; q++) {
                int k = report_data_metric(d, fam[fi][q]);
                double s = 0;
                int n = 0;
                for (int i = 0; k >= 0 && i < N; i++) {
                    double x = report_data_metric_value(d, k, m, v, i);
                    if (report_data_cell_done(d, v, i) && isfinite(x)) {
                        s += x;
                        n++;
                    }
                }
                snprintf(num[q], sizeof num[q], n ? "%.3f" : "-", s / (n ? n : 1));
            }
            char meth[24];
            report_text_fit(d->methods[m], 2, 6 * 2 * 11, meth, sizeof meth);
            snprintf(lab, sizeof lab, "%-12s%s %s", meth, num[0], num[1]);
            report_text(c, lx + 32, ly, lab, BLACK, 2, REPORT_LEFT);
            ly += 24;
        }
        char file[64], caption[1024];
        snprintf(file, sizeof file, "curves_%s.png", fi ? "road" : "deletion_insertion");
        rc = write_canvas(c, dir, file);
        snprintf(caption, sizeof caption, "%s The legend gives each method's mean %s over the "
                 "images. Definitions and parameters: docs/methods.md, 'Checks beyond the "
                 "paper'; per-image curves are in /curves of the results file.",
                 fi ? "ROAD (Rong et al. 2022): the explained class's probability after the "
                      "given share of the most (MoRF, left) or least (LeRF, right) salient pixels "
                      "was removed and refilled by noisy linear imputation."
                    : "Deletion and insertion (Petsiuk et al. 2018): the explained class's "
                      "probability as the most salient pixels are replaced by the substrate "
                      "(left) or restored into the blurred image (right).",
                 fi ? "probability (MoRF, LeRF)" : "area under the curve (deletion, insertion)");
        if (rc >= 0)
            rc = add_figure(f, file, fi ? "ROAD curves" : "Deletion and insertion curves", c->w,
                            c->h, caption);
        report_canvas_destroy(c);
        for (int q = 0; q < 2; q++) {
            free(vals[q]);
            free(mean[q]);
        }
        CHECK_RC(rc);
    }
cleanup:
    return rc;
}

int report_figures_draw(report_data_t *d, const report_fig_options_t *opt, const char *dir,
                        report_figures_t *out)
{
    int rc = 0;
    tiler_t t;
    memset(&t, 0, sizeof t);
    memset(out, 0, sizeof *out);
    char why[1200];
    if (report_figures_find_data(d, opt->data_dir, out->data_dir, sizeof out->data_dir, why,
                                 sizeof why) < 0) {
        if (opt->data_dir)
            return SC_ERR_IO;
        SC_WARN("%s; the heat maps are drawn over neutral gray", why);
        add_note(out, "%s.", why);
    }
    CHECK_RC(tiler_init(&t, d, out->data_dir));
    CHECK_RC(fig_montage(d, opt, &t, dir, out));
    for (int v = 0; v < d->n_variants; v++)
        if (!strcmp(d->kinds[v], "trained"))
            CHECK_RC(fig_strip(d, opt, &t, v, dir, out));
    for (int v = 0; v < d->n_variants; v++)
        if (!strcmp(d->kinds[v], "trained"))
            CHECK_RC(fig_ssim_states(d, v, dir, out));
    CHECK_RC(fig_auprc_box(d, opt, dir, out));
    CHECK_RC(fig_similarity_box(d, dir, out));
    CHECK_RC(fig_checks_curves(d, opt, dir, out));
    CHECK_RC(fig_checks_box(d, opt, dir, out));
    if (t.missing_images)
        SC_WARN("%d radiograph(s) could not be read from '%s': neutral gray used there",
                t.missing_images, out->data_dir);
cleanup:
    tiler_free(&t);
    if (rc < 0)
        report_figures_free(out);
    return rc;
}

void report_figures_free(report_figures_t *f)
{
    if (!f)
        return;
    free(f->items);
    f->items = NULL;
    f->n = 0;
}
