/*
 * imread.h - read any supported image file as gray floats, the format chosen
 * by content (module io, prefix imread_).
 *
 * The first bytes decide: the PNG signature, a JPEG start-of-image marker, or
 * the DICOM preamble ("DICM" at byte 128). A file without any of them is read
 * as DICOM only when its name ends in .dcm or .dicom (a data set without the
 * Part 10 preamble); anything else is an error that says what was expected.
 * Each format has its own file behind this one: png.c, jpeg.c, dicom.cc. All
 * return 0..255 floats [h][w] (see each header for how its values map there).
 */
#ifndef IMREAD_H
#define IMREAD_H

#include "io/dicom.h"

typedef enum imread_format {
    IMREAD_FORMAT_UNKNOWN = 0,
    IMREAD_FORMAT_PNG,
    IMREAD_FORMAT_JPEG,
    IMREAD_FORMAT_DICOM
} imread_format_t;

/* How formats with a choice are rendered (DICOM's VOI window). */
typedef struct imread_options {
    dicom_window_t dicom_window;
} imread_options_t;

void imread_options_default(imread_options_t *opt);
const char *imread_format_name(imread_format_t format);

/* The format of a file by its first bytes (and the .dcm rule); not logged. SC_ERR_IO / SC_ERR_FORMAT. */
int imread_detect(const char *path, imread_format_t *format, char *why, int why_size);

/* Width and height from the header, with the checks each format can do without decoding. Not logged. */
int imread_probe(const char *path, int *w, int *h, char *why, int why_size);

/*
 * Decode into *pixels [h][w] (sc_calloc, owned by the caller; NULL on failure).
 * opt NULL: defaults. Not logged: `why` gets a one-line reason.
 */
int imread_gray_quiet(const char *path, const imread_options_t *opt, int *w, int *h, float **pixels,
                      char *why, int why_size);

/* As imread_gray_quiet, but errors are logged once as "image 'PATH': reason". */
int imread_gray(const char *path, const imread_options_t *opt, int *w, int *h, float **pixels);

#endif /* IMREAD_H */
