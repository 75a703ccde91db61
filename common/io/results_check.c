/*
 * results_check.c - structural checks of a results file before it is opened
 * for writing (results_check.h; module common/io, prefix results_check_).
 *
 * The superblock layouts read here are those of the HDF5 file format
 * specification, section II.A: versions 0 and 1 hold, after the signature and
 * 16 (version 0) or 20 (version 1) bytes of versions, sizes and tree
 * parameters, four addresses: base, free-space info, end of file and driver
 * information block; versions 2 and 3 hold base, superblock extension, end of
 * file and root object header after 12 bytes. Addresses are little endian,
 * "size of offsets" bytes wide, all bits set meaning undefined.
 */
#include "io/results_check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sc.h"

static uint64_t sb_addr(const unsigned char *p, int width)
{
    uint64_t v = 0;
    for (int k = width - 1; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

int results_check_superblock(const char *path, long long *file_size)
{
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int rc = 0;
    FILE *f = NULL;
    struct stat st;
    *file_size = 0;
    if (stat(path, &st) != 0 || !(f = fopen(path, "rb")))
        goto cleanup; /* missing or unreadable: H5Fopen says so */
    *file_size = (long long)st.st_size;
    /* the superblock is at byte 0 or after a user block of 512, 1024, 2048... bytes */
    unsigned char sb[64];
    long long at = -1;
    for (long long off = 0; off + (long long)sizeof sb <= *file_size; off = off ? 2 * off : 512) {
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(sb, 1, sizeof sb, f) != sizeof sb)
            break;
        if (!memcmp(sb, signature, 8)) {
            at = off;
            break;
        }
    }
    if (at < 0)
        goto cleanup; /* not HDF5 (or too short): H5Fopen says so */
    const int version = sb[8];
    if (version > 3)
        goto cleanup; /* HDF5 1.10 refuses it itself */
    const int width = version <= 1 ? sb[13] : sb[9];
    CHECK(width == 2 || width == 4 || width == 8, SC_ERR_FORMAT,
          "'%s' is not a results file salcheck can resume: its superblock declares %d-byte "
          "addresses (the file is damaged)", path, width);
    const uint64_t undef = width == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * width)) - 1;
    const unsigned char *a = sb + (version == 0 ? 24 : version == 1 ? 28 : 12);
    /* an end of file beyond the file's size is HDF5's own "truncated file" refusal */
    const uint64_t eof = sb_addr(a + 2 * width, width);
    if (version <= 1) {
        const uint64_t drvinfo = sb_addr(a + 3 * width, width);
        CHECK(drvinfo == undef, SC_ERR_FORMAT,
              "'%s' is not a results file salcheck can resume: its superblock declares a driver "
              "information block at byte %llu, which results files do not have (the file is "
              "damaged; it was left untouched)", path, (unsigned long long)drvinfo);
    } else {
        const uint64_t ext = sb_addr(a + width, width), root = sb_addr(a + 3 * width, width);
        CHECK((ext == undef || ext < eof) && root < eof, SC_ERR_FORMAT,
              "'%s' is not a results file salcheck can resume: its superblock points beyond "
              "the file's end (the file is damaged; it was left untouched)", path);
    }
cleanup:
    if (f)
        fclose(f);
    return rc;
}

int results_check_dataset(hid_t file, const char *name, int rank, const hsize_t *dims,
                          size_t elem_size, int is_float, long long file_size, const char *path,
                          hid_t *out)
{
    int rc = 0;
    hid_t d = -1, s = -1, t = -1, dcpl = -1;
    hsize_t have[8] = {0};
    *out = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(d >= 0, SC_ERR_FORMAT, "'%s' has no /%s (the file is damaged or was made by another "
          "version of salcheck)", path, name);
    s = H5Dget_space(d);
    t = H5Dget_type(d);
    dcpl = H5Dget_create_plist(d);
    CHECK(s >= 0 && t >= 0 && dcpl >= 0, SC_ERR_FORMAT, "'%s': /%s is unreadable (the file is "
          "damaged)", path, name);
    int n = H5Sget_simple_extent_ndims(s);
    int same = n == rank && rank <= 8 && H5Sget_simple_extent_dims(s, have, NULL) == n;
    hsize_t elems = 1;
    for (int k = 0; same && k < rank; k++) {
        same = have[k] == dims[k];
        elems *= dims[k];
    }
    CHECK(same, SC_ERR_FORMAT, "'%s': /%s does not have the shape this job plans (the file was "
          "made by another job or is damaged: use a new --out, or the job that made it)",
          path, name);
    H5T_class_t cls = H5Tget_class(t);
    CHECK(H5Tget_size(t) == elem_size && cls == (is_float ? H5T_FLOAT : H5T_INTEGER),
          SC_ERR_FORMAT, "'%s': /%s does not hold %zu-byte %s (the file is damaged or was made "
          "by another version of salcheck)", path, name, elem_size, is_float ? "floats" : "integers");
    if (elems > 0) {
        /* allocated, so that opening it for writing allocates nothing; inside the file, so
         * that no write of a cell reaches beyond it */
        H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
        haddr_t offset = H5Dget_offset(d);
        hsize_t bytes = H5Dget_storage_size(d);
        CHECK(H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Dget_space_status(d, &status) >= 0 &&
                  status == H5D_SPACE_STATUS_ALLOCATED && offset != HADDR_UNDEF &&
                  bytes == elems * elem_size && offset <= (haddr_t)file_size &&
                  bytes <= (hsize_t)file_size - offset,
              SC_ERR_FORMAT, "'%s': the storage of /%s is not the contiguous, allocated block "
              "inside the file that salcheck writes (the file is damaged; it was left untouched)",
              path, name);
    }
    *out = d;
    d = -1;
cleanup:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return rc;
}
