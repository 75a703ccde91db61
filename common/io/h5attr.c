/*
 * h5attr.c - scalar HDF5 attributes (h5attr.h).
 */
#include "io/h5attr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "sc.h"

int h5attr_write_str(hid_t obj, const char *key, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), attr = -1;
    int rc = SC_ERR_H5;
    if (type < 0 || space < 0)
        goto done;
    H5Tset_size(type, strlen(value) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    H5Tset_cset(type, H5T_CSET_UTF8);
    if (H5Aexists(obj, key) > 0)
        H5Adelete(obj, key);
    attr = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0 && H5Awrite(attr, type, value) >= 0)
        rc = 0;
done:
    if (attr >= 0)
        H5Aclose(attr);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return rc;
}

int h5attr_read_str(hid_t obj, const char *key, char *buf, size_t len)
{
    if (H5Aexists(obj, key) <= 0)
        return SC_ERR_ARG;
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT);
    if (attr < 0)
        return SC_ERR_FORMAT;
    hid_t ftype = H5Aget_type(attr);
    int rc = SC_ERR_FORMAT;
    if (ftype >= 0 && H5Tget_class(ftype) == H5T_STRING) {
        hid_t mtype = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mtype, H5Tget_cset(ftype)); /* ASCII and UTF-8 do not convert */
        if (H5Tis_variable_str(ftype) > 0) {
            H5Tset_size(mtype, H5T_VARIABLE);
            char *value = NULL;
            if (H5Aread(attr, mtype, &value) >= 0 && value) {
                snprintf(buf, len, "%s", value);
                H5free_memory(value);
                rc = 0;
            }
        } else {
            size_t size = H5Tget_size(ftype);
            char *tmp = calloc(size + 1, 1);
            H5Tset_size(mtype, size);
            /* null-padded in memory: a NULLPAD file string that fills its size (what h5py
             * writes for numpy bytes) keeps its last character; tmp has the terminator */
            H5Tset_strpad(mtype, H5T_STR_NULLPAD);
            if (tmp && H5Aread(attr, mtype, tmp) >= 0) {
                snprintf(buf, len, "%s", tmp);
                rc = 0;
            }
            free(tmp);
        }
        H5Tclose(mtype);
    }
    if (ftype >= 0)
        H5Tclose(ftype);
    H5Aclose(attr);
    return rc;
}

int h5attr_write_f64(hid_t obj, const char *key, double value)
{
    if (H5Aexists(obj, key) > 0)
        H5Adelete(obj, key);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, key, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    int ok = attr >= 0 && H5Awrite(attr, H5T_NATIVE_DOUBLE, &value) >= 0;
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    return ok ? 0 : SC_ERR_H5;
}

int h5attr_read_f64(hid_t obj, const char *key, double *value)
{
    if (H5Aexists(obj, key) <= 0)
        return SC_ERR_ARG;
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT);
    int ok = attr >= 0 && H5Aread(attr, H5T_NATIVE_DOUBLE, value) >= 0;
    if (attr >= 0)
        H5Aclose(attr);
    return ok ? 0 : SC_ERR_FORMAT;
}

int h5file_close(hid_t file, const char *path, const char *what)
{
    if (file < 0)
        return 0;
    H5E_auto2_t func;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    errno = 0;
    herr_t st = H5Fclose(file);
    int err = errno;
    H5Eset_auto2(H5E_DEFAULT, func, data);
    if (st >= 0)
        return 0;
    char why[160];
    struct statvfs fs;
    if (err && err != EINTR)
        snprintf(why, sizeof why, "%s", strerror(err));
    else if (statvfs(path, &fs) == 0 && (double)fs.f_bavail * fs.f_frsize < 1048576.0)
        snprintf(why, sizeof why, "%s (%.0f kB left on its file system)", strerror(ENOSPC),
                 (double)fs.f_bavail * fs.f_frsize / 1024.0);
    else
        snprintf(why, sizeof why, "HDF5 write error");
    SC_ERROR("'%s': closing %s failed: HDF5 could not write the file's own metadata (%s); "
             "the file is incomplete", path, what, why);
    return SC_ERR_IO;
}
