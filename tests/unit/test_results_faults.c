/*
 * test_results_faults.c - the results file (io/results.c) when its file is
 * damaged or its writes fail: results_open refuses a damaged file without
 * writing into it (a superblock declaring a driver information block far
 * outside the file, the input fuzz_results found; a dataset whose storage is
 * not allocated; a dataset of another shape), a cell write that fails gives
 * one clear error, the file then closes, and a close that fails is reported
 * naming the file. After each, no HDF5 identifier is left open. The same for
 * h5file_close (io/h5attr.h), which closes the other files salcheck writes
 * (model files, checkpoints, the summary, explain's maps).
 */
#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5attr.h"
#include "io/results.h"
#include "sc.h"
#include "testhelp.h"

enum { T_N = 3, T_V = 2, T_M = 2, T_K = 1, T_P = 1, T_HW = 16, T_C = 2 };

static results_layout_t t_layout(void)
{
    static const char *ids[T_N] = {"a", "b", "c"}, *vnames[T_V] = {"M", "M/logits"};
    static const char *vkinds[T_V] = {"trained", "cascading"}, *vbases[T_V] = {"M", "M"};
    static const char *vreinit[T_V] = {"", "logits"}, *methods[T_M] = {"grad", "sg"};
    static const char *metrics[T_K] = {"auprc"}, *sims[1] = {"ssim"};
    static const int8_t labels[T_N] = {1, 0, 1}, pexp[T_P] = {0};
    static const int32_t vstates[T_V] = {0, 1}, vnimg[T_V] = {3, 3}, pairs[4] = {0, 0, 1, 0};
    static uint8_t gt[T_N * T_HW * T_HW];
    results_layout_t L = {
        .n_images = T_N, .h = T_HW, .w = T_HW, .classes = T_C, .image_ids = ids, .labels = labels,
        .gt = gt, .n_variants = T_V, .variant_names = vnames, .variant_kinds = vkinds,
        .variant_bases = vbases, .variant_reinit = vreinit, .variant_states = vstates,
        .variant_n_images = vnimg, .n_methods = T_M, .method_names = methods,
        .method_params = "", .n_metrics = T_K, .metric_names = metrics, .n_sims = 1,
        .sim_names = sims, .n_pairs = T_P, .pair_index = pairs, .pair_experiment = pexp,
        .maps = RESULTS_MAPS_F32, .job_text = "", .job_path = "t.ini", .seed = 7, .ranks = 1};
    return L;
}

/* A results file of t_layout with cell [0, 0] done; path in buf. */
static int t_make(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", th_tmp_dir(), name);
    results_layout_t L = t_layout();
    results_t *r = NULL;
    float maps[T_M * T_HW * T_HW] = {0.5f};
    double metrics[T_K * T_M] = {0.25, 0.75};
    float logits[T_C] = {1.0f, -1.0f};
    if (results_create(buf, MPI_COMM_SELF, &L, &r) < 0 ||
        results_write_cell(r, 0, 0, maps, metrics, logits, 0, 1.0, 0) < 0 ||
        results_mark_done(r, 0, 0) < 0)
        return -1;
    return results_close(r);
}

/* The whole file (caller frees), its size in *len. */
static unsigned char *t_slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)*len)) && fread(buf, 1, (size_t)*len, f) != (size_t)*len) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

/* Standard error goes to a file between t_capture_begin and t_capture_end,
 * which returns what was written (static buffer). */
static int t_saved_fd = -1;
static char t_capture_path[512];
static void t_capture_begin(void)
{
    fflush(stderr);
    snprintf(t_capture_path, sizeof t_capture_path, "%s/results_faults.err", th_tmp_dir());
    int fd = open(t_capture_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    t_saved_fd = dup(2);
    dup2(fd, 2);
    close(fd);
}
static const char *t_capture_end(void)
{
    static char text[8192];
    fflush(stderr);
    dup2(t_saved_fd, 2);
    close(t_saved_fd);
    FILE *f = fopen(t_capture_path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    return text;
}

static ssize_t t_open_ids(void) { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

/* results_open on path must fail with code, printing `expect`, leaving no
 * identifier open and the file's bytes as they were. */
static void t_refused(const char *path, int code, const char *expect)
{
    long len0 = 0, len1 = 0;
    unsigned char *before = t_slurp(path, &len0);
    results_layout_t L = t_layout();
    results_t *r = NULL;
    t_capture_begin();
    int rc = results_open(path, MPI_COMM_SELF, &L, &r);
    const char *err = t_capture_end();
    TH_EQ_INT(rc, code);
    TH_CHECK(r == NULL, "no handle on a refused file");
    TH_CHECK(strstr(err, path) && strstr(err, expect), "message '%s' names the file and says '%s'",
             err, expect);
    TH_EQ_INT(t_open_ids(), 0);
    unsigned char *after = t_slurp(path, &len1);
    TH_CHECK(before && after && len0 == len1 && !memcmp(before, after, (size_t)len0),
             "the refused file is left byte for byte as it was (%ld, %ld bytes)", len0, len1);
    free(before);
    free(after);
    if (r)
        results_close(r);
}

/* The input fuzz_results found: the superblock's driver information block
 * address (bytes 48 to 55 of a version 0 superblock) set exabytes into the
 * file. HDF5 1.10 opens such a file for writing, then fails to write that
 * block when closing it ("File too large") and keeps a file identifier it
 * cannot release (the process crashed in MPI_Finalize). */
static void test_driver_info_block_refused(void)
{
    char path[512];
    TH_EQ_INT(t_make("faults_drvinfo.h5", path, sizeof path), 0);
    static const unsigned char addr[8] = {0xfe, 0x0b, 0, 0, 0, 0, 0, 0x03};
    FILE *f = fopen(path, "r+b");
    unsigned char version = 0xff;
    TH_CHECK(f && fseek(f, 8, SEEK_SET) == 0 && fread(&version, 1, 1, f) == 1 && version == 0,
             "salcheck writes a version 0 superblock (version %d)", version);
    TH_CHECK(f && fseek(f, 48, SEEK_SET) == 0 && fwrite(addr, 1, 8, f) == 8, "patch");
    if (f)
        fclose(f);
    t_refused(path, SC_ERR_FORMAT, "declares a driver information block at byte 216172782113786878");
    /* the untouched file still opens as HDF5 read-only */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    TH_CHECK(h >= 0, "the refused file still opens read-only");
    if (h >= 0)
        TH_CHECK(H5Fclose(h) >= 0, "and closes");
}

/* Replace dataset `name` of the results file by one of `dims` with late
 * allocation (never written: its storage stays unallocated). */
static int t_replace(const char *path, const char *name, int rank, const hsize_t *dims)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t s = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    int ok = f >= 0 && H5Ldelete(f, name, H5P_DEFAULT) >= 0;
    hid_t d = ok ? H5Dcreate2(f, name, H5T_STD_U8LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    ok = d >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* A dataset whose storage is not allocated: parallel HDF5 would allocate it
 * (a write) when opening it for writing. A dataset of another shape. */
static void test_dataset_storage_and_shape_refused(void)
{
    char path[512];
    TH_EQ_INT(t_make("faults_unalloc.h5", path, sizeof path), 0);
    TH_EQ_INT(t_replace(path, "status/done", 2, (hsize_t[]){T_V, T_N}), 0);
    t_refused(path, SC_ERR_FORMAT, "the storage of /status/done is not the contiguous, allocated block");
    TH_EQ_INT(t_make("faults_shape.h5", path, sizeof path), 0);
    TH_EQ_INT(t_replace(path, "status/done", 2, (hsize_t[]){T_V, T_N + 1}), 0);
    t_refused(path, SC_ERR_FORMAT, "/status/done does not have the shape this job plans");
    /* and a good file opens, and closes */
    TH_EQ_INT(t_make("faults_good.h5", path, sizeof path), 0);
    results_layout_t L = t_layout();
    results_t *r = NULL;
    TH_EQ_INT(results_open(path, MPI_COMM_SELF, &L, &r), 0);
    uint8_t done[T_V * T_N] = {0};
    TH_EQ_INT(results_read_done(r, done, NULL), 0);
    TH_CHECK(done[0] == 1 && done[1] == 0, "done flags read back (%d %d)", done[0], done[1]);
    TH_EQ_INT(results_close(r), 0);
    TH_EQ_INT(t_open_ids(), 0);
}

/* Offset of the raw data of `name` in the file at path. */
static long long t_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT);
    long long off = (long long)H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    return off;
}

/* Writes past a file size limit fail with EFBIG ("File too large") wherever
 * they land (setrlimit RLIMIT_FSIZE), as on a full quota: the cell write
 * fails with one message naming the file, the cell and the reason; the file
 * then closes (nothing of HDF5's own is left to write) and nothing is open. */
static void test_cell_write_fails(void)
{
    char path[512];
    TH_EQ_INT(t_make("faults_write.h5", path, sizeof path), 0);
    long long maps_at = t_offset(path, "maps/grad");
    TH_CHECK(maps_at > 0, "offset of /maps/grad");
    results_layout_t L = t_layout();
    results_t *r = NULL;
    TH_EQ_INT(results_open(path, MPI_COMM_SELF, &L, &r), 0);
    if (!r)
        return;
    float maps[T_M * T_HW * T_HW] = {0};
    double metrics[T_K * T_M] = {0.5, 0.5};
    float logits[T_C] = {0.0f, 1.0f};
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    /* cell [0, 1] of /maps/grad starts one map after the dataset's start */
    lim.rlim_cur = (rlim_t)(maps_at + T_HW * T_HW * 4);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    t_capture_begin();
    setrlimit(RLIMIT_FSIZE, &lim);
    int wrc = results_write_cell(r, 0, 1, maps, metrics, logits, 1, 1.0, 0);
    int crc = results_close(r);
    setrlimit(RLIMIT_FSIZE, &old);
    const char *err = t_capture_end();
    signal(SIGXFSZ, old_sig);
    TH_EQ_INT(wrc, SC_ERR_IO);
    char expect[700];
    snprintf(expect, sizeof expect, "results file '%s': cannot write the maps of cell [0, 1]: "
             "File too large", path);
    TH_CHECK(strstr(err, expect) != NULL, "message '%s', expected '%s'", err, expect);
    TH_EQ_INT(crc, 0);
    TH_EQ_INT(t_open_ids(), 0);
    /* the file is intact: it opens again, cell [0, 0] done, [0, 1] not */
    r = NULL;
    TH_EQ_INT(results_open(path, MPI_COMM_SELF, &L, &r), 0);
    uint8_t done[T_V * T_N] = {0};
    if (r)
        TH_EQ_INT(results_read_done(r, done, NULL), 0);
    TH_CHECK(done[0] == 1 && done[1] == 0, "done flags after the failed write (%d %d)", done[0], done[1]);
    TH_EQ_INT(results_close(r), 0);
    TH_EQ_INT(t_open_ids(), 0);
}

/* No file may grow any more (the limit a full quota sets): SIGXFSZ ignored so
 * that the write fails with EFBIG instead of killing the process. */
static void t_forbid_writes(void)
{
    struct rlimit lim;
    getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = 0;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
}

/* Runs body(path) in a child whose standard error goes through a pipe (a file
 * would meet the child's size limit too) into err; the child's exit status.
 * HDF5 1.10 keeps the identifier of a file whose close failed and crashes
 * releasing it at MPI_Finalize, so the closes that fail run in a child that
 * leaves with _exit(body's result). */
static int t_in_child(int (*body)(const char *), const char *path, char *err, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        _exit(body(path));
    }
    close(fds[1]);
    size_t got = 0;
    for (ssize_t n; got < len - 1 && (n = read(fds[0], err + got, len - 1 - got)) > 0;)
        got += (size_t)n;
    err[got] = 0;
    close(fds[0]);
    int status = -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int t_results_close_unwritable(const char *path)
{
    results_layout_t L = t_layout();
    results_t *r = NULL;
    if (results_open(path, MPI_COMM_SELF, &L, &r) < 0)
        return 2;
    t_forbid_writes();
    return results_close(r) == SC_ERR_IO ? 0 : 3;
}

/* A close that fails (no write allowed at all: HDF5 cannot write the
 * superblock) is an error naming the file and the reason. */
static void test_close_fails_reported(void)
{
    char path[512];
    static char err[8192];
    TH_EQ_INT(t_make("faults_close.h5", path, sizeof path), 0);
    int st = t_in_child(t_results_close_unwritable, path, err, sizeof err);
    TH_CHECK(st == 0, "the child's results_close returned SC_ERR_IO (status %d)", st);
    char expect[700];
    snprintf(expect, sizeof expect, "results file '%s': closing it failed: HDF5 could not write "
             "the file's own metadata (File too large)", path);
    TH_CHECK(strstr(err, expect) != NULL, "message '%s', expected '%s'", err, expect);
}

static int t_h5file_close_unwritable(const char *path)
{
    hid_t g = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0 || h5attr_write_str(g, "format", "y") != 0)
        return 2;
    t_forbid_writes();
    return h5file_close(g, path, "the test file") == SC_ERR_IO ? 0 : 3;
}

/* h5file_close on a written file whose close cannot write (the same limit, in a
 * child for the same reason): SC_ERR_IO and one message naming the file and
 * what it held. A clean close returns 0 and leaves nothing open. */
static void test_h5file_close(void)
{
    char path[512];
    static char err[8192];
    snprintf(path, sizeof path, "%s/faults_h5file.h5", th_tmp_dir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    TH_CHECK(f >= 0 && h5attr_write_str(f, "format", "x") == 0, "create");
    TH_EQ_INT(h5file_close(f, path, "the test file"), 0);
    TH_EQ_INT(t_open_ids(), 0);
    int st = t_in_child(t_h5file_close_unwritable, path, err, sizeof err);
    TH_CHECK(st == 0, "the child's h5file_close returned SC_ERR_IO (status %d)", st);
    char expect[700];
    snprintf(expect, sizeof expect, "'%s': closing the test file failed: HDF5 could not write "
             "the file's own metadata (File too large)", path);
    TH_CHECK(strstr(err, expect) != NULL, "message '%s', expected '%s'", err, expect);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    TH_RUN(test_driver_info_block_refused);
    TH_RUN(test_dataset_storage_and_shape_refused);
    TH_RUN(test_cell_write_fails);
    TH_RUN(test_close_fails_reported);
    TH_RUN(test_h5file_close);
    int rc = th_report();
    MPI_Finalize();
    return rc;
}
