/*
 * run_outputs.c - the [model.NAME] keys target, labels and input (run_outputs.h).
 */
#include "run_outputs.h"

#include <stdio.h>
#include <string.h>

#include "io/image_norm.h"
#include "nn/modelfile.h"
#include "sc.h"

int run_outputs_apply(const job_t *job, int j, nn_model_t *m, run_output_t *out)
{
    const job_model_t *md = &job->models[j];
    char err[1400];
    memset(out, 0, sizeof *out);
    out->target = -1;
    out->head = nn_outputs_head(m);
    const int count = nn_outputs_count(m);
    image_norm_t norm;

    /* the input convention: the job's, else the model file's */
    if (m->nodes[0].c != 1 && m->nodes[0].c != 3) {
        SC_ERROR("%s:%d: model '%s' takes %d-channel inputs; salcheck feeds 1 or 3 channels (the "
                 "gray radiograph copied to each)", job->path, md->line, md->name, m->nodes[0].c);
        return SC_ERR_FORMAT;
    }
    if (md->input[0]) {
        if (image_norm_resolve(md->input, m->nodes[0].c, &norm) < 0) {
            SC_ERROR("%s:%d: model '%s': input = %s does not fit the model (see above)", job->path,
                     md->input_line, md->name, md->input);
            return SC_ERR_FORMAT;
        }
        snprintf(m->normalize, sizeof m->normalize, "%s", md->input);
    } else if (image_norm_resolve(m->normalize, m->nodes[0].c, &norm) < 0) {
        SC_ERROR("%s:%d: model '%s': the input convention '%s' of %s does not fit the model; "
                 "give input = PRESET or \"scale=S offset=O\" in [model.%s]", job->path, md->line,
                 md->name, m->normalize, md->file, md->name);
        return SC_ERR_FORMAT;
    }

    /* the labels: the job's, else the model file's */
    if (md->output_labels[0]) {
        if (nn_outputs_labels_check(md->output_labels, count, out->labels, sizeof out->labels,
                                    err, sizeof err) < 0) {
            SC_ERROR("%s:%d: model '%s': %s", job->path, md->labels_line, md->name, err);
            return SC_ERR_FORMAT;
        }
    } else {
        char stored[NN_LABELS_TEXT_MAX];
        if (!md->train && modelfile_get_attr(md->file, "output_labels", stored, sizeof stored) == 0 &&
            stored[0] &&
            nn_outputs_labels_check(stored, count, out->labels, sizeof out->labels, err,
                                    sizeof err) < 0) {
            SC_ERROR("%s: the labels stored in the model file do not fit its outputs: %s "
                     "(give labels = ... in [model.%s] of %s)", md->file, err, md->name, job->path);
            return SC_ERR_FORMAT;
        }
    }

    /* the target */
    if (nn_outputs_target(md->target, m, out->labels, &out->target, err, sizeof err) < 0) {
        SC_ERROR("%s:%d: model '%s': %s", job->path, md->target[0] ? md->target_line : md->line,
                 md->name, err);
        return SC_ERR_FORMAT;
    }
    nn_outputs_label(out->labels, out->target, out->target_label, sizeof out->target_label);
    return 0;
}

/* "output 8 (Pneumonia)" or "the predicted class" into buf. */
static void describe_output(const run_output_t *o, char *buf, size_t len)
{
    if (o->target < 0)
        snprintf(buf, len, "the predicted class of each image");
    else if (o->target_label[0])
        snprintf(buf, len, "output %d (%s)", o->target, o->target_label);
    else
        snprintf(buf, len, "output %d", o->target);
}

/* Do models a and b explain the same output? By label when both have one
 * (two architectures may order their outputs differently), else by index. */
static int same_output(const run_output_t *a, const run_output_t *b)
{
    if (a->target >= 0 && b->target >= 0 && a->target_label[0] && b->target_label[0])
        return strcmp(a->target_label, b->target_label) == 0;
    return a->target == b->target;
}

int run_outputs_check_pairs(const job_t *job, const run_output_t *outs, const int *known)
{
    struct { const char *key; const job_pair_t *pairs; int n; } sets[3] = {
        {"label_randomization", job->label_pairs, job->n_label_pairs},
        {"repeatability", job->repeat_pairs, job->n_repeat_pairs},
        {"reproducibility", job->repro_pairs, job->n_repro_pairs}};
    int bad = 0;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < sets[s].n; k++) {
            const int a = sets[s].pairs[k].a, b = sets[s].pairs[k].b;
            if ((known && (!known[a] || !known[b])) || same_output(&outs[a], &outs[b]))
                continue;
            char da[96], db[96];
            describe_output(&outs[a], da, sizeof da);
            describe_output(&outs[b], db, sizeof db);
            SC_ERROR("%s: %s pair %s:%s compares maps of different outputs: model '%s' explains "
                     "%s, model '%s' explains %s; give both the same [model.NAME] target",
                     job->path, sets[s].key, job->models[a].name, job->models[b].name,
                     job->models[a].name, da, job->models[b].name, db);
            bad++;
        }
    return bad ? SC_ERR_FORMAT : 0;
}
