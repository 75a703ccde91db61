/*
 * cmd_report.c - `salcheck report RESULTS.h5 --out DIR`: the tables, figures
 * and one HTML page of a results file, finished or not.
 *
 *   DIR/index.html        self-contained page (tables, inlined figures, status, job)
 *   DIR/tables.md         the tables in Markdown
 *   DIR/tables/<id>.csv   long numeric tables (progress, utility, metrics, pairs,
 *                         cascading, sanity)
 *   DIR/figures/NAME.png  montage, cascading strips, SSIM versus state, box plots
 *
 * Serial: rank 0 does the work, other ranks return at once. The file is read
 * without locking, so a running job's file can be reported on; the report then
 * says what is missing.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "report_data.h"
#include "report_figures.h"
#include "report_html.h"
#include "report_tables.h"
#include "sc.h"

static const char *USAGE =
    "usage: salcheck report RESULTS.h5 --out DIR [--data DIR] [--variant NAME] [--image ID]\n"
    "                       [--images K]\n\n"
    "Tables (Markdown, CSV), figures (PNG) and one self-contained HTML page from a results file,\n"
    "finished or partial (a running or stopped job: the report says what is missing).\n\n"
    "  --out DIR       output directory (created): index.html, tables.md, tables/, figures/\n"
    "                  (an earlier report's CSV and PNG files there are replaced)\n"
    "  --data DIR      the data set directory, for the radiographs under the heat maps: its PNG,\n"
    "                  JPEG or DICOM files found by image id anywhere below it, or CheXpert's\n"
    "                  <patient>/<study>/<view>.jpg for CheXlocalize ids\n"
    "                  (default: the job's [data] dir, looked for from the current\n"
    "                  directory and from the results file's directory and its parents)\n"
    "  --variant NAME  the model variant of the montage and AUPRC box plot (default: the first\n"
    "                  trained model)\n"
    "  --image ID      the image of the cascading strips (default: the first done in every state)\n"
    "  --images K      images (columns) in the montage (default 6)\n";

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Remove the files ending in `ext` that an earlier report left in dir (its
 * figures or CSV files), so that the page and the directory list the same. */
static void remove_stale(const char *dir, const char *ext)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *e;
    size_t n_ext = strlen(ext);
    while ((e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > n_ext && !strcmp(e->d_name + n - n_ext, ext)) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
                unlink(path);
        }
    }
    closedir(dp);
}

static int write_tables(const char *dir, const report_data_t *d, const report_tables_t *t,
                        const char *status)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tables.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        SC_ERROR("cannot write '%s'", path);
        return SC_ERR_IO;
    }
    fprintf(f, "# salcheck report: %s\n\n%s\n\n", d->path, status);
    for (int i = 0; i < t->n_display; i++)
        report_table_write_md(t->display[i], f);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        SC_ERROR("cannot write '%s'", path);
        return SC_ERR_IO;
    }
    for (int i = 0; i < t->n_csv; i++) {
        snprintf(path, sizeof path, "%s/tables/%s.csv", dir, report_table_id(t->csv[i]));
        f = fopen(path, "w");
        if (!f) {
            SC_ERROR("cannot write '%s'", path);
            return SC_ERR_IO;
        }
        report_table_write_csv(t->csv[i], f);
        bad = ferror(f);
        bad |= fclose(f) != 0;
        if (bad) {
            SC_ERROR("cannot write '%s'", path);
            return SC_ERR_IO;
        }
    }
    return 0;
}

int cmd_report(int argc, char **argv)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *path = NULL, *out_dir = NULL;
    report_fig_options_t opt = {NULL, NULL, NULL, 6};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0)
                printf("%s", USAGE);
            return CLI_OK;
        } else if ((!strcmp(a, "--out") || !strcmp(a, "-o")) && has_value) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--data") && has_value) {
            opt.data_dir = argv[++i];
        } else if (!strcmp(a, "--variant") && has_value) {
            opt.variant = argv[++i];
        } else if (!strcmp(a, "--image") && has_value) {
            opt.image = argv[++i];
        } else if (!strcmp(a, "--images") && has_value) {
            char *end = NULL;
            long k = strtol(argv[++i], &end, 10);
            if (!end || *end || k < 1 || k > 64) {
                if (rank == 0)
                    fprintf(stderr, "salcheck report: --images wants a count from 1 to 64, not '%s'\n",
                            argv[i]);
                return CLI_FAIL_ALL;
            }
            opt.n_images = (int)k;
        } else if (a[0] == '-' || path) {
            if (rank == 0)
                fprintf(stderr, "salcheck report: unexpected argument '%s'%s\n\n%s", a,
                        a[0] == '-' && !has_value ? " (missing its value?)" : "", USAGE);
            return CLI_FAIL_ALL;
        } else {
            path = a;
        }
    }
    if (!path || !out_dir) {
        if (rank == 0)
            fprintf(stderr, "salcheck report: %s\n\n%s",
                    !path ? "which results file? (RESULTS.h5)" : "--out DIR is required", USAGE);
        return CLI_FAIL_ALL;
    }
    if (rank != 0)
        return CLI_OK;

    int rc = 0;
    double t0 = sc_now();
    report_data_t *d = NULL;
    report_tables_t tables;
    report_figures_t figs;
    memset(&tables, 0, sizeof tables);
    memset(&figs, 0, sizeof figs);
    char fig_dir[PATH_MAX], tab_dir[PATH_MAX], html[PATH_MAX], status[8192];
    snprintf(fig_dir, sizeof fig_dir, "%s/figures", out_dir);
    snprintf(tab_dir, sizeof tab_dir, "%s/tables", out_dir);
    snprintf(html, sizeof html, "%s/index.html", out_dir);

    CHECK_RC(report_data_open(path, &d));
    CHECK(!opt.variant || report_data_variant(d, opt.variant) >= 0, SC_ERR_ARG,
          "--variant %s: '%s' has no such model variant (salcheck info %s lists them)", opt.variant,
          path, path);
    int image_found = !opt.image;
    for (int i = 0; i < d->n_images && !image_found; i++)
        image_found = !strcmp(d->image_ids[i], opt.image);
    CHECK(image_found, SC_ERR_ARG, "--image %s: '%s' has no such image", opt.image ? opt.image : "",
          path);
    CHECK(make_dirs(fig_dir) == 0 && make_dirs(tab_dir) == 0, SC_ERR_IO,
          "cannot create the output directory '%s' (%s)", out_dir, strerror(errno));
    remove_stale(fig_dir, ".png");
    remove_stale(tab_dir, ".csv");
    int complete = report_tables_status(d, status, sizeof status);
    CHECK_RC(report_tables_build(d, &tables));
    CHECK_RC(write_tables(out_dir, d, &tables, status));
    CHECK_RC(report_figures_draw(d, &opt, fig_dir, &figs));
    CHECK_RC(report_html_write(html, d, &tables, &figs, fig_dir, status, complete));

    printf("%s\n", status);
    if (figs.notes[0])
        printf("figures: %s\n", figs.notes);
    printf("report of %s in %.1f s: %s (%d tables, %d figures); tables.md, tables/*.csv (%d), "
           "figures/*.png in %s\n",
           path, sc_now() - t0, html, tables.n_display, figs.n, tables.n_csv, out_dir);
    if (figs.data_dir[0])
        printf("radiographs from %s\n", figs.data_dir);
cleanup:
    report_figures_free(&figs);
    report_tables_free(&tables);
    report_data_close(d);
    return rc < 0 ? CLI_FAIL_ALL : CLI_OK;
}
