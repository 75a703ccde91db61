/*
 * imdir.c - index of the image files under a directory tree (see imdir.h).
 *
 * The entries are collected by a recursive readdir, then sorted by id so that
 * lookups are binary searches and duplicates are neighbours.
 */
#include "io/imdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sc.h"

#define IMDIR_MAX_DEPTH 16

typedef struct imdir_entry {
    char *id;
    char *path;
} imdir_entry_t;

struct imdir {
    int n, cap;
    imdir_entry_t *entries;
};

/* Length of the id part of an image file name (without its extension), or 0 when not an image. */
static size_t imdir_stem(const char *name)
{
    static const char *ext[] = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"};
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++) {
        size_t e = strlen(ext[k]);
        if (n > e && !strcasecmp(name + n - e, ext[k]))
            return n - e;
    }
    return 0;
}

static int imdir_add(imdir_t *index, const char *name, size_t stem, const char *path)
{
    if (index->n == index->cap) {
        int cap = index->cap ? 2 * index->cap : 1024;
        imdir_entry_t *e = realloc(index->entries, (size_t)cap * sizeof *e);
        if (!e)
            return SC_ERR_NOMEM;
        index->entries = e;
        index->cap = cap;
    }
    imdir_entry_t *e = &index->entries[index->n];
    e->id = strndup(name, stem);
    e->path = strdup(path);
    if (!e->id || !e->path) {
        free(e->id);
        free(e->path);
        return SC_ERR_NOMEM;
    }
    index->n++;
    return SC_OK;
}

static int imdir_walk(imdir_t *index, const char *dir, int depth)
{
    int rc = SC_OK;
    char *path = NULL;
    DIR *d = opendir(dir);
    CHECK(d, SC_ERR_IO, "cannot open image directory '%s': %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ".", "..", and hidden files */
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        free(path);
        path = malloc(len);
        CHECK_ALLOC(path);
        snprintf(path, len, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* a dangling link is not an image */
        if (S_ISDIR(st.st_mode)) {
            CHECK(depth < IMDIR_MAX_DEPTH, SC_ERR_FORMAT, "%s: more than %d nested folders", path,
                  IMDIR_MAX_DEPTH);
            CHECK_RC(imdir_walk(index, path, depth + 1));
            continue;
        }
        size_t stem = imdir_stem(de->d_name);
        if (stem && S_ISREG(st.st_mode)) {
            rc = imdir_add(index, de->d_name, stem, path);
            CHECK(rc == SC_OK, rc, "out of memory indexing '%s'", dir);
        }
    }
cleanup:
    free(path);
    if (d)
        closedir(d);
    return rc;
}

static int imdir_cmp(const void *a, const void *b)
{
    const imdir_entry_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : strcmp(x->path, y->path);
}

int imdir_open(const char *dir, imdir_t **out)
{
    int rc = SC_OK;
    *out = NULL;
    imdir_t *index = calloc(1, sizeof *index);
    CHECK_ALLOC(index);
    CHECK_RC(imdir_walk(index, dir, 0));
    if (index->n > 1) /* an empty folder has no entries array: qsort must not see NULL */
        qsort(index->entries, (size_t)index->n, sizeof *index->entries, imdir_cmp);
    for (int k = 1; k < index->n; k++)
        CHECK(strcmp(index->entries[k - 1].id, index->entries[k].id), SC_ERR_FORMAT,
              "two images with the id '%s': '%s' and '%s' (keep one)", index->entries[k].id,
              index->entries[k - 1].path, index->entries[k].path);
    *out = index;
    index = NULL;
cleanup:
    imdir_destroy(index);
    return rc;
}

void imdir_destroy(imdir_t *index)
{
    if (!index)
        return;
    for (int k = 0; k < index->n; k++) {
        free(index->entries[k].id);
        free(index->entries[k].path);
    }
    free(index->entries);
    free(index);
}

int imdir_count(const imdir_t *index) { return index->n; }
const char *imdir_id(const imdir_t *index, int k) { return index->entries[k].id; }
const char *imdir_path(const imdir_t *index, int k) { return index->entries[k].path; }

const char *imdir_find(const imdir_t *index, const char *id)
{
    int lo = 0, hi = index->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(index->entries[mid].id, id);
        if (!c)
            return index->entries[mid].path;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
