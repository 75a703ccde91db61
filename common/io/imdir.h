/*
 * imdir.h - the image files under a directory, found by id (module io, prefix imdir_).
 *
 * Data sets name an image by an id (RSNA patientId, SIIM ImageId = the SOP
 * Instance UID, NIH Image Index...) while the files sit flat
 * (stage_2_train_images/<id>.dcm, images/<id>.png) or in a tree
 * (dicom-images-train/<study>/<series>/<id>.dcm). The index walks the
 * directory tree once and maps each file's name without its extension to its
 * path. Only names ending in .png, .jpg, .jpeg, .dcm or .dicom (any case) are
 * images here; their format is still decided by content when they are read.
 * Two files with the same id (a.png and a.dcm, or one name in two folders)
 * are an error naming both.
 */
#ifndef IMDIR_H
#define IMDIR_H

typedef struct imdir imdir_t;

/* Walk `dir` (following symbolic links, at most 16 levels). Errors logged. *out owned by the caller. */
int imdir_open(const char *dir, imdir_t **out);
void imdir_destroy(imdir_t *index);

int imdir_count(const imdir_t *index);
/* Path of the image with this id (owned by the index), or NULL. */
const char *imdir_find(const imdir_t *index, const char *id);
/* Entry k in [0, count) sorted by id: its id and path (owned by the index). */
const char *imdir_id(const imdir_t *index, int k);
const char *imdir_path(const imdir_t *index, int k);

#endif /* IMDIR_H */
