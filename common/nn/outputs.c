/*
 * outputs.c - output labels, head and target rule (outputs.h).
 */
#include "nn/outputs.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

nn_head_t nn_outputs_head(const nn_model_t *m)
{
    const nn_op op = m->nodes[m->output].op;
    return op == NN_SIGMOID ? NN_HEAD_SIGMOID : op == NN_SOFTMAX ? NN_HEAD_SOFTMAX : NN_HEAD_LOGITS;
}

const char *nn_outputs_head_name(nn_head_t head)
{
    return head == NN_HEAD_SIGMOID ? "sigmoid" : head == NN_HEAD_SOFTMAX ? "softmax" : "logits";
}

int nn_outputs_count(const nn_model_t *m)
{
    return (int)nn_node_size(&m->nodes[nn_logits_node(m)]);
}

/* The bounds [*b, *e) of name `index` of the list, trimmed; 0 when absent. */
static int label_span(const char *labels, int index, const char **b, const char **e)
{
    if (!labels || !*labels)
        return 0;
    const char *p = labels;
    for (int k = 0;; k++) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (k == index) {
            while (p < end && isspace((unsigned char)*p))
                p++;
            while (end > p && isspace((unsigned char)end[-1]))
                end--;
            *b = p;
            *e = end;
            return 1;
        }
        if (!*end)
            return 0;
        p = end + 1;
    }
}

int nn_outputs_label_count(const char *labels)
{
    if (!labels || !*labels)
        return 0;
    int n = 1;
    for (const char *p = labels; *p; p++)
        n += *p == ',';
    return n;
}

void nn_outputs_label(const char *labels, int index, char *buf, size_t len)
{
    const char *b, *e;
    if (len == 0)
        return;
    buf[0] = 0;
    if (index >= 0 && label_span(labels, index, &b, &e))
        snprintf(buf, len, "%.*s", (int)(e - b), b);
}

int nn_outputs_label_find(const char *labels, const char *name)
{
    const int n = nn_outputs_label_count(labels);
    const size_t len = strlen(name);
    for (int k = 0; k < n; k++) {
        const char *b, *e;
        if (label_span(labels, k, &b, &e) && (size_t)(e - b) == len && !strncmp(b, name, len))
            return k;
    }
    return -1;
}

int nn_outputs_labels_check(const char *labels, int count, char *out, size_t out_len, char *err,
                            size_t err_len)
{
    const int n = nn_outputs_label_count(labels);
    size_t off = 0;
    if (out_len)
        out[0] = 0;
    if (n != count) {
        snprintf(err, err_len, "the labels name %d output%s, the model has %d", n,
                 n == 1 ? "" : "s", count);
        return SC_ERR_ARG;
    }
    for (int k = 0; k < n; k++) {
        const char *b = NULL, *e = NULL;
        label_span(labels, k, &b, &e);
        if (e == b || e - b >= NN_LABEL_MAX) {
            snprintf(err, err_len, "label %d is %s", k, e == b ? "empty" : "too long");
            return SC_ERR_ARG;
        }
        for (int j = 0; j < k; j++) {
            const char *bj = NULL, *ej = NULL;
            label_span(labels, j, &bj, &ej);
            if (ej - bj == e - b && !strncmp(bj, b, (size_t)(e - b))) {
                snprintf(err, err_len, "label '%.*s' is given twice (outputs %d and %d)",
                         (int)(e - b), b, j, k);
                return SC_ERR_ARG;
            }
        }
        int w = snprintf(out + off, out_len - off, k ? ",%.*s" : "%.*s", (int)(e - b), b);
        if (w < 0 || (size_t)w >= out_len - off) {
            snprintf(err, err_len, "the labels are longer than %zu characters", out_len - 1);
            return SC_ERR_ARG;
        }
        off += (size_t)w;
    }
    return 0;
}

/* "; the outputs are 0 Atelectasis, 1 ..." (or nothing without labels) into buf. */
static void list_labels(const char *labels, char *buf, size_t len)
{
    const int n = nn_outputs_label_count(labels);
    size_t off = 0;
    buf[0] = 0;
    for (int k = 0; k < n && off + 1 < len; k++) {
        char name[NN_LABEL_MAX];
        nn_outputs_label(labels, k, name, sizeof name);
        int w = snprintf(buf + off, len - off, "%s%d %s", k ? ", " : "; the outputs are ", k, name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int nn_outputs_target(const char *request, const nn_model_t *m, const char *labels, int *index,
                      char *err, size_t err_len)
{
    const int count = nn_outputs_count(m);
    char known[1024];
    list_labels(labels, known, sizeof known);
    if (!request || !*request) {
        if (nn_outputs_head(m) == NN_HEAD_SIGMOID && count > 1) {
            snprintf(err, err_len, "the model has %d sigmoid outputs (multi-label): it has no "
                     "predicted class; name the output to explain (a job: target = INDEX or LABEL; "
                     "explain: --target)%s",
                     count, known);
            return SC_ERR_ARG;
        }
        *index = -1;
        return 0;
    }
    char *end;
    errno = 0;
    long k = strtol(request, &end, 10);
    if (end != request && !*end && !errno) {
        if (k < 0 || k >= count) {
            snprintf(err, err_len, "target %ld does not exist: the model has %d output%s (0..%d)%s",
                     k, count, count == 1 ? "" : "s", count - 1, known);
            return SC_ERR_ARG;
        }
        *index = (int)k;
        return 0;
    }
    int found = nn_outputs_label_find(labels, request);
    if (found < 0) {
        if (!nn_outputs_label_count(labels))
            snprintf(err, err_len, "target '%s' is not an output index and the model's outputs "
                     "have no labels (give labels = NAME, NAME, ... or salcheck import --labels)",
                     request);
        else
            snprintf(err, err_len, "target '%s' is not one of the model's labels%s", request, known);
        return SC_ERR_ARG;
    }
    *index = found;
    return 0;
}
