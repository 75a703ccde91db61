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
