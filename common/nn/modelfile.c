/*
 * modelfile.c - save and load salcheck model files with serial HDF5 (modelfile.h).
 */
#include "nn/modelfile.h"
#include "nn/op.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5attr.h"
#include "io/image_norm.h"
#include "nn/modelfile_graph.h"
#include "nn/modelfile_probe.h"
#include "sc.h"

#define MODELFILE_FORMAT_VERSION "1"

#define CHECK_H5(expr, ...)                                                     \
    do {                                                                        \
        if ((expr) < 0) {                                                       \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__);              \
            rc = SC_ERR_H5;                                                     \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

static void escape_name(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '|';
    if (!strcmp(out, ".") || out[0] == 0)
        snprintf(out, len, "|%s", name);
}

static int write_int_attr(hid_t obj, const char *key, int value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d", value);
    return h5attr_write_str(obj, key, buf);
}

static void node_line(const nn_model_t *m, const nn_node_t *nd, char *buf, size_t len)
{
    int off = snprintf(buf, len, "op=%s name=%s block=%s in=", nn_op_name(nd->op), nd->name,
                       nd->block);
    for (int k = 0; k < nd->n_in && off < (int)len; k++)
        off += snprintf(buf + off, len - off, k ? ",%d" : "%d", nd->in[k]);
    if (nd->n_in == 0)
        off += snprintf(buf + off, len - off, "-");
    const nn_op_def_t *def = nn_op_def(nd->op);
    if (def && def->write_attrs && off < (int)len)
        def->write_attrs(nd, buf + off, len - off);
    (void)m;
}

int modelfile_save(const char *path, const nn_model_t *m, const char *const *meta)
{
    int rc = 0;
    hid_t file = -1, wgroup = -1, type = -1, space = -1, dset = -1;
    char **lines = NULL;
    nn_model_t *mm = (nn_model_t *)m; /* nn_param takes a non-const model */
    CHECK_RC(sc_mkdirs_parent(path));
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(file >= 0, SC_ERR_IO, "cannot create model file '%s'", path);
    CHECK_H5(h5attr_write_str(file, "format", "salcheck-model"), "attr");
    CHECK_H5(h5attr_write_str(file, "format_version", MODELFILE_FORMAT_VERSION), "attr");
    CHECK_H5(h5attr_write_str(file, "salcheck_version", SALCHECK_VERSION), "attr");
    CHECK_H5(h5attr_write_str(file, "arch", m->arch[0] ? m->arch : "custom"), "attr");
    CHECK_H5(h5attr_write_str(file, "normalize", m->normalize), "attr");
    {
        /* the input convention's numbers, for readers of the file (normalize is the source) */
        image_norm_t norm;
        char values[128];
        if (image_norm_resolve(m->normalize, m->nodes[0].c, &norm) == 0) {
            image_norm_values(&norm, 0, values, sizeof values);
            CHECK_H5(h5attr_write_str(file, "input_scale", values), "attr");
            image_norm_values(&norm, 1, values, sizeof values);
            CHECK_H5(h5attr_write_str(file, "input_offset", values), "attr");
        }
    }
    CHECK_H5(h5attr_write_str(file, "gradcam_layer", m->gradcam_layer), "attr");
    CHECK_H5(write_int_attr(file, "num_classes", m->num_classes), "attr");
    CHECK_H5(write_int_attr(file, "input_c", m->nodes[0].c), "attr");
    CHECK_H5(write_int_attr(file, "input_h", m->nodes[0].h), "attr");
    CHECK_H5(write_int_attr(file, "input_w", m->nodes[0].w), "attr");
    for (int i = 0; meta && meta[i] && meta[i + 1]; i += 2)
        CHECK_H5(h5attr_write_str(file, meta[i], meta[i + 1]), "attr %s", meta[i]);

    lines = calloc((size_t)m->n_nodes, sizeof *lines);
    CHECK_ALLOC(lines);
    for (int i = 0; i < m->n_nodes; i++) {
        lines[i] = malloc(1024);
        CHECK_ALLOC(lines[i]);
        node_line(m, &m->nodes[i], lines[i], 1024);
    }
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hsize_t dims[4] = {(hsize_t)m->n_nodes};
    space = H5Screate_simple(1, dims, NULL);
    dset = H5Dcreate2(file, "graph", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(dset, "cannot create /graph in '%s'", path);
    CHECK_H5(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, lines), "write /graph");
    H5Dclose(dset);
    dset = -1;
    H5Sclose(space);
    space = -1;

    wgroup = H5Gcreate2(file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(wgroup, "cannot create /weights");
    for (int id = 1; id < m->n_nodes; id++) {
        const nn_node_t *nd = &m->nodes[id];
        hid_t g = -1;
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t count;
            const float *p = nn_param(mm, id, (nn_param_kind)k, &count);
            if (!p)
                continue;
            if (g < 0) {
                char ename[NN_NAME_MAX + 2];
                escape_name(nd->name, ename, sizeof ename);
                g = H5Gcreate2(wgroup, ename, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                CHECK_H5(g, "cannot create weights group for '%s'", nd->name);
            }
            /* the tensor's own shape (conv [out, in, kh, kw], dense [out, in]) */
            size_t shape[4];
            int rank = nn_op_def(nd->op)->param_shape(m, nd, (nn_param_kind)k, shape);
            for (int d = 0; d < rank; d++)
                dims[d] = (hsize_t)shape[d];
            space = H5Screate_simple(rank, dims, NULL);
            dset = H5Dcreate2(g, nn_param_kind_name((nn_param_kind)k), H5T_IEEE_F32LE, space,
                              H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            int ok = dset >= 0 &&
                     H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) >= 0;
            if (dset >= 0)
                H5Dclose(dset);
            H5Sclose(space);
            dset = space = -1;
            if (!ok) {
                H5Gclose(g);
                CHECK_H5(-1, "cannot write weights of '%s'", nd->name);
            }
        }
        if (g >= 0)
            H5Gclose(g);
    }
cleanup:
    if (lines)
        for (int i = 0; i < m->n_nodes; i++)
            free(lines[i]);
    free(lines);
    if (dset >= 0)
        H5Dclose(dset);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (wgroup >= 0)
        H5Gclose(wgroup);
    if (file >= 0) {
        int crc = h5file_close(file, path, "the model file");
        if (rc >= 0 && crc < 0)
            rc = crc;
    }
    return rc;
}

/* Value of "key=" in a node line, or NULL. */
static const char *field(const char *line, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)); p += klen) {
        if ((p == line || p[-1] == ' ') && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, " ");
            if (n >= len)
                n = len - 1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return buf;
        }
    }
    return NULL;
}

static int parse_ints(const char *s, int *out, int max)
{
    int count = 0;
    while (s && *s && count < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        out[count++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
    return count;
}

static int add_from_line(nn_model_t *m, const char *line, const char *path, int index)
{
    char op[32], name[NN_NAME_MAX], block[NN_NAME_MAX], buf[4096];
    if (!field(line, "op", op, sizeof op) || !field(line, "name", name, sizeof name) ||
        !field(line, "block", block, sizeof block) || !field(line, "in", buf, sizeof buf)) {
        SC_ERROR("%s: /graph[%d] lacks op, name, block or in: '%s'", path, index, line);
        return SC_ERR_FORMAT;
    }
    int in[1024];
    int n_in = parse_ints(buf, in, 1024);
    if (n_in < 1) {
        SC_ERROR("%s: /graph[%d] has no inputs: '%s'", path, index, line);
        return SC_ERR_FORMAT;
    }
    nn_set_block(m, block);
    int k[2] = {1, 1}, s[2] = {1, 1}, pad[4] = {0, 0, 0, 0}, out_c = 0, bias = 0, ceil = 0, cip = 0;
    int scale = 1, center = 1, init = 0;
    float eps = 1e-5f, mom = 0.1f;
    if (field(line, "k", buf, sizeof buf)) parse_ints(buf, k, 2);
    if (field(line, "s", buf, sizeof buf)) parse_ints(buf, s, 2);
    if (field(line, "pad", buf, sizeof buf)) parse_ints(buf, pad, 4);
    if (field(line, "out_c", buf, sizeof buf)) out_c = atoi(buf);
    if (field(line, "bias", buf, sizeof buf)) bias = atoi(buf);
    if (field(line, "ceil", buf, sizeof buf)) ceil = atoi(buf);
    if (field(line, "cip", buf, sizeof buf)) cip = atoi(buf);
    if (field(line, "scale", buf, sizeof buf)) scale = atoi(buf);
    if (field(line, "center", buf, sizeof buf)) center = atoi(buf);
    if (field(line, "init", buf, sizeof buf)) init = atoi(buf);
    if (field(line, "eps", buf, sizeof buf)) eps = strtof(buf, NULL);
    if (field(line, "mom", buf, sizeof buf)) mom = strtof(buf, NULL);
    int groups = 1, ch_start = 0;
    if (field(line, "groups", buf, sizeof buf)) groups = atoi(buf);
    if (field(line, "start", buf, sizeof buf)) ch_start = atoi(buf);
    nn_op kind = nn_op_from_name(op);
    if (kind == NN_OP_COUNT || kind == NN_INPUT) {
        SC_ERROR("%s: /graph[%d]: unknown operator '%s'", path, index, op);
        return SC_ERR_FORMAT;
    }
    /* Attributes an op does not use are ignored (its infer checks those it does). */
    nn_node_t attrs = {.out_c = out_c, .kh = k[0], .kw = k[1], .sh = s[0], .sw = s[1],
                       .pt = pad[0], .pb = pad[1], .pl = pad[2], .pr = pad[3], .has_bias = bias,
                       .ceil_mode = ceil, .count_include_pad = cip, .eps = eps, .momentum = mom,
                       .bn_scale = scale, .bn_center = center, .init = (nn_init)init,
                       .groups = groups, .ch_start = ch_start};
    /* general-shape ops (nn/ops/reshape.c ... softmax_axis.c) */
    if (field(line, "dims", buf, sizeof buf)) attrs.rank = parse_ints(buf, attrs.dims, NN_MAX_RANK);
    if (field(line, "perm", buf, sizeof buf)) parse_ints(buf, attrs.perm, NN_MAX_RANK);
    if (field(line, "axis", buf, sizeof buf)) attrs.axis = atoi(buf);
    if (field(line, "start", buf, sizeof buf)) attrs.start = atoi(buf);
    if (field(line, "end", buf, sizeof buf)) attrs.end = atoi(buf);
    if (field(line, "alpha", buf, sizeof buf)) attrs.alpha = strtof(buf, NULL);
    int id = nn_add_node(m, name, kind, n_in, in, &attrs);
    if (id < 0) {
        SC_ERROR("%s: /graph[%d] is not a valid node: '%s'", path, index, line);
        return SC_ERR_FORMAT;
    }
    return id;
}

int modelfile_load(const char *path, nn_model_t **out)
{
    int rc = 0;
    hid_t file = -1, dset = -1;
    char **lines = NULL;
    size_t count = 0;
    nn_model_t *m = NULL;
    char buf[256];
    *out = NULL;
    /* a corrupt file can crash HDF5 itself: a child meets it first */
    CHECK_RC(modelfile_probe(path, MODELFILE_PROBE_ALL));
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(file >= 0, SC_ERR_IO, "cannot open model file '%s' (missing, or not HDF5)", path);
    CHECK(h5attr_read_str(file, "format", buf, sizeof buf) == 0 && !strcmp(buf, "salcheck-model"),
          SC_ERR_FORMAT, "'%s' is not a salcheck model file (no format=salcheck-model attribute)",
          path);
    int dims[3];
    const char *keys[3] = {"input_c", "input_h", "input_w"};
    for (int i = 0; i < 3; i++) {
        CHECK(h5attr_read_str(file, keys[i], buf, sizeof buf) == 0, SC_ERR_FORMAT,
              "'%s': attribute %s missing", path, keys[i]);
        dims[i] = atoi(buf);
    }
    m = nn_model_create(dims[0], dims[1], dims[2]);
    CHECK_ALLOC(m);
    if (h5attr_read_str(file, "arch", buf, sizeof buf) == 0)
        snprintf(m->arch, sizeof m->arch, "%.31s", buf);
    if (h5attr_read_str(file, "normalize", buf, sizeof buf) == 0)
        snprintf(m->normalize, sizeof m->normalize, "%s", buf);
    h5attr_read_str(file, "gradcam_layer", m->gradcam_layer, sizeof m->gradcam_layer);
    if (h5attr_read_str(file, "num_classes", buf, sizeof buf) == 0)
        m->num_classes = atoi(buf);

    H5E_BEGIN_TRY { dset = H5Dopen2(file, "graph", H5P_DEFAULT); } H5E_END_TRY;
    CHECK(dset >= 0, SC_ERR_FORMAT, "'%s': no /graph dataset", path);
    /* not H5Dread: HDF5 crashes on a corrupt string heap (modelfile_graph.c) */
    CHECK_RC(modelfile_graph_read(file, dset, path, &lines, &count));
    for (size_t i = 1; i < count; i++)
        CHECK_RC(add_from_line(m, lines[i], path, (int)i));
    CHECK_RC(nn_model_finalize_uninit(m)); /* every parameter is read below */
    for (int id = 1; id < m->n_nodes; id++) {
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t n;
            float *p = nn_param(m, id, (nn_param_kind)k, &n);
            if (!p)
                continue;
            char ename[NN_NAME_MAX + 2], dpath[2 * NN_NAME_MAX + 32];
            escape_name(m->nodes[id].name, ename, sizeof ename);
            snprintf(dpath, sizeof dpath, "weights/%s/%s", ename,
                     nn_param_kind_name((nn_param_kind)k));
            hid_t w = -1;
            H5E_BEGIN_TRY { w = H5Dopen2(file, dpath, H5P_DEFAULT); } H5E_END_TRY;
            CHECK(w >= 0, SC_ERR_FORMAT, "'%s': weights /%s missing", path, dpath);
            hid_t ws = H5Dget_space(w);
            hssize_t have = H5Sget_simple_extent_npoints(ws);
            H5Sclose(ws);
            int ok = have == (hssize_t)n &&
                     H5Dread(w, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) >= 0;
            H5Dclose(w);
            CHECK(ok, SC_ERR_FORMAT, "'%s': /%s has %lld values, the graph needs %zu", path, dpath,
                  (long long)have, n);
            size_t bad = 0, first = 0;
            for (size_t q = 0; q < n; q++)
                if (!isfinite(p[q]) && bad++ == 0)
                    first = q;
            CHECK(bad == 0, SC_ERR_FORMAT, "'%s': /%s holds %zu NaN or infinite values (the first "
                  "at index %zu): the model is unusable (diverged training or a damaged file)",
                  path, dpath, bad, first);
        }
    }
    nn_model_params_changed(m);
    *out = m;
    m = NULL;
cleanup:
    modelfile_graph_free(lines, count);
    if (dset >= 0)
        H5Dclose(dset);
    if (file >= 0)
        H5Fclose(file);
    nn_model_destroy(m);
    return rc;
}

int modelfile_get_attr(const char *path, const char *key, char *buf, size_t len)
{
    hid_t file = -1;
    int rc = modelfile_probe(path, MODELFILE_PROBE_ATTRS);
    if (rc < 0)
        return rc;
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (file < 0) {
        SC_ERROR("cannot open '%s'", path);
        return SC_ERR_IO;
    }
    rc = h5attr_read_str(file, key, buf, len);
    H5Fclose(file);
    return rc;
}
