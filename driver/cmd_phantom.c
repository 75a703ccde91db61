/*
 * cmd_phantom.c - `salcheck phantom`: write the synthetic data set (driver).
 *
 * Images are partitioned across ranks in contiguous blocks; image i depends on
 * (seed, i) only, so the files are identical for any rank count. Each rank
 * returns its label rows in index order; rank 0 gathers them and writes the
 * CSVs. COLLECTIVE over MPI_COMM_WORLD.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/dicom.h"
#include "phantom/phantom.h"
#include "sc.h"

static void phantom_usage(FILE *out)
{
    fprintf(out,
            "usage: salcheck phantom --out DIR --count N [--size S] [--seed K]\n"
            "                        [--positive-fraction F] [--marker-fraction M]\n"
            "                        [--format rsna|siim|nih|vindr|chexlocalize] [--image png|jpeg|dicom]\n"
            "                        [--dicom-syntax SYNTAX] [--dicom-bits 8|12|16] [--monochrome1]\n"
            "                        [--jpeg-quality Q]\n\n"
            "Write a synthetic chest radiograph data set with exact ground truth, in the layout of a\n"
            "public data set (the files each data set kind of the README reads):\n"
            "  rsna          images/<id>.png + labels.csv (patientId,x,y,width,height,Target; boxes in\n"
            "                image pixels); with --image dicom: stage_2_train_images/<id>.dcm +\n"
            "                stage_2_train_labels.csv as Kaggle ships them\n"
            "  siim          images/<id>.png + train-rle.csv (relative column-major RLE); with\n"
            "                --image dicom: dicom-images-train/<study>/<series>/<SOP UID>.dcm\n"
            "  nih           images/<NNNNNNNN_000>.png + Data_Entry_2017.csv + BBox_List_2017.csv\n"
            "                (1024-pixel frame) + train_val_list.txt + test_list.txt\n"
            "  vindr         train/<id>.dicom (use --image dicom) + annotations_train.csv, 3 readers\n"
            "  chexlocalize  images/patient<N>/study1/view1_frontal.jpg (use --image jpeg) +\n"
            "                gt_segmentations_val.json (COCO RLE)\n"
            "  and DIR/splits.csv (Image_ID,Split: train/val/test, 70/15/15) for rsna, siim, vindr.\n\n"
            "  --out DIR                output directory (created with its parents)\n"
            "  --count N                number of images\n"
            "  --size S                 image side in pixels, 32..2048 (default 256)\n"
            "  --seed K                 the same seed gives byte-identical files (default 1)\n"
            "  --positive-fraction F    probability of 1-3 opacities (default 0.5)\n"
            "  --marker-fraction M      probability of a lead marker outside the lungs, independent\n"
            "                           of the label (default 0.5)\n"
            "  --format KIND            layout (default rsna)\n"
            "  --image png|jpeg|dicom   image files (default png); the pictures are the same\n"
            "  --dicom-syntax SYNTAX    explicit (default), implicit, jpeg-lossless, jpeg-ls, rle,\n"
            "                           jpeg-baseline (lossy, 8 bits only)\n"
            "  --dicom-bits 8|12|16     stored bits (12: with rescale and a window; every choice\n"
            "                           renders back to the same 8-bit picture)\n"
            "  --monochrome1            store MONOCHROME1 (inverted) DICOMs\n"
            "  --jpeg-quality Q         1..100 (default 95)\n"
            "Runs as one process or under mpirun/srun (images are split across ranks).\n");
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *v)
{
    char *end = NULL;
    long x = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || x < lo || x > hi) {
        fprintf(stderr, "salcheck phantom: %s needs an integer in %ld..%ld, got '%s'\n", opt, lo, hi,
                s ? s : "");
        return SC_ERR_ARG;
    }
    *v = x;
    return SC_OK;
}

static int parse_fraction(const char *opt, const char *s, double *v)
{
    char *end = NULL;
    double x = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || !(x >= 0.0 && x <= 1.0)) {
        fprintf(stderr, "salcheck phantom: %s needs a number in [0, 1], got '%s'\n", opt, s ? s : "");
        return SC_ERR_ARG;
    }
    *v = x;
    return SC_OK;
}

int cmd_phantom(int argc, char **argv)
{
    int rank = 0, size = 1, rc = SC_OK;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    const char *out = NULL;
    long count = -1, value;
    phantom_format_t format = PHANTOM_FORMAT_RSNA;
    char *rows = NULL, *all_rows = NULL;
    int *lengths = NULL, *offsets = NULL;
    size_t rows_len = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0)
                phantom_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") && next) {
            out = next;
        } else if (!strcmp(a, "--count") && next) {
            CHECK_RC(parse_long(a, next, 1, 100000000L, &count));
        } else if (!strcmp(a, "--size") && next) {
            CHECK_RC(parse_long(a, next, 32, 2048, &value));
            cfg.size = (int)value;
        } else if (!strcmp(a, "--seed") && next) {
            char *end = NULL;
            cfg.seed = strtoull(next, &end, 10);
            CHECK(*next && !*end, SC_ERR_ARG, "--seed needs a non-negative integer, got '%s'", next);
        } else if (!strcmp(a, "--positive-fraction") && next) {
            CHECK_RC(parse_fraction(a, next, &cfg.positive_fraction));
        } else if (!strcmp(a, "--marker-fraction") && next) {
            CHECK_RC(parse_fraction(a, next, &cfg.marker_fraction));
        } else if (!strcmp(a, "--format") && next) {
            CHECK(phantom_format_parse(next, &format) == SC_OK, SC_ERR_ARG,
                  "--format must be rsna, siim, nih, vindr or chexlocalize, got '%s'", next);
        } else if (!strcmp(a, "--image") && next) {
            if (!strcmp(next, "png"))
                cfg.files.image = PHANTOM_IMAGE_PNG;
            else if (!strcmp(next, "jpeg") || !strcmp(next, "jpg"))
                cfg.files.image = PHANTOM_IMAGE_JPEG;
            else if (!strcmp(next, "dicom"))
                cfg.files.image = PHANTOM_IMAGE_DICOM;
            else
                CHECK(0, SC_ERR_ARG, "--image must be png, jpeg or dicom, got '%s'", next);
        } else if (!strcmp(a, "--dicom-syntax") && next) {
            dicom_syntax_t syntax;
            CHECK(dicom_syntax_parse(next, &syntax) == SC_OK, SC_ERR_ARG,
                  "--dicom-syntax must be explicit, implicit, jpeg-lossless, jpeg-ls, rle or jpeg-baseline, "
                  "got '%s'", next);
            cfg.files.dicom_syntax = (int)syntax;
        } else if (!strcmp(a, "--dicom-bits") && next) {
            CHECK_RC(parse_long(a, next, 8, 16, &value));
            CHECK(value == 8 || value == 12 || value == 16, SC_ERR_ARG, "--dicom-bits must be 8, 12 or 16");
            cfg.files.dicom_bits = (int)value;
        } else if (!strcmp(a, "--monochrome1")) {
            cfg.files.dicom_monochrome1 = 1;
            continue; /* no value */
        } else if (!strcmp(a, "--jpeg-quality") && next) {
            CHECK_RC(parse_long(a, next, 1, 100, &value));
            cfg.files.jpeg_quality = (int)value;
        } else {
            if (rank == 0) {
                fprintf(stderr, "salcheck phantom: unknown option or missing value: '%s'\n\n", a);
                phantom_usage(stderr);
            }
            return 2;
        }
        i++;
    }
    if (!out || count < 1) {
        if (rank == 0) {
            fprintf(stderr, "salcheck phantom: --out and --count are required\n\n");
            phantom_usage(stderr);
        }
        return 2;
    }

    double t0 = sc_now();
    int dir_rc = rank == 0 ? phantom_make_dirs(out) : SC_OK;
    MPI_Bcast(&dir_rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    CHECK_RC(dir_rc);

    /* Contiguous blocks in rank order, so gathered rows come out in index order. */
    uint32_t begin = (uint32_t)((long long)count * rank / size);
    uint32_t end = (uint32_t)((long long)count * (rank + 1) / size);
    int local_rc = phantom_write_images(&cfg, out, format, begin, end, &rows, &rows_len);
    int any_rc = local_rc;
    MPI_Allreduce(&local_rc, &any_rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    CHECK(any_rc >= 0, any_rc, "phantom: writing images failed%s", local_rc < 0 ? "" : " on another rank");
    CHECK(rows_len < (size_t)1 << 30, SC_ERR_ARG, "phantom: label rows of one rank exceed 1 GiB");

    int my_len = (int)rows_len;
    if (rank == 0) {
        lengths = sc_calloc((size_t)size, sizeof(int));
        offsets = sc_calloc((size_t)size, sizeof(int));
        CHECK_ALLOC(lengths);
        CHECK_ALLOC(offsets);
    }
    MPI_Gather(&my_len, 1, MPI_INT, lengths, 1, MPI_INT, 0, MPI_COMM_WORLD);
    long long total = 0;
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            offsets[r] = (int)total;
            total += lengths[r];
        }
        CHECK(total < (1LL << 31), SC_ERR_ARG, "phantom: label rows exceed 2 GiB; use fewer images");
        all_rows = malloc((size_t)total + 1);
        CHECK_ALLOC(all_rows);
    }
    MPI_Gatherv(rows, my_len, MPI_CHAR, all_rows, lengths, offsets, MPI_CHAR, 0, MPI_COMM_WORLD);
    int csv_rc = SC_OK;
    if (rank == 0)
        csv_rc = phantom_write_csvs(&cfg, out, format, (uint32_t)count, all_rows, (size_t)total);
    MPI_Bcast(&csv_rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    CHECK_RC(csv_rc);
    if (rank == 0) {
        double dt = sc_now() - t0;
        SC_INFO("phantom: %ld images of %dx%d (seed %llu, %s) in %s, %.1f s on %d rank%s (%.0f images/min)",
                count, cfg.size, cfg.size, (unsigned long long)cfg.seed,
                phantom_format_name(format), out, dt, size, size > 1 ? "s" : "",
                dt > 0 ? 60.0 * count / dt : 0.0);
    }
cleanup:
    free(rows);
    free(all_rows);
    sc_free(lengths);
    sc_free(offsets);
    return rc;
}
