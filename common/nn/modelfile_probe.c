/*
 * modelfile_probe.c - open a model file's HDF5 structures in a child process
 * first (modelfile_probe.h).
 *
 * HDF5 1.10.8 decodes object headers without checking every size: a corrupt
 * attribute message makes H5Aexists read past its buffer, and other corrupt
 * structures make HDF5 crash, allocate gigabytes or spin
 * (tests/fuzz/corpus/modelfile/hdf5-*). A model file comes from a user, so before
 * salcheck reads it, a forked child makes every HDF5 call the load makes on
 * the file: it opens it, decodes and reads every root attribute, opens /graph
 * (type, shape, storage) and opens and reads every dataset under /weights.
 * The node lines themselves are parsed by salcheck in the caller, not here,
 * and /graph's strings are read without HDF5 (modelfile_graph.c). A child that
 * dies or does not finish in time becomes an error naming the file.
 */
#define _GNU_SOURCE /* strsignal */
#include "nn/modelfile_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5attr.h"
#include "sc.h"

#define PROBE_SECONDS 300       /* a model file of a few hundred MB reads in seconds */
#define PROBE_MAX_VALUES (1LL << 30) /* floats read per dataset */
#define PROBE_OK 0
#define PROBE_REFUSED 3         /* HDF5 reported an error: the load reports it in words */

/* Under a sanitizer the child's death must not run the parent's death
 * callback (a fuzzer would save the input as its own crash); weak, so NULL
 * in an ordinary build. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static herr_t probe_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    char value[4096];
    (void)info;
    (void)data;
    h5attr_read_str(obj, name, value, sizeof value); /* numbers fail here, harmlessly */
    return 0;
}

typedef struct {
    long long file_size; /* bytes: uncompressed values cannot be more */
    int bad;             /* HDF5 refused something */
} probe_state_t;

static herr_t probe_object(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    probe_state_t *state = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t dset = H5Dopen2(root, name, H5P_DEFAULT);
    if (dset < 0) {
        state->bad = 1;
        return 0;
    }
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (type >= 0 && H5Tget_class(type) == H5T_FLOAT && n > 0 && n <= PROBE_MAX_VALUES &&
        n * (long long)sizeof(float) <= state->file_size) {
        float *values = malloc((size_t)n * sizeof *values);
        if (values && H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
            state->bad = 1;
        free(values);
    } else if (type >= 0) {
        H5Dget_offset(dset); /* /graph: what modelfile_graph_read asks */
        H5Dget_storage_size(dset);
        H5Tis_variable_str(type);
    }
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(dset);
    return 0;
}

/* The child: every HDF5 call the load makes; never returns. */
static void probe_child(const char *path, modelfile_probe_depth depth)
{
    signal(SIGALRM, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    alarm(PROBE_SECONDS);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(NULL);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
        dup2(devnull, 2);
    sc_failpoint("modelprobe", 0); /* tests: HDF5 dies on the file */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        _exit(PROBE_REFUSED);
    struct stat st;
    probe_state_t state = {.file_size = stat(path, &st) == 0 ? (long long)st.st_size : 0};
    /* a name no file has: H5Aexists decodes every attribute message */
    H5Aexists(file, "salcheck probe: no such attribute");
    hsize_t idx = 0;
    if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, probe_attr, NULL) < 0)
        state.bad = 1;
    if (depth == MODELFILE_PROBE_ALL && H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE,
                                                  probe_object, &state, H5O_INFO_BASIC) < 0)
        state.bad = 1;
    H5Fclose(file);
    _exit(state.bad ? PROBE_REFUSED : PROBE_OK);
}

int modelfile_probe(const char *path, modelfile_probe_depth depth)
{
    pid_t pid = fork();
    if (pid < 0) {
        SC_ERROR("cannot check model file '%s': fork failed (%s)", path, strerror(errno));
        return SC_ERR_IO;
    }
    if (pid == 0)
        probe_child(path, depth);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            SC_ERROR("cannot check model file '%s': %s", path, strerror(errno));
            return SC_ERR_IO;
        }
    }
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == PROBE_OK || WEXITSTATUS(status) == PROBE_REFUSED))
        return 0; /* the load itself reads it (and words any error) */
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT || sig == SIGUSR1 ||
        sig == SIGUSR2) { /* sent from outside (Ctrl-C, the batch system): not the file's fault */
        SC_ERROR("checking model file '%s' was interrupted (%s)", path, strsignal(sig));
        return SC_ERR_IO;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        SC_ERROR("model file '%s' is damaged: the HDF5 library did not finish reading its "
                 "structure in %d s; it was not used", path, PROBE_SECONDS);
    else if (WIFSIGNALED(status))
        SC_ERROR("model file '%s' is damaged: the HDF5 library crashed reading its structure "
                 "(%s); it was not used", path, strsignal(WTERMSIG(status)));
    else
        SC_ERROR("model file '%s' is damaged: the HDF5 library failed reading its structure "
                 "(exit %d); it was not used", path, WEXITSTATUS(status));
    return SC_ERR_FORMAT;
}
