/*
 * modelfile_graph.c - read a model file's /graph strings from the file's bytes
 * (modelfile_graph.h).
 *
 * /graph is a 1-D dataset of variable-length strings. HDF5 1.10.8 reads such
 * strings through the file's global heap without checking its lengths and
 * addresses: a corrupt heap makes H5Dread copy gigabytes between overlapping
 * ranges, allocate gigabytes or spin (tests/fuzz/corpus/modelfile/hdf5-*).
 * Here HDF5 only describes the dataset (type, shape, where its raw data
 * starts); the raw elements and the heap collections they point to are read with stdio and
 * every length, address and object index is checked against the file.
 *
 * On-disk layout (HDF5 file format specification, version 2.0):
 *   element of a variable-length string: length (4 bytes, little endian),
 *     global heap collection address (size of offsets), object index (4 bytes);
 *   global heap collection: "GCOL", version 1, 3 reserved bytes, collection
 *     size (size of lengths), then objects: index (2), reference count (2),
 *     4 reserved, object size (size of lengths), the data padded to 8 bytes;
 *     object index 0 is the free space and ends the list.
 */
#include "nn/modelfile_graph.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

#define GRAPH_MAX_LINES (1 << 20)       /* nodes in a graph */
#define GRAPH_MAX_LINE (1 << 16)        /* bytes in one node line */
#define GRAPH_MAX_COLLECTION (1 << 26)  /* bytes in one heap collection */

/* Little-endian unsigned integer of n bytes (n <= 8). */
static uint64_t graph_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* The heap collection last read (graphs of a few thousand lines use one or a few). */
typedef struct {
    uint64_t addr;
    unsigned char *bytes; /* owned */
    uint64_t size;
} graph_heap_t;

static int graph_heap_load(FILE *fp, uint64_t file_size, uint64_t addr, size_t size_len,
                           graph_heap_t *heap, const char *path)
{
    if (heap->bytes && heap->addr == addr)
        return 0;
    free(heap->bytes);
    heap->bytes = NULL;
    unsigned char head[16];
    size_t head_len = 8 + size_len;
    if (addr > file_size || file_size - addr < head_len || fseeko(fp, (off_t)addr, SEEK_SET) ||
        fread(head, 1, head_len, fp) != head_len || memcmp(head, "GCOL", 4) || head[4] != 1) {
        SC_ERROR("'%s': /graph points to a string heap at byte %llu that is not one (the file is "
                 "damaged)", path, (unsigned long long)addr);
        return SC_ERR_FORMAT;
    }
    uint64_t size = graph_le(head + 8, size_len);
    if (size < head_len || size > GRAPH_MAX_COLLECTION || size > file_size - addr) {
        SC_ERROR("'%s': the string heap at byte %llu declares %llu bytes, the file has %llu after "
                 "it (the file is damaged)", path, (unsigned long long)addr,
                 (unsigned long long)size, (unsigned long long)(file_size - addr));
        return SC_ERR_FORMAT;
    }
    heap->bytes = malloc((size_t)size);
    if (!heap->bytes)
        return SC_ERR_NOMEM;
    if (fseeko(fp, (off_t)addr, SEEK_SET) || fread(heap->bytes, 1, (size_t)size, fp) != size) {
        SC_ERROR("'%s': cannot read the string heap at byte %llu", path, (unsigned long long)addr);
        free(heap->bytes);
        heap->bytes = NULL;
        return SC_ERR_IO;
    }
    heap->addr = addr;
    heap->size = size;
    return 0;
}

/* Object `index` of the loaded collection: its data and size, or an error. */
static int graph_heap_object(const graph_heap_t *heap, size_t size_len, uint64_t index,
                             const unsigned char **data, uint64_t *size)
{
    uint64_t off = 8 + size_len, obj_head = 8 + size_len;
    while (heap->size - off >= obj_head) {
        const unsigned char *p = heap->bytes + off;
        uint64_t id = graph_le(p, 2), len = graph_le(p + 8, size_len);
        if (id == 0)
            break; /* free space: no more objects */
        uint64_t room = heap->size - off - obj_head;
        if (len > room)
            return SC_ERR_FORMAT;
        if (id == index) {
            *data = p + obj_head;
            *size = len;
            return 0;
        }
        uint64_t padded = (len + 7) / 8 * 8;
        if (padded > room)
            break;
        off += obj_head + padded;
    }
    return SC_ERR_FORMAT;
}

int modelfile_graph_read(hid_t file, hid_t dset, const char *path, char ***lines_out,
                         size_t *count_out)
{
    int rc = 0;
    hid_t type = -1, space = -1, fcpl = -1;
    FILE *fp = NULL;
    unsigned char *raw = NULL;
    char **lines = NULL;
    size_t count = 0;
    graph_heap_t heap = {0};
    *lines_out = NULL;
    *count_out = 0;

    type = H5Dget_type(dset);
    CHECK(type >= 0 && H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0,
          SC_ERR_FORMAT, "'%s': /graph is not a list of variable-length strings", path);
    space = H5Dget_space(dset);
    CHECK(space >= 0 && H5Sget_simple_extent_ndims(space) == 1, SC_ERR_FORMAT,
          "'%s': /graph is not a 1-D list of node lines", path);
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    CHECK(npoints >= 1 && npoints <= GRAPH_MAX_LINES, SC_ERR_FORMAT,
          "'%s': /graph has %lld node lines (1 to %d expected)", path, (long long)npoints,
          GRAPH_MAX_LINES);
    count = (size_t)npoints;

    size_t size_off = 0, size_len = 0;
    hsize_t userblock = 0;
    fcpl = H5Fget_create_plist(file);
    CHECK(fcpl >= 0 && H5Pget_sizes(fcpl, &size_off, &size_len) >= 0 &&
          H5Pget_userblock(fcpl, &userblock) >= 0, SC_ERR_FORMAT,
          "'%s': cannot read the file's address sizes", path);
    CHECK((size_off == 2 || size_off == 4 || size_off == 8) &&
          (size_len == 2 || size_len == 4 || size_len == 8), SC_ERR_FORMAT,
          "'%s': unusual address sizes (%zu, %zu bytes) in the superblock", path, size_off,
          size_len);
    /* contiguous raw data (how salcheck and h5py write it); absolute address */
    haddr_t data_addr = H5Dget_offset(dset);
    size_t elem = 4 + size_off + 4;
    CHECK(data_addr != HADDR_UNDEF, SC_ERR_FORMAT,
          "'%s': /graph is not stored contiguously (not a layout salcheck writes)", path);
    CHECK(H5Dget_storage_size(dset) == (hsize_t)count * elem, SC_ERR_FORMAT,
          "'%s': /graph stores %llu bytes for %zu lines (the file is damaged)", path,
          (unsigned long long)H5Dget_storage_size(dset), count);

    fp = fopen(path, "rb");
    CHECK(fp, SC_ERR_IO, "cannot open model file '%s'", path);
    CHECK(fseeko(fp, 0, SEEK_END) == 0, SC_ERR_IO, "cannot read '%s'", path);
    off_t end = ftello(fp);
    CHECK(end >= 0, SC_ERR_IO, "cannot read '%s'", path);
    uint64_t file_size = (uint64_t)end;
    CHECK(data_addr <= file_size && file_size - data_addr >= (uint64_t)count * elem,
          SC_ERR_FORMAT, "'%s': /graph's data lies past the end of the file (truncated?)", path);
    raw = malloc(count * elem);
    lines = calloc(count, sizeof *lines);
    CHECK_ALLOC(raw);
    CHECK_ALLOC(lines);
    CHECK(fseeko(fp, (off_t)data_addr, SEEK_SET) == 0 && fread(raw, 1, count * elem, fp) ==
          count * elem, SC_ERR_IO, "'%s': cannot read /graph", path);

    for (size_t i = 0; i < count; i++) {
        const unsigned char *e = raw + i * elem;
        uint64_t len = graph_le(e, 4), haddr = graph_le(e + 4, size_off);
        uint64_t index = graph_le(e + 4 + size_off, 4);
        CHECK(len <= GRAPH_MAX_LINE, SC_ERR_FORMAT,
              "'%s': /graph[%zu] declares %llu bytes (at most %d expected; the file is damaged)",
              path, i, (unsigned long long)len, GRAPH_MAX_LINE);
        lines[i] = calloc((size_t)len + 1, 1);
        CHECK_ALLOC(lines[i]);
        if (len == 0)
            continue;
        CHECK(haddr <= UINT64_MAX - userblock, SC_ERR_FORMAT, "'%s': /graph[%zu]: bad address",
              path, i);
        CHECK_RC(graph_heap_load(fp, file_size, haddr + userblock, size_len, &heap, path));
        const unsigned char *data = NULL;
        uint64_t have = 0;
        CHECK(graph_heap_object(&heap, size_len, index, &data, &have) == 0 && have >= len,
              SC_ERR_FORMAT, "'%s': /graph[%zu]'s string (object %llu of the heap at byte %llu) "
              "is missing or shorter than its %llu bytes (the file is damaged)", path, i,
              (unsigned long long)index, (unsigned long long)heap.addr,
              (unsigned long long)len);
        memcpy(lines[i], data, (size_t)len);
    }
    *lines_out = lines;
    *count_out = count;
    lines = NULL;
cleanup:
    if (lines)
        modelfile_graph_free(lines, count);
    free(heap.bytes);
    free(raw);
    if (fp)
        fclose(fp);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return rc;
}

void modelfile_graph_free(char **lines, size_t count)
{
    if (!lines)
        return;
    for (size_t i = 0; i < count; i++)
        free(lines[i]);
    free(lines);
}
