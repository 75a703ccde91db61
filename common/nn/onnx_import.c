/*
 * onnx_import.c - ONNX ModelProto to salcheck model (onnx_import.h).
 *
 * Owned by common/nn. One pass over the graph in its (topological) order
 * keeps a table of ONNX values, each of which is
 *   - a salcheck node (its id, and the tensor rank: 4 for N,C,H,W or 2 for N,K),
 *   - a constant (initializer, Constant node, or constant shape arithmetic),
 *   - a pending zero padding of a node (a Pad, folded into its consumer),
 *   - a channels-last view of a c x h x w map (onnx_import_nhwc.inc).
 * Nodes that do not lead to the graph output are skipped. Aliases (Identity,
 * Dropout, a one-input Concat, a zero Pad, the input Transpose) cost nothing.
 * A per-channel affine with constants (Mul/Div/Add/Sub) becomes a batch norm
 * with mean 0, variance 1 and eps 0 (exactly x*gamma + beta), or is folded
 * into the bias of the Conv/Gemm/MatMul it follows. Weights are copied into
 * the parameter slab after nn_model_finalize.
 *
 * The protobuf code (onnx.pb-c.c/.h) is generated at build time by protoc-c
 * from onnx.proto (found by the Makefile: ONNX_DIR, ONNX_PROTO, the include
 * path) into $(BUILD)/gen/onnx/; nothing is read from a system path at run time. A
 * build without it still links: onnx_import_* then report that the build
 * lacks ONNX support. The block grouping needs no protobuf.
 */
#include "nn/onnx_import.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_norm.h"
#include "nn/op.h"
#include "sc.h"

#if defined(__has_include)
#if __has_include("onnx/onnx.pb-c.h")
#define ONNX_IMPORT_HAVE_PROTO 1
#include "onnx/onnx.pb-c.h"
#endif
#endif
#if defined(SALCHECK_REQUIRE_ONNX) && !defined(ONNX_IMPORT_HAVE_PROTO)
#error "onnx/onnx.pb-c.h not found: generate it with protoc-c before compiling onnx_import.c"
#endif

/* ------------------------------------------------------------------------ */
/* Block grouping and override rules (no protobuf needed)                    */
/* ------------------------------------------------------------------------ */

/* Number of '.'-separated components of a name. */
static int name_components(const char *name)
{
    int count = 1;
    for (const char *p = name; *p; p++)
        count += *p == '.';
    return count;
}

/* The first `depth` components of name into buf. */
static void name_prefix(const char *name, int depth, char *buf, size_t len)
{
    size_t n = 0;
    int seen = 0;
    while (name[n] && !(name[n] == '.' && ++seen == depth))
        n++;
    if (n >= len)
        n = len - 1;
    memcpy(buf, name, n);
    buf[n] = 0;
}

/* Index of the last node whose output is a spatial map (h*w > 1) or holds
 * more than one token (a general tensor with more than one row), before the
 * last global average pooling when there is one (ConvNeXt's classifier
 * normalizes the pooled vector as a [1,1,1,C] tensor after it), or 0. */
static int last_spatial_node(const nn_model_t *m)
{
    int last = 0, end = m->n_nodes;
    for (int i = m->n_nodes - 1; i > 0; i--)
        if (m->nodes[i].op == NN_GAP) {
            end = i;
            break;
        }
    for (int i = 1; i < end; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->h * nd->w > 1 || (nd->rank > 1 && nd->dims[nd->rank - 1] < nd->c))
            last = i;
    }
    return last;
}

/* "mixed0", "block12": letters then digits, as Keras names its merge layers. */
static int is_letters_digits(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && isalpha((unsigned char)s[i]))
        i++;
    if (i == 0 || i == len)
        return 0;
    size_t digits = i;
    while (i < len && isdigit((unsigned char)s[i]))
        i++;
    return i == len && i > digits;
}

/* A Concat/Add named like a Keras merge layer: "mixed0", or "mixed0.concat" as
 * tf2onnx names the operation inside the layer. Returns the length of the
 * block name (0 when not a marker). */
static size_t marker_length(const nn_node_t *nd)
{
    if (nd->op != NN_CONCAT && nd->op != NN_ADD)
        return 0;
    const char *dot = strrchr(nd->name, '.');
    size_t len = dot ? (size_t)(dot - nd->name) : strlen(nd->name);
    if (dot && strchr(nd->name, '.') != dot)
        return 0; /* more than two components: a module path, not a layer */
    return is_letters_digits(nd->name, len) ? len : 0;
}

/* Strategy 1: module paths. Returns 1 when applied. */
static int group_by_paths(nn_model_t *m, int body_end)
{
    const int body = body_end; /* nodes 1..body_end */
    int *depth = calloc((size_t)m->n_nodes, sizeof(int));
    char (*key)[NN_NAME_MAX] = calloc((size_t)m->n_nodes, sizeof *key);
    int applied = 0;
    if (!depth || !key)
        goto done;
    for (int i = 1; i <= body_end; i++)
        depth[i] = 1;
    /* Refine the group that holds most of the network, one level at a time. */
    for (int iter = 0; iter < 8; iter++) {
        for (int i = 1; i <= body_end; i++)
            name_prefix(m->nodes[i].name, depth[i], key[i], NN_NAME_MAX);
        int best = -1, best_count = 0;
        for (int i = 1; i <= body_end; i++) {
            int count = 0, deeper = 0;
            for (int j = 1; j <= body_end; j++) {
                if (strcmp(key[i], key[j]))
                    continue;
                count++;
                deeper |= name_components(m->nodes[j].name) > depth[j];
            }
            if (deeper && count > best_count) {
                best = i;
                best_count = count;
            }
        }
        if (best < 0 || 2 * best_count <= body)
            break;
        char target[NN_NAME_MAX];
        snprintf(target, sizeof target, "%s", key[best]);
        for (int j = 1; j <= body_end; j++)
            if (!strcmp(key[j], target) && name_components(m->nodes[j].name) > depth[j])
                depth[j]++;
    }
    for (int i = 1; i <= body_end; i++)
        name_prefix(m->nodes[i].name, depth[i], key[i], NN_NAME_MAX);
    /* A group is a container when one of its nodes has a longer path. */
    int containers = 0;
    char *is_container = calloc((size_t)m->n_nodes, 1);
    if (!is_container)
        goto done;
    for (int i = 1; i <= body_end; i++) {
        for (int j = 1; j <= body_end; j++) {
            if (!strcmp(key[i], key[j]) && name_components(m->nodes[j].name) > depth[j]) {
                is_container[i] = 1;
                break;
            }
        }
    }
    for (int i = 1; i <= body_end; i++) {
        int first = 1;
        for (int j = 1; j < i; j++)
            if (!strcmp(key[i], key[j]))
                first = 0;
        containers += first && is_container[i];
    }
    if (containers >= 2) {
        const char *current = "stem";
        for (int i = 1; i <= body_end; i++) {
            if (is_container[i])
                current = key[i];
            snprintf(m->nodes[i].block, NN_NAME_MAX, "%s", current);
        }
        applied = 1;
    }
    free(is_container);
done:
    free(depth);
    free(key);
    return applied;
}

/* Strategy 2: named merges ("mixed0" ... as Keras names them). Returns 1 when applied. */
static int group_by_markers(nn_model_t *m, int body_end)
{
    int markers = 0, first_marker = -1;
    for (int i = 1; i <= body_end; i++) {
        if (marker_length(&m->nodes[i])) {
            markers++;
            if (first_marker < 0)
                first_marker = i;
        }
    }
    if (markers < 2)
        return 0;
    /* The stem ends at the last node before the first marker that every path to
     * it passes through: no later node (up to the marker) reads an earlier one. */
    int stem_end = 0;
    for (int d = first_marker - 1; d >= 1 && !stem_end; d--) {
        int ok = 1;
        for (int k = d + 1; k <= first_marker && ok; k++)
            for (int e = 0; e < m->nodes[k].n_in; e++)
                if (m->nodes[k].in[e] < d)
                    ok = 0;
        if (ok)
            stem_end = d;
    }
    /* Blocks end at markers; nodes after the last marker join it. */
    char current[NN_NAME_MAX] = "stem";
    int next_marker = first_marker;
    for (int i = 1; i <= body_end; i++) {
        if (i > stem_end && i <= next_marker && next_marker <= body_end) {
            const nn_node_t *marker = &m->nodes[next_marker];
            snprintf(current, sizeof current, "%.*s", (int)marker_length(marker), marker->name);
        }
        snprintf(m->nodes[i].block, NN_NAME_MAX, "%s", current);
        if (i == next_marker) {
            int k = i + 1;
            while (k <= body_end && !marker_length(&m->nodes[k]))
                k++;
            next_marker = k; /* body_end + 1: the rest stays in the last marker's block */
        }
    }
    return 1;
}

int onnx_group_blocks(nn_model_t *m, char *how, size_t how_len)
{
    const int body_end = last_spatial_node(m);
    const char *desc;
    for (int i = 1; i < m->n_nodes; i++)
        snprintf(m->nodes[i].block, NN_NAME_MAX, "%s", i <= body_end ? "features" : "logits");
    if (body_end == 0)
        desc = "no spatial layers: one block 'logits'";
    else if (group_by_markers(m, body_end))
        desc = "named merge layers (stem, mixedN, ...)";
    else if (group_by_paths(m, body_end))
        desc = "module paths of the node names";
    else
        desc = "no structure in the node names: one block 'features'";
    if (body_end > 0 && !m->gradcam_layer[0])
        snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "%s", m->nodes[body_end].name);
    if (how)
        snprintf(how, how_len, "%s", desc);
    const char *names[512];
    return nn_blocks(m, names, 512);
}

/* Trim spaces in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

int onnx_apply_block_rules(nn_model_t *m, const char *const *rules, int n_rules)
{
    int rc = 0, moved = 0;
    size_t *best_len = calloc((size_t)m->n_nodes, sizeof(size_t));
    int *best_rule = malloc(sizeof(int) * (size_t)m->n_nodes);
    char **blocks = calloc((size_t)(n_rules > 0 ? n_rules : 1), sizeof(char *));
    CHECK_ALLOC(best_len);
    CHECK_ALLOC(best_rule);
    CHECK_ALLOC(blocks);
    for (int i = 0; i < m->n_nodes; i++)
        best_rule[i] = -1;
    for (int r = 0; r < n_rules; r++) {
        char *copy = strdup(rules[r]);
        CHECK_ALLOC(copy);
        char *eq = strchr(copy, '=');
        char *block = eq ? (*eq = 0, trim(copy)) : NULL;
        if (!eq || !*block || strlen(block) >= NN_NAME_MAX || !*trim(eq + 1)) {
            free(copy);
            CHECK(0, SC_ERR_ARG,
                  "block rule '%s' is not of the form 'block = prefix[,prefix...]'", rules[r]);
        }
        blocks[r] = strdup(block);
        char *list = trim(eq + 1);
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char *prefix = trim(tok);
            size_t len = strlen(prefix);
            int matched = 0;
            for (int i = 1; len && i < m->n_nodes; i++) {
                if (strncmp(m->nodes[i].name, prefix, len))
                    continue;
                matched = 1;
                if (len > best_len[i]) {
                    best_len[i] = len;
                    best_rule[i] = r;
                }
            }
            if (!matched) {
                SC_ERROR("block rule '%s': no node name starts with '%s'", rules[r], prefix);
                free(copy);
                rc = SC_ERR_ARG;
                goto cleanup;
            }
        }
        free(copy);
        CHECK_ALLOC(blocks[r]);
    }
    for (int i = 1; i < m->n_nodes; i++) {
        if (best_rule[i] < 0 || !strcmp(m->nodes[i].block, blocks[best_rule[i]]))
            continue;
        snprintf(m->nodes[i].block, NN_NAME_MAX, "%s", blocks[best_rule[i]]);
        moved++;
    }
cleanup:
    for (int r = 0; blocks && r < n_rules; r++)
        free(blocks[r]);
    free(blocks);
    free(best_len);
    free(best_rule);
    return rc < 0 ? rc : moved;
}

/* ------------------------------------------------------------------------ */
/* The importer                                                              */
/* ------------------------------------------------------------------------ */

#ifndef ONNX_IMPORT_HAVE_PROTO

int onnx_import_available(void) { return 0; }

int onnx_import_buffer(const uint8_t *data, size_t len, const char *source,
                       const onnx_import_opts_t *opts, nn_model_t **out,
                       onnx_import_info_t *info)
{
    (void)data; (void)len; (void)opts; (void)info;
    *out = NULL;
    SC_ERROR("cannot import '%s': this build lacks ONNX support (the protobuf code generated "
             "by protoc-c from libonnx-dev's onnx.proto)", source);
    return SC_ERR_UNSUPPORTED;
}

int onnx_import_file(const char *path, const onnx_import_opts_t *opts, nn_model_t **out,
                     onnx_import_info_t *info)
{
    return onnx_import_buffer(NULL, 0, path, opts, out, info);
}

#else /* ONNX_IMPORT_HAVE_PROTO */

int onnx_import_available(void) { return 1; }

typedef Onnx__NodeProto onnx_node_t;
typedef Onnx__TensorProto onnx_tensor_t;

#define MAX_DIMS 8

/* A constant tensor, decoded: floats or 64-bit integers. */
typedef struct onnx_const {
    int ndim;
    int64_t dims[MAX_DIMS];
    size_t count;
    int is_int;
    int learned;                /* float values from an initializer (a weight), or
                                 * folded from one: trained, not a fixed constant */
    float *f;
    int64_t *i;
} onnx_const_t;

typedef enum value_kind { VALUE_NODE = 0, VALUE_CONST, VALUE_PAD, VALUE_VIEW,
                          VALUE_NHWC } value_kind;

typedef struct onnx_value {
    const char *name;           /* points into the ModelProto */
    uint64_t hash;
    value_kind kind;
    int node;                   /* VALUE_NODE / VALUE_PAD: the salcheck node; VALUE_NHWC:
                                 * the c x h x w map whose [1, H, W, C] transpose this is */
    int rank;                   /* VALUE_NODE: 4 (N,C,H,W) or 2 (N,K) */
    int pads[4];                /* VALUE_PAD: top, bottom, left, right */
    int view_groups;            /* VALUE_VIEW: node's [N,C,H,W] seen as [N,g,C/g,H,W] */
    int view_transposed;        /* VALUE_VIEW: ... then transposed to [N,C/g,g,H,W] */
    const onnx_tensor_t *tensor;/* VALUE_CONST from an initializer, decoded on demand */
    onnx_const_t *cst;          /* VALUE_CONST decoded (owned) */
    int consumers;              /* live ONNX nodes reading this value */
} onnx_value_t;

/* A parameter tensor waiting for the slab (owned data). */
typedef struct pending_param {
    int node;
    nn_param_kind kind;
    float *data;
    size_t count;
} pending_param_t;

typedef struct importer {
    const char *source;
    const onnx_import_opts_t *opts;
    nn_model_t *m;
    onnx_value_t *values;
    int n_values, cap_values;
    pending_param_t *pending;
    int n_pending, cap_pending;
    long opset;
    int skip_tokens;            /* leading name components shared by every node */
    char **paths;               /* module path of each live ONNX node (for naming) */
    int n_paths;
    /* look-ahead of the fused patterns (onnx_import_tokens.inc) */
    const Onnx__GraphProto *graph;
    const char *live;           /* live[k]: node k leads to the output */
    char *fused;                /* fused[k]: node k was folded into an earlier one */
    size_t cur;                 /* index of the node being imported */
} importer_t;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static onnx_value_t *find_value(importer_t *im, const char *name)
{
    if (!name || !*name)
        return NULL;
    uint64_t h = str_hash(name);
    for (int i = im->n_values - 1; i >= 0; i--)
        if (im->values[i].hash == h && !strcmp(im->values[i].name, name))
            return &im->values[i];
    return NULL;
}

/* Add (or replace) a value; returns it with its kind fields zeroed, or NULL. */
static onnx_value_t *add_value(importer_t *im, const char *name, value_kind kind)
{
    if (im->n_values == im->cap_values) {
        int cap = im->cap_values ? 2 * im->cap_values : 1024;
        onnx_value_t *grown = realloc(im->values, sizeof *grown * (size_t)cap);
        if (!grown)
            return NULL;
        im->values = grown;
        im->cap_values = cap;
    }
    onnx_value_t *v = &im->values[im->n_values++];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->hash = str_hash(name);
    v->kind = kind;
    v->rank = 4;
    return v;
}

static void free_const(onnx_const_t *c)
{
    if (!c)
        return;
    free(c->f);
    free(c->i);
    free(c);
}

static int add_pending(importer_t *im, int node, nn_param_kind kind, float *data, size_t count)
{
    if (im->n_pending == im->cap_pending) {
        int cap = im->cap_pending ? 2 * im->cap_pending : 256;
        pending_param_t *grown = realloc(im->pending, sizeof *grown * (size_t)cap);
        if (!grown) {
            free(data);
            return SC_ERR_NOMEM;
        }
        im->pending = grown;
        im->cap_pending = cap;
    }
    im->pending[im->n_pending++] = (pending_param_t){node, kind, data, count};
    return 0;
}

static pending_param_t *find_pending(importer_t *im, int node, nn_param_kind kind)
{
    for (int i = im->n_pending - 1; i >= 0; i--)
        if (im->pending[i].node == node && im->pending[i].kind == kind)
            return &im->pending[i];
    return NULL;
}

/* ---- tensors ---- */

static const char *dtype_name(int t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: return "float32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return "float64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return "float16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return "bfloat16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return "int64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return "int32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return "bool";
    default: return "an unsupported type";
    }
}

/* Decode a TensorProto (float32/64 to floats, int32/64 to int64). Caller frees. */
static int decode_tensor(importer_t *im, const onnx_tensor_t *t, onnx_const_t **out)
{
    int rc = 0;
    onnx_const_t *c = calloc(1, sizeof *c);
    CHECK_ALLOC(c);
    CHECK(t->n_dims <= MAX_DIMS, SC_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions",
          im->source, t->name ? t->name : "", t->n_dims);
    CHECK(!(t->has_data_location &&
            t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL),
          SC_ERR_UNSUPPORTED,
          "%s: tensor '%s' keeps its data in an external file; re-export the model with the "
          "weights inside the .onnx file", im->source, t->name ? t->name : "");
    c->ndim = (int)t->n_dims;
    c->count = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        CHECK(t->dims[d] >= 0, SC_ERR_FORMAT, "%s: tensor '%s' has a negative dimension",
              im->source, t->name ? t->name : "");
        CHECK(t->dims[d] == 0 || c->count <= SIZE_MAX / 8 / (size_t)t->dims[d], SC_ERR_FORMAT,
              "%s: tensor '%s' has too many elements", im->source, t->name ? t->name : "");
        c->dims[d] = t->dims[d];
        c->count *= (size_t)t->dims[d];
    }
    const int type = t->data_type;
    const size_t n = c->count;
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    const size_t raw_len = t->has_raw_data ? t->raw_data.len : 0;
    {
        /* the values must be in the file: checked before allocating for the declared shape */
        size_t width = 0, have = 0;
        switch (type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: width = 4; have = t->n_float_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: width = 8; have = t->n_double_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: width = 8; have = t->n_int64_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: width = 4; have = t->n_int32_data; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: width = 1; have = t->n_int32_data; break;
        default: break;
        }
        if (raw)
            have = raw_len / (width ? width : 1);
        CHECK(width == 0 || have == n, SC_ERR_FORMAT, "%s: tensor '%s' holds %zu values, its shape "
              "%zu", im->source, t->name ? t->name : "", have, n);
    }
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
        type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
        c->f = malloc(sizeof(float) * (n ? n : 1));
        CHECK_ALLOC(c->f);
        if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            if (raw) {
                CHECK(raw_len == 4 * n, SC_ERR_FORMAT, "%s: tensor '%s': %zu bytes for %zu floats",
                      im->source, t->name, raw_len, n);
                memcpy(c->f, raw, 4 * n); /* ONNX stores little endian, as x86/arm64 */
            } else {
                CHECK(t->n_float_data == n, SC_ERR_FORMAT, "%s: tensor '%s': %zu values for %zu",
                      im->source, t->name, t->n_float_data, n);
                memcpy(c->f, t->float_data, sizeof(float) * n);
            }
        } else {
            for (size_t k = 0; k < n; k++) {
                double v;
                if (raw) {
                    CHECK(raw_len == 8 * n, SC_ERR_FORMAT, "%s: tensor '%s': bad raw size",
                          im->source, t->name);
                    memcpy(&v, raw + 8 * k, 8);
                } else {
                    CHECK(t->n_double_data == n, SC_ERR_FORMAT, "%s: tensor '%s': bad size",
                          im->source, t->name);
                    v = t->double_data[k];
                }
                c->f[k] = (float)v;
            }
        }
    } else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
               type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
        c->is_int = 1;
        c->i = malloc(sizeof(int64_t) * (n ? n : 1));
        CHECK_ALLOC(c->i);
        const size_t width = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8 : 4;
        for (size_t k = 0; k < n; k++) {
            if (raw) {
                CHECK(raw_len == width * n, SC_ERR_FORMAT, "%s: tensor '%s': bad raw size",
                      im->source, t->name);
                if (width == 8) {
                    memcpy(&c->i[k], raw + 8 * k, 8);
                } else {
                    int32_t v;
                    memcpy(&v, raw + 4 * k, 4);
                    c->i[k] = v;
                }
            } else if (width == 8) {
                CHECK(t->n_int64_data == n, SC_ERR_FORMAT, "%s: tensor '%s': bad size",
                      im->source, t->name);
                c->i[k] = t->int64_data[k];
            } else {
                CHECK(t->n_int32_data == n, SC_ERR_FORMAT, "%s: tensor '%s': bad size",
                      im->source, t->name);
                c->i[k] = t->int32_data[k];
            }
        }
    } else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) { /* masks: 0 or 1 as integers */
        c->is_int = 1;
        c->i = malloc(sizeof(int64_t) * (n ? n : 1));
        CHECK_ALLOC(c->i);
        for (size_t k = 0; k < n; k++)
            c->i[k] = raw ? raw[k] != 0 : t->int32_data[k] != 0;
    } else {
        CHECK(0, SC_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; salcheck reads float32, float64, "
              "int32, int64 and bool tensors", im->source, t->name ? t->name : "", dtype_name(type));
    }
    *out = c;
    c = NULL;
cleanup:
    free_const(c);
    return rc;
}

/* The decoded constant behind a value (decoding an initializer on first use). */
static int value_const(importer_t *im, onnx_value_t *v, onnx_const_t **out)
{
    if (v->kind != VALUE_CONST)
        return SC_ERR_ARG;
    if (!v->cst) {
        int rc = decode_tensor(im, v->tensor, &v->cst);
        if (rc < 0)
            return rc;
        v->cst->learned = !v->cst->is_int;
    }
    *out = v->cst;
    return 0;
}

/* Floats of a constant (ints converted); caller frees. */
static float *const_floats(const onnx_const_t *c)
{
    float *f = malloc(sizeof(float) * (c->count ? c->count : 1));
    if (!f)
        return NULL;
    for (size_t k = 0; k < c->count; k++)
        f[k] = c->is_int ? (float)c->i[k] : c->f[k];
    return f;
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const onnx_node_t *nd, const char *name)
{
    for (size_t i = 0; i < nd->n_attribute; i++)
        if (nd->attribute[i]->name && !strcmp(nd->attribute[i]->name, name))
            return nd->attribute[i];
    return NULL;
}

static long attr_int(const onnx_node_t *nd, const char *name, long dflt)
{
    const Onnx__AttributeProto *a = attr(nd, name);
    return a && a->has_i ? (long)a->i : dflt;
}

static float attr_float(const onnx_node_t *nd, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(nd, name);
    return a && a->has_f ? a->f : dflt;
}

/* Copies up to max ints; returns the count, or -1 when absent. */
static int attr_ints(const onnx_node_t *nd, const char *name, long *out, int max)
{
    const Onnx__AttributeProto *a = attr(nd, name);
    if (!a)
        return -1;
    int n = (int)a->n_ints < max ? (int)a->n_ints : max;
    for (int i = 0; i < n; i++)
        out[i] = (long)a->ints[i];
    return (int)a->n_ints;
}

static void attr_string(const onnx_node_t *nd, const char *name, char *buf, size_t len,
                        const char *dflt)
{
    const Onnx__AttributeProto *a = attr(nd, name);
    if (a && a->has_s) {
        size_t n = a->s.len < len - 1 ? a->s.len : len - 1;
        memcpy(buf, a->s.data, n);
        buf[n] = 0;
    } else {
        snprintf(buf, len, "%s", dflt);
    }
}

/* ---- names ---- */

/* The name components of an ONNX node ('/'-separated, empty ones dropped). */
static int split_tokens(const char *raw, char tokens[][NN_NAME_MAX], int max)
{
    int n = 0;
    while (*raw && n < max) {
        while (*raw == '/')
            raw++;
        size_t len = strcspn(raw, "/");
        if (len == 0)
            break;
        if (len >= NN_NAME_MAX)
            len = NN_NAME_MAX - 1;
        memcpy(tokens[n], raw, len);
        tokens[n][len] = 0;
        n++;
        raw += strcspn(raw, "/");
    }
    return n;
}

#define MAX_TOKENS 16

static const char *raw_node_name(const onnx_node_t *nd)
{
    if (nd->name && *nd->name)
        return nd->name;
    return nd->n_output && nd->output[0] ? nd->output[0] : "";
}

/*
 * Module path and operation part of an ONNX node name:
 *   "/layer4/layer4.1/conv1/Conv" -> "layer4.1.conv1" + "Conv"
 *   "/features/denseblock1/denselayer1/Concat" -> "features.denseblock1.denselayer1" + "Concat"
 *   "StatefulPartitionedCall/model/mixed0/concat" (2 shared tokens skipped) -> "mixed0.concat"
 * The last token is the operation when it starts with a capital (ONNX and
 * TensorFlow operation names; module names are lower case). A token that
 * repeats its parent's path ("layer4" then "layer4.1") replaces it.
 */
static void module_path(const importer_t *im, const onnx_node_t *nd, char *path, size_t plen,
                        char *op, size_t oplen)
{
    char tokens[MAX_TOKENS][NN_NAME_MAX];
    int n = split_tokens(raw_node_name(nd), tokens, MAX_TOKENS);
    int first = n >= 2 ? im->skip_tokens : 0;
    if (first > n - 1)
        first = n - 1 > 0 ? n - 1 : 0;
    op[0] = 0;
    if (n - first >= 1 && isupper((unsigned char)tokens[n - 1][0])) {
        snprintf(op, oplen, "%s", tokens[n - 1]);
        n--;
    }
    path[0] = 0;
    size_t used = 0, last_start = 0;
    for (int t = first; t < n; t++) {
        const char *tok = tokens[t];
        size_t prev_len = used - last_start;
        if (used && !strncmp(tok, path + last_start, prev_len) && tok[prev_len] == '.') {
            used = last_start; /* "layer4" + "layer4.1" -> "layer4.1" */
        } else if (used && used + 1 < plen) {
            path[used++] = '.';
        }
        last_start = used;
        int w = snprintf(path + used, plen - used, "%s", tok);
        used += w > 0 ? (size_t)w : 0;
        if (used >= plen)
            used = plen - 1;
    }
    path[used] = 0;
    for (char *p = path; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            *p = '_';
    for (char *p = op; *p; p++)
        *p = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
}

/* Leading tokens shared by every node whose name has two tokens or more
 * (tf2onnx: "StatefulPartitionedCall/model/..."). */
static int shared_leading_tokens(const Onnx__GraphProto *g, const char *live)
{
    char first[MAX_TOKENS][NN_NAME_MAX], tokens[MAX_TOKENS][NN_NAME_MAX];
    int shared = -1;
    for (size_t i = 0; i < g->n_node; i++) {
        if (!live[i])
            continue;
        int n = split_tokens(raw_node_name(g->node[i]), tokens, MAX_TOKENS);
        if (n < 2)
            continue;
        if (shared < 0) {
            memcpy(first, tokens, sizeof tokens);
            shared = n - 1;
            continue;
        }
        int k = 0;
        while (k < shared && k < n - 1 && !strcmp(first[k], tokens[k]))
            k++;
        shared = k;
    }
    return shared < 0 ? 0 : shared;
}

/* A unique salcheck node name for an ONNX node. */
static void node_name(importer_t *im, const onnx_node_t *nd, char *out, size_t len)
{
    char path[NN_NAME_MAX], op[NN_NAME_MAX], base[NN_NAME_MAX];
    module_path(im, nd, path, sizeof path, op, sizeof op);
    /* A path that other nodes extend (a container such as "layer1.0") names
     * the operation inside it; a leaf module path names the node itself. */
    int container = 0;
    size_t plen = strlen(path);
    for (int i = 0; plen && i < im->n_paths && !container; i++)
        container = im->paths[i] && !strncmp(im->paths[i], path, plen) &&
                    im->paths[i][plen] == '.';
    if (!path[0])
        snprintf(base, sizeof base, "%s", op[0] ? op : "node");
    else if (container || !op[0])
        snprintf(base, sizeof base, "%.60s%s%.30s", path, op[0] ? "." : "", op);
    else
        snprintf(base, sizeof base, "%s", path);
    snprintf(out, len, "%s", base);
    if (nn_find(im->m, out) >= 0 && path[0] && op[0] && !container) {
        /* A second operation of one module (TensorFlow: Conv2D then BiasAdd). */
        snprintf(base, sizeof base, "%.60s.%.30s", path, op);
        snprintf(out, len, "%s", base);
    }
    for (int k = 2; nn_find(im->m, out) >= 0; k++)
        snprintf(out, len, "%.80s#%d", base, k);
}

/* ---- graph building helpers ---- */

static onnx_value_t *input_value(importer_t *im, const onnx_node_t *nd, size_t k)
{
    return k < nd->n_input ? find_value(im, nd->input[k]) : NULL;
}

static const char *node_label(const onnx_node_t *nd)
{
    return raw_node_name(nd);
}

/* The value an ONNX node input refers to, which must be a salcheck node. */
static int need_node(importer_t *im, const onnx_node_t *nd, size_t k, onnx_value_t **out)
{
    onnx_value_t *v = input_value(im, nd, k);
    if (!v) {
        SC_ERROR("%s: node '%s' (%s): input %zu ('%s') is not produced by any earlier node",
                 im->source, node_label(nd), nd->op_type, k, k < nd->n_input ? nd->input[k] : "");
        return SC_ERR_FORMAT;
    }
    if (v->kind == VALUE_PAD) {
        SC_ERROR("%s: node '%s' (%s) reads the output of a Pad; salcheck folds Pad only into "
                 "Conv, MaxPool and AveragePool", im->source, node_label(nd), nd->op_type);
        return SC_ERR_UNSUPPORTED;
    }
    if (v->kind == VALUE_VIEW) {
        SC_ERROR("%s: node '%s' (%s) reads a 5-D view of a feature map; salcheck supports 5-D "
                 "views only as a channel shuffle (Reshape, Transpose, Reshape)", im->source,
                 node_label(nd), nd->op_type);
        return SC_ERR_UNSUPPORTED;
    }
    if (v->kind != VALUE_NODE) {
        SC_ERROR("%s: node '%s' (%s): input '%s' is a constant where salcheck expects a feature "
                 "map", im->source, node_label(nd), nd->op_type, v->name);
        return SC_ERR_UNSUPPORTED;
    }
    *out = v;
    return 0;
}

static int need_const(importer_t *im, const onnx_node_t *nd, size_t k, onnx_const_t **out)
{
    onnx_value_t *v = input_value(im, nd, k);
    if (!v || v->kind != VALUE_CONST) {
        SC_ERROR("%s: node '%s' (%s): input %zu ('%s') must be a constant (an initializer or "
                 "a Constant node)", im->source, node_label(nd), nd->op_type, k,
                 k < nd->n_input ? nd->input[k] : "");
        return v ? SC_ERR_UNSUPPORTED : SC_ERR_FORMAT;
    }
    return value_const(im, v, out);
}

/* Bind output 0 of nd to a new salcheck node. */
static int bind_node(importer_t *im, const onnx_node_t *nd, int id, int rank)
{
    if (id < 0)
        return id;
    onnx_value_t *v = add_value(im, nd->output[0], VALUE_NODE);
    if (!v)
        return SC_ERR_NOMEM;
    v->node = id;
    v->rank = rank;
    return 0;
}

/* Bind output 0 of nd to the channels-last view [1, H, W, C] of map node id
 * (onnx_import_nhwc.inc). */
static int bind_nhwc(importer_t *im, const onnx_node_t *nd, int id)
{
    if (id < 0)
        return id;
    onnx_value_t *v = add_value(im, nd->output[0], VALUE_NHWC);
    if (!v)
        return SC_ERR_NOMEM;
    v->node = id;
    v->rank = 4;
    return 0;
}

/* Bind output 0 of nd to an existing value (an alias). */
static int bind_alias(importer_t *im, const onnx_node_t *nd, const onnx_value_t *src)
{
    onnx_value_t copy = *src;
    onnx_value_t *v = add_value(im, nd->output[0], src->kind);
    if (!v)
        return SC_ERR_NOMEM;
    const char *name = v->name;
    uint64_t h = v->hash;
    *v = copy;
    v->name = name;
    v->hash = h;
    v->consumers = 0;
    if (copy.kind == VALUE_CONST && copy.cst) {
        /* Share the decoded tensor by re-decoding lazily (aliases of constants are rare
         * and small, except torch's Identity on shared biases, which are vectors). */
        v->cst = NULL;
        if (!copy.tensor) {
            onnx_const_t *c = calloc(1, sizeof *c);
            if (!c)
                return SC_ERR_NOMEM;
            *c = *copy.cst;
            c->f = copy.cst->f ? malloc(sizeof(float) * (c->count ? c->count : 1)) : NULL;
            c->i = copy.cst->i ? malloc(sizeof(int64_t) * (c->count ? c->count : 1)) : NULL;
            if ((copy.cst->f && !c->f) || (copy.cst->i && !c->i)) {
                free_const(c);
                return SC_ERR_NOMEM;
            }
            if (c->f)
                memcpy(c->f, copy.cst->f, sizeof(float) * c->count);
            if (c->i)
                memcpy(c->i, copy.cst->i, sizeof(int64_t) * c->count);
            v->cst = c;
        }
    }
    return 0;
}

/* Bind output 0 to a new constant (takes ownership of c). */
static int bind_const(importer_t *im, const onnx_node_t *nd, onnx_const_t *c)
{
    onnx_value_t *v = add_value(im, nd->output[0], VALUE_CONST);
    if (!v) {
        free_const(c);
        return SC_ERR_NOMEM;
    }
    v->cst = c;
    return 0;
}

static int unsupported(importer_t *im, const onnx_node_t *nd, const char *what)
{
    SC_ERROR("%s: node '%s' (%s, opset %ld): %s", im->source, node_label(nd), nd->op_type,
             im->opset, what);
    return SC_ERR_UNSUPPORTED;
}

/* Explicit pads {t,b,l,r} from ONNX pads [t,l,b,r] and auto_pad for a window
 * of k with stride s on an h x w input. */
static int window_pads(importer_t *im, const onnx_node_t *nd, const nn_node_t *src, int kh,
                       int kw, int sh, int sw, int pad[4])
{
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1) {
        SC_ERROR("%s: node '%s' (%s): kernel %dx%d with strides %dx%d: both must be positive",
                 im->source, node_label(nd), nd->op_type, kh, kw, sh, sw);
        return SC_ERR_FORMAT;
    }
    char auto_pad[32];
    attr_string(nd, "auto_pad", auto_pad, sizeof auto_pad, "NOTSET");
    long p[4] = {0, 0, 0, 0};
    int np = attr_ints(nd, "pads", p, 4);
    if (np >= 0 && np != 4)
        return unsupported(im, nd, "only 2-D windows are supported (pads must have 4 values)");
    if (!strcmp(auto_pad, "NOTSET") || !strcmp(auto_pad, "VALID")) {
        int valid = !strcmp(auto_pad, "VALID");
        pad[0] = valid ? 0 : (int)p[0];
        pad[1] = valid ? 0 : (int)p[2];
        pad[2] = valid ? 0 : (int)p[1];
        pad[3] = valid ? 0 : (int)p[3];
    } else if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
        /* SAME_UPPER puts the odd cell at the end: TensorFlow's "same". */
        pad_same(src->h, kh, sh, &pad[0], &pad[1]);
        pad_same(src->w, kw, sw, &pad[2], &pad[3]);
        if (!strcmp(auto_pad, "SAME_LOWER")) {
            int t = pad[0]; pad[0] = pad[1]; pad[1] = t;
            t = pad[2]; pad[2] = pad[3]; pad[3] = t;
        }
    } else {
        return unsupported(im, nd, "unknown auto_pad value");
    }
    for (int i = 0; i < 4; i++)
        if (pad[i] < 0)
            return unsupported(im, nd, "negative padding (cropping) is not supported");
    return 0;
}

/* kernel, strides; dilations must be 1. */
static int window_shape(importer_t *im, const onnx_node_t *nd, int *kh, int *kw, int *sh,
                        int *sw)
{
    long k[2] = {0, 0}, s[2] = {1, 1}, d[2] = {1, 1};
    int nk = attr_ints(nd, "kernel_shape", k, 2);
    int ns = attr_ints(nd, "strides", s, 2);
    int nd_ = attr_ints(nd, "dilations", d, 2);
    if ((nk >= 0 && nk != 2) || (ns >= 0 && ns != 2) || (nd_ >= 0 && nd_ != 2))
        return unsupported(im, nd, "only 2-D windows are supported");
    if (d[0] != 1 || d[1] != 1)
        return unsupported(im, nd, "dilated windows are not supported");
    *kh = (int)k[0];
    *kw = (int)k[1];
    *sh = (int)s[0];
    *sw = (int)s[1];
    return 0;
}

/* Resolve a Conv/pool input that may be a pending Pad: src node and extra pads. */
static int window_input(importer_t *im, const onnx_node_t *nd, onnx_value_t **src, int extra[4])
{
    onnx_value_t *v = input_value(im, nd, 0);
    memset(extra, 0, sizeof(int) * 4);
    if (v && v->kind == VALUE_PAD) {
        memcpy(extra, v->pads, sizeof(int) * 4);
        *src = v;
        return 1;
    }
    int rc = need_node(im, nd, 0, src);
    return rc < 0 ? rc : 0;
}

/* Output ReLU-like (never negative)? Then zero padding is neutral for max pooling. */
static int nonnegative(const nn_model_t *m, int id)
{
    const nn_node_t *nd = &m->nodes[id];
    switch (nn_op_def(nd->op)->sign) {
    case NN_SIGN_NONNEG: return 1;
    case NN_SIGN_INPUTS:
        for (int k = 0; k < nd->n_in; k++)
            if (!nonnegative(m, nd->in[k]))
                return 0;
        return 1;
    default: return 0;
    }
}

/* ---- channel operations of the mobile families (ShuffleNet, MobileNet, ...) ---- */

/* A channel slice [start, start + count) of node src, bound to output k of nd. */
static int bind_chslice(importer_t *im, const onnx_node_t *nd, size_t k, const char *name,
                        int src, int start, int count, int rank)
{
    nn_node_t attrs = {.out_c = count, .ch_start = start};
    int id = nn_add_node(im->m, name, NN_CHSLICE, 1, &src, &attrs);
    if (id < 0)
        return id;
    onnx_value_t *v = add_value(im, nd->output[k], VALUE_NODE);
    if (!v)
        return SC_ERR_NOMEM;
    v->node = id;
    v->rank = rank;
    return 0;
}

/* The channel axis of a feature map value, or -1 for any other axis. */
static int channel_axis(const onnx_value_t *v, long axis)
{
    if (axis < 0)
        axis += v->rank;
    return axis == 1 ? 1 : -1;
}

/* Slice along the channel axis with step 1 (torch.chunk, narrow and [:, a:b]). */
static int map_slice(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    onnx_value_t *src;
    CHECK_RC(need_node(im, nd, 0, &src));
    long starts[8], ends[8], axes[8] = {0}, steps[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int n_starts = -1, n_ends = -1, n_axes = -1, n_steps = -1;
    if (im->opset >= 10 && nd->n_input >= 3) {
        long *dst[4] = {starts, ends, axes, steps};
        int *counts[4] = {&n_starts, &n_ends, &n_axes, &n_steps};
        for (size_t k = 1; k <= 4; k++) {
            if (k >= nd->n_input || !nd->input[k][0])
                continue;
            onnx_const_t *c;
            CHECK_RC(need_const(im, nd, k, &c));
            CHECK(c->is_int && c->count <= 8, SC_ERR_UNSUPPORTED,
                  "%s: node '%s' (Slice): starts, ends, axes and steps must be integer lists",
                  im->source, node_label(nd));
            *counts[k - 1] = (int)c->count;
            for (size_t j = 0; j < c->count; j++)
                dst[k - 1][j] = (long)c->i[j];
        }
    } else {
        n_starts = attr_ints(nd, "starts", starts, 8);
        n_ends = attr_ints(nd, "ends", ends, 8);
        n_axes = attr_ints(nd, "axes", axes, 8);
    }
    if (n_axes < 0)
        axes[0] = 0;
    if (n_starts != 1 || n_ends != 1 || (n_axes >= 0 && n_axes != 1) ||
        (n_steps >= 0 && (n_steps != 1 || steps[0] != 1)) || channel_axis(src, axes[0]) != 1)
        return unsupported(im, nd, "Slice of a feature map is supported along the channel axis "
                           "with step 1 only");
    const nn_node_t *in = &im->m->nodes[src->node];
    if (src->rank != 4 && in->h * in->w != 1)
        return unsupported(im, nd, "Slice of a flattened feature map is not supported");
    const long c = in->c;
    long start = starts[0] < 0 ? starts[0] + c : starts[0];
    long end = ends[0] < 0 ? ends[0] + c : ends[0];
    start = start < 0 ? 0 : start > c ? c : start;
    end = end < 0 ? 0 : end > c ? c : end;
    if (end <= start)
        return unsupported(im, nd, "an empty channel slice");
    if (start == 0 && end == c)
        return bind_alias(im, nd, src);
    return bind_chslice(im, nd, 0, name, src->node, (int)start, (int)(end - start), src->rank);
cleanup:
    return rc;
}

/* Split along the channel axis: one channel slice per output. */
static int map_split(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    onnx_value_t *src;
    CHECK_RC(need_node(im, nd, 0, &src));
    const int src_node = src->node, rank = src->rank;
    const int c = im->m->nodes[src_node].c, parts = (int)nd->n_output;
    if (channel_axis(src, attr_int(nd, "axis", 0)) != 1)
        return unsupported(im, nd, "Split is supported along the channel axis only");
    long sizes[256];
    int n_sizes = -1;
    if (nd->n_input > 1 && nd->input[1][0]) { /* opset 13: split as an input */
        onnx_const_t *k;
        CHECK_RC(need_const(im, nd, 1, &k));
        CHECK(k->is_int && k->count <= 256, SC_ERR_UNSUPPORTED,
              "%s: node '%s' (Split): split must be an integer list", im->source, node_label(nd));
        n_sizes = (int)k->count;
        for (int j = 0; j < n_sizes; j++)
            sizes[j] = (long)k->i[j];
    } else {
        n_sizes = attr_ints(nd, "split", sizes, 256);
    }
    if (n_sizes < 0) {
        CHECK(parts >= 1 && parts <= 256 && c % parts == 0, SC_ERR_UNSUPPORTED,
              "%s: node '%s' (Split): %d channels do not split into %d equal parts", im->source,
              node_label(nd), c, parts);
        n_sizes = parts;
        for (int j = 0; j < parts; j++)
            sizes[j] = c / parts;
    }
    long total = 0;
    for (int j = 0; j < n_sizes; j++)
        total += sizes[j] > 0 ? sizes[j] : -100000;
    CHECK(n_sizes == parts && total == c, SC_ERR_FORMAT,
          "%s: node '%s' (Split): the parts do not add up to the %d channels", im->source,
          node_label(nd), c);
    long start = 0;
    for (int j = 0; j < parts; j++) {
        char part_name[NN_NAME_MAX];
        snprintf(part_name, sizeof part_name, j ? "%.80s_%d" : "%s", name, j);
        if (nd->output[j][0])
            CHECK_RC(bind_chslice(im, nd, (size_t)j, part_name, src_node, (int)start,
                                  (int)sizes[j], rank));
        start += sizes[j];
    }
cleanup:
    return rc;
}

/* ---- end of the channel operations ---- */

/* ---- operators ---- */

static int op_conv(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0, extra[4], pad[4], kh, kw, sh, sw;
    onnx_value_t *src;
    onnx_const_t *W, *B = NULL;
    CHECK_RC(window_input(im, nd, &src, extra));
    CHECK_RC(need_const(im, nd, 1, &W));
    if (nd->n_input > 2 && nd->input[2][0])
        CHECK_RC(need_const(im, nd, 2, &B));
    const long group = attr_int(nd, "group", 1);
    const nn_node_t *in = &im->m->nodes[src->node];
    CHECK(W->ndim == 4 && !W->is_int, SC_ERR_UNSUPPORTED,
          "%s: node '%s' (Conv): only 2-D convolutions are supported (weight rank %d)",
          im->source, node_label(nd), W->ndim);
    CHECK(group >= 1 && in->c % group == 0 && W->dims[0] % group == 0 &&
              W->dims[1] * group == in->c,
          SC_ERR_SHAPE,
          "%s: node '%s' (Conv): weight has %lld input channels per group in %ld groups, the "
          "input has %d", im->source, node_label(nd), (long long)W->dims[1], group, in->c);
    CHECK_RC(window_shape(im, nd, &kh, &kw, &sh, &sw));
    if (kh == 0) {
        kh = (int)W->dims[2];
        kw = (int)W->dims[3];
    }
    CHECK(kh == W->dims[2] && kw == W->dims[3], SC_ERR_FORMAT,
          "%s: node '%s' (Conv): kernel_shape disagrees with the weight", im->source,
          node_label(nd));
    CHECK_RC(window_pads(im, nd, in, kh, kw, sh, sw, pad));
    for (int i = 0; i < 4; i++)
        pad[i] += extra[i];
    const int oc = (int)W->dims[0];
    if (B)
        CHECK(B->count == (size_t)oc && !B->is_int, SC_ERR_FORMAT,
              "%s: node '%s' (Conv): bias has %zu values for %d channels", im->source,
              node_label(nd), B->count, oc);
    int id = group > 1 ? nn_add_gconv(im->m, name, src->node, oc, (int)group, kh, kw, sh, sw, pad,
                                      B != NULL)
                       : nn_add_conv(im->m, name, src->node, oc, kh, kw, sh, sw, pad, 0, B != NULL);
    CHECK_RC(id);
    float *w = const_floats(W);
    CHECK_ALLOC(w);
    CHECK_RC(add_pending(im, id, NN_P_WEIGHT, w, W->count));
    if (B) {
        float *b = const_floats(B);
        CHECK_ALLOC(b);
        CHECK_RC(add_pending(im, id, NN_P_BIAS, b, B->count));
    }
    CHECK_RC(bind_node(im, nd, id, 4));
cleanup:
    return rc;
}

static int op_batchnorm(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    onnx_value_t *src;
    onnx_const_t *p[4];
    CHECK_RC(need_node(im, nd, 0, &src));
    if (attr_int(nd, "training_mode", 0) != 0)
        return unsupported(im, nd, "training_mode=1 batch norm (export the model in eval mode)");
    const int c = im->m->nodes[src->node].c;
    for (int k = 0; k < 4; k++) {
        CHECK_RC(need_const(im, nd, (size_t)k + 1, &p[k]));
        CHECK(p[k]->count == (size_t)c, SC_ERR_SHAPE,
              "%s: node '%s' (BatchNormalization): parameter %d has %zu values for %d channels",
              im->source, node_label(nd), k + 1, p[k]->count, c);
    }
    float eps = attr_float(nd, "epsilon", 1e-5f);
    float momentum = attr_float(nd, "momentum", 0.9f); /* ONNX: weight of the running value */
    int id = nn_add_bn(im->m, name, src->node, eps, 1.0f - momentum, 1, 1);
    CHECK_RC(id);
    const nn_param_kind kinds[4] = {NN_P_GAMMA, NN_P_BETA, NN_P_MEAN, NN_P_VAR};
    for (int k = 0; k < 4; k++) {
        float *f = const_floats(p[k]);
        CHECK_ALLOC(f);
        CHECK_RC(add_pending(im, id, kinds[k], f, p[k]->count));
    }
    CHECK_RC(bind_node(im, nd, id, src->rank));
cleanup:
    return rc;
}

static int op_pool(importer_t *im, const onnx_node_t *nd, const char *name, int is_max)
{
    int rc = 0, extra[4], pad[4], kh, kw, sh, sw;
    onnx_value_t *src;
    int from_pad = window_input(im, nd, &src, extra);
    CHECK_RC(from_pad);
    if (attr_int(nd, "storage_order", 0) != 0)
        return unsupported(im, nd, "storage_order=1 is not supported");
    const nn_node_t *in = &im->m->nodes[src->node];
    CHECK_RC(window_shape(im, nd, &kh, &kw, &sh, &sw));
    CHECK(kh > 0 && kw > 0, SC_ERR_FORMAT, "%s: node '%s': kernel_shape missing", im->source,
          node_label(nd));
    CHECK_RC(window_pads(im, nd, in, kh, kw, sh, sw, pad));
    int ceil_mode = (int)attr_int(nd, "ceil_mode", 0);
    int cip = (int)attr_int(nd, "count_include_pad", 0);
    if (from_pad) {
        int own = pad[0] || pad[1] || pad[2] || pad[3];
        if (is_max && !nonnegative(im->m, src->node))
            return unsupported(im, nd, "zero padding before a max pool of values that can be "
                               "negative is not supported");
        if (!is_max) {
            /* Explicit zeros are counted in the average, like count_include_pad. */
            if (own && !cip)
                return unsupported(im, nd, "a Pad before an AveragePool that pads again "
                                   "without count_include_pad is not supported");
            cip = 1;
        }
        for (int i = 0; i < 4; i++)
            pad[i] += extra[i];
    }
    int id = is_max ? nn_add_maxpool(im->m, name, src->node, kh, kw, sh, sw, pad, 0, ceil_mode)
                    : nn_add_avgpool(im->m, name, src->node, kh, kw, sh, sw, pad, 0, ceil_mode,
                                     cip);
    CHECK_RC(id);
    CHECK_RC(bind_node(im, nd, id, 4));
cleanup:
    return rc;
}

/* ReduceMean over H and W = global average pool (keepdims or not). */
static int op_reduce_mean(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    onnx_value_t *src;
    CHECK_RC(need_node(im, nd, 0, &src));
    long axes[8];
    int n = attr_ints(nd, "axes", axes, 8);
    if (n < 0 && nd->n_input > 1) { /* opset 18: axes as an input */
        onnx_const_t *c;
        CHECK_RC(need_const(im, nd, 1, &c));
        n = (int)c->count < 8 ? (int)c->count : 8;
        for (int i = 0; i < n; i++)
            axes[i] = c->is_int ? (long)c->i[i] : (long)c->f[i];
    }
    int h = 0, w = 0;
    for (int i = 0; i < n; i++) {
        long a = axes[i] < 0 ? axes[i] + 4 : axes[i];
        h |= a == 2;
        w |= a == 3;
        if (a != 2 && a != 3)
            h = w = -100;
    }
    if (n != 2 || h != 1 || w != 1 || src->rank != 4)
        return unsupported(im, nd, "ReduceMean is supported over the two spatial axes only");
    int id = nn_add_gap(im->m, name, src->node);
    CHECK_RC(id);
    CHECK_RC(bind_node(im, nd, id, attr_int(nd, "keepdims", 1) ? 4 : 2));
cleanup:
    return rc;
}

static int op_concat(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    int *ids = NULL;
    long axis = attr_int(nd, "axis", 1);
    ids = malloc(sizeof(int) * (nd->n_input ? nd->n_input : 1));
    CHECK_ALLOC(ids);
    int rank = 4;
    for (size_t k = 0; k < nd->n_input; k++) {
        onnx_value_t *v;
        CHECK_RC(need_node(im, nd, k, &v));
        ids[k] = v->node;
        rank = v->rank;
    }
    if (axis < 0)
        axis += rank;
    if (axis != 1) {
        rc = unsupported(im, nd, "concatenation is supported along channels only");
        goto cleanup;
    }
    if (nd->n_input == 1) {
        onnx_value_t *v;
        need_node(im, nd, 0, &v);
        rc = bind_alias(im, nd, v);
        goto cleanup;
    }
    int id = nn_add_concat(im->m, name, (int)nd->n_input, ids);
    CHECK_RC(id);
    CHECK_RC(bind_node(im, nd, id, rank));
cleanup:
    free(ids);
    return rc;
}

/* Per-channel vector of an elementwise constant operand for an input of c
 * channels: a scalar, [c], [1,c], [c,1,1] or [1,c,1,1]. Caller frees. */
static float *channel_vector(const onnx_const_t *k, int c, int rank)
{
    size_t nontrivial = 0;
    for (int d = 0; d < k->ndim; d++)
        nontrivial += k->dims[d] != 1;
    int ok = k->count == 1;
    if (!ok && k->count == (size_t)c && nontrivial == 1) {
        /* the channel axis counted from the end: rank 4 -> third from last or 1-D with
         * explicit [c,1,1]; rank 2 -> last */
        int from_end = -1;
        for (int d = 0; d < k->ndim; d++)
            if (k->dims[d] == c)
                from_end = k->ndim - 1 - d;
        ok = rank == 4 ? from_end == 2 : from_end == 0;
    }
    if (!ok)
        return NULL;
    float *f = malloc(sizeof(float) * (size_t)c);
    if (!f)
        return NULL;
    for (int i = 0; i < c; i++) {
        size_t at = k->count == 1 ? 0 : (size_t)i;
        f[i] = k->is_int ? (float)k->i[at] : k->f[at];
    }
    return f;
}

/* x*gamma + beta as a batch norm with mean 0, variance 1 and eps 0 (exact). */
static int affine_node(importer_t *im, const char *name, int src, float *gamma, float *beta)
{
    int c = im->m->nodes[src].c;
    int id = nn_add_bn(im->m, name, src, 0.0f, 0.0f, 1, 1);
    if (id < 0) {
        free(gamma);
        free(beta);
        return id;
    }
    float *mean = calloc((size_t)c, sizeof(float)), *var = malloc(sizeof(float) * (size_t)c);
    if (!mean || !var || (!gamma && !(gamma = malloc(sizeof(float) * (size_t)c))) ||
        (!beta && !(beta = calloc((size_t)c, sizeof(float))))) {
        free(mean); free(var); free(gamma); free(beta);
        return SC_ERR_NOMEM;
    }
    for (int i = 0; i < c; i++)
        var[i] = 1.0f;
    int rc = 0;
    if ((rc = add_pending(im, id, NN_P_MEAN, mean, (size_t)c)) < 0 ||
        (rc = add_pending(im, id, NN_P_VAR, var, (size_t)c)) < 0) {
        free(gamma); free(beta);
        return rc;
    }
    if ((rc = add_pending(im, id, NN_P_GAMMA, gamma, (size_t)c)) < 0) {
        free(beta);
        return rc;
    }
    if ((rc = add_pending(im, id, NN_P_BETA, beta, (size_t)c)) < 0)
        return rc;
    return id;
}

/* Was this affine batch norm made by affine_node (mean 0, var 1, eps 0)? */
static int is_affine_node(importer_t *im, int id)
{
    const nn_node_t *nd = &im->m->nodes[id];
    return nd->op == NN_BN && nd->eps == 0.0f && nd->momentum == 0.0f &&
           find_pending(im, id, NN_P_VAR) != NULL;
}

/* Add, Sub, Mul, Div. */
static int op_elementwise(importer_t *im, const onnx_node_t *nd, const char *name,
                          const char *op)
{
    int rc = 0;
    onnx_value_t *a = input_value(im, nd, 0), *b = input_value(im, nd, 1);
    CHECK(a && b, SC_ERR_FORMAT, "%s: node '%s' (%s): inputs missing", im->source,
          node_label(nd), op);
    if (a->kind == VALUE_NODE && b->kind == VALUE_NODE) {
        int id;
        if (!strcmp(op, "Mul")) {
            /* the full-size map first: a per-channel gate broadcasts over it */
            const nn_node_t *na = &im->m->nodes[a->node];
            int in[2] = {a->node, b->node};
            if (na->h * na->w == 1 && a->rank == b->rank) {
                in[0] = b->node;
                in[1] = a->node;
            }
            id = nn_add_node(im->m, name, NN_MUL, 2, in, NULL);
            CHECK_RC(id);
            return bind_node(im, nd, id, a->rank > b->rank ? a->rank : b->rank);
        }
        if (strcmp(op, "Add"))
            return unsupported(im, nd, "only Add and Mul are supported between two feature "
                               "maps");
        id = nn_add_add(im->m, name, a->node, b->node);
        CHECK_RC(id);
        return bind_node(im, nd, id, a->rank);
    }
    int swapped = 0;
    if (a->kind == VALUE_CONST && b->kind == VALUE_NODE) {
        onnx_value_t *t = a; a = b; b = t;
        swapped = 1;
    }
    if (a->kind != VALUE_NODE || b->kind != VALUE_CONST)
        return unsupported(im, nd, "operands must be a feature map and a constant");
    if (swapped && (!strcmp(op, "Sub") || !strcmp(op, "Div")))
        return unsupported(im, nd, "a constant minus (or divided by) a feature map is not "
                           "supported");
    onnx_const_t *k;
    CHECK_RC(value_const(im, b, &k));
    const int src = a->node, c = im->m->nodes[src].c;
    float *vec = channel_vector(k, c, a->rank);
    if (!vec)
        return unsupported(im, nd, "the constant operand must be a scalar or one value per "
                           "channel");
    int additive = !strcmp(op, "Add") || !strcmp(op, "Sub");
    for (int i = 0; i < c; i++) {
        if (!strcmp(op, "Sub"))
            vec[i] = -vec[i];
        else if (!strcmp(op, "Div"))
            vec[i] = 1.0f / vec[i];
    }
    nn_node_t *sn = &im->m->nodes[src];
    if (additive && a->consumers == 1 &&
        (sn->op == NN_CONV || sn->op == NN_GCONV || sn->op == NN_DENSE ||
         is_affine_node(im, src))) {
        /* Fold into the bias of the layer this constant follows. */
        nn_param_kind kind = sn->op == NN_BN ? NN_P_BETA : NN_P_BIAS;
        pending_param_t *bias = find_pending(im, src, kind);
        if (!bias) {
            float *zeros = calloc((size_t)c, sizeof(float));
            CHECK_ALLOC(zeros);
            CHECK_RC(add_pending(im, src, kind, zeros, (size_t)c));
            bias = find_pending(im, src, kind);
            sn->has_bias = 1;
        }
        for (int i = 0; i < c; i++)
            bias->data[i] += vec[i];
        free(vec);
        return bind_alias(im, nd, a);
    }
    int id = additive ? affine_node(im, name, src, NULL, vec) : affine_node(im, name, src, vec, NULL);
    CHECK_RC(id);
    CHECK_RC(bind_node(im, nd, id, a->rank));
cleanup:
    return rc;
}

/* Gemm (A [N,in] x B + C) and MatMul (A x B with B [in,out]). */
static int op_dense(importer_t *im, const onnx_node_t *nd, const char *name, int gemm)
{
    int rc = 0;
    onnx_value_t *src;
    onnx_const_t *B, *C = NULL;
    CHECK_RC(need_node(im, nd, 0, &src));
    CHECK_RC(need_const(im, nd, 1, &B));
    if (gemm && nd->n_input > 2 && nd->input[2][0])
        CHECK_RC(need_const(im, nd, 2, &C));
    const int in = (int)nn_node_size(&im->m->nodes[src->node]);
    float alpha = gemm ? attr_float(nd, "alpha", 1.0f) : 1.0f;
    float beta = gemm ? attr_float(nd, "beta", 1.0f) : 1.0f;
    int trans_b = gemm ? (int)attr_int(nd, "transB", 0) : 0;
    if (gemm && attr_int(nd, "transA", 0))
        return unsupported(im, nd, "transA=1 is not supported");
    CHECK(B->ndim == 2 && !B->is_int, SC_ERR_UNSUPPORTED,
          "%s: node '%s' (%s): the weight must be a 2-D float matrix", im->source,
          node_label(nd), nd->op_type);
    const int out = (int)(trans_b ? B->dims[0] : B->dims[1]);
    const int k_in = (int)(trans_b ? B->dims[1] : B->dims[0]);
    CHECK(k_in == in, SC_ERR_SHAPE,
          "%s: node '%s' (%s): the weight expects %d inputs, the layer before gives %d (c*h*w)",
          im->source, node_label(nd), nd->op_type, k_in, in);
    float *w = malloc(sizeof(float) * (size_t)out * in);
    CHECK_ALLOC(w);
    for (int o = 0; o < out; o++)
        for (int i = 0; i < in; i++)
            w[(size_t)o * in + i] =
                alpha * (trans_b ? B->f[(size_t)o * in + i] : B->f[(size_t)i * out + o]);
    int id = nn_add_dense(im->m, name, src->node, out, C != NULL);
    if (id < 0) {
        free(w);
        CHECK_RC(id);
    }
    CHECK_RC(add_pending(im, id, NN_P_WEIGHT, w, (size_t)out * in));
    if (C) {
        float *b = channel_vector(C, out, 2);
        CHECK(b != NULL, SC_ERR_UNSUPPORTED,
              "%s: node '%s' (Gemm): the bias must be a scalar or one value per output",
              im->source, node_label(nd));
        for (int o = 0; o < out; o++)
            b[o] *= beta;
        CHECK_RC(add_pending(im, id, NN_P_BIAS, b, (size_t)out));
    }
    CHECK_RC(bind_node(im, nd, id, 2));
cleanup:
    return rc;
}

/* Flatten, and Reshape/Squeeze that only flatten [N,C,H,W] to [N,C*H*W]. */
static int op_flatten(importer_t *im, const onnx_node_t *nd, const char *name, const char *op)
{
    int rc = 0;
    onnx_value_t *src;
    if (!strcmp(op, "Unsqueeze"))
        return unsupported(im, nd, "Unsqueeze of a feature map is not supported");
    CHECK_RC(need_node(im, nd, 0, &src));
    const nn_node_t *in = &im->m->nodes[src->node];
    const long total = (long)nn_node_size(in);
    if (!strcmp(op, "Flatten")) {
        long axis = attr_int(nd, "axis", 1);
        if (axis != 1 && !(axis == -3 && src->rank == 4) && !(axis == -1 && src->rank == 2))
            return unsupported(im, nd, "Flatten is supported with axis=1 only");
    } else if (!strcmp(op, "Reshape")) {
        onnx_const_t *shape;
        CHECK_RC(need_const(im, nd, 1, &shape));
        int ok = shape->is_int && shape->count >= 2;
        long rest = 1, infer = 0;
        for (size_t d = 1; ok && d < shape->count; d++) {
            long v = (long)shape->i[d];
            if (v == -1)
                infer++;
            else if (v == 0 && d < (size_t)src->rank)
                rest *= d == 1 ? in->c : d == 2 ? in->h : in->w;
            else if (v > 0)
                rest *= v;
            else
                ok = 0;
        }
        ok = ok && infer <= 1 && (shape->i[0] == 0 || shape->i[0] == -1 || shape->i[0] == 1) &&
             (infer ? total % rest == 0 : rest == total);
        /* The new shape must be [N, total] possibly with trailing 1s. */
        for (size_t d = 2; ok && d < shape->count; d++)
            ok = shape->i[d] == 1;
        if (!ok)
            return unsupported(im, nd, "Reshape is supported only to flatten [N,C,H,W] into "
                               "[N,C*H*W]");
    } else { /* Squeeze */
        long axes[8];
        int n = attr_ints(nd, "axes", axes, 8);
        if (n < 0 && nd->n_input > 1) {
            onnx_const_t *c;
            CHECK_RC(need_const(im, nd, 1, &c));
            n = (int)c->count < 8 ? (int)c->count : 8;
            for (int i = 0; i < n; i++)
                axes[i] = (long)c->i[i];
        }
        int ok = src->rank == 4 && in->h == 1 && in->w == 1;
        for (int i = 0; ok && n > 0 && i < n; i++) {
            long a = axes[i] < 0 ? axes[i] + 4 : axes[i];
            ok = a == 2 || a == 3;
        }
        if (!ok)
            return unsupported(im, nd, "Squeeze is supported only on the 1x1 spatial axes");
    }
    if (src->rank == 2)
        return bind_alias(im, nd, src);
    int id = nn_add_flatten(im->m, name, src->node);
    CHECK_RC(id);
    CHECK_RC(bind_node(im, nd, id, 2));
cleanup:
    return rc;
}

static int op_pad(importer_t *im, const onnx_node_t *nd)
{
    int rc = 0;
    onnx_value_t *src;
    CHECK_RC(need_node(im, nd, 0, &src));
    char mode[32];
    attr_string(nd, "mode", mode, sizeof mode, "constant");
    if (strcmp(mode, "constant"))
        return unsupported(im, nd, "only constant (zero) padding is supported");
    long p[8] = {0};
    int np;
    float value = attr_float(nd, "value", 0.0f);
    if (nd->n_input > 1 && nd->input[1][0]) { /* opset >= 11: pads and value as inputs */
        onnx_const_t *c;
        CHECK_RC(need_const(im, nd, 1, &c));
        np = (int)c->count;
        for (int i = 0; i < np && i < 8; i++)
            p[i] = c->is_int ? (long)c->i[i] : (long)c->f[i];
        if (nd->n_input > 2 && nd->input[2][0]) {
            onnx_const_t *v;
            CHECK_RC(need_const(im, nd, 2, &v));
            value = v->count ? (v->is_int ? (float)v->i[0] : v->f[0]) : 0.0f;
        }
    } else {
        np = attr_ints(nd, "pads", p, 8);
    }
    if (np != 8 || src->rank != 4)
        return unsupported(im, nd, "Pad is supported on N,C,H,W tensors only");
    if (value != 0.0f)
        return unsupported(im, nd, "only zero padding is supported");
    /* [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end] */
    if (p[0] || p[1] || p[4] || p[5])
        return unsupported(im, nd, "padding along the batch or channel axis is not supported");
    for (int i = 0; i < 8; i++)
        if (p[i] < 0)
            return unsupported(im, nd, "negative padding (cropping) is not supported");
    if (!p[2] && !p[3] && !p[6] && !p[7])
        return bind_alias(im, nd, src);
    const int src_node = src->node; /* add_value may move the table */
    onnx_value_t *v = add_value(im, nd->output[0], VALUE_PAD);
    CHECK_ALLOC(v);
    v->node = src_node;
    v->pads[0] = (int)p[2];
    v->pads[1] = (int)p[6];
    v->pads[2] = (int)p[3];
    v->pads[3] = (int)p[7];
cleanup:
    return rc;
}

/* A Constant node, or the Shape of a c x h x w feature map (a constant at batch 1;
 * a constant's Shape and the arithmetic on shapes fold in onnx_import_fold.inc). */
static int op_constant_like(importer_t *im, const onnx_node_t *nd, const char *op)
{
    int rc = 0;
    onnx_const_t *c = NULL;
    if (!strcmp(op, "Constant")) {
        const Onnx__AttributeProto *a;
        if ((a = attr(nd, "value")) && a->t) {
            CHECK_RC(decode_tensor(im, a->t, &c));
        } else {
            c = calloc(1, sizeof *c);
            CHECK_ALLOC(c);
            if ((a = attr(nd, "value_float")) && a->has_f) {
                c->f = malloc(sizeof(float));
                CHECK_ALLOC(c->f);
                c->f[0] = a->f;
                c->count = 1;
            } else if ((a = attr(nd, "value_int")) && a->has_i) {
                c->is_int = 1;
                c->i = malloc(sizeof(int64_t));
                CHECK_ALLOC(c->i);
                c->i[0] = a->i;
                c->count = 1;
            } else if ((a = attr(nd, "value_ints"))) {
                c->is_int = 1;
                c->ndim = 1;
                c->count = a->n_ints;
                c->dims[0] = (int64_t)a->n_ints;
                c->i = malloc(sizeof(int64_t) * (a->n_ints ? a->n_ints : 1));
                CHECK_ALLOC(c->i);
                memcpy(c->i, a->ints, sizeof(int64_t) * a->n_ints);
            } else if ((a = attr(nd, "value_floats"))) {
                c->ndim = 1;
                c->count = a->n_floats;
                c->dims[0] = (int64_t)a->n_floats;
                c->f = malloc(sizeof(float) * (a->n_floats ? a->n_floats : 1));
                CHECK_ALLOC(c->f);
                memcpy(c->f, a->floats, sizeof(float) * a->n_floats);
            } else {
                rc = unsupported(im, nd, "Constant without a tensor, float(s) or int(s) value");
                goto cleanup;
            }
        }
    } else { /* Shape */
        onnx_value_t *src;
        CHECK_RC(need_node(im, nd, 0, &src));
        const nn_node_t *in = &im->m->nodes[src->node];
        c = calloc(1, sizeof *c);
        CHECK_ALLOC(c);
        c->is_int = 1;
        c->ndim = 1;
        c->count = (size_t)src->rank;
        c->dims[0] = src->rank;
        c->i = malloc(sizeof(int64_t) * 4);
        CHECK_ALLOC(c->i);
        /* The batch size is a run-time quantity; 1 stands for it (Reshape accepts it). */
        c->i[0] = 1;
        c->i[1] = src->rank == 4 ? in->c : (int64_t)nn_node_size(in);
        if (src->rank == 4) {
            c->i[2] = in->h;
            c->i[3] = in->w;
        }
    }
    rc = bind_const(im, nd, c);
    c = NULL;
cleanup:
    free_const(c);
    return rc;
}

/* ---- the ONNX operator mapping ---- */

typedef int (*onnx_op_fn)(importer_t *im, const onnx_node_t *nd, const char *name);

/* One-input operators that map to one engine node kind with no attributes. */
static int op_unary(importer_t *im, const onnx_node_t *nd, const char *name, nn_op kind)
{
    onnx_value_t *src;
    int rc = need_node(im, nd, 0, &src);
    if (rc < 0)
        return rc;
    int in = src->node;
    return bind_node(im, nd, nn_add_node(im->m, name, kind, 1, &in, NULL), src->rank);
}

static int map_relu(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_unary(im, nd, name, NN_RELU);
}

static long tok_only_consumer(importer_t *im, const char *value);
static int tok_is(importer_t *im, long k, const char *op, const char *value, int *other);

/* Sigmoid; x * Sigmoid(x) (SiLU as torch exports it before opset 20 has it) is one silu
 * node named after the Mul (whose value it is), when the Mul is the sigmoid's only reader. */
static int map_sigmoid(importer_t *im, const onnx_node_t *nd, const char *name)
{
    const Onnx__GraphProto *g = im->graph;
    const long k_mul = tok_only_consumer(im, nd->output[0]);
    int other;
    onnx_value_t *x = input_value(im, nd, 0);
    if (x && x->kind == VALUE_NODE && tok_is(im, k_mul, "Mul", nd->output[0], &other) &&
        other >= 0 && g->node[k_mul]->n_input == 2 &&
        !strcmp(g->node[k_mul]->input[other], nd->input[0])) {
        char mul_name[NN_NAME_MAX];
        node_name(im, g->node[k_mul], mul_name, sizeof mul_name);
        int in = x->node, rank = x->rank;
        int rc = bind_node(im, g->node[k_mul], nn_add_node(im->m, mul_name, NN_SILU, 1, &in,
                                                           NULL), rank);
        if (rc == 0)
            im->fused[k_mul] = 1;
        return rc;
    }
    return op_unary(im, nd, name, NN_SIGMOID);
}

static int map_hardswish(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_unary(im, nd, name, NN_HARDSWISH);
}

/* HardSigmoid max(0, min(1, alpha x + beta)): PyTorch's form (alpha 1/6, beta 1/2) only. */
static int map_hardsigmoid(importer_t *im, const onnx_node_t *nd, const char *name)
{
    float alpha = attr_float(nd, "alpha", 0.2f), beta = attr_float(nd, "beta", 0.5f);
    if (fabsf(alpha - 1.0f / 6.0f) > 1e-6f || beta != 0.5f)
        return unsupported(im, nd, "HardSigmoid is supported with alpha 1/6 and beta 0.5 "
                           "(PyTorch's Hardsigmoid) only");
    return op_unary(im, nd, name, NN_HARDSIGMOID);
}

/* Clip to [0, 6] (ReLU6) or [0, inf) (ReLU); bounds are inputs from opset 11 on. */
static int map_clip(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    float bound[2] = {-INFINITY, INFINITY};
    if (im->opset < 11) {
        bound[0] = attr_float(nd, "min", -INFINITY);
        bound[1] = attr_float(nd, "max", INFINITY);
    } else {
        for (int k = 0; k < 2; k++) {
            if (nd->n_input > (size_t)k + 1 && nd->input[k + 1][0]) {
                onnx_const_t *c;
                CHECK_RC(need_const(im, nd, k + 1, &c));
                if (c->count != 1)
                    return unsupported(im, nd, "Clip bounds must be scalars");
                bound[k] = c->is_int ? (float)c->i[0] : c->f[0];
            }
        }
    }
    if (bound[0] == 0.0f && bound[1] == 6.0f)
        return op_unary(im, nd, name, NN_RELU6);
    if (bound[0] == 0.0f && isinf(bound[1]) && bound[1] > 0)
        return op_unary(im, nd, name, NN_RELU);
    return unsupported(im, nd, "Clip is supported as ReLU6 (min 0, max 6) or ReLU (min 0) only");
cleanup:
    return rc;
}

/* Gelu (opset 20): approximate "none" (erf) or "tanh". */
static int map_gelu(importer_t *im, const onnx_node_t *nd, const char *name)
{
    char approx[16];
    attr_string(nd, "approximate", approx, sizeof approx, "none");
    if (strcmp(approx, "none") && strcmp(approx, "tanh"))
        return unsupported(im, nd, "Gelu approximate must be none or tanh");
    return op_unary(im, nd, name, strcmp(approx, "tanh") ? NN_GELU : NN_GELU_TANH);
}

static int map_gap(importer_t *im, const onnx_node_t *nd, const char *name)
{
    onnx_value_t *src;
    int rc = need_node(im, nd, 0, &src);
    return rc < 0 ? rc : bind_node(im, nd, nn_add_gap(im->m, name, src->node), 4);
}

static int map_softmax(importer_t *im, const onnx_node_t *nd, const char *name)
{
    onnx_value_t *src;
    int rc = need_node(im, nd, 0, &src);
    if (rc < 0)
        return rc;
    long axis = attr_int(nd, "axis", im->opset >= 13 ? -1 : 1);
    const nn_node_t *in = &im->m->nodes[src->node];
    int class_axis = axis == 1 || axis == -1 || (axis == -3 && src->rank == 4);
    if (!class_axis || (src->rank == 4 && in->h * in->w != 1))
        return unsupported(im, nd, "Softmax is supported over the class axis of [N,K] logits "
                           "only");
    return bind_node(im, nd, nn_add_softmax(im->m, name, src->node), src->rank);
}

static int map_maxpool(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_pool(im, nd, name, 1);
}

static int map_avgpool(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_pool(im, nd, name, 0);
}

static int map_elementwise(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_elementwise(im, nd, name, nd->op_type);
}

static int map_gemm(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_dense(im, nd, name, 1);
}

static int map_matmul(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_dense(im, nd, name, 0);
}

static int map_reshape(importer_t *im, const onnx_node_t *nd, const char *name)
{
    return op_flatten(im, nd, name, nd->op_type);
}

static int map_identity(importer_t *im, const onnx_node_t *nd, const char *name)
{
    (void)name;
    onnx_value_t *src = input_value(im, nd, 0);
    if (!src)
        return need_node(im, nd, 0, &src);
    return bind_alias(im, nd, src);
}

static int map_pad(importer_t *im, const onnx_node_t *nd, const char *name)
{
    (void)name;
    return op_pad(im, nd);
}

static int map_transpose(importer_t *im, const onnx_node_t *nd, const char *name)
{
    (void)name;
    onnx_value_t *src;
    int rc = need_node(im, nd, 0, &src);
    long perm[8];
    int n = attr_ints(nd, "perm", perm, 8);
    if (rc == 0 && src->node == 0 && n == 4 && perm[0] == 0 && perm[1] == 3 && perm[2] == 1 &&
        perm[3] == 2)
        return bind_alias(im, nd, src); /* the NHWC input, already read as NCHW */
    return rc < 0 ? rc : unsupported(im, nd, "Transpose is supported only as the NHWC to NCHW "
                                     "transpose of the model input");
}

static int map_constant_like(importer_t *im, const onnx_node_t *nd, const char *name)
{
    (void)name;
    return op_constant_like(im, nd, nd->op_type);
}

#include "nn/onnx_import_tokens.inc"
#include "nn/onnx_import_fold.inc"
#include "nn/onnx_import_nhwc.inc"

/* ---- channel shuffle: Reshape [N,g,C/g,H,W], Transpose(0,2,1,3,4), Reshape [N,C,H,W] ---- */

/* The target shape of a Reshape resolved against input dims in[0..n_in)
 * (0 copies the input's dim, one -1 is inferred). Returns its rank, or -1. */
static int reshape_target(const onnx_const_t *shape, const long *in, int n_in, long *out)
{
    if (!shape->is_int || shape->count < 1 || shape->count > 8)
        return -1;
    long total = 1, known = 1;
    int infer = -1;
    for (int d = 0; d < n_in; d++)
        total *= in[d];
    for (int d = 0; d < (int)shape->count; d++) {
        long v = (long)shape->i[d];
        if (v == 0 && d < n_in)
            v = in[d];
        if (v == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (v <= 0 || v > total || known > total / v)
            return -1; /* no such view of the input (and no overflow) */
        out[d] = v;
        known *= v;
    }
    if (infer >= 0) {
        if (total % known)
            return -1;
        out[infer] = total / known;
    } else if (known != total) {
        return -1;
    }
    return (int)shape->count;
}

/* Reshape: the two halves of a channel shuffle, else the flattening Reshape. */
static int map_reshape_view(importer_t *im, const onnx_node_t *nd, const char *name)
{
    int rc = 0;
    onnx_value_t *src = input_value(im, nd, 0), *sv = input_value(im, nd, 1);
    if (!src || !sv || sv->kind != VALUE_CONST ||
        !(src->kind == VALUE_VIEW || (src->kind == VALUE_NODE && src->rank == 4)))
        return tok_map_reshape(im, nd, name);
    onnx_const_t *shape;
    CHECK_RC(value_const(im, sv, &shape));
    const nn_node_t *in = &im->m->nodes[src->node];
    long out[8];
    if (src->kind == VALUE_NODE) {
        const long dims[4] = {1, in->c, in->h, in->w};
        if (reshape_target(shape, dims, 4, out) != 5 || out[0] != 1 || out[3] != in->h ||
            out[4] != in->w || out[1] < 2)
            return tok_map_reshape(im, nd, name);
        const int node = src->node, groups = (int)out[1];
        onnx_value_t *v = add_value(im, nd->output[0], VALUE_VIEW);
        CHECK_ALLOC(v);
        v->node = node;
        v->rank = 5;
        v->view_groups = groups;
        return 0;
    }
    const int g = src->view_groups;
    const long dims[5] = {1, src->view_transposed ? in->c / g : g,
                          src->view_transposed ? g : in->c / g, in->h, in->w};
    if (!src->view_transposed || reshape_target(shape, dims, 5, out) != 4 || out[0] != 1 ||
        out[1] != in->c || out[2] != in->h || out[3] != in->w)
        return unsupported(im, nd, "a 5-D view of a feature map is supported only as a channel "
                           "shuffle (Reshape to [N,g,C/g,H,W], Transpose 0,2,1,3,4, Reshape "
                           "back to [N,C,H,W])");
    nn_node_t attrs = {.groups = g};
    int node = src->node;
    return bind_node(im, nd, nn_add_node(im->m, name, NN_SHUFFLE, 1, &node, &attrs), 4);
cleanup:
    return rc;
}

/* Transpose: the middle of a channel shuffle, else the NHWC input transpose. */
static int map_transpose_view(importer_t *im, const onnx_node_t *nd, const char *name)
{
    onnx_value_t *src = input_value(im, nd, 0);
    if (!src || src->kind != VALUE_VIEW)
        return tok_map_transpose(im, nd, name);
    long perm[8];
    int n = attr_ints(nd, "perm", perm, 8);
    if (src->view_transposed || n != 5 || perm[0] != 0 || perm[1] != 2 || perm[2] != 1 ||
        perm[3] != 3 || perm[4] != 4)
        return unsupported(im, nd, "a 5-D view of a feature map is supported only as a channel "
                           "shuffle (Transpose with perm 0,2,1,3,4)");
    const onnx_value_t copy = *src;
    onnx_value_t *v = add_value(im, nd->output[0], VALUE_VIEW);
    if (!v)
        return SC_ERR_NOMEM;
    v->node = copy.node;
    v->rank = 5;
    v->view_groups = copy.view_groups;
    v->view_transposed = 1;
    return 0;
}

/* ---- end of the channel shuffle ---- */

/* Slice: along the channels of a c x h x w map a channel slice, else the general slice. */
static int map_slice_any(importer_t *im, const onnx_node_t *nd, const char *name)
{
    onnx_value_t *src = input_value(im, nd, 0);
    if (src && src->kind == VALUE_NODE && im->m->nodes[src->node].rank == 0) {
        /* one range of the channel axis with step 1: a channel slice */
        onnx_const_t *axes = NULL, *steps = NULL;
        int channel = im->opset < 10;
        if (!channel && nd->n_input > 3 && nd->input[3][0] && need_const(im, nd, 3, &axes) == 0)
            channel = axes->count == 1 && channel_axis(src, (long)tok_at(axes, 0)) == 1;
        if (channel && nd->n_input > 4 && nd->input[4][0] && need_const(im, nd, 4, &steps) == 0)
            channel = steps->count == 1 && tok_at(steps, 0) == 1;
        if (channel || im->m->nodes[src->node].h * im->m->nodes[src->node].w == 1)
            return map_slice(im, nd, name);
    }
    return tok_slice(im, nd, name);
}

/* ONNX operator type -> the function that adds its engine nodes (table entries
 * of nn/ops/table.h) or folds it into constants, aliases or parameters. */
static const struct onnx_op_map {
    const char *type;
    onnx_op_fn fn;
} onnx_ops[] = {
    {"Conv", op_conv},
    {"BatchNormalization", op_batchnorm},
    {"Relu", map_relu},
    {"MaxPool", map_maxpool},
    {"AveragePool", map_avgpool},
    {"GlobalAveragePool", map_gap},
    {"ReduceMean", tok_map_reduce_mean},
    {"Concat", tok_map_concat},
    {"Add", tok_map_elementwise},
    {"Sub", tok_map_elementwise},
    {"Mul", tok_map_elementwise},
    {"Div", tok_map_elementwise},
    {"Gemm", tok_map_gemm},
    {"MatMul", tok_map_matmul},
    {"Flatten", tok_map_reshape},
    {"Reshape", map_reshape_view},
    {"Squeeze", tok_map_reshape},
    {"Softmax", tok_map_softmax},
    {"Sigmoid", map_sigmoid},
    {"HardSwish", map_hardswish},
    {"HardSigmoid", map_hardsigmoid},
    {"Clip", map_clip},
    {"Gelu", map_gelu},
    {"Identity", map_identity},
    {"Dropout", map_identity},
    {"Pad", map_pad},
    {"Transpose", map_transpose_view},
    {"Constant", map_constant_like},
    {"Shape", tok_map_shape},
    {"Gather", tok_gather},
    {"Unsqueeze", tok_map_reshape},
    {"Split", map_split},
    /* general tensors (onnx_import_tokens.inc) */
    {"LayerNormalization", tok_layernorm},
    {"Slice", map_slice_any},
    {"Expand", tok_expand},
    {"Erf", tok_map_erf},
    {"Sqrt", tok_map_sqrt},
    {"Pow", tok_map_pow},
};

/* One ONNX node. */
static int import_node(importer_t *im, const onnx_node_t *nd)
{
    const char *op = nd->op_type ? nd->op_type : "";
    char name[NN_NAME_MAX];
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx"))
        return unsupported(im, nd, "operators outside the default ONNX domain are not supported");
    if (nd->n_output < 1)
        return unsupported(im, nd, "node without outputs");
    node_name(im, nd, name, sizeof name);
    int folded = fold_constants(im, nd); /* every input a constant: computed here */
    if (folded <= 0)
        return folded;
    int nhwc = nhwc_import(im, nd, name); /* channels-last views: kept, or transposed here */
    if (nhwc <= 0)
        return nhwc;
    const size_t n_map = sizeof onnx_ops / sizeof onnx_ops[0];
    for (size_t k = 0; k < n_map; k++)
        if (!strcmp(op, onnx_ops[k].type))
            return onnx_ops[k].fn(im, nd, name);
    if (fold_known(op))
        return unsupported(im, nd, "supported on constants only (shape arithmetic, computed at "
                           "import); here an input is a feature map");
    char list[1024], folded_list[512];
    int off = 0;
    for (size_t k = 0; k < n_map && off < (int)sizeof list; k++)
        off += snprintf(list + off, sizeof list - off, k ? ", %s" : "%s", onnx_ops[k].type);
    off = 0;
    for (size_t k = 0; k < N_FOLD_OPS && off < (int)sizeof folded_list; k++)
        off += snprintf(folded_list + off, sizeof folded_list - off, k ? ", %s" : "%s",
                        fold_ops[k]);
    SC_ERROR("%s: node '%s': operator %s (opset %ld) is not supported by salcheck "
             "(supported: %s; on constants: %s)", im->source, node_label(nd), op, im->opset,
             list, folded_list);
    return SC_ERR_UNSUPPORTED;
}

/* The model input: the first graph input that is not an initializer. Sets
 * c, h, w; *nhwc when its only consumer transposes NHWC to NCHW. */
static int find_input(importer_t *im, const Onnx__GraphProto *g, const char **name, int *c,
                      int *h, int *w, int *nhwc)
{
    int size = im->opts ? im->opts->size : 0;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        int is_init = 0;
        for (size_t k = 0; k < g->n_initializer && !is_init; k++)
            is_init = g->initializer[k]->name && !strcmp(g->initializer[k]->name, vi->name);
        if (is_init)
            continue;
        const Onnx__TypeProto *tp = vi->type;
        if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type ||
            !tp->tensor_type->shape || tp->tensor_type->shape->n_dim != 4) {
            SC_ERROR("%s: input '%s' is not a 4-D image tensor", im->source, vi->name);
            return SC_ERR_UNSUPPORTED;
        }
        if (tp->tensor_type->has_elem_type &&
            tp->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
            SC_ERROR("%s: input '%s' is %s; salcheck feeds float32 images", im->source,
                     vi->name, dtype_name(tp->tensor_type->elem_type));
            return SC_ERR_UNSUPPORTED;
        }
        long dims[4];
        for (int d = 0; d < 4; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tp->tensor_type->shape->dim[d];
            dims[d] = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                          ? (long)dim->dim_value
                          : -1;
        }
        *nhwc = 0;
        for (size_t k = 0; k < g->n_node; k++) {
            const onnx_node_t *nd = g->node[k];
            for (size_t j = 0; j < nd->n_input; j++) {
                if (strcmp(nd->input[j], vi->name))
                    continue;
                long perm[8];
                if (!strcmp(nd->op_type, "Transpose") && attr_ints(nd, "perm", perm, 8) == 4 &&
                    perm[0] == 0 && perm[1] == 3 && perm[2] == 1 && perm[3] == 2)
                    *nhwc = 1;
            }
        }
        *c = (int)(*nhwc ? dims[3] : dims[1]);
        *h = (int)(*nhwc ? dims[1] : dims[2]);
        *w = (int)(*nhwc ? dims[2] : dims[3]);
        if (size > 0)
            *h = *w = size;
        if (*c <= 0) {
            SC_ERROR("%s: input '%s' has no fixed channel count", im->source, vi->name);
            return SC_ERR_UNSUPPORTED;
        }
        if (*h <= 0 || *w <= 0) {
            SC_ERROR("%s: input '%s' has a symbolic height or width; give the input size "
                     "(--size)", im->source, vi->name);
            return SC_ERR_ARG;
        }
        *name = vi->name;
        return 0;
    }
    SC_ERROR("%s: the graph has no input besides its weights", im->source);
    return SC_ERR_FORMAT;
}

/* live[i] = node i contributes to the first graph output; consumers counted. */
static int mark_live(const Onnx__GraphProto *g, char *live, const char *output)
{
    /* Walk backwards: a node is live when one of its outputs is needed. */
    size_t cap = 256, n_needed = 0;
    const char **needed = malloc(sizeof(char *) * cap);
    if (!needed)
        return SC_ERR_NOMEM;
    needed[n_needed++] = output;
    for (size_t k = g->n_node; k-- > 0;) {
        const onnx_node_t *nd = g->node[k];
        int is_live = 0;
        for (size_t o = 0; o < nd->n_output && !is_live; o++)
            for (size_t j = 0; j < n_needed && !is_live; j++)
                is_live = nd->output[o][0] && !strcmp(nd->output[o], needed[j]);
        live[k] = (char)is_live;
        if (!is_live)
            continue;
        for (size_t j = 0; j < nd->n_input; j++) {
            if (n_needed == cap) {
                cap *= 2;
                const char **grown = realloc(needed, sizeof(char *) * cap);
                if (!grown) {
                    free(needed);
                    return SC_ERR_NOMEM;
                }
                needed = grown;
            }
            needed[n_needed++] = nd->input[j];
        }
    }
    free(needed);
    return 0;
}

static void importer_free(importer_t *im)
{
    for (int i = 0; i < im->n_values; i++)
        free_const(im->values[i].cst);
    free(im->values);
    for (int i = 0; i < im->n_pending; i++)
        free(im->pending[i].data);
    free(im->pending);
    for (int i = 0; i < im->n_paths; i++)
        free(im->paths[i]);
    free(im->paths);
    free(im->fused);
}

/* The fields ONNX requires and protobuf-c leaves NULL when a file omits them:
 * every node's op_type, every graph input, output and value_info's name. */
static int check_required_names(const importer_t *im, const Onnx__GraphProto *g)
{
    for (size_t k = 0; k < g->n_node; k++) {
        if (!g->node[k]->op_type) {
            SC_ERROR("%s: node %zu has no op_type: not a valid ONNX graph", im->source, k);
            return SC_ERR_FORMAT;
        }
    }
    const Onnx__ValueInfoProto *const *lists[3] = {(const Onnx__ValueInfoProto *const *)g->input,
                                                    (const Onnx__ValueInfoProto *const *)g->output,
                                                    (const Onnx__ValueInfoProto *const *)g->value_info};
    const size_t counts[3] = {g->n_input, g->n_output, g->n_value_info};
    for (int l = 0; l < 3; l++) {
        for (size_t k = 0; k < counts[l]; k++) {
            if (!lists[l][k]->name) {
                SC_ERROR("%s: graph %s %zu has no name: not a valid ONNX graph", im->source,
                         l == 0 ? "input" : l == 1 ? "output" : "value_info", k);
                return SC_ERR_FORMAT;
            }
        }
    }
    return SC_OK;
}

int onnx_import_buffer(const uint8_t *data, size_t len, const char *source,
                       const onnx_import_opts_t *opts, nn_model_t **out,
                       onnx_import_info_t *info)
{
    int rc = 0;
    importer_t im = {.source = source, .opts = opts};
    Onnx__ModelProto *model = NULL;
    char *live = NULL;
    onnx_import_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    *out = NULL;

    model = onnx__model_proto__unpack(NULL, len, data);
    CHECK(model && model->graph, SC_ERR_FORMAT,
          "'%s' is not an ONNX model (the protobuf does not parse as a ModelProto)", source);
    const Onnx__GraphProto *g = model->graph;
    CHECK_RC(check_required_names(&im, g));
    snprintf(info->producer, sizeof info->producer, "%s %s",
             model->producer_name ? model->producer_name : "",
             model->producer_version ? model->producer_version : "");
    snprintf(info->graph_name, sizeof info->graph_name, "%s", g->name ? g->name : "");
    info->ir_version = model->has_ir_version ? (long)model->ir_version : 0;
    for (size_t i = 0; i < model->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = model->opset_import[i];
        if (!os->domain || !*os->domain || !strcmp(os->domain, "ai.onnx"))
            im.opset = os->has_version ? (long)os->version : 1;
    }
    info->opset = im.opset;
    info->onnx_nodes = (int)g->n_node;
    if (im.opset && (im.opset < 7 || im.opset > 18))
        SC_WARN("%s: opset %ld; salcheck is tested with opsets 11 to 17", source, im.opset);
    CHECK(g->n_output >= 1, SC_ERR_FORMAT, "%s: the graph has no output", source);
    if (g->n_output > 1)
        SC_WARN("%s: the graph has %zu outputs; salcheck uses the first, '%s'", source,
                g->n_output, g->output[0]->name);

    const char *input_name = NULL;
    int c = 0, h = 0, w = 0, nhwc = 0;
    CHECK_RC(find_input(&im, g, &input_name, &c, &h, &w, &nhwc));
    snprintf(info->input_layout, sizeof info->input_layout, "%s", nhwc ? "NHWC" : "NCHW");
    im.m = nn_model_create(c, h, w);
    CHECK_ALLOC(im.m);

    live = calloc(g->n_node ? g->n_node : 1, 1);
    CHECK_ALLOC(live);
    CHECK_RC(mark_live(g, live, g->output[0]->name));
    im.skip_tokens = shared_leading_tokens(g, live);
    im.paths = calloc(g->n_node ? g->n_node : 1, sizeof(char *));
    CHECK_ALLOC(im.paths);
    im.n_paths = (int)g->n_node;
    for (size_t k = 0; k < g->n_node; k++) {
        if (!live[k])
            continue;
        char path[NN_NAME_MAX], op[NN_NAME_MAX];
        module_path(&im, g->node[k], path, sizeof path, op, sizeof op);
        im.paths[k] = strdup(path);
        CHECK_ALLOC(im.paths[k]);
    }

    /* Values: the input, then the initializers (constants). */
    onnx_value_t *vin = add_value(&im, input_name, VALUE_NODE);
    CHECK_ALLOC(vin);
    vin->node = 0;
    for (size_t k = 0; k < g->n_initializer; k++) {
        const onnx_tensor_t *t = g->initializer[k];
        if (!t->name || !strcmp(t->name, input_name))
            continue;
        onnx_value_t *v = add_value(&im, t->name, VALUE_CONST);
        CHECK_ALLOC(v);
        v->tensor = t;
    }
    /* Consumer counts of every value name, over live nodes, for bias folding. */
    for (size_t k = 0; k < g->n_node; k++) {
        if (!live[k])
            continue;
        for (size_t j = 0; j < g->node[k]->n_input; j++) {
            onnx_value_t *v = find_value(&im, g->node[k]->input[j]);
            if (v)
                v->consumers++;
        }
    }
    const int nodes_before = im.m->n_nodes;
    im.graph = g;
    im.live = live;
    im.fused = calloc(g->n_node ? g->n_node : 1, 1);
    CHECK_ALLOC(im.fused);
    for (size_t k = 0; k < g->n_node; k++) {
        if (!live[k] || im.fused[k])
            continue;
        im.cur = k;
        CHECK_RC(import_node(&im, g->node[k]));
        /* Count the readers of the values this node produced. */
        const onnx_node_t *nd = g->node[k];
        for (size_t o = 0; o < nd->n_output; o++) {
            onnx_value_t *v = find_value(&im, nd->output[o]);
            if (!v)
                continue;
            v->consumers = 0;
            for (size_t q = k + 1; q < g->n_node; q++) {
                if (!live[q])
                    continue;
                for (size_t j = 0; j < g->node[q]->n_input; j++)
                    v->consumers += !strcmp(g->node[q]->input[j], nd->output[o]);
            }
        }
    }
    info->imported_nodes = im.m->n_nodes - nodes_before;
    onnx_value_t *vout = find_value(&im, g->output[0]->name);
    if (vout && vout->kind == VALUE_NHWC)
        CHECK_RC(nhwc_materialize(&im, vout));
    CHECK(vout && vout->kind == VALUE_NODE && vout->node == im.m->n_nodes - 1, SC_ERR_UNSUPPORTED,
          "%s: the graph output '%s' is not the last layer salcheck built", source,
          g->output[0]->name);
    CHECK(vout->node > 0, SC_ERR_UNSUPPORTED, "%s: the graph has no layers", source);

    /* Free the protobuf before the parameter slab exists (weights are in pending). */
    for (int i = 0; i < im.n_values; i++) {
        free_const(im.values[i].cst);
        im.values[i].cst = NULL;
        im.values[i].tensor = NULL;
        im.values[i].name = "";
    }
    onnx__model_proto__free_unpacked(model, NULL);
    model = NULL;

    nn_model_t *m = im.m;
    snprintf(m->arch, sizeof m->arch, "onnx");
    const char *producer = info->producer;
    int keras = strstr(producer, "tf2onnx") || strstr(producer, "keras2onnx") ||
                strstr(producer, "keras");
    const char *normalize = opts && opts->normalize ? opts->normalize
                                                    : (keras ? "inception" : "imagenet");
    /* the input convention (io/image_norm.h) must fit the model's input channels */
    CHECK((opts && opts->normalize) || m->nodes[0].c == 3, SC_ERR_ARG,
          "%s: the model takes %d input channel%s: name its input convention (xrv for "
          "TorchXRayVision models, unit for [0, 1], or \"scale=S offset=O\")", source,
          m->nodes[0].c, m->nodes[0].c == 1 ? "" : "s");
    {
        image_norm_t norm;
        CHECK_RC(image_norm_resolve(normalize, m->nodes[0].c, &norm));
    }
    snprintf(m->normalize, sizeof m->normalize, "%s", normalize);
    m->num_classes = (int)nn_node_size(&m->nodes[nn_logits_node(m)]);
    tok_default_cam_layer(m);
    onnx_group_blocks(m, info->blocks, sizeof info->blocks);
    if (opts && opts->n_block_rules > 0) {
        CHECK_RC(onnx_apply_block_rules(m, opts->block_rules, opts->n_block_rules));
        snprintf(info->blocks, sizeof info->blocks, "override rules");
    }
    CHECK_RC(nn_model_finalize(m, 0));
    for (int i = 0; i < im.n_pending; i++) {
        const pending_param_t *p = &im.pending[i];
        size_t count;
        float *dst = nn_param(m, p->node, p->kind, &count);
        CHECK(dst && count == p->count, SC_ERR_SHAPE,
              "%s: node '%s': %s has %zu values, the layer needs %zu", source,
              m->nodes[p->node].name, nn_param_kind_name(p->kind), p->count, count);
        memcpy(dst, p->data, sizeof(float) * count);
    }
    nn_model_params_changed(m);
    *out = m;
    im.m = NULL;
cleanup:
    if (model)
        onnx__model_proto__free_unpacked(model, NULL);
    nn_model_destroy(im.m);
    importer_free(&im);
    free(live);
    return rc;
}

int onnx_import_file(const char *path, const onnx_import_opts_t *opts, nn_model_t **out,
                     onnx_import_info_t *info)
{
    int rc = 0;
    uint8_t *data = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    CHECK(f, SC_ERR_IO, "cannot open ONNX file '%s'", path);
    CHECK(fseek(f, 0, SEEK_END) == 0, SC_ERR_IO, "cannot read '%s'", path);
    long len = ftell(f);
    CHECK(len > 0 && fseek(f, 0, SEEK_SET) == 0, SC_ERR_IO, "'%s' is empty or unreadable", path);
    data = malloc((size_t)len);
    CHECK_ALLOC(data);
    CHECK(fread(data, 1, (size_t)len, f) == (size_t)len, SC_ERR_IO, "cannot read '%s'", path);
    fclose(f);
    f = NULL;
    rc = onnx_import_buffer(data, (size_t)len, path, opts, out, info);
cleanup:
    if (f)
        fclose(f);
    free(data);
    return rc;
}

#endif /* ONNX_IMPORT_HAVE_PROTO */
