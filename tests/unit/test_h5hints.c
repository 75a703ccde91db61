/*
 * test_h5hints.c - the results file's parallel file system settings (io/h5hints):
 * the SALCHECK_H5_ALIGN and SALCHECK_MPIIO_HINTS parsers, the hints reaching
 * MPI_Info, and the file access property list carrying the alignment and
 * collective metadata writes; a file written with an alignment has its large
 * dataset at an aligned offset.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5hints.h"
#include "sc.h"
#include "testhelp.h"

static void test_parse_align(void)
{
    unsigned long long t, a;
    TH_EQ_INT(h5hints_parse_align(NULL, &t, &a), 0);
    TH_CHECK(t == 4u << 20 && a == 1u << 20, "defaults %llu:%llu", t, a);
    TH_EQ_INT(h5hints_parse_align("65536:4194304", &t, &a), 0);
    TH_CHECK(t == 65536 && a == 4194304, "parsed %llu:%llu", t, a);
    TH_EQ_INT(h5hints_parse_align("0", &t, &a), 0);
    TH_CHECK(t == 0 && a == 1, "0 turns alignment off (%llu:%llu)", t, a);
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_EQ_INT(h5hints_parse_align("4M", &t, &a), SC_ERR_ARG);
    TH_EQ_INT(h5hints_parse_align("1:", &t, &a), SC_ERR_ARG);
    TH_EQ_INT(h5hints_parse_align("1:0", &t, &a), SC_ERR_ARG);
    TH_EQ_INT(h5hints_parse_align(":5", &t, &a), SC_ERR_ARG);
    sc_log_set_level(SC_LOG_INFO);
}

static void test_info(void)
{
    MPI_Info info;
    TH_EQ_INT(h5hints_info(NULL, &info), 0);
    TH_CHECK(info == MPI_INFO_NULL, "no hints: MPI_INFO_NULL");
    TH_EQ_INT(h5hints_info("striping_factor=8; striping_unit=4194304;;romio_cb_write=enable", &info), 0);
    int nkeys = 0, flag = 0;
    char value[64] = "";
    MPI_Info_get_nkeys(info, &nkeys);
    TH_EQ_INT(nkeys, 3);
    MPI_Info_get(info, "striping_unit", sizeof value - 1, value, &flag);
    TH_CHECK(flag && !strcmp(value, "4194304"), "striping_unit = '%s'", value);
    MPI_Info_free(&info);
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_EQ_INT(h5hints_info("striping_factor", &info), SC_ERR_ARG);
    TH_CHECK(info == MPI_INFO_NULL, "a bad hint string gives no hints");
    TH_EQ_INT(h5hints_info("=3", &info), SC_ERR_ARG);
    sc_log_set_level(SC_LOG_INFO);
}

static void test_fapl_and_file(void)
{
    setenv("SALCHECK_H5_ALIGN", "4096:65536", 1);
    setenv("SALCHECK_MPIIO_HINTS", "romio_ds_write=disable", 1);
    hid_t fapl = h5hints_fapl(MPI_COMM_WORLD);
    TH_CHECK(fapl >= 0, "fapl created");
    if (fapl < 0)
        return;
    hsize_t threshold = 0, alignment = 0;
    H5Pget_alignment(fapl, &threshold, &alignment);
    TH_CHECK(threshold == 4096 && alignment == 65536, "alignment %llu:%llu",
             (unsigned long long)threshold, (unsigned long long)alignment);
    hbool_t coll = 0;
    H5Pget_coll_metadata_write(fapl, &coll);
    TH_CHECK(coll, "collective metadata writes");
    char path[512];
    snprintf(path, sizeof path, "%s/h5hints.h5", th_tmp_dir());
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    TH_CHECK(f >= 0, "file created with the hints");
    if (f >= 0) {
        /* a small dataset first, then one above the threshold: its data must start on 64 KiB */
        hsize_t small = 10, big = 20000;
        hid_t s1 = H5Screate_simple(1, &small, NULL), s2 = H5Screate_simple(1, &big, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
        hid_t d1 = H5Dcreate2(f, "small", H5T_NATIVE_FLOAT, s1, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        hid_t d2 = H5Dcreate2(f, "big", H5T_NATIVE_FLOAT, s2, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        haddr_t off = H5Dget_offset(d2);
        TH_CHECK(off != HADDR_UNDEF && off % 65536 == 0, "the large dataset starts at %llu",
                 (unsigned long long)off);
        H5Dclose(d1);
        H5Dclose(d2);
        H5Pclose(dcpl);
        H5Sclose(s1);
        H5Sclose(s2);
        H5Fclose(f);
    }
    H5Pclose(fapl);
    remove(path);
    unsetenv("SALCHECK_H5_ALIGN");
    unsetenv("SALCHECK_MPIIO_HINTS");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    TH_RUN(test_parse_align);
    TH_RUN(test_info);
    TH_RUN(test_fapl_and_file);
    int rc = th_report();
    MPI_Finalize();
    return rc;
}
