/*
 * job.c - job file parsing and validation (job.h).
 *
 * libinih calls the handler once per key line; the reader below feeds it the
 * file line by line and counts, so every message can name its line.
 */
#include "io/job.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sc.h"

/* Model references are resolved after parsing (models may come later in the file):
 * keep the raw strings with their lines. */
typedef struct pending_ref { char key[32], value[1024]; int line; } pending_ref_t;

typedef struct parse_state {
    pending_ref_t pending[64];
    int n_pending;
    job_t *job;
    const char *cursor;       /* reader position in job->text */
    int line;                 /* line number of the last line handed to inih */
    int errors;
    char section[128];
    int section_line;
    /* keys seen per section, for duplicate detection */
    char seen[512][160];
    int n_seen;
} parse_state_t;

#define JOB_ERR(st, ...)                                                        \
    do {                                                                        \
        char msg_[512];                                                         \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                               \
        SC_ERROR("%s:%d: %s", (st)->job->path, (st)->line, msg_);               \
        (st)->errors++;                                                         \
    } while (0)

static char *reader(char *str, int num, void *stream)
{
    parse_state_t *st = stream;
    if (!*st->cursor)
        return NULL;
    int n = 0;
    while (st->cursor[n] && st->cursor[n] != '\n' && n < num - 2)
        n++;
    memcpy(str, st->cursor, (size_t)n);
    if (st->cursor[n] == '\n')
        str[n++] = '\n';
    str[n] = 0;
    st->cursor += n;
    st->line++;
    return str;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    size_t k = 0;
    while (isspace((unsigned char)s[k]))
        k++;
    memmove(s, s + k, strlen(s + k) + 1);
}

static int parse_int(parse_state_t *st, const char *key, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        JOB_ERR(st, "%s = '%s' is not an integer in %d..%d", key, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_u64(parse_state_t *st, const char *key, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') {
        JOB_ERR(st, "%s = '%s' is not a non-negative integer", key, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_double(parse_state_t *st, const char *key, const char *v, double lo, double hi,
                        double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        JOB_ERR(st, "%s = '%s' is not a number in [%g, %g]", key, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* A memory size: a number with an optional K, M, G or T suffix (powers of
 * 1024; "B" or "iB" may follow), e.g. 8G, 1.5G, 512M, 2000000000. */
static int parse_bytes(parse_state_t *st, const char *key, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    double unit = 1.0;
    const char *units = "KMGT";
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (u) {
        for (const char *k = units; k <= u; k++)
            unit *= 1024.0;
        end++;
        if (toupper((unsigned char)end[0]) == 'I' && toupper((unsigned char)end[1]) == 'B')
            end += 2;
        else if (toupper((unsigned char)end[0]) == 'B')
            end++;
    }
    if (errno || end == v || *end || !(x > 0) || x * unit < 1048576.0 || x * unit > 1e16) {
        JOB_ERR(st, "%s = '%s' is not a memory size of at least 1M (a number with K, M, G or T, "
                    "e.g. 8G)", key, v);
        return -1;
    }
    *out = x * unit;
    return 0;
}

static int parse_bool(parse_state_t *st, const char *key, const char *v, int *out)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else {
        JOB_ERR(st, "%s = '%s' is not yes/no", key, v);
        return -1;
    }
    return 0;
}

static int parse_choice(parse_state_t *st, const char *key, const char *v, const char *const *ok,
                        char *out, size_t len)
{
    for (int i = 0; ok[i]; i++) {
        if (!strcmp(v, ok[i])) {
            snprintf(out, len, "%s", v);
            return 0;
        }
    }
    char list[256] = "";
    for (int i = 0; ok[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", ok[i]);
    JOB_ERR(st, "%s = '%s' is not one of: %s", key, v, list);
    return -1;
}

static void copy_str(char *dst, size_t len, const char *v) { snprintf(dst, len, "%s", v); }

/* Comma-separated list appended to items (continuation lines append too). */
static int parse_list(parse_state_t *st, const char *key, const char *v,
                      char items[][JOB_NAME_MAX], int *count)
{
    char buf[2048];
    copy_str(buf, sizeof buf, v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        trim(tok);
        if (!*tok)
            continue;
        if (*count >= JOB_MAX_LIST || strlen(tok) >= JOB_NAME_MAX) {
            JOB_ERR(st, "%s: too many entries or entry '%s' too long", key, tok);
            return -1;
        }
        for (int i = 0; i < *count; i++) {
            if (!strcmp(items[i], tok)) {
                JOB_ERR(st, "%s lists '%s' twice", key, tok);
                return -1;
            }
        }
        copy_str(items[(*count)++], JOB_NAME_MAX, tok);
    }
    return 0;
}

int job_find_model(const job_t *job, const char *name)
{
    for (int i = 0; i < job->n_models; i++)
        if (!strcmp(job->models[i].name, name))
            return i;
    return -1;
}


static int handle_job(parse_state_t *st, const char *k, const char *v)
{
    job_t *j = st->job;
    static const char *const maps[] = {"float32", "float16", "none", NULL};
    if (!strcmp(k, "name")) copy_str(j->name, sizeof j->name, v);
    else if (!strcmp(k, "seed")) return parse_u64(st, k, v, &j->seed);
    else if (!strcmp(k, "out")) copy_str(j->out, sizeof j->out, v);
    else if (!strcmp(k, "maps")) return parse_choice(st, k, v, maps, j->maps, sizeof j->maps);
    else if (!strcmp(k, "block_images")) return parse_int(st, k, v, 0, 100000, &j->block_images);
    else if (!strcmp(k, "batch")) return parse_int(st, k, v, 0, 4096, &j->batch);
    else if (!strcmp(k, "memory_per_rank")) return parse_bytes(st, k, v, &j->memory_per_rank);
    else return 1;
    return 0;
}

static int handle_data(parse_state_t *st, const char *k, const char *v)
{
    job_t *j = st->job;
    static const char *const kinds[] = {"phantom", "rsna", "siim", "maskdir", "nih", "vindr", "chexlocalize", NULL};
    static const char *const windows[] = {"voi", "full", "minmax", NULL};
    static const char *const images[] = {"test-positives", "sample", NULL};
    static const char *const boxes[] = {"paper", "exact", NULL};
    if (!strcmp(k, "kind")) return parse_choice(st, k, v, kinds, j->data_kind, sizeof j->data_kind);
    if (!strcmp(k, "dir")) copy_str(j->data_dir, sizeof j->data_dir, v);
    else if (!strcmp(k, "phantom_count")) return parse_int(st, k, v, 10, 10000000, &j->phantom_count);
    else if (!strcmp(k, "phantom_size")) return parse_int(st, k, v, 32, 4096, &j->phantom_size);
    else if (!strcmp(k, "phantom_seed")) return parse_int(st, k, v, 0, 2147483647, &j->phantom_seed);
    else if (!strcmp(k, "phantom_positive_fraction"))
        return parse_double(st, k, v, 0.0, 1.0, &j->phantom_positive_fraction);
    else if (!strcmp(k, "size")) return parse_int(st, k, v, 16, 4096, &j->size);
    else if (!strcmp(k, "images")) return parse_choice(st, k, v, images, j->images, sizeof j->images);
    else if (!strcmp(k, "sample")) return parse_int(st, k, v, 1, 10000000, &j->sample);
    else if (!strcmp(k, "max_images")) return parse_int(st, k, v, 0, 10000000, &j->max_images);
    else if (!strcmp(k, "randomization_images"))
        return parse_int(st, k, v, 0, 10000000, &j->randomization_images);
    else if (!strcmp(k, "class_info")) copy_str(j->class_info, sizeof j->class_info, v);
    else if (!strcmp(k, "source_size")) return parse_int(st, k, v, 0, 100000, &j->source_size);
    else if (!strcmp(k, "box_map")) return parse_choice(st, k, v, boxes, j->box_map, sizeof j->box_map);
    else if (!strcmp(k, "skip_bad")) return parse_bool(st, k, v, &j->skip_bad);
    else if (!strcmp(k, "dicom_window")) return parse_choice(st, k, v, windows, j->dicom_window, sizeof j->dicom_window);
    else if (!strcmp(k, "finding")) copy_str(j->finding, sizeof j->finding, v);
    else if (!strcmp(k, "min_readers")) return parse_int(st, k, v, 1, 64, &j->min_readers);
    else return 1;
    return 0;
}

static int handle_model(parse_state_t *st, job_model_t *md, const char *k, const char *v)
{
    static const char *const labels[] = {"true", "shuffled", NULL};
    static const char *const optim[] = {"adam", "sgd", NULL};
    if (!strcmp(k, "file")) copy_str(md->file, sizeof md->file, v);
    else if (!strcmp(k, "train")) return parse_bool(st, k, v, &md->train);
    else if (!strcmp(k, "arch")) copy_str(md->arch, sizeof md->arch, v);
    else if (!strcmp(k, "seed")) return parse_u64(st, k, v, &md->seed);
    else if (!strcmp(k, "epochs")) return parse_int(st, k, v, 1, 100000, &md->epochs);
    else if (!strcmp(k, "batch")) return parse_int(st, k, v, 1, 65536, &md->batch);
    else if (!strcmp(k, "lr")) return parse_double(st, k, v, 1e-9, 10.0, &md->lr);
    else if (!strcmp(k, "optimizer"))
        return parse_choice(st, k, v, optim, md->optimizer, sizeof md->optimizer);
    else if (!strcmp(k, "labels") && (!strcmp(v, labels[0]) || !strcmp(v, labels[1])))
        md->shuffled_labels = !strcmp(v, "shuffled"); /* a training recipe's labels */
    else if (!strcmp(k, "labels")) { /* the names of the model's outputs */
        if (strlen(v) >= sizeof md->output_labels) {
            JOB_ERR(st, "labels: the list is too long");
            return -1;
        }
        copy_str(md->output_labels, sizeof md->output_labels, v);
        md->labels_line = st->line;
    } else if (!strcmp(k, "target")) {
        if (strlen(v) >= sizeof md->target) {
            JOB_ERR(st, "target '%s' is too long", v);
            return -1;
        }
        copy_str(md->target, sizeof md->target, v);
        md->target_line = st->line;
    } else if (!strcmp(k, "input")) {
        if (strlen(v) >= sizeof md->input) {
            JOB_ERR(st, "input '%s' is too long", v);
            return -1;
        }
        copy_str(md->input, sizeof md->input, v);
        md->input_line = st->line;
    } else if (!strcmp(k, "size")) return parse_int(st, k, v, 16, 4096, &md->size);
    else if (!strcmp(k, "blocks")) {
        if (parse_list(st, k, v, md->blocks, &md->n_blocks) < 0)
            return -1;
        for (int i = 0; i < md->n_blocks; i++)
            if (!strchr(md->blocks[i], '=')) {
                JOB_ERR(st, "blocks entry '%s' is not BLOCK=PREFIX", md->blocks[i]);
                return -1;
            }
    } else return 1;
    return 0;
}

static int handle_experiments(parse_state_t *st, const char *k, const char *v)
{
    job_t *j = st->job;
    static const char *const refs[] = {"utility", "cascading", "untrained", "label_randomization",
                                       "repeatability", "reproducibility", NULL};
    for (int i = 0; refs[i]; i++) {
        if (!strcmp(k, refs[i])) {
            if (st->n_pending >= 64)
                return -1;
            pending_ref_t *p = &st->pending[st->n_pending++];
            copy_str(p->key, sizeof p->key, k);
            copy_str(p->value, sizeof p->value, v);
            p->line = st->line;
            return 0;
        }
    }
    if (!strcmp(k, "cascade_blocks"))
        return parse_list(st, k, v, j->cascade_blocks, &j->n_cascade_blocks);
    if (!strcmp(k, "independent")) return parse_bool(st, k, v, &j->independent);
    if (!strcmp(k, "baseline_pairs")) return parse_int(st, k, v, 0, 100000, &j->baseline_pairs);
    if (!strcmp(k, "keep_bn_stats")) return parse_bool(st, k, v, &j->keep_bn_stats);
    if (!strcmp(k, "cascade_reuse")) return parse_bool(st, k, v, &j->cascade_reuse);
    if (!strcmp(k, "cascade_order")) {
        if (strcmp(v, "top-down") && strcmp(v, "bottom-up") && strcmp(v, "both")) {
            JOB_ERR(st, "cascade_order = '%s' is not top-down, bottom-up or both", v);
            return -1;
        }
        copy_str(j->cascade_order, sizeof j->cascade_order, v);
        return 0;
    }
    return 1;
}

static int handle_methods(parse_state_t *st, const char *k, const char *v)
{
    job_t *j = st->job;
    if (!strcmp(k, "list")) {
        j->methods_line = st->line;
        return parse_list(st, k, v, j->methods, &j->n_methods);
    }
    const char *dot = strchr(k, '.');
    if (!dot || dot == k || !dot[1]) {
        JOB_ERR(st, "unknown key '%s' in [methods] (expected 'list' or METHOD.PARAM)", k);
        return -1;
    }
    if (j->n_params >= JOB_MAX_PARAMS) {
        JOB_ERR(st, "too many method parameters");
        return -1;
    }
    job_param_t *p = &j->params[j->n_params++];
    snprintf(p->method, sizeof p->method, "%.*s", (int)(dot - k), k);
    copy_str(p->key, sizeof p->key, dot + 1);
    copy_str(p->value, sizeof p->value, v);
    p->line = st->line;
    return 0;
}

static int handle_metrics(parse_state_t *st, const char *k, const char *v)
{
    job_t *j = st->job;
    if (!strcmp(k, "list")) {
        j->metrics_line = st->line;
        return parse_list(st, k, v, j->metrics, &j->n_metrics);
    }
    if (!strcmp(k, "similarity")) {
        j->similarity_line = st->line;
        return parse_list(st, k, v, j->similarity, &j->n_similarity);
    }
    if (strchr(k, '.')) /* CHECK.PARAM: kept like a method parameter */
        return handle_methods(st, k, v);
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_state_t *st = user;
    job_t *j = st->job;
    char v[2048];
    copy_str(v, sizeof v, value ? value : "");
    trim(v);
    /* strip an inline comment introduced by " ;" or " #" */
    for (char *p = v; *p; p++)
        if ((*p == ';' || *p == '#') && (p == v || isspace((unsigned char)p[-1]))) {
            *p = 0;
            trim(v);
            break;
        }
    if (!name) { /* section start (INI_CALL_HANDLER_ON_NEW_SECTION builds only) */
        return 1;
    }
    if (strcmp(section, st->section)) {
        copy_str(st->section, sizeof st->section, section);
        st->section_line = st->line;
    }
    /* duplicate keys (list keys may continue on following lines: inih repeats the name) */
    char sk[160];
    snprintf(sk, sizeof sk, "%.70s/%.80s", section, name);
    int dup = 0;
    for (int i = 0; i < st->n_seen; i++)
        if (!strcmp(st->seen[i], sk))
            dup = 1;
    int is_list = !strcmp(name, "list") || !strcmp(name, "similarity") || !strcmp(name, "blocks") ||
                  !strcmp(name, "cascade_blocks");
    if (dup && !is_list) {
        JOB_ERR(st, "'%s' is given twice in [%s]", name, section);
        return 1;
    }
    if (!dup && st->n_seen < 512)
        copy_str(st->seen[st->n_seen++], sizeof st->seen[0], sk);
    if (!*v) {
        JOB_ERR(st, "'%s' has no value", name);
        return 1;
    }
    if (strlen(v) >= 1000) {
        JOB_ERR(st, "the value of '%s' is too long", name);
        return 1;
    }

    int r;
    if (!strcmp(section, "job"))
        r = handle_job(st, name, v);
    else if (!strcmp(section, "data"))
        r = handle_data(st, name, v);
    else if (!strncmp(section, "model.", 6)) {
        const char *mname = section + 6;
        int idx = job_find_model(j, mname);
        if (idx < 0) {
            if (j->n_models >= JOB_MAX_MODELS || !*mname || strlen(mname) >= JOB_NAME_MAX ||
                strchr(mname, '/') || strchr(mname, ':') || strchr(mname, ',')) {
                JOB_ERR(st, "model section [%s]: bad name or too many models", section);
                return 1;
            }
            idx = j->n_models++;
            job_model_t *md = &j->models[idx];
            memset(md, 0, sizeof *md);
            copy_str(md->name, sizeof md->name, mname);
            md->line = st->line;
            md->seed = 1;
        }
        r = handle_model(st, &j->models[idx], name, v);
    } else if (!strcmp(section, "experiments"))
        r = handle_experiments(st, name, v);
    else if (!strcmp(section, "methods"))
        r = handle_methods(st, name, v);
    else if (!strcmp(section, "metrics"))
        r = handle_metrics(st, name, v);
    else {
        JOB_ERR(st, "unknown section [%s] (known: job, data, model.NAME, experiments, methods, "
                    "metrics)", section);
        return 1;
    }
    if (r > 0)
        JOB_ERR(st, "unknown key '%s' in [%s]", name, section);
    return 1; /* keep parsing: report every problem at once */
}

/* "A, B" -> model indices; "A:B, C:D" -> pairs. */
static int resolve_refs(parse_state_t *st)
{
    job_t *j = st->job;
    for (int i = 0; i < st->n_pending; i++) {
        pending_ref_t *p = &st->pending[i];
        st->line = p->line;
        int is_pair = !strcmp(p->key, "label_randomization") || !strcmp(p->key, "repeatability") ||
                      !strcmp(p->key, "reproducibility");
        char buf[1024];
        copy_str(buf, sizeof buf, p->value);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            trim(tok);
            if (!*tok)
                continue;
            if (is_pair) {
                char *colon = strchr(tok, ':');
                if (!colon) {
                    JOB_ERR(st, "%s entry '%s' is not MODEL_A:MODEL_B", p->key, tok);
                    continue;
                }
                *colon = 0;
                char *a = tok, *b = colon + 1;
                trim(a);
                trim(b);
                int ia = job_find_model(j, a), ib = job_find_model(j, b);
                if (ia < 0 || ib < 0) {
                    JOB_ERR(st, "%s: no [model.%s] section", p->key, ia < 0 ? a : b);
                    continue;
                }
                if (ia == ib) {
                    JOB_ERR(st, "%s: pair %s:%s compares a model with itself", p->key, a, b);
                    continue;
                }
                job_pair_t pr = {ia, ib};
                if (!strcmp(p->key, "label_randomization"))
                    j->label_pairs[j->n_label_pairs++] = pr;
                else if (!strcmp(p->key, "repeatability"))
                    j->repeat_pairs[j->n_repeat_pairs++] = pr;
                else
                    j->repro_pairs[j->n_repro_pairs++] = pr;
            } else {
                int idx = job_find_model(j, tok);
                if (idx < 0) {
                    JOB_ERR(st, "%s: no [model.%s] section", p->key, tok);
                    continue;
                }
                if (!strcmp(p->key, "utility"))
                    j->utility[j->n_utility++] = idx;
                else if (!strcmp(p->key, "cascading"))
                    j->cascading[j->n_cascading++] = idx;
                else
                    j->untrained[j->n_untrained++] = idx;
            }
        }
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void validate(parse_state_t *st, int check_files)
{
    job_t *j = st->job;
    st->line = 0;
    if (!j->data_kind[0])
        JOB_ERR(st, "[data] kind is required (phantom, rsna, siim, nih, vindr, chexlocalize or maskdir)");
    if (!j->data_dir[0])
        JOB_ERR(st, "[data] dir is required");
    if (strcmp(j->data_kind, "phantom") && j->data_dir[0] && check_files) {
        struct stat sb;
        if (stat(j->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            JOB_ERR(st, "[data] dir '%s' does not exist", j->data_dir);
    }
    if (!strcmp(j->images, "sample") && j->sample < 1)
        JOB_ERR(st, "[data] images = sample needs sample = N");
    if (j->n_models == 0)
        JOB_ERR(st, "no [model.NAME] section");
    for (int i = 0; i < j->n_models; i++) {
        job_model_t *md = &j->models[i];
        st->line = md->line;
        if (md->train) {
            if (!md->arch[0])
                JOB_ERR(st, "[model.%s] train = yes needs arch", md->name);
            if (!md->file[0]) {
                char cache[JOB_PATH_MAX];
                snprintf(cache, sizeof cache, "%.900s.models/%.60s.h5",
                         j->out[0] ? j->out : "salcheck", md->name);
                memcpy(md->file, cache, sizeof md->file);
            }
        } else {
            if (!md->file[0])
                JOB_ERR(st, "[model.%s] needs file = MODEL.h5 (or train = yes with arch)", md->name);
            else if (check_files && !file_exists(md->file))
                JOB_ERR(st, "[model.%s] file '%s' does not exist", md->name, md->file);
            if (md->shuffled_labels || md->epochs)
                JOB_ERR(st, "[model.%s] training keys are set but train = no", md->name);
        }
    }
    st->line = j->methods_line;
    if (j->n_methods == 0)
        JOB_ERR(st, "[methods] list is required");
    if (j->n_utility + j->n_cascading + j->n_untrained + j->n_label_pairs + j->n_repeat_pairs +
            j->n_repro_pairs == 0) {
        st->line = 0;
        JOB_ERR(st, "[experiments] names no experiment (utility, cascading, untrained, "
                    "label_randomization, repeatability, reproducibility)");
    }
}

int job_load(const char *path, int check_files, job_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        SC_ERROR("cannot open job file '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    job_t *j = calloc(1, sizeof *j);
    parse_state_t *st = calloc(1, sizeof *st);
    if (!j || !st) {
        fclose(f);
        free(j);
        free(st);
        return SC_ERR_NOMEM;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    j->text = calloc((size_t)size + 1, 1);
    if (!j->text || (size > 0 && fread(j->text, 1, (size_t)size, f) != (size_t)size)) {
        fclose(f);
        SC_ERROR("cannot read job file '%s'", path);
        job_destroy(j);
        free(st);
        return SC_ERR_IO;
    }
    fclose(f);
    copy_str(j->path, sizeof j->path, path);
    /* defaults */
    copy_str(j->name, sizeof j->name, "audit");
    j->seed = 1;
    copy_str(j->maps, sizeof j->maps, "float32");
    copy_str(j->images, sizeof j->images, "test-positives");
    copy_str(j->box_map, sizeof j->box_map, "paper");
    copy_str(j->dicom_window, sizeof j->dicom_window, "voi");
    j->min_readers = 1;
    j->phantom_count = 2000;
    j->phantom_size = 256;
    j->phantom_seed = 1;
    j->phantom_positive_fraction = 0.5;
    j->size = 128;
    j->baseline_pairs = 50;
    copy_str(j->cascade_order, sizeof j->cascade_order, "top-down");
    j->cascade_reuse = 1;

    st->job = j;
    st->cursor = j->text;
    int r = ini_parse_stream(reader, st, handler, st);
    if (r > 0) {
        st->line = r;
        JOB_ERR(st, "not an INI line (expected [section] or key = value)");
    } else if (r < 0) {
        SC_ERROR("%s: cannot parse", path);
        st->errors++;
    }
    resolve_refs(st);
    validate(st, check_files);
    int errors = st->errors;
    free(st);
    if (errors) {
        SC_ERROR("%s: %d problem%s in the job file; nothing was computed", path, errors,
                 errors > 1 ? "s" : "");
        job_destroy(j);
        return SC_ERR_FORMAT;
    }
    *out = j;
    return 0;
}

void job_destroy(job_t *job)
{
    if (!job)
        return;
    free(job->text);
    free(job);
}

int job_method_param(job_t *job, const char *method, const char *key, const char **value, int *line)
{
    for (int i = 0; i < job->n_params; i++) {
        job_param_t *p = &job->params[i];
        if (!strcmp(p->method, method) && !strcmp(p->key, key)) {
            p->used = 1;
            *value = p->value;
            if (line)
                *line = p->line;
            return 1;
        }
    }
    return 0;
}

int job_check_params_used(const job_t *job)
{
    int bad = 0;
    for (int i = 0; i < job->n_params; i++) {
        const job_param_t *p = &job->params[i];
        if (!p->used) {
            SC_ERROR("%s:%d: method '%s' has no parameter '%s' (nor has a check of that name; or "
                     "it is not in the [methods] or [metrics] list)", job->path, p->line, p->method,
                     p->key);
            bad++;
        }
    }
    return bad ? SC_ERR_FORMAT : 0;
}
