/*
 * test_saliency.c - the saliency methods (workers/saliency) against PyTorch on
 * the same weights and input, and against hand-computed answers.
 *
 *   - grad, gxi, gbp, ig (paper rule and Gauss-Legendre), gcam, gcampp, sg
 *     (with the C generator's noise handed to the script) and occlusion on
 *     democnn with perturbed BN statistics, to 1e-4 relative (raw maps),
 *     against tests/ref/saliency_torch_ref.py (float64 PyTorch);
 *   - IG completeness: sum of the attribution -> f(x) - f(b) as steps grow;
 *   - maps that do not depend on the batch size; noise keyed by image;
 *   - Gauss-Legendre nodes, bilinear resize with half-pixel centres, the
 *     explained scalar (predicted, chosen, single-logit sigmoid), undefined
 *     Grad-CAM, Sobel against scikit-image, post-processing against numpy,
 *     Guided Grad-CAM as the product of two P1 maps, XRAI plumbing, costs;
 *   - the peers' methods (scorecam, layercam, hirescam, xgradcam, eigencam,
 *     rise, eg) against tests/ref/saliency_peers_ref.py on democnn,
 *     demoresnet and ResNet-18, on a textured input and on a phantom
 *     radiograph letterboxed with black bars; RISE masks against skimage;
 *     their determinism over batch sizes, costs and undefined cases.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "io/image.h"
#include "io/png.h"
#include "nn/fuse.h"
#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "phantom/phantom.h"
#include "rng.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "nnhelp.h"
#include "testhelp.h"

/* A smooth-ish random input in [-1, 1]: a gray "image" copied to 3 channels
 * plus a little per-channel noise (so channels differ). */
static void make_input(float *x, int c, int h, int w, uint64_t seed, float *gray)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "input"), 0, 0, 0);
    double fx = 1.0 + 3.0 * rng_stream_uniform(&rs), fy = 1.0 + 3.0 * rng_stream_uniform(&rs);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) {
            double g = 0.5 + 0.35 * sin(fx * 6.28 * i / w) * cos(fy * 6.28 * y / h) +
                       0.15 * (rng_stream_uniform(&rs) - 0.5);
            if (gray)
                gray[y * w + i] = (float)(255.0 * g);
            for (int ch = 0; ch < c; ch++)
                x[(size_t)ch * h * w + y * w + i] =
                    (float)(2.0 * g - 1.0 + 0.05 * (rng_stream_uniform(&rs) - 0.5));
        }
}

static int have_torch(void)
{
    static int known = -1; /* importing torch takes seconds: ask once */
    if (known < 0)
        known = th_python_has("torch, h5py, numpy");
    return known;
}

/* ---- PyTorch parity ---- */

/*
 * The engine's piecewise-linear decisions for n inputs (each forwarded alone):
 * for every ReLU node a uint8 mask [n, size] (out > 0), for every max-pool
 * node its int32 argmax [n, size], in node order (see saliency_torch_ref.py).
 * fused: forwarded as the batch methods (IG, SmoothGrad, EG) forward, with
 * batch norm folded (nn_forward_fused), whose rounding can flip a decision
 * that lies within rounding of a kink.
 */
static int dump_decisions(nn_model_t *m, const float *inputs, int n, int fused, const char *path)
{
    size_t chw = nn_node_size(&m->nodes[0]), total = 0;
    size_t *off = calloc((size_t)m->n_nodes, sizeof(size_t));
    for (int id = 1; id < m->n_nodes; id++) {
        off[id] = total;
        if (m->nodes[id].op == NN_RELU)
            total += (size_t)n * nn_node_size(&m->nodes[id]);
        else if (m->nodes[id].op == NN_MAXPOOL)
            total += (size_t)n * nn_node_size(&m->nodes[id]) * sizeof(int32_t);
    }
    uint8_t *buf = calloc(total ? total : 1, 1);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = fused ? nn_forward_fused(m, inputs + (size_t)i * chw, 1)
                   : nn_forward(m, inputs + (size_t)i * chw, 1, 0);
        for (int id = 1; id < m->n_nodes && rc == 0; id++) {
            const nn_node_t *nd = &m->nodes[id];
            size_t size = nn_node_size(nd);
            if (nd->op == NN_RELU)
                for (size_t j = 0; j < size; j++)
                    buf[off[id] + i * size + j] = nd->out[j] > 0;
            else if (nd->op == NN_MAXPOOL)
                memcpy(buf + off[id] + i * size * sizeof(int32_t), nd->argmax,
                       size * sizeof(int32_t));
        }
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, total, f) != total)
        rc = -1;
    if (f)
        fclose(f);
    free(buf);
    free(off);
    return rc;
}

typedef struct parity {
    const char *name;
    size_t count;
    float *c_map;
} parity_t;

static void run_parity(nn_model_t *m, const char *tag, const char *rule, int steps, int batch,
                       uint64_t input_seed)
{
    char model_path[512], in_path[512], base_path[512], noise_path[512], out_path[512];
    char cmd[8192];
    snprintf(model_path, sizeof model_path, "%s/%s.h5", th_tmp_dir(), tag);
    snprintf(in_path, sizeof in_path, "%s/%s.x.f32", th_tmp_dir(), tag);
    snprintf(base_path, sizeof base_path, "%s/%s.b.f32", th_tmp_dir(), tag);
    snprintf(noise_path, sizeof noise_path, "%s/%s.e.f32", th_tmp_dir(), tag);
    snprintf(out_path, sizeof out_path, "%s/%s.ref.f32", th_tmp_dir(), tag);
    TH_CHECK(modelfile_save(model_path, m, NULL) == 0, "save %s", model_path);

    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, batch, NULL) == 0, "workspace");
    if (!ws)
        return;
    const int C = ws->c, H = ws->h, W = ws->w;
    const size_t chw = ws->chw, hw = ws->hw;
    float *x = calloc(chw, sizeof(float));
    make_input(x, C, H, W, input_seed, NULL);
    TH_CHECK(th_write_f32(in_path, x, chw) == 0, "write %s", in_path);

    sal_params_t p = sal_params_default();
    p.ig_steps = steps;
    p.ig_rule = (sal_ig_rule_t)sal_ig_rule_parse(rule);
    p.sg_samples = 5;
    p.occ_window = 16;
    p.occ_stride = 12; /* 64 px: starts 0, 12, ..., 48 (5 x 5 windows), the last one cut */
    p.occ_fill = 0.25;
    sal_key_t key = {.seed = 99, .variant = 1, .image = 4};

    int target = -1;
    float logits[8];
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &target, logits) == 0, "target");
    /* The baseline the C method uses, handed to the script. */
    sal_fill_baseline(ws, x, p.ig_baseline, p.ig_baseline_value);
    TH_CHECK(ws->base[0] == -1.0f, "black under inception normalization is -1, got %g",
             ws->base[0]);
    th_write_f32(base_path, ws->base, chw);
    /* SmoothGrad's noise, as the C method draws it. */
    float *noise = calloc((size_t)p.sg_samples * chw, sizeof(float));
    float sigma = sal_noise_sigma(&p, x, chw);
    for (int j = 0; j < p.sg_samples; j++)
        sal_noise("sg", key, (uint32_t)j, sigma, chw, noise + (size_t)j * chw);
    th_write_f32(noise_path, noise, (size_t)p.sg_samples * chw);
    /* The engine's ReLU/max-pool decisions at every gradient the methods take:
     * x; the IG path points and the noisy copies, formed as the methods form them. */
    char dec_x[512], dec_ig[512], dec_sg[512];
    snprintf(dec_x, sizeof dec_x, "%s/%s.dx.u8", th_tmp_dir(), tag);
    snprintf(dec_ig, sizeof dec_ig, "%s/%s.dig.u8", th_tmp_dir(), tag);
    snprintf(dec_sg, sizeof dec_sg, "%s/%s.dsg.u8", th_tmp_dir(), tag);
    float *inputs = calloc((size_t)(steps > p.sg_samples ? steps : p.sg_samples) * chw,
                           sizeof(float));
    TH_CHECK(dump_decisions(m, x, 1, 0, dec_x) == 0, "decisions at x");
    for (int k = 0; k < steps; k++) {
        double alpha, weight;
        sal_ig_node(p.ig_rule, steps, k, &alpha, &weight);
        const float a = (float)alpha;
        for (size_t i = 0; i < chw; i++)
            inputs[k * chw + i] = ws->base[i] + a * (x[i] - ws->base[i]);
    }
    TH_CHECK(dump_decisions(m, inputs, steps, 1, dec_ig) == 0, "decisions on the IG path");
    for (size_t i = 0; i < (size_t)p.sg_samples * chw; i++)
        inputs[i] = noise[i] + x[i % chw];
    TH_CHECK(dump_decisions(m, inputs, p.sg_samples, 1, dec_sg) == 0, "decisions of SmoothGrad");
    free(inputs);

    parity_t maps[] = {
        {"grad", chw, NULL}, {"gxi", chw, NULL},  {"gbp", chw, NULL},   {"ig", chw, NULL},
        {"gcam", hw, NULL},  {"gcampp", hw, NULL}, {"sg", chw, NULL}, {"occlusion", hw, NULL},
    };
    const int n_maps = (int)(sizeof maps / sizeof maps[0]);
    for (int k = 0; k < n_maps; k++) {
        maps[k].c_map = calloc(maps[k].count, sizeof(float));
        const sal_method_t *meth = sal_method_find(maps[k].name);
        TH_CHECK(meth != NULL, "method %s", maps[k].name);
        int rc = meth ? sal_compute(meth, &p, m, ws, x, target, NULL, key, maps[k].c_map) : -1;
        TH_CHECK(rc == 0, "%s: rc %d", maps[k].name, rc);
    }

    snprintf(cmd, sizeof cmd,
             "%s tests/ref/saliency_torch_ref.py --model %s --input %s --target %d --layer %s "
             "--ig-steps %d --ig-rule %s --baseline %s --noise %s --samples %d --squared %d "
             "--occ-window %d --occ-stride %d --occ-fill %g --decisions-x %s --decisions-ig %s "
             "--decisions-sg %s --out %s",
             th_python(), model_path, in_path, target, m->gradcam_layer, steps, rule, base_path,
             noise_path, p.sg_samples, p.sg_squared, p.occ_window, p.occ_stride, p.occ_fill,
             dec_x, dec_ig, dec_sg, out_path);
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    size_t ref_count = (size_t)ws->classes;
    for (int k = 0; k < n_maps; k++)
        ref_count += maps[k].count;
    float *ref = calloc(ref_count, sizeof(float));
    size_t got = th_read_f32(out_path, ref, ref_count);
    TH_EQ_INT(got, ref_count);
    if (got == ref_count) {
        TH_NEAR(th_rel_err(logits, ref, ws->classes), 0.0, 0.0, 1e-4);
        const float *r = ref + ws->classes;
        printf("    %s (%s, S=%d, batch %d):", tag, rule, steps, batch);
        for (int k = 0; k < n_maps; k++) {
            double e = th_rel_err(maps[k].c_map, r, maps[k].count);
            printf(" %s %.1e", maps[k].name, e);
            TH_CHECK(e < 1e-4, "%s differs from PyTorch: %g relative", maps[k].name, e);
            r += maps[k].count;
        }
        printf("\n");
    }
    for (int k = 0; k < n_maps; k++)
        free(maps[k].c_map);
    free(ref);
    free(noise);
    free(x);
    sal_ws_destroy(ws);
}

/*
 * A float32 engine and a float64 reference can take different sides of a ReLU
 * kink or a max-pool tie when the values are within rounding (and at a
 * constant image, the IG baseline, every pooling window is an exact tie); the
 * gradient then moves by far more than 1e-4, in about a third of the IG runs
 * tried here. So the reference follows the engine's decisions, and checks that
 * each of them is a valid float64 decision up to rounding (run_parity).
 */
static void test_democnn_methods_match_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 64, 2, 11) == 0, "build democnn");
    th_perturb_bn(m, 1);
    run_parity(m, "sal_democnn", "linspace", 10, 4, 17);
    nn_model_destroy(m);
}

static void test_ig_gauss_legendre_matches_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 64, 3, 21) == 0, "build democnn");
    th_perturb_bn(m, 2);
    run_parity(m, "sal_gl", "gausslegendre", 7, 3, 17);
    nn_model_destroy(m);
}

static void test_demoresnet_methods_match_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_demoresnet(&m, 64, 2, 12) == 0, "build demoresnet");
    th_perturb_bn(m, 3);
    run_parity(m, "sal_demoresnet", "midpoint", 12, 5, 17);
    nn_model_destroy(m);
}

/* ---- the peers' methods against PyTorch (docs/methods.md section 4) ---- */

/* A phantom radiograph (64 px) letterboxed: squeezed to 3/4 of the width and
 * centred between black bars, gray 0 (-1 under the inception normalization),
 * the flat borders a scanner or a conversion leaves. */
static int make_letterboxed(float *x, int c, int h, int w, uint32_t index)
{
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.size = h;
    cfg.seed = 7;
    phantom_t *ph = phantom_create(&cfg);
    uint8_t *img = calloc((size_t)h * h, 1);
    float *src = calloc((size_t)h * h, sizeof(float)), *dst = calloc((size_t)h * w, sizeof(float));
    phantom_info_t info;
    int rc = ph && img && src && dst ? phantom_render(ph, index, img, &info, NULL, NULL) : -1;
    const int inner = (w * 3 / 4) & ~1, bar = (w - inner) / 2;
    for (int i = 0; rc == 0 && i < h * h; i++)
        src[i] = img[i];
    if (rc == 0)
        sal_resize_bilinear(src, h, h, dst, h, inner);
    for (int y = 0; rc == 0 && y < h; y++)
        for (int i = 0; i < w; i++) {
            float g = i < bar || i >= bar + inner ? 0.0f : dst[y * inner + i - bar];
            for (int ch = 0; ch < c; ch++)
                x[(size_t)ch * h * w + y * w + i] = g / 127.5f - 1.0f;
        }
    phantom_destroy(ph);
    free(img);
    free(src);
    free(dst);
    return rc;
}

static int write_bytes(const char *path, const void *v, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(v, 1, bytes, f);
    fclose(f);
    return n == bytes ? 0 : -1;
}

/*
 * Every peer method on model m and one input (textured, or the letterboxed
 * phantom) against saliency_peers_ref.py: the RISE masks' draws (grids,
 * shifts) and Expected Gradients' draws (reference image, alpha) go to the
 * script, which builds the masks with skimage and the paths itself; the
 * engine's ReLU/max-pool decisions at x and on the EG path go along as for
 * the paper's methods (run_parity).
 */
static void run_peer_parity(nn_model_t *m, const char *tag, int batch, int letterbox)
{
    enum { RISE_N = 40, RISE_S = 5, EG_N = 6, POOL = 3 };
    char path[10][512], cmd[8192];
    const char *suffix[10] = {"h5", "x.f32", "grid.u8", "shift.i32", "pool.f32", "pick.i32",
                              "alpha.f32", "dx.u8", "deg.u8", "ref.f32"};
    for (int k = 0; k < 10; k++)
        snprintf(path[k], sizeof path[k], "%s/%s.%s", th_tmp_dir(), tag, suffix[k]);
    TH_CHECK(modelfile_save(path[0], m, NULL) == 0, "save %s", path[0]);
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, batch, NULL) == 0, "workspace");
    if (!ws)
        return;
    const size_t chw = ws->chw, hw = ws->hw;
    float *x = calloc(chw, sizeof(float)), *pool = calloc(POOL * chw, sizeof(float));
    if (letterbox)
        TH_CHECK(make_letterboxed(x, ws->c, ws->h, ws->w, 3) == 0, "letterboxed phantom");
    else
        make_input(x, ws->c, ws->h, ws->w, 17, NULL);
    /* The reference images: other phantoms (letterboxed too) or textures. */
    for (int k = 0; k < POOL; k++) {
        if (letterbox)
            make_letterboxed(pool + k * chw, ws->c, ws->h, ws->w, 10 + k);
        else
            make_input(pool + k * chw, ws->c, ws->h, ws->w, 40 + k, NULL);
    }
    TH_CHECK(sal_ws_set_baselines(ws, pool, POOL) == 0, "baselines");
    th_write_f32(path[1], x, chw);
    th_write_f32(path[4], pool, POOL * chw);

    sal_params_t p = sal_params_default();
    p.rise_masks = RISE_N;
    p.rise_cells = RISE_S;
    p.eg_samples = EG_N;
    sal_key_t key = {.seed = 31, .variant = 2, .image = 5};
    int target = -1;
    float logits[8];
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &target, logits) == 0, "target");

    uint8_t grids[RISE_N * RISE_S * RISE_S];
    int32_t shifts[2 * RISE_N], pick[EG_N];
    float alpha[EG_N], *mask0 = calloc(hw, sizeof(float));
    for (int i = 0; i < RISE_N; i++) {
        int sh[2];
        sal_rise_mask(key, (uint32_t)i, RISE_S, p.rise_p, ws->h, ws->w, mask0,
                      grids + i * RISE_S * RISE_S, sh);
        shifts[2 * i] = sh[0];
        shifts[2 * i + 1] = sh[1];
    }
    sal_rise_mask(key, 0, RISE_S, p.rise_p, ws->h, ws->w, mask0, NULL, NULL);
    float *path_in = calloc(EG_N * chw, sizeof(float));
    for (int j = 0; j < EG_N; j++) {
        int idx;
        sal_eg_draw(key, (uint32_t)j, POOL, &idx, &alpha[j]);
        pick[j] = idx;
        for (size_t i = 0; i < chw; i++)
            path_in[j * chw + i] =
                pool[idx * chw + i] + alpha[j] * (x[i] - pool[idx * chw + i]);
    }
    write_bytes(path[2], grids, sizeof grids);
    write_bytes(path[3], shifts, sizeof shifts);
    write_bytes(path[5], pick, sizeof pick);
    th_write_f32(path[6], alpha, EG_N);
    TH_CHECK(dump_decisions(m, x, 1, 0, path[7]) == 0, "decisions at x");
    TH_CHECK(dump_decisions(m, path_in, EG_N, 1, path[8]) == 0, "decisions on the EG paths");
    free(path_in);

    parity_t maps[] = {
        {"scorecam", hw, NULL}, {"layercam", hw, NULL}, {"hirescam", hw, NULL},
        {"xgradcam", hw, NULL}, {"eigencam", hw, NULL}, {"rise", hw, NULL}, {"eg", chw, NULL},
    };
    const int n_maps = (int)(sizeof maps / sizeof maps[0]);
    for (int k = 0; k < n_maps; k++) {
        maps[k].c_map = calloc(maps[k].count, sizeof(float));
        const sal_method_t *meth = sal_method_find(maps[k].name);
        TH_CHECK(meth != NULL, "method %s", maps[k].name);
        int rc = meth ? sal_compute(meth, &p, m, ws, x, target, NULL, key, maps[k].c_map) : -1;
        TH_CHECK(rc == 0, "%s: rc %d", maps[k].name, rc);
    }
    snprintf(cmd, sizeof cmd,
             "%s tests/ref/saliency_peers_ref.py --model %s --input %s --target %d --layer %s "
             "--rise-grids %s --rise-shifts %s --rise-cells %d --rise-p %g --eg-pool %s "
             "--eg-pick %s --eg-alpha %s --decisions-x %s --decisions-eg %s --out %s",
             th_python(), path[0], path[1], target, m->gradcam_layer, path[2], path[3], RISE_S,
             p.rise_p, path[4], path[5], path[6], path[7], path[8], path[9]);
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    size_t ref_count = (size_t)ws->classes + hw;
    for (int k = 0; k < n_maps; k++)
        ref_count += maps[k].count;
    float *ref = calloc(ref_count, sizeof(float));
    size_t got = th_read_f32(path[9], ref, ref_count);
    TH_EQ_INT(got, ref_count);
    if (got == ref_count) {
        TH_NEAR(th_rel_err(logits, ref, ws->classes), 0.0, 0.0, 1e-4);
        const float *r = ref + ws->classes;
        printf("    %s (%s, batch %d):", tag, letterbox ? "letterboxed phantom" : "textured", batch);
        for (int k = 0; k < n_maps; k++) {
            double e = th_rel_err(maps[k].c_map, r, maps[k].count);
            printf(" %s %.1e", maps[k].name, e);
            TH_CHECK(e < 1e-4, "%s differs from PyTorch: %g relative", maps[k].name, e);
            r += maps[k].count;
        }
        double e = th_rel_err(mask0, r, hw);
        printf(" rise-mask %.1e\n", e);
        TH_CHECK(e < 1e-6, "RISE mask 0 differs from skimage's resize: %g", e);
    }
    for (int k = 0; k < n_maps; k++)
        free(maps[k].c_map);
    free(ref);
    free(mask0);
    free(x);
    free(pool);
    sal_ws_destroy(ws);
}

static void test_peer_methods_democnn(void)
{
    if (!have_torch() || !th_python_has("skimage"))
        TH_SKIP("python3-torch/python3-h5py/python3-skimage not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 64, 2, 11) == 0, "build democnn");
    th_perturb_bn(m, 1);
    run_peer_parity(m, "peer_democnn", 7, 0);
    run_peer_parity(m, "peer_democnn_lb", 16, 1);
    nn_model_destroy(m);
}

static void test_peer_methods_demoresnet(void)
{
    if (!have_torch() || !th_python_has("skimage"))
        TH_SKIP("python3-torch/python3-h5py/python3-skimage not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_demoresnet(&m, 64, 2, 12) == 0, "build demoresnet");
    th_perturb_bn(m, 3);
    run_peer_parity(m, "peer_demoresnet", 5, 0);
    run_peer_parity(m, "peer_demoresnet_lb", 8, 1);
    nn_model_destroy(m);
}

/* torchvision's ResNet-18 layout (zoo_resnet18: 7x7 stem, max pool, four
 * stages of basic blocks), at 64 px: the CAM node is 2 x 2. */
static void test_peer_methods_resnet18(void)
{
    if (!have_torch() || !th_python_has("skimage"))
        TH_SKIP("python3-torch/python3-h5py/python3-skimage not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_resnet18(&m, 64, 2, 13) == 0, "build resnet18");
    th_perturb_bn(m, 5);
    run_peer_parity(m, "peer_resnet18", 8, 0);
    run_peer_parity(m, "peer_resnet18_lb", 8, 1);
    nn_model_destroy(m);
}

/*
 * The PyTorch reference of LRP (tests/ref/lrp_torch_ref.py; the engine's LRP
 * is checked against it in test_relprop.c) is checked here on its own:
 * relevance conservation per composite on the bias-free model (epsilon -> 0),
 * and LRP-0 equal to gradient x input, on democnn and demoresnet, textured
 * and letterboxed.
 */
static void test_lrp_reference_self_checks(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    for (int arch = 0; arch < 2; arch++)
        for (int lb = 0; lb < 2; lb++) {
            nn_model_t *m = NULL;
            int rc = arch ? zoo_demoresnet(&m, 48, 2, 15) : zoo_democnn(&m, 48, 2, 15);
            TH_CHECK(rc == 0, "build");
            th_perturb_bn(m, 7);
            char model_path[512], in_path[512], cmd[2048];
            snprintf(model_path, sizeof model_path, "%s/lrp%d.h5", th_tmp_dir(), arch);
            snprintf(in_path, sizeof in_path, "%s/lrp%d_%d.x.f32", th_tmp_dir(), arch, lb);
            TH_CHECK(modelfile_save(model_path, m, NULL) == 0, "save");
            float *x = calloc(3 * 48 * 48, sizeof(float));
            if (lb)
                make_letterboxed(x, 3, 48, 48, 2);
            else
                make_input(x, 3, 48, 48, 19, NULL);
            th_write_f32(in_path, x, 3 * 48 * 48);
            printf("    %s, %s:\n", arch ? "demoresnet" : "democnn", lb ? "letterboxed" : "textured");
            fflush(stdout);
            snprintf(cmd, sizeof cmd, "%s tests/ref/lrp_torch_ref.py --model %s --input %s "
                     "--selfcheck", th_python(), model_path, in_path);
            TH_CHECK(system(cmd) == 0, "LRP reference self-check failed: %s", cmd);
            free(x);
            nn_model_destroy(m);
        }
}

/* ---- IG completeness ---- */

static void test_ig_completeness(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 48, 2, 5) == 0, "build democnn");
    th_perturb_bn(m, 4);
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 16, NULL) == 0, "workspace");
    float *x = calloc(ws->chw, sizeof(float)), *ig = calloc(ws->chw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 3, NULL);
    int target;
    float fx[2], fb[2];
    sal_target(ws, x, SAL_TARGET_PREDICTED, &target, fx);
    sal_fill_baseline(ws, x, SAL_BASELINE_BLACK, 0.0);
    float *b = calloc(ws->chw, sizeof(float));
    memcpy(b, ws->base, sizeof(float) * ws->chw);
    int t_b;
    sal_target(ws, b, target, &t_b, fb);
    const double delta = (double)fx[target] - fb[target];
    TH_CHECK(fabs(delta) > 1e-3, "f(x) - f(b) = %g is too small to test", delta);

    struct { sal_ig_rule_t rule; int steps; double err; } runs[] = {
        {SAL_IG_LINSPACE, 10, 0}, {SAL_IG_LINSPACE, 300, 0}, {SAL_IG_GAUSS_LEGENDRE, 64, 0},
    };
    for (int r = 0; r < 3; r++) {
        sal_params_t p = sal_params_default();
        p.ig_rule = runs[r].rule;
        p.ig_steps = runs[r].steps;
        TH_CHECK(sal_compute(&sal_method_ig, &p, m, ws, x, target, NULL, (sal_key_t){0}, ig) == 0,
                 "ig");
        double sum = 0.0;
        for (size_t i = 0; i < ws->chw; i++)
            sum += ig[i];
        runs[r].err = fabs(sum - delta);
    }
    printf("    f(x)-f(b) = %.5f; |sum IG - delta|: linspace S=10 %.2e, S=300 %.2e, "
           "Gauss-Legendre 64 %.2e\n", delta, runs[0].err, runs[1].err, runs[2].err);
    TH_CHECK(runs[1].err < runs[0].err / 10, "S=300 error %g not much below S=10 error %g",
             runs[1].err, runs[0].err);
    TH_CHECK(runs[2].err < 0.01 * fabs(delta), "Gauss-Legendre 64 error %g above 1%% of %g",
             runs[2].err, delta);
    free(b);
    free(x);
    free(ig);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* ---- determinism ---- */

static void test_maps_do_not_depend_on_batch(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 2, 8) == 0, "build democnn");
    th_perturb_bn(m, 8);
    sal_ws_t *ws1 = NULL, *ws5 = NULL;
    TH_CHECK(sal_ws_create(&ws1, m, 1, NULL) == 0, "workspace batch 1");
    TH_CHECK(sal_ws_create(&ws5, m, 5, NULL) == 0, "workspace batch 5");
    size_t chw = ws1->chw;
    float *x = calloc(chw, sizeof(float)), *a = calloc(chw, sizeof(float)),
          *b = calloc(chw, sizeof(float));
    make_input(x, ws1->c, ws1->h, ws1->w, 9, NULL);
    sal_params_t p = sal_params_default();
    p.sg_samples = 7;
    p.sig_samples = 2;
    p.ig_steps = 6;
    sal_key_t key = {.seed = 5, .variant = 0, .image = 3};
    p.rise_masks = 11;
    p.rise_cells = 4;
    p.eg_samples = 7;
    {
        float *pool = calloc(2 * chw, sizeof(float));
        make_input(pool, ws1->c, ws1->h, ws1->w, 21, NULL);
        make_input(pool + chw, ws1->c, ws1->h, ws1->w, 22, NULL);
        sal_ws_set_baselines(ws1, pool, 2);
        sal_ws_set_baselines(ws5, pool, 2);
        free(pool);
    }
    const char *names[] = {"sg", "ig", "sig", "occlusion", "rise", "eg", "scorecam"};
    for (int k = 0; k < 7; k++) {
        const sal_method_t *meth = sal_method_find(names[k]);
        /* Alternating workspaces also re-prepares the shared model each time. */
        TH_CHECK(sal_compute(meth, &p, m, ws1, x, SAL_TARGET_PREDICTED, NULL, key, a) == 0,
                 "%s batch 1", names[k]);
        TH_CHECK(sal_compute(meth, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, key, b) == 0,
                 "%s batch 5", names[k]);
        size_t n = (size_t)sal_raw_channels(meth, ws1) * ws1->hw;
        double e = th_rel_err(a, b, n);
        TH_CHECK(e < 1e-6, "%s: batch 1 and batch 5 differ by %g", names[k], e);
    }
    /* Another image index draws other noise. */
    sal_key_t other = key;
    other.image = 4;
    TH_CHECK(sal_compute(&sal_method_sg, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, other, b) == 0,
             "sg other image");
    sal_compute(&sal_method_sg, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, key, a);
    TH_CHECK(th_rel_err(a, b, chw) > 1e-3, "sg noise does not depend on the image index");
    /* ... and other RISE masks and EG draws. */
    TH_CHECK(sal_compute(&sal_method_rise, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, other, b) == 0,
             "rise other image");
    sal_compute(&sal_method_rise, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, key, a);
    TH_CHECK(th_rel_err(a, b, ws1->hw) > 1e-3, "rise masks do not depend on the image index");
    TH_CHECK(sal_compute(&sal_method_eg, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, other, b) == 0,
             "eg other image");
    sal_compute(&sal_method_eg, &p, m, ws5, x, SAL_TARGET_PREDICTED, NULL, key, a);
    TH_CHECK(th_rel_err(a, b, chw) > 1e-3, "eg draws do not depend on the image index");
    free(x);
    free(a);
    free(b);
    sal_ws_destroy(ws1);
    sal_ws_destroy(ws5);
    nn_model_destroy(m);
}

static void test_noise_is_keyed_and_normal(void)
{
    const size_t n = 200000;
    float *e = calloc(n, sizeof(float)), *f = calloc(n, sizeof(float));
    sal_key_t key = {.seed = 1, .variant = 2, .image = 3};
    sal_noise("sg", key, 4, 0.3f, n, e);
    sal_noise("sg", key, 4, 0.3f, n, f);
    TH_CHECK(!memcmp(e, f, n * sizeof(float)), "same key, different noise");
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += e[i];
        s2 += (double)e[i] * e[i];
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    TH_NEAR(mean, 0.0, 0.0, 5 * 0.3 / sqrt((double)n));
    TH_NEAR(sd, 0.3, 0.01, 0.0);
    sal_noise("sg", key, 5, 0.3f, n, f);
    TH_CHECK(memcmp(e, f, n * sizeof(float)), "other sample, same noise");
    sal_noise("sig", key, 4, 0.3f, n, f);
    TH_CHECK(memcmp(e, f, n * sizeof(float)), "other purpose, same noise");
    free(e);
    free(f);
}

/* ---- numerical building blocks ---- */

static void test_gauss_legendre_nodes(void)
{
    /* 3 points on [0,1]: (1 -+ sqrt(3/5))/2 and 1/2, weights 5/18, 8/18, 5/18. */
    double a, w;
    const double r = sqrt(0.6);
    const double want_a[3] = {(1 - r) / 2, 0.5, (1 + r) / 2};
    const double want_w[3] = {5 / 18., 8 / 18., 5 / 18.};
    for (int k = 0; k < 3; k++) {
        TH_CHECK(sal_ig_node(SAL_IG_GAUSS_LEGENDRE, 3, k, &a, &w) == 0, "node %d", k);
        TH_NEAR(a, want_a[k], 0, 1e-14);
        TH_NEAR(w, want_w[k], 0, 1e-14);
    }
    /* 64 points integrate t^127 exactly and their weights sum to 1. */
    double sum_w = 0, integral = 0;
    for (int k = 0; k < 64; k++) {
        sal_ig_node(SAL_IG_GAUSS_LEGENDRE, 64, k, &a, &w);
        sum_w += w;
        integral += w * pow(a, 127);
    }
    TH_NEAR(sum_w, 1.0, 0, 1e-13);
    TH_NEAR(integral, 1.0 / 128, 1e-11, 0);
    /* The paper's rule: linspace with both ends, weights 1/S. */
    sal_ig_node(SAL_IG_LINSPACE, 10, 9, &a, &w);
    TH_NEAR(a, 1.0, 0, 0);
    TH_NEAR(w, 0.1, 0, 1e-15);
    sal_ig_node(SAL_IG_LINSPACE, 10, 3, &a, &w);
    TH_NEAR(a, 3.0 / 9.0, 0, 1e-15);
    sal_ig_node(SAL_IG_TRAPEZOID, 5, 0, &a, &w);
    TH_NEAR(w, 0.125, 0, 1e-15);
    TH_CHECK(sal_ig_node(SAL_IG_TRAPEZOID, 1, 0, &a, &w) < 0, "trapezoid needs 2 points");
    TH_EQ_INT(sal_ig_rule_parse("gausslegendre"), SAL_IG_GAUSS_LEGENDRE);
    TH_EQ_INT(sal_ig_rule_parse("simpson"), -1);
}

static void test_bilinear_half_pixel(void)
{
    /* cv2.resize(np.float32([[0,1],[2,3]]), (4,4), interpolation=cv2.INTER_LINEAR). */
    const float src[4] = {0, 1, 2, 3};
    const float want[16] = {0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f,
                            1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3};
    float dst[16];
    sal_resize_bilinear(src, 2, 2, dst, 4, 4);
    for (int i = 0; i < 16; i++)
        TH_NEAR(dst[i], want[i], 0, 1e-6);
    /* A ramp src[y][x] = x is reproduced as the clamped source coordinate
     * (x + 0.5) * in/out - 0.5 at any ratio, growing or shrinking. */
    const int sizes[2][2] = {{5, 11}, {9, 4}};
    for (int t = 0; t < 2; t++) {
        int in = sizes[t][0], out = sizes[t][1];
        float ramp[3 * 9], res[7 * 11];
        for (int y = 0; y < 3; y++)
            for (int i = 0; i < in; i++)
                ramp[y * in + i] = (float)i;
        sal_resize_bilinear(ramp, 3, in, res, 7, out);
        for (int y = 0; y < 7; y++)
            for (int i = 0; i < out; i++) {
                double s = (i + 0.5) * in / out - 0.5;
                s = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
                TH_NEAR(res[y * out + i], s, 0, 1e-5);
            }
    }
}

/* ---- the explained scalar ---- */

static void test_target_selection(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 3, 2) == 0, "build democnn");
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 2, NULL);
    float *x = calloc(ws->chw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 1, NULL);
    float logits[3];
    int t = -7;
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, logits) == 0, "predicted");
    int best = 0;
    for (int k = 1; k < 3; k++)
        best = logits[k] > logits[best] ? k : best;
    TH_EQ_INT(t, best);
    TH_CHECK(sal_target(ws, x, 2, &t, NULL) == 0 && t == 2, "chosen class 2");
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_CHECK(sal_target(ws, x, 3, &t, NULL) == SC_ERR_ARG, "class 3 of 3 accepted");
    sc_log_set_level(SC_LOG_ERROR);
    free(x);
    sal_ws_destroy(ws);
    nn_model_destroy(m);

    /* A single-logit sigmoid model: the explained scalar is the logit (before
     * the sigmoid); checked against central finite differences of the logit. */
    m = nn_model_create(3, 12, 12);
    int c1 = nn_add_conv(m, "c1", 0, 4, 3, 3, 1, 1, NULL, 1, 1);
    int r1 = nn_add_relu(m, "r1", c1);
    int g = nn_add_gap(m, "gap", r1);
    int fc = nn_add_dense(m, "fc", g, 1, 1);
    nn_add_sigmoid(m, "prob", fc);
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "r1");
    TH_CHECK(nn_model_finalize(m, 3) == 0, "finalize");
    sal_ws_create(&ws, m, 1, "unit");
    x = calloc(ws->chw, sizeof(float));
    float *gr = calloc(ws->chw, sizeof(float));
    make_input(x, 3, 12, 12, 2, NULL);
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, logits) == 0 && t == 0, "single logit");
    sal_params_t p = sal_params_default();
    TH_CHECK(sal_compute(&sal_method_grad, &p, m, ws, x, SAL_TARGET_PREDICTED, NULL,
                         (sal_key_t){0}, gr) == 0, "grad");
    const size_t probe[3] = {5, 12 * 12 + 77, 2 * 144 + 130};
    for (int k = 0; k < 3; k++) {
        size_t i = probe[k];
        float keep = x[i], fp, fm;
        const float h = 1e-2f;
        x[i] = keep + h;
        sal_target(ws, x, 0, &t, &fp);
        x[i] = keep - h;
        sal_target(ws, x, 0, &t, &fm);
        x[i] = keep;
        TH_NEAR(gr[i], (fp - fm) / (2 * h), 2e-2, 1e-5);
    }
    /* The unit normalization's black is 0. */
    sal_fill_baseline(ws, x, SAL_BASELINE_BLACK, 0);
    TH_NEAR(ws->base[0], 0.0, 0, 0);
    free(x);
    free(gr);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

static void test_gradcam_undefined_when_zero(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 2, 4) == 0, "build democnn");
    size_t count;
    float *wfc = nn_param(m, nn_find(m, "fc"), NN_P_WEIGHT, &count);
    memset(wfc, 0, sizeof(float) * count); /* the logit no longer depends on the image */
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 1, NULL);
    float *x = calloc(ws->chw, sizeof(float)), *map = calloc(ws->hw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 4, NULL);
    sal_params_t p = sal_params_default();
    const char *names[] = {"gcam", "gcampp", "ggcam", "layercam", "hirescam", "xgradcam"};
    for (int k = 0; k < 6; k++) {
        map[7] = 0.5f;
        int rc = sal_compute(sal_method_find(names[k]), &p, m, ws, x, 0, NULL, (sal_key_t){0}, map);
        TH_EQ_INT(rc, SC_ERR_UNDEFINED);
        TH_CHECK(isnan(map[0]) && isnan(map[7]) && isnan(map[ws->hw - 1]), "%s: map not NaN",
                 names[k]);
    }
    /* An unknown layer is the user's mistake, not an undefined map. */
    snprintf(p.gcam_layer, sizeof p.gcam_layer, "mixed11");
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_EQ_INT(sal_compute(&sal_method_gcam, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_ARG);
    TH_EQ_INT(sal_compute(&sal_method_scorecam, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_ARG);
    TH_EQ_INT(sal_compute(&sal_method_eigencam, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_ARG);
    p = sal_params_default();
    /* Expected Gradients without reference images, RISE with impossible parameters. */
    TH_EQ_INT(sal_compute(&sal_method_eg, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_ARG);
    p.rise_cells = 33; /* more cells than the 32 px image has pixels */
    TH_EQ_INT(sal_compute(&sal_method_rise, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_ARG);
    sc_log_set_level(SC_LOG_ERROR);
    /* Eigen-CAM of constant (all-zero) activations has no principal direction. */
    p = sal_params_default();
    memset(m->params, 0, sizeof(float) * m->n_params);
    nn_model_params_changed(m);
    map[7] = 0.5f;
    TH_EQ_INT(sal_compute(&sal_method_eigencam, &p, m, ws, x, 0, NULL, (sal_key_t){0}, map),
              SC_ERR_UNDEFINED);
    TH_CHECK(isnan(map[7]), "eigencam: undefined map not NaN");
    free(x);
    free(map);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* ---- model-free controls ---- */

static void test_sobel_matches_skimage(void)
{
    if (!th_python_has("skimage, numpy"))
        TH_SKIP("python3-skimage not installed for %s", th_python());
    nn_model_t *m = NULL;
    zoo_democnn(&m, 24, 2, 1);
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 1, NULL);
    float *gray = calloc(ws->hw, sizeof(float)), *x = calloc(ws->chw, sizeof(float));
    float *map = calloc(ws->hw, sizeof(float)), *ref = calloc(ws->hw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 6, gray);
    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/sobel.in.f32", th_tmp_dir());
    snprintf(out_path, sizeof out_path, "%s/sobel.ref.f32", th_tmp_dir());
    th_write_f32(in_path, gray, ws->hw);
    snprintf(cmd, sizeof cmd,
             "%s -c 'import numpy as np, skimage.filters as f; "
             "g = np.fromfile(\"%s\", np.float32).astype(np.float64).reshape(%d, %d); "
             "f.sobel(g).astype(np.float32).tofile(\"%s\")'",
             th_python(), in_path, ws->h, ws->w, out_path);
    TH_CHECK(system(cmd) == 0, "skimage failed: %s", cmd);
    TH_EQ_INT(th_read_f32(out_path, ref, ws->hw), ws->hw);
    sal_params_t p = sal_params_default();
    TH_CHECK(sal_compute(&sal_method_sobel, &p, NULL, ws, x, 0, gray, (sal_key_t){0}, map) == 0,
             "sobel");
    double e = th_rel_err(map, ref, ws->hw);
    printf("    sobel vs skimage.filters.sobel: %.1e\n", e);
    TH_CHECK(e < 1e-5, "sobel differs from scikit-image: %g", e);
    free(gray);
    free(x);
    free(map);
    free(ref);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

static void test_random_and_avgmask(void)
{
    nn_model_t *m = NULL;
    zoo_democnn(&m, 32, 2, 1);
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 1, NULL);
    float *x = calloc(ws->chw, sizeof(float)), *a = calloc(ws->hw, sizeof(float)),
          *b = calloc(ws->hw, sizeof(float));
    sal_params_t p = sal_params_default();
    sal_key_t key = {.seed = 3, .variant = 0, .image = 1};
    sal_compute(&sal_method_random, &p, m, ws, x, 0, NULL, key, a);
    sal_compute(&sal_method_random, &p, m, ws, x, 0, NULL, key, b);
    TH_CHECK(!memcmp(a, b, sizeof(float) * ws->hw), "random map not reproducible");
    double s = 0;
    int in_range = 1;
    for (size_t i = 0; i < ws->hw; i++) {
        s += a[i];
        in_range &= a[i] >= 0 && a[i] < 1;
    }
    TH_CHECK(in_range, "random map outside [0, 1)");
    TH_NEAR(s / ws->hw, 0.5, 0, 0.05);
    key.image = 2;
    sal_compute(&sal_method_random, &p, m, ws, x, 0, NULL, key, b);
    TH_CHECK(memcmp(a, b, sizeof(float) * ws->hw), "random map ignores the image index");

    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_EQ_INT(sal_compute(&sal_method_avgmask, &p, m, ws, x, 0, NULL, key, b), SC_ERR_ARG);
    sc_log_set_level(SC_LOG_ERROR);
    for (size_t i = 0; i < ws->hw; i++)
        a[i] = (float)(i % 7) / 7.0f;
    sal_ws_set_avgmask(ws, a);
    TH_CHECK(sal_compute(&sal_method_avgmask, &p, m, ws, x, 0, NULL, key, b) == 0, "avgmask");
    TH_CHECK(!memcmp(a, b, sizeof(float) * ws->hw), "avgmask is not the given mask");
    free(x);
    free(a);
    free(b);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* ---- post-processing and the composite methods ---- */

static void test_postprocess_matches_numpy(void)
{
    if (!th_python_has("numpy"))
        TH_SKIP("python3-numpy not installed for %s", th_python());
    nn_model_t *m = NULL;
    zoo_democnn(&m, 20, 2, 1); /* 400 pixels: rank 0.99 * 399 = 395.01 interpolates */
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 1, NULL);
    float *raw = calloc(ws->chw, sizeof(float)), *map = calloc(ws->hw, sizeof(float)),
          *ref = calloc(ws->hw, sizeof(float));
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(1, "post"), 0, 0, 0);
    for (size_t i = 0; i < ws->chw; i++)
        raw[i] = (float)(rng_stream_normal(&rs) * (1 + (i % 37)));
    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/post.in.f32", th_tmp_dir());
    snprintf(out_path, sizeof out_path, "%s/post.ref.f32", th_tmp_dir());
    th_write_f32(in_path, raw, ws->chw);
    /* PAIR saliency's VisualizeImageGrayscale: the paper's P1. */
    snprintf(cmd, sizeof cmd,
             "%s -c 'import numpy as np; m = np.fromfile(\"%s\", np.float32).astype(np.float64)"
             ".reshape(3, %d, %d); s = np.abs(m).sum(axis=0); lo = s.min(); "
             "hi = np.percentile(s, 99); "
             "np.clip((s - lo) / (hi - lo), 0, 1).astype(np.float32).tofile(\"%s\")'",
             th_python(), in_path, ws->h, ws->w, out_path);
    TH_CHECK(system(cmd) == 0, "numpy failed: %s", cmd);
    TH_EQ_INT(th_read_f32(out_path, ref, ws->hw), ws->hw);
    TH_CHECK(sal_postprocess(&sal_method_grad, ws, raw, map) == 0, "P1");
    TH_NEAR(th_rel_err(map, ref, ws->hw), 0.0, 0, 1e-5);
    /* A constant map is undefined. */
    for (size_t i = 0; i < ws->hw; i++)
        raw[i] = 2.0f;
    TH_EQ_INT(sal_postprocess(&sal_method_gcam, ws, raw, map), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(map[3]), "constant map not NaN");
    free(raw);
    free(map);
    free(ref);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* A map's forward of the image its target's forward just ran on is not run again
 * (sal_cascade_forward): the maps equal those of a workspace that runs every forward,
 * and an announced parameter change, another input, another workspace's pass or a
 * kept node (a re-plan) each make the next map run its forward. */
static void test_target_forward_reused(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("resnet18", 64, 2, 11, &m) == 0, "resnet18");
    if (!m)
        return;
    th_perturb_bn(m, 12);
    sal_ws_t *ws = NULL, *other = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 2, NULL) == 0 && sal_ws_create(&other, m, 2, NULL) == 0,
             "workspaces");
    const size_t chw = ws->chw;
    float *x = calloc(chw, sizeof(float)), *y = calloc(chw, sizeof(float));
    float *a = calloc(chw, sizeof(float)), *b = calloc(chw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 13, NULL);
    make_input(y, ws->c, ws->h, ws->w, 14, NULL);
    sal_params_t p = sal_params_default();
    const sal_method_t *meths[3] = {&sal_method_grad, &sal_method_gbp, &sal_method_gcam};
    for (int k = 0; k < 3; k++) {
        int t = -1;
        TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, NULL) == 0, "target");
        /* the other workspace's pass of y, then its own of x: nothing to reuse */
        TH_CHECK(sal_compute(meths[k], &p, m, other, y, t, NULL, (sal_key_t){0}, a) == 0, "y");
        TH_CHECK(sal_compute(meths[k], &p, m, other, x, t, NULL, (sal_key_t){0}, a) == 0, "x");
        TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, NULL) == 0, "target again");
        const uint64_t gen = m->act_gen;
        TH_CHECK(sal_compute(meths[k], &p, m, ws, x, t, NULL, (sal_key_t){0}, b) == 0, "map");
        TH_CHECK(m->act_gen == gen, "%s: the map ran its forward again", meths[k]->name);
        TH_CHECK(!memcmp(a, b, sizeof(float) * sal_raw_channels(meths[k], ws) * ws->hw),
                 "%s: the map after the target's forward differs from one with its own",
                 meths[k]->name);
        /* a second map of x reuses the forward once more (several backward passes) */
        TH_CHECK(sal_compute(meths[k], &p, m, ws, x, t, NULL, (sal_key_t){0}, b) == 0, "again");
        TH_CHECK(m->act_gen == gen && !memcmp(a, b, sizeof(float) *
                                                        sal_raw_channels(meths[k], ws) * ws->hw),
                 "%s: the second map of the same forward differs", meths[k]->name);
        TH_CHECK(sal_compute(meths[k], &p, m, ws, y, t, NULL, (sal_key_t){0}, b) == 0, "y");
        TH_CHECK(m->act_gen == gen + 1, "%s: another input reused the forward", meths[k]->name);
    }
    /* parameters written and announced: the same input runs its forward again */
    int t = -1;
    float l0[2], l1[2];
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, l0) == 0, "target");
    size_t count;
    float *wfc = nn_param(m, nn_find(m, "fc"), NN_P_WEIGHT, &count);
    for (size_t i = 0; i < count; i++)
        wfc[i] *= 2.0f;
    nn_model_params_changed(m);
    uint64_t gen = m->act_gen;
    TH_CHECK(sal_target(ws, x, SAL_TARGET_PREDICTED, &t, l1) == 0, "target, new weights");
    TH_CHECK(m->act_gen == gen + 1 && l1[0] != l0[0], "a parameter change reused the forward");
    /* a node kept after the pass re-plans the buffers: the forward runs again */
    TH_CHECK(nn_model_keep(m, nn_find(m, "layer2.0.add")) == 0, "keep");
    gen = m->act_gen;
    TH_CHECK(sal_compute(&sal_method_grad, &p, m, ws, x, t, NULL, (sal_key_t){0}, b) == 0, "map");
    TH_CHECK(m->act_gen == gen + 1, "the map reused a forward whose buffers were re-planned");
    free(x);
    free(y);
    free(a);
    free(b);
    sal_ws_destroy(ws);
    sal_ws_destroy(other);
    nn_model_destroy(m);
}

/* A CAM layer's activation and gradient, from a model built fresh (the layer's keep
 * flag changes what the fusion takes): through sal_cam_run, which runs the fused
 * forward when it writes the layer (nn_fused_shows), or plainly (nn_forward). */
static int cam_layer_values(const char *arch, int size, const char *layer, int plain,
                            float **A, float **G, size_t *count, int *fused)
{
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    int rc = zoo_build(arch, size, 2, 11, &m);
    if (rc == 0) {
        th_perturb_bn(m, 12);
        rc = sal_ws_create(&ws, m, 2, NULL);
    }
    float *x = rc == 0 ? calloc(ws->chw, sizeof(float)) : NULL;
    if (x) {
        make_input(x, ws->c, ws->h, ws->w, 13, NULL);
        sal_cam_pass_t cp;
        if (plain) {
            const int id = nn_find(m, layer);
            nn_backward_opts_t o = {.down_to = id};
            ws->targets[0] = 1;
            rc = nn_model_keep(m, id);
            if (rc == 0)
                rc = nn_forward(m, x, 1, 0);
            if (rc == 0)
                rc = nn_backward_logit(m, ws->targets, NULL, &o);
            cp.id = id;
        } else {
            rc = sal_cam_run(ws, "test", layer, x, 1, &cp);
        }
        if (rc == 0) {
            *count = (size_t)ws->model->batch * nn_node_size(&m->nodes[cp.id]);
            *A = malloc(*count * sizeof(float));
            *G = malloc(*count * sizeof(float));
            memcpy(*A, nn_node_out(m, cp.id), *count * sizeof(float));
            memcpy(*G, nn_node_grad(m, cp.id), *count * sizeof(float));
            *fused = m->fused_pass;
        }
    }
    free(x);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    return rc;
}

/* A CAM at any layer reads the layer's true activation and gradient: a node the fusion
 * computes elsewhere (a convolution writing its BN's or ReLU's output, a folded BN, a
 * pool it may commute) runs the plain forward; the others the fused one: a ReLU taken by
 * its convolution, a pool written by the convolution before it, a concat, an add, the
 * model's own layer, and a prologue's BN or ReLU or a convolution pooling first, which
 * the CAM's keep (sal_cam_node) takes out of the fusion. */
static void test_cam_layers_fused(void)
{
    /* ResNet-50 at 128: at 64 one of its ReLU or max-pool decisions is a near-tie that
     * fused and plain passes round apart (input gradients 1.5e-2 apart, 2.8e-6 at 128) */
    static const struct { const char *arch; int size; } cases[] = {
        {"resnet50", 128}, {"densenet121", 64}, {"inceptionv3", 75}};
    int kinds_hidden = 0, kinds_shown = 0;
    for (int k = 0; k < 3; k++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(cases[k].arch, cases[k].size, 2, 11, &m) == 0, "%s", cases[k].arch);
        nn_fuse_t *f = NULL;
        TH_CHECK(m && nn_fuse_create(m, &f) == 0, "%s fusion plan", cases[k].arch);
        if (!f) {
            nn_model_destroy(m);
            continue;
        }
        /* the first node of each kind, with the kind's expected answer */
        enum { CONV_BN, BN, RELU, POOL_COMM, PRE_BN, PRE_RELU, CONV_POOL, POOL_PRE, CONCAT, ADD,
               DEFAULT, N_KINDS };
        static const int hidden[N_KINDS] = {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0};
        static const char *const kname[N_KINDS] = {
            "conv+BN", "folded BN", "ReLU of a conv", "commuted pool", "prologue BN",
            "prologue ReLU", "conv pooling first", "pool written by its conv", "concat", "add",
            "the model's layer"};
        int pick[N_KINDS];
        for (int q = 0; q < N_KINDS; q++)
            pick[q] = -1;
        for (int i = 1; i < m->n_nodes; i++) {
            const nn_node_t *nd = &m->nodes[i];
            if (nd->h * nd->w < 1 || nd->cview)
                continue;
            int kind = -1;
            if (f->bn_of[i] >= 0)
                kind = CONV_BN;
            else if (f->folded_into[i] >= 0)
                kind = nd->op == NN_BN ? BN : RELU;
            else if (f->pool_into[i] >= 0)
                kind = POOL_COMM;
            else if (f->pre_into[i] >= 0)
                kind = nd->op == NN_BN ? PRE_BN : PRE_RELU;
            else if (f->pre_pool[i] >= 0)
                kind = CONV_POOL;
            else if (f->pool_pre[i] >= 0)
                kind = POOL_PRE;
            else if (nd->op == NN_CONCAT)
                kind = CONCAT;
            else if (nd->op == NN_ADD)
                kind = ADD;
            if (kind >= 0 && pick[kind] < 0)
                pick[kind] = i;
        }
        pick[DEFAULT] = nn_find(m, m->gradcam_layer);
        for (int q = 0; q < N_KINDS; q++) {
            if (pick[q] < 0)
                continue;
            const char *layer = m->nodes[pick[q]].name;
            float *A = NULL, *G = NULL, *A0 = NULL, *G0 = NULL;
            size_t n = 0, n0 = 0;
            int fused = -1, fused0 = -1;
            TH_CHECK(cam_layer_values(cases[k].arch, cases[k].size, layer, 0, &A, &G, &n,
                                      &fused) == 0,
                     "%s %s '%s': CAM pass", cases[k].arch, kname[q], layer);
            TH_CHECK(cam_layer_values(cases[k].arch, cases[k].size, layer, 1, &A0, &G0, &n0,
                                      &fused0) == 0,
                     "%s %s '%s': plain pass", cases[k].arch, kname[q], layer);
            if (A && A0 && n == n0) {
                const double ea = th_rel_err(A, A0, n), eg = th_rel_err(G, G0, n);
                TH_CHECK(ea < 1e-5 && eg < 1e-5,
                         "%s %s '%s': activation %.3g, gradient %.3g from the plain pass",
                         cases[k].arch, kname[q], layer, ea, eg);
                TH_CHECK(fused == !hidden[q] && fused0 == 0,
                         "%s %s '%s': the CAM ran the %s forward", cases[k].arch, kname[q],
                         layer, fused ? "fused" : "plain");
                kinds_hidden += hidden[q];
                kinds_shown += !hidden[q];
            }
            free(A);
            free(G);
            free(A0);
            free(G0);
        }
        nn_fuse_destroy(f);
        nn_model_destroy(m);
    }
    printf("    %d layer kinds read after the plain forward, %d after the fused one\n",
           kinds_hidden, kinds_shown);
    TH_CHECK(kinds_hidden >= 6 && kinds_shown >= 10, "too few kinds of layers tried");
}

/* The CAM family's backward stops at the CAM layer: the layer's gradient has the
 * same bits as after a whole input gradient, and nothing below the layer ran
 * (the input's gradient was never written). Residual (ResNet-50), concatenating
 * (DenseNet-121, its views) and branching (InceptionV3) graphs, fused passes. */
static void test_cam_backward_stops_at_layer(void)
{
    static const struct { const char *arch; int size; } cases[] = {
        {"resnet50", 64}, {"densenet121", 64}, {"inceptionv3", 75}};
    for (int k = 0; k < 3; k++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(cases[k].arch, cases[k].size, 2, 11, &m) == 0, "%s", cases[k].arch);
        if (!m)
            continue;
        th_perturb_bn(m, 12);
        sal_ws_t *ws = NULL;
        TH_CHECK(sal_ws_create(&ws, m, 2, NULL) == 0, "%s workspace", cases[k].arch);
        float *x = calloc(ws->chw, sizeof(float));
        make_input(x, ws->c, ws->h, ws->w, 13, NULL);
        sal_cam_pass_t cp;
        TH_CHECK(sal_cam_run(ws, "test", "", x, 1, &cp) == 0, "%s cam pass", cases[k].arch);
        const size_t hw = (size_t)cp.lay.h * cp.lay.w, nc = (size_t)cp.lay.c * hw;
        float *g = malloc(nc * sizeof(float));
        for (int c = 0; c < cp.lay.c; c++)
            for (size_t i = 0; i < hw; i++)
                g[c * hw + i] = cp.G[c * cp.lay.c_stride + i * cp.lay.pos_stride];
        TH_CHECK(m->nodes[0].grad_live == 0, "%s: the backward ran below the CAM layer",
                 cases[k].arch);
        TH_CHECK(sal_gradient(ws, x, 1, 0, ws->gb) == 0, "%s whole gradient", cases[k].arch);
        TH_CHECK(m->nodes[0].grad_live == 1, "%s: the whole gradient did not reach the input",
                 cases[k].arch);
        const float *G = nn_node_grad(m, cp.id) + cp.lay.offset;
        size_t diff = 0;
        double norm = 0.0;
        for (int c = 0; c < cp.lay.c; c++)
            for (size_t i = 0; i < hw; i++) {
                float v = G[c * cp.lay.c_stride + i * cp.lay.pos_stride];
                diff += memcmp(&v, &g[c * hw + i], sizeof v) != 0;
                norm += fabs(v);
            }
        TH_CHECK(diff == 0 && norm > 0.0, "%s: %zu of %zu gradient values differ (sum |g| %g)",
                 cases[k].arch, diff, nc, norm);
        nn_backward_opts_t bad = {.down_to = cp.id, .input_grad = 1};
        TH_CHECK(nn_backward_logit(m, ws->targets, ws->gb, &bad) == SC_ERR_ARG,
                 "%s: a stopped backward with an input gradient was accepted", cases[k].arch);
        free(g);
        free(x);
        sal_ws_destroy(ws);
        nn_model_destroy(m);
    }
}

static void test_ggcam_is_product_of_p1_maps(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 2, 13) == 0, "build democnn");
    th_perturb_bn(m, 13);
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 2, NULL);
    const size_t chw = ws->chw, hw = ws->hw;
    float *x = calloc(chw, sizeof(float)), *gbp = calloc(chw, sizeof(float));
    float *gcam = calloc(hw, sizeof(float)), *p_gbp = calloc(hw, sizeof(float));
    float *p_gcam = calloc(hw, sizeof(float)), *gg = calloc(hw, sizeof(float)),
          *post = calloc(hw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 13, NULL);
    sal_params_t p = sal_params_default();
    sal_key_t key = {0};
    TH_CHECK(sal_compute(&sal_method_gbp, &p, m, ws, x, 1, NULL, key, gbp) == 0, "gbp");
    TH_CHECK(sal_compute(&sal_method_gcam, &p, m, ws, x, 1, NULL, key, gcam) == 0, "gcam");
    TH_CHECK(sal_compute(&sal_method_ggcam, &p, m, ws, x, 1, NULL, key, gg) == 0, "ggcam");
    sal_postprocess(&sal_method_gbp, ws, gbp, p_gbp);
    sal_postprocess(&sal_method_gcam, ws, gcam, p_gcam);
    double e = 0, lo = 1e9, hi = -1e9;
    for (size_t i = 0; i < hw; i++)
        e = fmax(e, fabs(gg[i] - (double)p_gbp[i] * p_gcam[i]));
    TH_NEAR(e, 0.0, 0, 1e-6);
    TH_CHECK(sal_postprocess(&sal_method_ggcam, ws, gg, post) == 0, "P2");
    for (size_t i = 0; i < hw; i++) {
        lo = fmin(lo, post[i]);
        hi = fmax(hi, post[i]);
    }
    TH_NEAR(lo, 0.0, 0, 1e-7);
    TH_NEAR(hi, 1.0, 0, 1e-6);
    free(x);
    free(gbp);
    free(gcam);
    free(p_gbp);
    free(p_gcam);
    free(gg);
    free(post);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* XRAI's regions carry the mean attribution of their new pixels, so the map's
 * sum is the attribution's sum; the attribution is the mean of IG from the
 * min(x) and max(x) baselines, max over channels, computed here through the
 * public IG method. */
static void test_xrai_plumbing(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 64, 2, 31) == 0, "build democnn");
    th_perturb_bn(m, 31);
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 8, NULL);
    const size_t chw = ws->chw, hw = ws->hw;
    float *x = calloc(chw, sizeof(float)), *lo = calloc(chw, sizeof(float)),
          *hi = calloc(chw, sizeof(float)), *map = calloc(hw, sizeof(float));
    make_input(x, ws->c, ws->h, ws->w, 31, NULL);
    sal_params_t p = sal_params_default();
    p.xrai_steps = 8;
    p.ig_steps = 8;
    p.xrai.resize_h = p.xrai.resize_w = 0; /* segment at 64 x 64 */
    p.xrai.min_size = 20;
    p.xrai.min_pixel_diff = 10;
    p.xrai.dilation_radius = 2;
    sal_key_t key = {0};
    int rc = sal_compute(&sal_method_xrai, &p, m, ws, x, 0, NULL, key, map);
    TH_EQ_INT(rc, 0);
    p.ig_baseline = SAL_BASELINE_MIN;
    sal_compute(&sal_method_ig, &p, m, ws, x, 0, NULL, key, lo);
    p.ig_baseline = SAL_BASELINE_MAX;
    sal_compute(&sal_method_ig, &p, m, ws, x, 0, NULL, key, hi);
    double attr_sum = 0, map_sum = 0;
    int distinct = 0;
    for (size_t i = 0; i < hw; i++) {
        double best = -1e30;
        for (int c = 0; c < ws->c; c++)
            best = fmax(best, 0.5 * ((double)lo[c * hw + i] + hi[c * hw + i]));
        attr_sum += best;
        map_sum += map[i];
        distinct += i > 0 && map[i] != map[i - 1];
    }
    printf("    xrai: sum of map %.6f, of attribution %.6f\n", map_sum, attr_sum);
    TH_NEAR(map_sum, attr_sum, 1e-4, 1e-6);
    TH_CHECK(distinct > 3, "the XRAI map has no regions (%d value changes)", distinct);
    TH_NEAR(sal_cost(&sal_method_xrai, &p, 64, 64), 16.0, 0, 0);
    free(x);
    free(lo);
    free(hi);
    free(map);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

static void test_costs_and_table(void)
{
    /* docs/methods.md section 4: grad 1, sg 25, ig 10, sig 250, gbp 1, xrai 200, gcam 1/2
     * (a forward pass and the backward down to its layer), ggcam (gbp + gcam) 3/2: 489
     * gradient evaluations per image in all. */
    sal_params_t p = sal_params_default();
    const char *paper[] = {"grad", "sg", "ig", "sig", "gbp", "gcam", "ggcam", "xrai"};
    const double want[] = {1, 25, 10, 250, 1, 0.5, 1.5, 200};
    double total = 0;
    for (int k = 0; k < 8; k++) {
        const sal_method_t *meth = sal_method_find(paper[k]);
        TH_CHECK(meth != NULL, "%s missing", paper[k]);
        if (!meth)
            continue;
        TH_NEAR(sal_cost(meth, &p, 320, 320), want[k], 0, 0);
        total += sal_cost(meth, &p, 320, 320);
    }
    TH_NEAR(total, 489, 0, 0);
    /* Occlusion at 64 px, window 16, stride 12: 5 x 5 windows + f(x), a forward = 1/2. */
    p.occ_window = 16;
    p.occ_stride = 12;
    TH_NEAR(sal_cost(&sal_method_occlusion, &p, 64, 64), 13.0, 1e-12, 0);
    int n = 0;
    for (const sal_method_t *meth = sal_methods(); meth->name; meth++, n++)
        TH_CHECK(sal_method_find(meth->name) == meth, "lookup of %s", meth->name);
    /* the paper's eight, gxi, occlusion, gcampp, nine peers (lrp and deeplift among them),
     * three controls */
    TH_EQ_INT(n, 23);
    TH_CHECK(sal_method_find("lime") == NULL, "unknown method found");
    /* The peers' methods (docs/methods.md section 4) with their defaults: RISE 4000
     * masks + f(x) as forward passes, EG 100 gradients, Eigen-CAM one forward
     * pass, Score-CAM one forward pass per channel of the CAM node (democnn at
     * 32 px: block4.b.relu has 128 channels) plus the pass for A. */
    sal_params_t d = sal_params_default();
    TH_NEAR(sal_cost(&sal_method_rise, &d, 320, 320), 2000.5, 0, 0);
    TH_NEAR(sal_cost(&sal_method_eg, &d, 320, 320), 100, 0, 0);
    TH_NEAR(sal_cost(&sal_method_eigencam, &d, 320, 320), 0.5, 0, 0);
    const char *cams[] = {"gcampp", "layercam", "hirescam", "xgradcam"};
    for (int k = 0; k < 4; k++)
        TH_NEAR(sal_cost(sal_method_find(cams[k]), &d, 320, 320), 0.5, 0, 0);
    {
        nn_model_t *dm = NULL;
        zoo_democnn(&dm, 32, 2, 1);
        TH_NEAR(sal_cost_model(&sal_method_scorecam, &d, dm), 64.5, 0, 0);
        TH_NEAR(sal_cost_model(&sal_method_grad, &d, dm), 1.0, 0, 0);
        nn_model_destroy(dm);
    }
    /* Batch for a memory budget: the largest whose planned workspace
     * (sal_ws_bytes: the model's shared buffers and the workspace's own)
     * fits; at least 1; at most the cap. */
    nn_model_t *m = NULL;
    zoo_democnn(&m, 32, 2, 1);
    const size_t at10 = sal_ws_bytes(m, 10);
    TH_CHECK(at10 > sal_ws_bytes(m, 9) && sal_ws_bytes(m, 11) > at10, "not increasing");
    TH_EQ_INT(sal_suggest_batch(m, at10, 64), 10);
    TH_EQ_INT(sal_suggest_batch(m, at10 - 1, 64), 9);
    TH_EQ_INT(sal_suggest_batch(m, 1, 64), 1);
    TH_EQ_INT(sal_suggest_batch(m, 1000 * at10, 64), 64);
    nn_model_destroy(m);
}

/* ---- salcheck explain, end to end ---- */

static int h5_read_floats(const char *path, const char *name, float *out, size_t count,
                          int *rank, hsize_t dims[3])
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    int rc = -1;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        *rank = H5Sget_simple_extent_dims(s, dims, NULL);
        if ((size_t)H5Sget_simple_extent_npoints(s) == count)
            rc = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0 ? -1 : 0;
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return rc;
}

/* The command writes what the library computes: the maps and logits read back
 * from OUT.h5 equal sal_compute + sal_postprocess on the same model and image,
 * --raw stores [C,H,W] / [1,H,W], and the overlays are PNGs of the model size. */
static void test_explain_command(void)
{
    char bin[512];
    const char *b = getenv("BUILD"), *s = getenv("SALCHECK");
    snprintf(bin, sizeof bin, "%s", s && *s ? s : "");
    if (!*bin)
        snprintf(bin, sizeof bin, "%s/salcheck", b && *b ? b : "build");
    struct stat st;
    if (stat(bin, &st) != 0)
        TH_SKIP("%s not built (make builds it before the tests)", bin);
    const int R = 32;
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, R, 2, 41) == 0, "build democnn");
    th_perturb_bn(m, 41);
    char model_path[512], png_path[512], out[512], h5[600], cmd[4096];
    snprintf(model_path, sizeof model_path, "%s/explain_model.h5", th_tmp_dir());
    snprintf(png_path, sizeof png_path, "%s/explain_image.png", th_tmp_dir());
    snprintf(out, sizeof out, "%s/explain_out", th_tmp_dir());
    snprintf(h5, sizeof h5, "%s.h5", out);
    TH_CHECK(modelfile_save(model_path, m, NULL) == 0, "save model");
    uint8_t pixels[32 * 32];
    for (int i = 0; i < R * R; i++)
        pixels[i] = (uint8_t)((i * 37 + (i / R) * 11) % 256);
    TH_CHECK(png_write_gray8(png_path, R, R, pixels) == 0, "write png");

    const char *env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                      "OPENBLAS_NUM_THREADS=1";
    snprintf(cmd, sizeof cmd, "%s %s explain --model %s --image %s --method grad,gcam --out %s "
             ">/dev/null", env, bin, model_path, png_path, h5);
    TH_CHECK(system(cmd) == 0, "explain failed: %s", cmd);

    /* The same computation in process. */
    sal_ws_t *ws = NULL;
    sal_ws_create(&ws, m, 16, NULL);
    float x[3 * 32 * 32], gray[32 * 32], raw[3 * 32 * 32], map[32 * 32], got[3 * 32 * 32];
    float logits[2], file_logits[2];
    image_loader_t *loader = image_loader_create(R, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
    TH_CHECK(image_loader_load(loader, png_path, x, gray) == 0, "load png");
    image_loader_destroy(loader);
    int target = -1, rank;
    hsize_t dims[3];
    sal_target(ws, x, SAL_TARGET_PREDICTED, &target, logits);
    TH_CHECK(h5_read_floats(h5, "/logits", file_logits, 2, &rank, dims) == 0, "read /logits");
    TH_NEAR(file_logits[0], logits[0], 1e-6, 1e-7);
    TH_NEAR(file_logits[1], logits[1], 1e-6, 1e-7);
    float file_target;
    TH_CHECK(h5_read_floats(h5, "/target", &file_target, 1, &rank, dims) == 0, "read /target");
    TH_EQ_INT((int)file_target, target);
    sal_params_t p = sal_params_default();
    const sal_method_t *meths[2] = {&sal_method_grad, &sal_method_gcam};
    for (int k = 0; k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "/maps/%s", meths[k]->name);
        sal_compute(meths[k], &p, m, ws, x, target, gray, (sal_key_t){1, 0, 0}, raw);
        sal_postprocess(meths[k], ws, raw, map);
        TH_CHECK(h5_read_floats(h5, name, got, (size_t)R * R, &rank, dims) == 0, "read %s", name);
        TH_EQ_INT(rank, 2);
        TH_NEAR(th_rel_err(got, map, (size_t)R * R), 0.0, 0, 1e-6);
        char png_out[700];
        snprintf(png_out, sizeof png_out, "%s.%s.png", out, meths[k]->name);
        int w = 0, h = 0;
        float *img = NULL;
        TH_CHECK(png_read_gray(png_out, &w, &h, &img) == 0 && w == R && h == R,
                 "overlay %s: %dx%d", png_out, w, h);
        sc_free(img);
    }
    /* --raw: the unprocessed attribution, [C,H,W] for grad. */
    snprintf(cmd, sizeof cmd, "%s %s explain --model %s --image %s --method grad --raw --target 0 "
             "--out %s >/dev/null", env, bin, model_path, png_path, out);
    TH_CHECK(system(cmd) == 0, "explain --raw failed: %s", cmd);
    sal_compute(&sal_method_grad, &p, m, ws, x, 0, gray, (sal_key_t){1, 0, 0}, raw);
    TH_CHECK(h5_read_floats(h5, "/maps/grad", got, 3 * (size_t)R * R, &rank, dims) == 0,
             "read raw grad");
    TH_EQ_INT(rank, 3);
    TH_EQ_INT(dims[0], 3);
    TH_NEAR(th_rel_err(got, raw, 3 * (size_t)R * R), 0.0, 0, 1e-6);
    snprintf(png_path, sizeof png_path, "%s.png", out);
    TH_CHECK(stat(png_path, &st) == 0, "single-method overlay %s missing", png_path);
    /* The peers' methods in the command: eg draws from --baselines (a folder with
     * the image mirrored), rise with --rise-masks; the same maps as in process. */
    {
        char bdir[600], bpng[700], img_path[600];
        snprintf(img_path, sizeof img_path, "%s/explain_image.png", th_tmp_dir());
        snprintf(bdir, sizeof bdir, "%s/explain_baselines", th_tmp_dir());
        mkdir(bdir, 0755);
        snprintf(bpng, sizeof bpng, "%s/a.png", bdir);
        uint8_t mirrored[32 * 32];
        for (int i = 0; i < R * R; i++)
            mirrored[i] = pixels[(i / R) * R + (R - 1 - i % R)];
        TH_CHECK(png_write_gray8(bpng, R, R, mirrored) == 0, "write baseline png");
        snprintf(cmd, sizeof cmd, "%s %s explain --model %s --image %s --method eg,rise,scorecam,"
                 "eigencam --baselines %s --rise-masks 20 --eg-samples 5 --target 1 --out %s "
                 ">/dev/null", env, bin, model_path, img_path, bdir, h5);
        TH_CHECK(system(cmd) == 0, "explain eg/rise failed: %s", cmd);
        float bx[3 * 32 * 32], bgray[32 * 32];
        image_loader_t *bl = image_loader_create(R, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
        TH_CHECK(image_loader_load(bl, bpng, bx, bgray) == 0, "load baseline png");
        image_loader_destroy(bl);
        sal_ws_set_baselines(ws, bx, 1);
        sal_params_t q = sal_params_default();
        q.rise_masks = 20;
        q.eg_samples = 5;
        const sal_method_t *peers[4] = {&sal_method_eg, &sal_method_rise, &sal_method_scorecam,
                                        &sal_method_eigencam};
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "/maps/%s", peers[k]->name);
            TH_CHECK(sal_compute(peers[k], &q, m, ws, x, 1, gray, (sal_key_t){1, 0, 0}, raw) == 0,
                     "%s in process", peers[k]->name);
            sal_postprocess(peers[k], ws, raw, map);
            TH_CHECK(h5_read_floats(h5, name, got, (size_t)R * R, &rank, dims) == 0, "read %s",
                     name);
            TH_NEAR(th_rel_err(got, map, (size_t)R * R), 0.0, 0, 1e-6);
        }
        /* Every method that draws its baselines from reference images (the table's
         * needs_pool) is refused without --baselines, by a message that names it. */
        int pooled = 0;
        for (const sal_method_t *t = sal_methods(); t->name; t++) {
            if (!t->needs_pool)
                continue;
            pooled++;
            snprintf(cmd, sizeof cmd, "%s %s explain --model %s --image %s --method grad,%s "
                     "--out %s 2>%s.err; [ $? -ne 0 ] && grep -qF -- 'the %s method needs "
                     "--baselines DIR' %s.err", env, bin, model_path, img_path, t->name, out,
                     out, t->name, out);
            TH_CHECK(system(cmd) == 0, "%s without --baselines: not refused by its message",
                     t->name);
        }
        TH_CHECK(pooled > 0, "no method of the table draws from reference images");
    }
    /* A user's mistake fails with a message, not a crash. */
    snprintf(cmd, sizeof cmd, "%s %s explain --model %s --image %s --method lime --out %s "
             "2>/dev/null", env, bin, model_path, png_path, out);
    TH_CHECK(system(cmd) != 0, "an unknown method was accepted");
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_costs_and_table);
    TH_RUN(test_gauss_legendre_nodes);
    TH_RUN(test_bilinear_half_pixel);
    TH_RUN(test_noise_is_keyed_and_normal);
    TH_RUN(test_target_selection);
    TH_RUN(test_democnn_methods_match_torch);
    TH_RUN(test_ig_gauss_legendre_matches_torch);
    TH_RUN(test_demoresnet_methods_match_torch);
    TH_RUN(test_peer_methods_democnn);
    TH_RUN(test_peer_methods_demoresnet);
    TH_RUN(test_peer_methods_resnet18);
    TH_RUN(test_lrp_reference_self_checks);
    TH_RUN(test_ig_completeness);
    TH_RUN(test_maps_do_not_depend_on_batch);
    TH_RUN(test_gradcam_undefined_when_zero);
    TH_RUN(test_ggcam_is_product_of_p1_maps);
    TH_RUN(test_cam_backward_stops_at_layer);
    TH_RUN(test_cam_layers_fused);
    TH_RUN(test_target_forward_reused);
    TH_RUN(test_xrai_plumbing);
    TH_RUN(test_sobel_matches_skimage);
    TH_RUN(test_random_and_avgmask);
    TH_RUN(test_postprocess_matches_numpy);
    TH_RUN(test_explain_command);
    return th_report();
}
