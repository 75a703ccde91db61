/*
 * dicom.h - single-frame grayscale DICOM radiographs through DCMTK (module io,
 * prefix dicom_). The implementation is C++ (dicom.cc) behind this C interface.
 *
 * DCMTK parses the file and decodes the pixel data (uncompressed implicit and
 * explicit little endian, explicit big endian, deflate, JPEG baseline and
 * extended, JPEG lossless, JPEG-LS lossless and near-lossless, RLE). DCMTK's
 * free edition has no JPEG 2000 decoder: those files, like any other
 * transfer syntax it cannot decode, are an error naming the syntax.
 *
 * Rendering to gray 0..255 floats (not rounded, like png_read_gray), in the
 * order of DICOM PS3.3 C.11 and of pydicom's apply_modality_lut/apply_voi_lut:
 *   1. stored values (BitsStored bits, two's complement when PixelRepresentation = 1);
 *   2. modality: the Modality LUT Sequence if present, else m = slope*s + intercept
 *      (RescaleSlope/RescaleIntercept, 1 and 0 when absent);
 *   3. VOI, by the window option:
 *      DICOM_WINDOW_VOI  the first VOI LUT Sequence item if present (out = 255*LUT[m]/(2^depth-1)),
 *                        else the first WindowCenter/WindowWidth with the VOILUTFunction
 *                        (LINEAR as C.11.2.1.2.1: c' = c-0.5, w' = w-1, m <= c'-w'/2 -> 0,
 *                        m > c'+w'/2 -> 255, else 255*((m-c')/w' + 0.5); LINEAR_EXACT without
 *                        the half-pixel shifts; SIGMOID 255/(1+exp(-4(m-c)/w))),
 *                        else as FULL;
 *      DICOM_WINDOW_FULL the whole range the stored bits can hold, through the modality
 *                        transform: 255*(m - m_lo)/(m_hi - m_lo) (an 8-bit image is unchanged);
 *      DICOM_WINDOW_MINMAX the image's own minimum and maximum modality values (0 when constant);
 *   4. MONOCHROME1 (low values bright) is inverted: 255 - v.
 * Colour images (SamplesPerPixel != 1 or any other PhotometricInterpretation)
 * and multi-frame images are errors.
 */
#ifndef DICOM_H
#define DICOM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dicom_window {
    DICOM_WINDOW_VOI = 0, /* the file's VOI LUT or first window; full range when it has none */
    DICOM_WINDOW_FULL,    /* the range of the stored bits */
    DICOM_WINDOW_MINMAX   /* the image's own minimum and maximum */
} dicom_window_t;

/* "voi" | "full" | "minmax"; SC_ERR_ARG (not logged) otherwise. */
int dicom_window_parse(const char *name, dicom_window_t *window);
const char *dicom_window_name(dicom_window_t window);

/* 1 when the first bytes (at least 132) hold the DICOM preamble's "DICM" at offset 128. */
int dicom_sniff(const unsigned char *head, int n);

/*
 * Header only (pixel data is not loaded): Columns and Rows, and the checks
 * that need no decoding (pixel data present, grayscale, one frame, a
 * transfer syntax DCMTK can decode). Not logged: `why` gets a one-line reason.
 * Returns SC_ERR_IO (cannot open), SC_ERR_FORMAT (not DICOM, truncated, no
 * pixel data, colour, multi-frame), SC_ERR_UNSUPPORTED (transfer syntax).
 */
int dicom_probe(const char *path, int *w, int *h, char *why, int why_size);

/*
 * Decode and render (see the header comment) into *pixels [h][w], allocated
 * with sc_calloc and owned by the caller (sc_free); NULL on failure. Not
 * logged: `why` gets the reason. Errors as dicom_probe, plus truncated pixel data.
 */
int dicom_read_gray(const char *path, dicom_window_t window, int *w, int *h, float **pixels,
                    char *why, int why_size);

/* Transfer syntaxes the writer produces (phantom data sets and tests). */
typedef enum dicom_syntax {
    DICOM_SYNTAX_EXPLICIT_LE = 0, /* 1.2.840.10008.1.2.1 */
    DICOM_SYNTAX_IMPLICIT_LE,     /* 1.2.840.10008.1.2 */
    DICOM_SYNTAX_JPEG_LOSSLESS,   /* 1.2.840.10008.1.2.4.70, process 14 selection value 1 */
    DICOM_SYNTAX_JPEG_LS,         /* 1.2.840.10008.1.2.4.80, JPEG-LS lossless */
    DICOM_SYNTAX_RLE,             /* 1.2.840.10008.1.2.5 */
    DICOM_SYNTAX_JPEG_BASELINE    /* 1.2.840.10008.1.2.4.50, lossy (8-bit images only) */
} dicom_syntax_t;

/* "explicit" | "implicit" | "jpeg-lossless" | "jpeg-ls" | "rle" | "jpeg-baseline"; SC_ERR_ARG otherwise. */
int dicom_syntax_parse(const char *name, dicom_syntax_t *syntax);
const char *dicom_syntax_name(dicom_syntax_t syntax);

typedef struct dicom_write_options {
    dicom_syntax_t syntax;
    int bits_stored;          /* 8 (BitsAllocated 8) or 9..16 (BitsAllocated 16) */
    int monochrome1;          /* 1: PhotometricInterpretation MONOCHROME1 */
    int has_rescale;          /* 1: write RescaleSlope/RescaleIntercept */
    double slope, intercept;
    int has_window;           /* 1: write WindowCenter/WindowWidth (VOILUTFunction absent: LINEAR) */
    double center, width;
    const char *patient_id;   /* PatientID and the SOP Instance UID's tail; may be NULL */
    const char *sop_uid;      /* SOPInstanceUID (NULL: generated from patient_id) */
} dicom_write_options_t;

/*
 * Write one secondary-capture DICOM file of stored values `stored` [h][w]
 * (unsigned, < 2^bits_stored), in the given transfer syntax. Logged errors;
 * the partial file is removed on failure. The file is deterministic (no time
 * stamps, UIDs from the options).
 */
int dicom_write(const char *path, const dicom_write_options_t *opt, int w, int h,
                const uint16_t *stored);

#ifdef __cplusplus
}
#endif

#endif /* DICOM_H */
