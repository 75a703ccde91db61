/*
 * bench_decode.c - images decoded per second per core for each image format,
 * on the phantom at the RSNA size (1024 x 1024, 8-bit picture): PNG, JPEG
 * (quality 95), and DICOM in each transfer syntax the phantom writes. Two
 * rows per format: the decode alone (imread_gray) and the loader's whole job
 * (decode, area resize to 320 x 320, normalization: what `salcheck run` does
 * per image). CPU time of this process, median of 5 passes over the images.
 *
 * Usage: bench_decode [COUNT] (default 12 images per format; written once
 * under $BUILD/bench-decode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_util.h"
#include "io/dicom.h"
#include "io/image.h"
#include "io/imread.h"
#include "phantom/phantom.h"
#include "sc.h"

#define PASSES 5
#define SIZE 1024
#define RES 320

typedef struct bench_format {
    const char *name;
    phantom_image_t image;
    int syntax, bits, mono1;
} bench_format_t;

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    int count = argc > 1 ? atoi(argv[1]) : 12;
    const char *build = getenv("BUILD");
    char base[512];
    snprintf(base, sizeof base, "%s/bench-decode", build && *build ? build : "build");
    static const bench_format_t formats[] = {
        {"PNG 8-bit", PHANTOM_IMAGE_PNG, 0, 8, 0},
        {"JPEG quality 95", PHANTOM_IMAGE_JPEG, 0, 8, 0},
        {"DICOM explicit LE, 8-bit", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_EXPLICIT_LE, 8, 0},
        {"DICOM implicit LE, 16-bit MONOCHROME1", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_IMPLICIT_LE, 16, 1},
        {"DICOM explicit LE, 12-bit, rescale + window", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_EXPLICIT_LE, 12, 0},
        {"DICOM JPEG lossless, 12-bit", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_JPEG_LOSSLESS, 12, 0},
        {"DICOM JPEG-LS lossless, 12-bit", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_JPEG_LS, 12, 0},
        {"DICOM RLE, 16-bit", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_RLE, 16, 0},
        {"DICOM JPEG baseline, 8-bit", PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_JPEG_BASELINE, 8, 0},
    };
    int n_formats = (int)(sizeof formats / sizeof formats[0]);
    float *tensor = malloc(sizeof(float) * 3 * RES * RES);
    image_loader_t *loader = image_loader_create(RES, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
    if (!tensor || !loader)
        return 1;
    printf("%d images of %dx%d per format; CPU time, median of %d passes; loader = decode + area resize to %d + "
           "normalization\n\n",
           count, SIZE, SIZE, PASSES, RES);
    printf("| format | file KiB | decode images/s | decode ms | loader images/s | loader ms |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int f = 0; f < n_formats; f++) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/f%d-%d", base, f, count);
        phantom_config_t cfg;
        phantom_config_default(&cfg);
        cfg.size = SIZE;
        cfg.files.image = formats[f].image;
        cfg.files.dicom_syntax = formats[f].syntax;
        cfg.files.dicom_bits = formats[f].bits;
        cfg.files.dicom_monochrome1 = formats[f].mono1;
        struct stat st;
        char done[760];
        snprintf(done, sizeof done, "%s/splits.csv", dir);
        if (stat(done, &st) != 0 && phantom_write_dataset(&cfg, dir, PHANTOM_FORMAT_RSNA, (uint32_t)count) < 0)
            return 1;
        char (*paths)[800] = calloc((size_t)count, sizeof *paths);
        double kib = 0;
        for (int i = 0; i < count; i++) {
            char id[32];
            phantom_image_id((uint32_t)i, id, sizeof id);
            const char *ext = formats[f].image == PHANTOM_IMAGE_PNG ? "png"
                              : formats[f].image == PHANTOM_IMAGE_JPEG ? "jpg" : "dcm";
            snprintf(paths[i], sizeof paths[i], "%s/%s/%s.%s", dir,
                     formats[f].image == PHANTOM_IMAGE_DICOM ? "stage_2_train_images" : "images", id, ext);
            if (stat(paths[i], &st) == 0)
                kib += st.st_size / 1024.0 / count;
        }
        double t_dec[PASSES], t_load[PASSES];
        for (int p = 0; p < PASSES; p++) {
            double t0 = bench_cpu_now();
            for (int i = 0; i < count; i++) {
                int w, h;
                float *px = NULL;
                if (imread_gray(paths[i], NULL, &w, &h, &px) < 0)
                    return 1;
                sc_free(px);
            }
            double t1 = bench_cpu_now();
            for (int i = 0; i < count; i++)
                if (image_loader_load(loader, paths[i], tensor, NULL) < 0)
                    return 1;
            double t2 = bench_cpu_now();
            t_dec[p] = (t1 - t0) / count;
            t_load[p] = (t2 - t1) / count;
        }
        qsort(t_dec, PASSES, sizeof(double), bench_cmp_double);
        qsort(t_load, PASSES, sizeof(double), bench_cmp_double);
        double dec = t_dec[PASSES / 2], load = t_load[PASSES / 2];
        printf("| %s | %.0f | %.0f | %.1f | %.0f | %.1f |\n", formats[f].name, kib, 1.0 / dec, 1e3 * dec,
               1.0 / load, 1e3 * load);
        fflush(stdout);
        free(paths);
    }
    image_loader_destroy(loader);
    free(tensor);
    return 0;
}
