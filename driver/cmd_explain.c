/*
 * cmd_explain.c - `salcheck explain`: saliency maps of one image, the quick
 * look before a cluster run.
 *
 *   salcheck explain --model MODEL.h5|.onnx --image X.png [--method m[,m...]]
 *                    [--target predicted|N|LABEL] [--labels a,b,...] [--normalize CONV]
 *                    [--raw] [--baselines DIR] --out OUT
 *
 * Loads the model (a salcheck model file, or an ONNX file imported on the
 * fly), reads the image at the model's resolution with the model's input
 * convention (or --normalize), explains the predicted class's logit, or the
 * output --target names (an index or a label: the model file's labels or
 * --labels); a multi-output sigmoid model needs --target (nn/outputs.h). It
 * writes
 *   OUT.h5   /maps/<method>  the post-processed [H,W] map (P1/P2 of
 *                            docs/methods.md section 4), or with --raw the
 *                            unprocessed attribution [C,H,W] or [1,H,W];
 *            /logits [classes], /target (scalar), /image_gray [H,W];
 *            root attributes: model, image, normalize, dicom_window, target request,
 *            target_label, labels, head,
 *            method parameters, salcheck version
 *   OUT.png  the map as a JET heat map at 50% over the gray image (with
 *            several methods: OUT.<method>.png each).
 * Runs on rank 0 (other ranks return at once). Owned by driver/.
 */
#include <dirent.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "io/colormap.h"
#include "io/h5attr.h"
#include "io/image.h"
#include "io/imread.h"
#include "io/png.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nn/outputs.h"
#include "saliency/saliency.h"
#include "saliency/relprop.h"
#include "sc.h"

#define EXPLAIN_MAX_METHODS 32

static void explain_usage(FILE *out)
{
    fprintf(out,
            "usage: salcheck explain --model MODEL.h5|MODEL.onnx --image X.png --out OUT\n"
            "                        [--method m[,m...]] [--target predicted|N|LABEL]\n"
            "                        [--labels a,b,...] [--normalize CONVENTION] [--raw]\n"
            "                        [--dicom-window voi|full|minmax]\n"
            "\n"
            "Explains one image: writes OUT.h5 (/maps/<method>, /logits, /target) and OUT.png\n"
            "(the map as a JET heat map at 50%% over the image; OUT.<method>.png for several).\n"
            "\n"
            "  --model PATH        salcheck model file (.h5) or ONNX file (.onnx)\n"
            "  --image PATH        PNG, JPEG or DICOM image, by content (colour is converted to gray)\n"
            "  --dicom-window W    how a DICOM image is rendered to gray: voi (default: the file's\n"
            "                      VOI LUT or first window centre/width, else the full range),\n"
            "                      full (the whole range of the stored bits), minmax (the image's\n"
            "                      own minimum and maximum); the job key [data] dicom_window\n"
            "  --out OUT           output path without extension (a .h5/.png suffix is dropped)\n"
            "  --method LIST       comma-separated methods (default grad); 'all' for every\n"
            "                      method that needs no average mask. Known:");
    for (const sal_method_t *m = sal_methods(); m->name; m++)
        fprintf(out, " %s", m->name);
    fprintf(out,
            "\n"
            "  --target T          'predicted' (default: the logit of the predicted class), an\n"
            "                      output index, or a label (a multi-output sigmoid model has\n"
            "                      no predicted class: name its output)\n"
            "  --labels LIST       names of the outputs, comma-separated (default: the ones the\n"
            "                      model file stores)\n"
            "  --normalize N       input convention: inception, imagenet, unit, xrv or\n"
            "                      \"scale=S[,S,S] offset=O[,O,O]\"; default: the model file's\n"
            "  --raw               store the unprocessed attribution [C,H,W] instead of the map\n"
            "  --batch N           inputs per engine call for IG/SmoothGrad (default 16)\n"
            "  --seed S            seed of the SmoothGrad noise and the random map (default 1)\n"
            "  --layer NODE        Grad-CAM layer (default: the model's)\n"
            "  --ig-steps S        IG steps (default 10)    --ig-rule R  linspace|left|right|\n"
            "                      midpoint|trapezoid|gausslegendre (default linspace)\n"
            "  --baseline B        IG baseline black|min|max (default black)\n"
            "  --sg-samples N      SmoothGrad samples (default 25)\n"
            "  --avgmask PNG       the average training mask for the avgmask method (0..255)\n"
            "  --baselines DIR     training images (PNG) the eg method draws its baselines\n"
            "                      from (the first 64 by name)\n"
            "  --eg-samples N      Expected Gradients samples (default 100)\n"
            "  --rise-masks N      RISE masks (default 4000)\n"
            "  --lrp-composite C   LRP composite epsilon_plus_flat (default)|epsilon_gamma_box|\n"
            "                      epsilon_plus|epsilon_alpha2_beta1|epsilon\n"
            "  --lrp-first R, --lrp-conv R, --lrp-dense R\n"
            "                      LRP rule of the first layer, the other convolutions, the\n"
            "                      dense layers: epsilon|zplus|gamma|alphabeta|flat (zbox:\n"
            "                      first layer only); default: the composite's\n"
            "  --deeplift-baseline B  DeepLIFT reference black|min|max (default black)\n");
}

/* An integer option value, or -1 (after printing why). */
static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "salcheck explain: %s expects an integer in %d..%d, got '%s'\n", opt, lo,
                hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

static int h5_write(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                    const void *data)
{
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = d >= 0 ? H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    return d < 0 || w < 0 ? SC_ERR_H5 : 0;
}

/* Load a salcheck model file or import an ONNX file. */
static int load_model(const char *path, const char *normalize, nn_model_t **out)
{
    if (ends_with(path, ".onnx")) {
        if (!onnx_import_available()) {
            SC_ERROR("%s: this build cannot read ONNX files (protobuf-c missing at build time)",
                     path);
            return SC_ERR_UNSUPPORTED;
        }
        onnx_import_opts_t o = {.normalize = normalize};
        return onnx_import_file(path, &o, out, NULL);
    }
    return modelfile_load(path, out);
}

/* Split a comma-separated method list into table entries; "all" = every
 * method but avgmask and those that draw baselines from reference images
 * (needs_pool: eg) when the user did not give the mask or the images. */
static int parse_methods(const char *list, int have_avgmask, int have_baselines,
                         const sal_method_t **methods)
{
    int n = 0;
    if (!strcmp(list, "all")) {
        for (const sal_method_t *m = sal_methods(); m->name && n < EXPLAIN_MAX_METHODS; m++)
            if ((strcmp(m->name, "avgmask") || have_avgmask) && (!m->needs_pool || have_baselines))
                methods[n++] = m;
        return n;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const sal_method_t *m = sal_method_find(tok);
        if (!m) {
            fprintf(stderr, "salcheck explain: unknown method '%s'; known:", tok);
            for (const sal_method_t *t = sal_methods(); t->name; t++)
                fprintf(stderr, " %s", t->name);
            fprintf(stderr, "\n");
            return -1;
        }
        if (n == EXPLAIN_MAX_METHODS) {
            fprintf(stderr, "salcheck explain: at most %d methods at once\n", EXPLAIN_MAX_METHODS);
            return -1;
        }
        methods[n++] = m;
    }
    if (n == 0)
        fprintf(stderr, "salcheck explain: --method names no method\n");
    return n > 0 ? n : -1;
}

static int png_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 4 && !strcasecmp(e->d_name + n - 4, ".png");
}

/* Expected Gradients' reference images: the first `max` PNGs of dir by name,
 * loaded as the explained image is (model size and normalization). */
static int load_baselines(const char *dir, image_loader_t *loader, int max, sal_ws_t *ws)
{
    int rc = 0, count = 0;
    struct dirent **names = NULL;
    float *pool = NULL, *gray = NULL;
    int n = scandir(dir, &names, png_name, alphasort);
    CHECK(n >= 0, SC_ERR_IO, "%s: cannot read the --baselines folder", dir);
    CHECK(n > 0, SC_ERR_IO, "%s: no PNG image in the --baselines folder", dir);
    count = n < max ? n : max;
    pool = sc_calloc(ws->chw * (size_t)count, sizeof(float));
    gray = sc_calloc(ws->hw, sizeof(float));
    CHECK_ALLOC(pool);
    CHECK_ALLOC(gray);
    for (int i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        CHECK_RC(image_loader_load(loader, path, pool + (size_t)i * ws->chw, gray));
    }
    CHECK_RC(sal_ws_set_baselines(ws, pool, count));
cleanup:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    sc_free(pool);
    sc_free(gray);
    return rc;
}

int cmd_explain(int argc, char **argv)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *model_path = NULL, *image_path = NULL, *out_arg = NULL, *method_list = "grad";
    const char *normalize = NULL, *avgmask_path = NULL, *baselines_dir = NULL;
    const char *target_arg = NULL, *labels_arg = NULL;
    int target_req = SAL_TARGET_PREDICTED, raw = 0, batch = 16, seed = 1;
    imread_options_t read_opt;
    imread_options_default(&read_opt);
    sal_params_t params = sal_params_default();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0)
                explain_usage(stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--raw")) {
            raw = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "salcheck explain: %s needs a value (see --help)\n", a);
            return CLI_FAIL_ALL;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "--image"))
            image_path = v;
        else if (!strcmp(a, "--out"))
            out_arg = v;
        else if (!strcmp(a, "--method") || !strcmp(a, "--methods"))
            method_list = v;
        else if (!strcmp(a, "--normalize"))
            normalize = v;
        else if (!strcmp(a, "--avgmask"))
            avgmask_path = v;
        else if (!strcmp(a, "--baselines"))
            baselines_dir = v;
        else if (!strcmp(a, "--dicom-window")) {
            if (dicom_window_parse(v, &read_opt.dicom_window) < 0) {
                fprintf(stderr, "salcheck explain: --dicom-window '%s' is not one of voi, full, minmax\n", v);
                return CLI_FAIL_ALL;
            }
        } else if (!strcmp(a, "--layer"))
            snprintf(params.gcam_layer, sizeof params.gcam_layer, "%s", v);
        else if (!strcmp(a, "--target"))
            target_arg = strcmp(v, "predicted") ? v : NULL; /* resolved with the model */
        else if (!strcmp(a, "--labels"))
            labels_arg = v;
        else if (!strcmp(a, "--batch")) {
            if (parse_int(a, v, 1, 4096, &batch) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &seed) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--ig-steps")) {
            if (parse_int(a, v, 1, 100000, &params.ig_steps) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--eg-samples")) {
            if (parse_int(a, v, 1, 100000, &params.eg_samples) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--rise-masks")) {
            if (parse_int(a, v, 1, 1000000, &params.rise_masks) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--sg-samples")) {
            if (parse_int(a, v, 1, 100000, &params.sg_samples) < 0)
                return CLI_FAIL_ALL;
        } else if (!strcmp(a, "--ig-rule")) {
            int r = sal_ig_rule_parse(v);
            if (r < 0) {
                fprintf(stderr, "salcheck explain: --ig-rule '%s' is not one of linspace, left, "
                                "right, midpoint, trapezoid, gausslegendre\n", v);
                return CLI_FAIL_ALL;
            }
            params.ig_rule = (sal_ig_rule_t)r;
        } else if (!strcmp(a, "--lrp-composite")) {
            int c = lrp_composite_parse(v);
            if (c < 0) {
                fprintf(stderr, "salcheck explain: --lrp-composite '%s' is not one of "
                                "epsilon_plus_flat, epsilon_gamma_box, epsilon_plus, "
                                "epsilon_alpha2_beta1, epsilon\n", v);
                return CLI_FAIL_ALL;
            }
            params.lrp_composite = c;
        } else if (!strcmp(a, "--lrp-first") || !strcmp(a, "--lrp-conv") ||
                   !strcmp(a, "--lrp-dense")) {
            int r = lrp_rule_parse(v);
            const int first = !strcmp(a, "--lrp-first");
            if (r < 0 || (!first && r == LRP_RULE_ZBOX)) {
                fprintf(stderr, "salcheck explain: %s '%s' is not one of epsilon, zplus, gamma, "
                                "alphabeta, flat%s\n", a, v, first ? ", zbox" : "");
                return CLI_FAIL_ALL;
            }
            *(first ? &params.lrp_first
                    : !strcmp(a, "--lrp-conv") ? &params.lrp_conv : &params.lrp_dense) = r;
        } else if (!strcmp(a, "--deeplift-baseline")) {
            int b = sal_baseline_parse(v);
            if (b < 0 || b == SAL_BASELINE_VALUE) {
                fprintf(stderr, "salcheck explain: --deeplift-baseline '%s' is not one of black, "
                                "min, max\n", v);
                return CLI_FAIL_ALL;
            }
            params.dl_baseline = (sal_baseline_t)b;
        } else if (!strcmp(a, "--baseline")) {
            int b = sal_baseline_parse(v);
            if (b < 0 || b == SAL_BASELINE_VALUE) {
                fprintf(stderr, "salcheck explain: --baseline '%s' is not one of black, min, max\n",
                        v);
                return CLI_FAIL_ALL;
            }
            params.ig_baseline = (sal_baseline_t)b;
        } else {
            fprintf(stderr, "salcheck explain: unknown option '%s' (see --help)\n", a);
            return CLI_FAIL_ALL;
        }
    }
    if (!model_path || !image_path || !out_arg) {
        fprintf(stderr, "salcheck explain: --model, --image and --out are required\n\n");
        explain_usage(stderr);
        return CLI_FAIL_ALL;
    }
    const sal_method_t *methods[EXPLAIN_MAX_METHODS];
    int n_methods = parse_methods(method_list, avgmask_path != NULL, baselines_dir != NULL,
                                  methods);
    if (n_methods < 0)
        return CLI_FAIL_ALL;
    for (int k = 0; k < n_methods; k++)
        if (!strcmp(methods[k]->name, "avgmask") && !avgmask_path) {
            fprintf(stderr, "salcheck explain: the avgmask method needs --avgmask MASK.png (the "
                            "average training mask, 0..255)\n");
            return CLI_FAIL_ALL;
        }
    for (int k = 0; k < n_methods; k++)
        if (methods[k]->needs_pool && !baselines_dir) {
            fprintf(stderr, "salcheck explain: the %s method needs --baselines DIR (a folder of "
                            "training images, PNG, to draw its baselines from)\n",
                    methods[k]->name);
            return CLI_FAIL_ALL;
        }
    if (rank != 0)
        return CLI_OK; /* one image: rank 0 does it all */

    int rc = 0;
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    image_loader_t *loader = NULL;
    float *x = NULL, *gray = NULL, *raw_buf = NULL, *map = NULL, *logits = NULL, *mask = NULL;
    uint8_t *gray8 = NULL, *rgb = NULL;
    hid_t file = -1, maps = -1;
    char out_base[1024], h5_path[1100], png_path[1200];
    char *labels = sc_calloc(NN_LABELS_TEXT_MAX, 1); /* the outputs' labels, "" when unnamed */
    char target_label[NN_LABEL_MAX] = "";
    CHECK_ALLOC(labels);

    snprintf(out_base, sizeof out_base, "%s", out_arg);
    if (ends_with(out_base, ".h5") || ends_with(out_base, ".png"))
        *strrchr(out_base, '.') = '\0';
    snprintf(h5_path, sizeof h5_path, "%s.h5", out_base);

    CHECK_RC(load_model(model_path, normalize, &m));
    const int C = m->nodes[0].c, H = m->nodes[0].h, W = m->nodes[0].w;
    CHECK((C == 1 || C == 3) && H == W, SC_ERR_UNSUPPORTED,
          "%s: explain needs a square 1- or 3-channel input, the model takes %dx%dx%d", model_path,
          C, H, W);
    if (!normalize)
        normalize = m->normalize[0] ? m->normalize : "inception";
    image_norm_t norm;
    CHECK_RC(image_norm_resolve(normalize, C, &norm));
    {
        /* the explained output (nn/outputs.h): --labels, else the labels the model file stores */
        char err[1400], stored[NN_LABELS_TEXT_MAX] = "";
        const char *given = labels_arg;
        if (!given && !ends_with(model_path, ".onnx") &&
            modelfile_get_attr(model_path, "output_labels", stored, sizeof stored) == 0)
            given = stored;
        if (given && *given)
            CHECK(nn_outputs_labels_check(given, nn_outputs_count(m), labels, NN_LABELS_TEXT_MAX, err,
                                          sizeof err) == 0,
                  SC_ERR_ARG, "%s: %s", labels_arg ? "--labels" : model_path, err);
        CHECK(nn_outputs_target(target_arg, m, labels, &target_req, err, sizeof err) == 0,
              SC_ERR_ARG, "%s: %s", model_path, err);
    }
    CHECK_RC(sal_ws_create(&ws, m, batch, normalize));
    const size_t hw = (size_t)H * W, chw = hw * C;
    const int classes = ws->classes;
    x = sc_calloc(chw, sizeof(float));
    gray = sc_calloc(hw, sizeof(float));
    raw_buf = sc_calloc(chw, sizeof(float));
    map = sc_calloc(hw, sizeof(float));
    logits = sc_calloc((size_t)classes, sizeof(float));
    gray8 = sc_calloc(hw, 1);
    rgb = sc_calloc(hw * 3, 1);
    CHECK_ALLOC(x);
    CHECK_ALLOC(gray);
    CHECK_ALLOC(raw_buf);
    CHECK_ALLOC(map);
    CHECK_ALLOC(logits);
    CHECK_ALLOC(gray8);
    CHECK_ALLOC(rgb);
    loader = image_loader_create(H, IMAGE_RESIZE_AREA, norm);
    CHECK(loader, SC_ERR_NOMEM, "image loader for %dx%d", H, W);
    image_loader_set_read_options(loader, &read_opt);
    CHECK_RC(image_loader_load(loader, image_path, x, gray));
    for (size_t i = 0; i < hw; i++) {
        float g = gray[i] + 0.5f;
        gray8[i] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
    }
    if (avgmask_path) {
        int mw = 0, mh = 0;
        CHECK_RC(png_read_gray(avgmask_path, &mw, &mh, &mask));
        CHECK(mw == W && mh == H, SC_ERR_SHAPE,
              "%s: the average mask is %dx%d, the model input %dx%d", avgmask_path, mw, mh, W, H);
        for (size_t i = 0; i < hw; i++)
            mask[i] /= 255.0f;
        CHECK_RC(sal_ws_set_avgmask(ws, mask));
    }
    if (baselines_dir)
        CHECK_RC(load_baselines(baselines_dir, loader, params.eg_pool, ws));

    int target = 0;
    CHECK_RC(sal_target(ws, x, target_req, &target, logits));
    printf("model %s (%s, %dx%d, %s), image %s\n", model_path, m->arch[0] ? m->arch : "?", H, W,
           normalize, image_path);
    printf("logits:");
    for (int k = 0; k < classes; k++)
        printf(" %.4f", logits[k]);
    nn_outputs_label(labels, target, target_label, sizeof target_label);
    printf("; explaining logit %d%s%s%s (%s; %s head)\n", target, target_label[0] ? " (" : "",
           target_label, target_label[0] ? ")" : "",
           target_req == SAL_TARGET_PREDICTED ? "predicted class" : "chosen output",
           nn_outputs_head_name(nn_outputs_head(m)));

    CHECK_RC(sc_mkdirs_parent(h5_path));
    H5E_BEGIN_TRY {
        file = H5Fcreate(h5_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    } H5E_END_TRY;
    CHECK(file >= 0, SC_ERR_IO, "%s: cannot create the output file (does its folder exist?)",
          h5_path);
    CHECK_RC(h5attr_write_str(file, "salcheck_version", SALCHECK_VERSION));
    CHECK_RC(h5attr_write_str(file, "model", model_path));
    CHECK_RC(h5attr_write_str(file, "image", image_path));
    CHECK_RC(h5attr_write_str(file, "normalize", normalize));
    CHECK_RC(h5attr_write_str(file, "dicom_window", dicom_window_name(read_opt.dicom_window)));
    CHECK_RC(h5attr_write_str(file, "target_request",
                          target_req == SAL_TARGET_PREDICTED ? "predicted" : "class"));
    CHECK_RC(h5attr_write_str(file, "target_label", target_label));
    CHECK_RC(h5attr_write_str(file, "labels", labels));
    CHECK_RC(h5attr_write_str(file, "head", nn_outputs_head_name(nn_outputs_head(m))));
    CHECK_RC(h5attr_write_str(file, "maps", raw ? "raw attribution [C,H,W] or [1,H,W]"
                                            : "post-processed [H,W] (docs/methods.md section 4)"));
    {
        char desc[768];
        snprintf(desc, sizeof desc,
                 "sg_samples=%d sg_noise=%g sg_squared=%d ig_steps=%d ig_rule=%s ig_baseline=%s "
                 "sig_samples=%d xrai_steps=%d gcam_layer=%s occ_window=%d occ_stride=%d seed=%d "
                 "rise_masks=%d rise_cells=%d rise_p=%g eg_samples=%d eg_baselines=%d",
                 params.sg_samples, params.sg_noise, params.sg_squared, params.ig_steps,
                 sal_ig_rule_name(params.ig_rule), sal_baseline_name(params.ig_baseline),
                 params.sig_samples, params.xrai_steps,
                 params.gcam_layer[0] ? params.gcam_layer : m->gradcam_layer, params.occ_window,
                 params.occ_stride, seed, params.rise_masks, params.rise_cells, params.rise_p,
                 params.eg_samples, ws->eg_count);
        snprintf(desc + strlen(desc), sizeof desc - strlen(desc),
                 " lrp_composite=%s lrp_rules=%s,%s,%s deeplift_baseline=%s",
                 lrp_composite_name((lrp_composite_t)params.lrp_composite),
                 params.lrp_first >= 0 ? lrp_rule_name((lrp_rule_t)params.lrp_first) : "-",
                 params.lrp_conv >= 0 ? lrp_rule_name((lrp_rule_t)params.lrp_conv) : "-",
                 params.lrp_dense >= 0 ? lrp_rule_name((lrp_rule_t)params.lrp_dense) : "-",
                 sal_baseline_name(params.dl_baseline));
        CHECK_RC(h5attr_write_str(file, "parameters", desc));
    }
    hsize_t dims[3] = {(hsize_t)classes, 0, 0};
    CHECK_RC(h5_write(file, "logits", H5T_NATIVE_FLOAT, 1, dims, logits));
    CHECK_RC(h5_write(file, "target", H5T_NATIVE_INT, 0, NULL, &target));
    dims[0] = (hsize_t)H;
    dims[1] = (hsize_t)W;
    CHECK_RC(h5_write(file, "image_gray", H5T_NATIVE_UINT8, 2, dims, gray8));
    maps = H5Gcreate2(file, "maps", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(maps >= 0, SC_ERR_H5, "%s: cannot create /maps", h5_path);

    sal_key_t key = {.seed = (uint64_t)seed, .variant = 0, .image = 0};
    int undefined = 0;
    for (int k = 0; k < n_methods; k++) {
        const sal_method_t *meth = methods[k];
        const int rc_ch = sal_raw_channels(meth, ws);
        double t0 = sc_now();
        int r = sal_compute(meth, &params, m, ws, x, target, gray, key, raw_buf);
        double secs = sc_now() - t0;
        if (r == 0)
            r = sal_postprocess(meth, ws, raw_buf, map);
        if (r == SC_ERR_UNDEFINED) {
            sal_fill_nan(map, hw);
            undefined++;
        } else if (r < 0) {
            SC_ERROR("method %s failed on %s", meth->name, image_path);
            rc = r;
            goto cleanup;
        }
        hsize_t mdims[3] = {(hsize_t)rc_ch, (hsize_t)H, (hsize_t)W};
        hid_t t = -1;
        if (raw)
            CHECK_RC(h5_write(maps, meth->name, H5T_NATIVE_FLOAT, 3, mdims, raw_buf));
        else
            CHECK_RC(h5_write(maps, meth->name, H5T_NATIVE_FLOAT, 2, mdims + 1, map));
        t = H5Dopen2(maps, meth->name, H5P_DEFAULT);
        if (t >= 0) {
            h5attr_write_str(t, "post", raw ? "raw" : meth->post == SAL_POST_P2 ? "P2" : "P1");
            h5attr_write_f64(t, "seconds", secs);
            h5attr_write_f64(t, "cost_gradients", sal_cost_model(meth, &params, m));
            h5attr_write_f64(t, "undefined", r == SC_ERR_UNDEFINED);
            H5Dclose(t);
        }

        if (n_methods == 1)
            snprintf(png_path, sizeof png_path, "%s.png", out_base);
        else
            snprintf(png_path, sizeof png_path, "%s.%s.png", out_base, meth->name);
        CHECK_RC(cmap_overlay(gray8, map, H, W, 0.5f, rgb));
        CHECK_RC(png_write_rgb8(png_path, W, H, rgb));
        printf("  %-9s %7.2f s  %6g gradient evaluations  %s%s\n", meth->name, secs,
               sal_cost_model(meth, &params, m), png_path,
               r == SC_ERR_UNDEFINED ? "  (undefined map: constant or zero everywhere)" : "");
    }
    printf("wrote %s\n", h5_path);
    fflush(stdout);
    if (undefined)
        SC_WARN("%d map%s undefined (stored as NaN; the overlay shows the bare image)", undefined,
                undefined == 1 ? " is" : "s are");

cleanup:
    if (maps >= 0)
        H5Gclose(maps);
    if (file >= 0) {
        int crc = h5file_close(file, h5_path, "the maps file");
        if (rc >= 0 && crc < 0)
            rc = crc;
    }
    image_loader_destroy(loader);
    sc_free(x);
    sc_free(gray);
    sc_free(raw_buf);
    sc_free(map);
    sc_free(logits);
    sc_free(gray8);
    sc_free(rgb);
    sc_free(mask);
    sc_free(labels);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    return rc < 0 ? CLI_FAIL_ALL : CLI_OK;
}
