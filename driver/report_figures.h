/*
 * report_figures.h - the figures of `salcheck report` as PNG files (module
 * report, prefix report_figures_).
 *
 *   montage.png             methods x images: JET at 50% over the gray radiograph,
 *                           ground truth outlined, each map's AUPRC under it
 *                           (the paper's figure 2)
 *   cascading_<model>.png   methods x randomization states for one image, the
 *                           original first, each map's SSIM to the original under
 *                           it (Adebayo et al.'s figure, the paper's figure 3)
 *   ssim_states_<model>.png mean SSIM(state, original) against the state, one
 *                           line per method, each method's baseline dashed
 *   auprc_box.png           AUPRC per method, trained vs fully randomized model
 *   similarity_box.png      repeatability and reproducibility SSIM per method
 *
 * The radiographs are not in the results file: they are read from the data
 * set the job names ([data] dir, relative to where the run started, looked for
 * next to the results file and its parent directories too) or from --data;
 * without them the maps are drawn over neutral gray and the caption says so.
 * On a partial file every figure draws what is done and marks what is not.
 */
#ifndef REPORT_FIGURES_H
#define REPORT_FIGURES_H

#include "report_data.h"

typedef struct report_fig_options {
    const char *data_dir;   /* the data set directory (NULL: from the job) */
    const char *variant;    /* model variant of the montage (NULL: the first trained) */
    const char *image;      /* image id of the cascading strips (NULL: automatic) */
    int n_images;           /* montage columns (<= 0: 6) */
} report_fig_options_t;

typedef struct report_figure {
    char file[256];         /* file name in the figures directory */
    char title[256];
    char caption[2048];
    int w, h;
} report_figure_t;

typedef struct report_figures {
    report_figure_t *items;
    int n;
    char data_dir[1024];    /* where the radiographs were found ("" = not found) */
    char notes[2048];       /* figures not drawn and why (empty when all were) */
} report_figures_t;

/*
 * Draw every figure that has data into dir/ (which must exist). On success
 * *out lists them (report_figures_free). A --data directory without the
 * images is an error (SC_ERR_IO, logged); a job's data set that cannot be
 * found is not (neutral background and a note). Returns 0 or < 0.
 */
int report_figures_draw(report_data_t *d, const report_fig_options_t *opt, const char *dir,
                        report_figures_t *out);
void report_figures_free(report_figures_t *f);

/*
 * Find the data set directory of a results file: `override` when given, else
 * the job's [data] dir as written, then relative to the results file's
 * directory and each of its parents. A candidate is accepted when it holds
 * images/<id>.png for one of the file's images. Writes it into out[size] and
 * returns 0; SC_ERR_IO when none fits (override: logged; why[] says what was
 * tried either way).
 */
int report_figures_find_data(const report_data_t *d, const char *override, char *out, size_t size,
                             char *why, size_t why_size);

#endif
