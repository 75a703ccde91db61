/*
 * cmd_import.c - `salcheck import`: convert an ONNX model into a salcheck model file.
 *
 *   salcheck import MODEL.onnx -o MODEL.h5 [--normalize CONVENTION] [--labels a,b,...]
 *                   [--size S] [--block "name = prefix[,prefix]"]...
 *
 * The conversion is onnx_import_file (common/nn/onnx_import.h); this file
 * parses the options, prints what was imported (layers, parameters, blocks,
 * Grad-CAM layer, input convention) and writes the model file with its
 * provenance (source file, producer, opset) and the names of its outputs
 * (attribute output_labels, nn/outputs.h; a trained model's `labels` is its
 * recipe, true or shuffled). Under mpirun only rank 0 works.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nn/modelfile.h"
#include "io/image_norm.h"
#include "nn/onnx_import.h"
#include "nn/outputs.h"
#include "nn/zoo.h"
#include "sc.h"

#define IMPORT_MAX_RULES 64

static void import_usage(void)
{
    fprintf(stderr,
            "usage: salcheck import MODEL.onnx -o MODEL.h5 [options]\n\n"
            "Converts an ONNX model (torch.onnx.export, opsets 11-17, or a Keras-to-ONNX\n"
            "converter such as tf2onnx) into a salcheck model file.\n\n"
            "  -o, --out FILE         the salcheck model file to write (required)\n"
            "  --normalize CONV       input convention every later command applies:\n"
            "                         inception ([-1,1]), imagenet (mean/std on [0,1]), unit\n"
            "                         ([0,1]), xrv ([-1024,1024], 1 channel: TorchXRayVision)\n"
            "                         or \"scale=S[,S,S] offset=O[,O,O]\" (x = S*gray/255 + O);\n"
            "                         default: inception for Keras converters, imagenet\n"
            "                         otherwise (a 1-channel model must name one)\n"
            "  --labels 'a, b, ...'   names of the outputs, in order (stored in the model file;\n"
            "                         jobs and explain then name targets by label)\n"
            "  --size S               input height and width (required when the ONNX input\n"
            "                         size is symbolic; global-pool models accept any size)\n"
            "  --block 'B = P[,P]'    put the layers whose names start with P into block B\n"
            "                         (repeatable; overrides the grouping by name prefixes)\n");
}

static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "salcheck import: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static void print_summary(const nn_model_t *m, const onnx_import_info_t *info, const char *in,
                          const char *out)
{
    const char *blocks[256];
    int n_blocks = zoo_blocks_top_down(m, blocks, 256);
    printf("imported %s (%s, opset %ld): %d ONNX nodes -> %d layers, %zu parameters\n", in,
           info->producer, info->opset, info->onnx_nodes, m->n_nodes - 1, nn_count_trainable(m));
    printf("  input      %d x %d x %d (%s in the ONNX graph), normalization '%s'\n",
           m->nodes[0].c, m->nodes[0].h, m->nodes[0].w, info->input_layout, m->normalize);
    printf("  output     %d logits, %s head\n", m->num_classes,
           nn_outputs_head_name(nn_outputs_head(m)));
    printf("  Grad-CAM   %s\n", m->gradcam_layer);
    printf("  blocks     (%s), top down:", info->blocks);
    for (int i = 0; i < n_blocks; i++)
        printf(" %s", blocks[i]);
    printf("\n  written to %s\n", out);
}

int cmd_import(int argc, char **argv)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *in = NULL, *out = NULL, *normalize = NULL, *labels_arg = NULL;
    const char *rules[IMPORT_MAX_RULES];
    int n_rules = 0, size = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0)
                import_usage();
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!(out = option_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--normalize")) {
            if (!(normalize = option_value(argc, argv, &i)))
                return 2;
            image_norm_t norm;
            if (image_norm_parse(normalize, &norm) < 0) {
                fprintf(stderr, "salcheck import: --normalize '%s' is not an input convention "
                                "(see --help)\n", normalize);
                return 2;
            }
        } else if (!strcmp(a, "--labels")) {
            if (!(labels_arg = option_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--size")) {
            const char *v = option_value(argc, argv, &i);
            char *end = NULL;
            size = v ? (int)strtol(v, &end, 10) : 0;
            if (!v || *end || size < 16) {
                fprintf(stderr, "salcheck import: --size must be an integer >= 16\n");
                return 2;
            }
        } else if (!strcmp(a, "--block")) {
            const char *v = option_value(argc, argv, &i);
            if (!v)
                return 2;
            if (n_rules == IMPORT_MAX_RULES) {
                fprintf(stderr, "salcheck import: at most %d --block rules\n", IMPORT_MAX_RULES);
                return 2;
            }
            rules[n_rules++] = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "salcheck import: unknown option '%s'\n\n", a);
            import_usage();
            return 2;
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "salcheck import: more than one input file ('%s' and '%s')\n", in, a);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "salcheck import: %s\n\n", in ? "-o MODEL.h5 is required"
                                                      : "the ONNX file is required");
        import_usage();
        return 2;
    }
    if (rank != 0)
        return 0; /* one file, one writer */

    onnx_import_opts_t opts = {.normalize = normalize, .size = size, .block_rules = rules,
                               .n_block_rules = n_rules};
    onnx_import_info_t info;
    nn_model_t *m = NULL;
    int rc = onnx_import_file(in, &opts, &m, &info);
    if (rc < 0) {
        fprintf(stderr, "salcheck import: '%s' was not converted (%s)\n", in, sc_strerror(rc));
        return 1;
    }
    char *labels = calloc(NN_LABELS_TEXT_MAX, 1); /* the outputs' names, "" when unnamed */
    if (!labels) {
        nn_model_destroy(m);
        return 1;
    }
    if (labels_arg) {
        char err[512];
        if (nn_outputs_labels_check(labels_arg, nn_outputs_count(m), labels, NN_LABELS_TEXT_MAX,
                                    err, sizeof err) < 0) {
            fprintf(stderr, "salcheck import: --labels: %s\n", err);
            nn_model_destroy(m);
            free(labels);
            return 2;
        }
    }
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    char opset[32], ir[32];
    snprintf(opset, sizeof opset, "%ld", info.opset);
    snprintf(ir, sizeof ir, "%ld", info.ir_version);
    const char *meta[] = {"source",       base,          "source_format", "onnx",
                          "onnx_producer", info.producer, "onnx_opset",    opset,
                          "onnx_ir_version", ir,         "onnx_graph",    info.graph_name,
                          "onnx_input_layout", info.input_layout, "blocks_from", info.blocks,
                          labels[0] ? "output_labels" : NULL, labels, NULL};
    rc = modelfile_save(out, m, meta);
    if (rc < 0) {
        fprintf(stderr, "salcheck import: cannot write '%s' (%s)\n", out, sc_strerror(rc));
        nn_model_destroy(m);
        free(labels);
        return 1;
    }
    print_summary(m, &info, in, out);
    if (labels[0])
        printf("  labels     %s\n", labels);
    nn_model_destroy(m);
    free(labels);
    return 0;
}
