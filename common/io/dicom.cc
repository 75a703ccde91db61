/*
 * dicom.cc - DICOM reading and writing through DCMTK, behind the C interface
 * of dicom.h (module io). The only C++ file of the project: no exception or
 * C++ type crosses the interface; every error becomes a code and a reason.
 *
 * DCMTK keeps its codecs in a process-wide registry: they are registered once
 * (std::call_once) and stay registered for the life of the process. DCMTK's own
 * log output is turned off: every problem is reported by salcheck with the
 * file name.
 */
#include <dcmtk/config/osconfig.h>

#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpeg/djrploss.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>
#include <dcmtk/oflog/oflog.h>

#include <cerrno>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

extern "C" {
#include "io/dicom.h"
#include "sc.h"
}

namespace {

std::once_flag codecs_once;

void dicom_register_codecs()
{
    std::call_once(codecs_once, [] {
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
        /* Deterministic files: never a new SOP Instance UID, not even for lossy JPEG.
         * pUsePixelValues off: by default DCMTK's lossy encoder maps the image's own
         * [min, max] to [0, max - min] and, without pUseModalityRescale, writes no
         * Rescale Intercept to undo it, so every stored value came back lowered by
         * the image's minimum (5..245 read as 0..240). Off, the stored range maps
         * onto itself (8 bits: unchanged) and only the JPEG loss remains. */
        DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never, OFFalse, 0, 0, 0, OFTrue, ESS_422,
                                              OFTrue, OFFalse, 0, 0, 0.0, 0.0, 0, 0, 0, 0,
                                              OFFalse /* pUsePixelValues */);
        DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, OFTrue, 0, OFTrue, EJLSUC_never);
        DcmRLEEncoderRegistration::registerCodecs(OFFalse);
    });
}

void set_why(char *why, int why_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void set_why(char *why, int why_size, const char *fmt, ...)
{
    if (!why || why_size <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, (size_t)why_size, fmt, ap);
    va_end(ap);
}

/* What the header says about the image. */
struct dicom_header {
    int w = 0, h = 0, bits_allocated = 0, bits_stored = 0, signed_pixels = 0, monochrome1 = 0;
    E_TransferSyntax xfer = EXS_Unknown;
};

/* The transfer syntax as "name (UID)", from the meta header when DCMTK does not know it. */
void xfer_label(DcmFileFormat &ff, E_TransferSyntax xfer, char *buf, size_t size)
{
    if (xfer != EXS_Unknown) {
        DcmXfer x(xfer);
        snprintf(buf, size, "%s (%s)", x.getXferName(), x.getXferID());
        return;
    }
    OFString uid;
    if (ff.getMetaInfo() && ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, uid).good())
        snprintf(buf, size, "unknown transfer syntax %s", uid.c_str());
    else
        snprintf(buf, size, "unknown transfer syntax");
}

/*
 * Load the header (the pixel data stays on disk until accessed) and check everything that
 * needs no decoding. Returns 0 or a negative code with `why` set.
 */
int dicom_load(const char *path, DcmFileFormat &ff, dicom_header &hd, char *why,
               int why_size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_why(why, why_size, "cannot open: %s", strerror(errno));
        return SC_ERR_IO;
    }
    fclose(fp);
    dicom_register_codecs();
    /* Values longer than DCM_MaxReadLength (the pixel data) stay on disk until accessed: a
       header-only read never touches them. */
    OFCondition cond = ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                   ERM_autoDetect);
    if (cond.bad()) {
        set_why(why, why_size, "not a readable DICOM file, or truncated (DCMTK: %s)", cond.text());
        return SC_ERR_FORMAT;
    }
    DcmDataset *ds = ff.getDataset();
    hd.xfer = ds->getOriginalXfer();
    OFString photometric;
    Uint16 rows = 0, cols = 0, spp = 1, ba = 0, bs = 0, pr = 0;
    Sint32 frames = 1;
    if (!ds->tagExistsWithValue(DCM_PixelData)) {
        set_why(why, why_size, "no pixel data (element 7FE0,0010 is absent or empty)");
        return SC_ERR_FORMAT;
    }
    ds->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
    if (ds->findAndGetUint16(DCM_SamplesPerPixel, spp).bad())
        spp = 1;
    if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).bad())
        frames = 1;
    if (ds->findAndGetUint16(DCM_Rows, rows).bad() || ds->findAndGetUint16(DCM_Columns, cols).bad() ||
        rows == 0 || cols == 0) {
        set_why(why, why_size, "no valid Rows/Columns in the header");
        return SC_ERR_FORMAT;
    }
    if (spp != 1 || (photometric != "MONOCHROME1" && photometric != "MONOCHROME2")) {
        set_why(why, why_size,
                "colour DICOM (PhotometricInterpretation '%s', %u samples per pixel): salcheck reads "
                "grayscale radiographs (MONOCHROME1 or MONOCHROME2)",
                photometric.c_str(), (unsigned)spp);
        return SC_ERR_FORMAT;
    }
    if (frames != 1) {
        set_why(why, why_size, "multi-frame DICOM (%d frames): salcheck reads single-frame radiographs",
                (int)frames);
        return SC_ERR_FORMAT;
    }
    ds->findAndGetUint16(DCM_BitsAllocated, ba);
    if (ds->findAndGetUint16(DCM_BitsStored, bs).bad())
        bs = ba;
    ds->findAndGetUint16(DCM_PixelRepresentation, pr);
    if (!((ba == 8 && bs >= 1 && bs <= 8) || (ba == 16 && bs >= 1 && bs <= 16))) {
        set_why(why, why_size, "unsupported pixel layout: BitsAllocated %u, BitsStored %u (expected 8 or 16)",
                (unsigned)ba, (unsigned)bs);
        return SC_ERR_FORMAT;
    }
    char label[256];
    xfer_label(ff, hd.xfer, label, sizeof label);
    if (hd.xfer == EXS_Unknown) {
        set_why(why, why_size, "%s: DCMTK cannot decode it", label);
        return SC_ERR_UNSUPPORTED;
    }
    DcmXfer x(hd.xfer);
    if (x.isEncapsulated() && !DcmCodecList::canChangeCoding(hd.xfer, EXS_LittleEndianExplicit)) {
        set_why(why, why_size, "transfer syntax %s cannot be decoded by DCMTK%s", label,
                strstr(x.getXferName(), "2000") ? " (its free edition has no JPEG 2000 decoder)" : "");
        return SC_ERR_UNSUPPORTED;
    }
    hd.w = cols;
    hd.h = rows;
    hd.bits_allocated = ba;
    hd.bits_stored = bs;
    hd.signed_pixels = pr == 1;
    hd.monochrome1 = photometric == "MONOCHROME1";
    return SC_OK;
}

/* A LUT (Modality or VOI): descriptor (entries, first mapped value, bits) and data. */
struct dicom_lut {
    long entries = 0, first = 0;
    int bits = 0;
    const Uint16 *data = nullptr;
    unsigned long count = 0;
};

/* The first item of a LUT sequence; returns 1 when present and usable, 0 when absent, <0 malformed. */
int lut_find(DcmItem *ds, const DcmTagKey &seq_key, int signed_first, dicom_lut &lut)
{
    DcmItem *item = nullptr;
    if (ds->findAndGetSequenceItem(seq_key, item, 0).bad() || !item)
        return 0;
    Uint16 d0 = 0, d2 = 0;
    Sint32 first = 0;
    if (item->findAndGetUint16(DCM_LUTDescriptor, d0, 0).bad() ||
        item->findAndGetUint16(DCM_LUTDescriptor, d2, 2).bad())
        return -1;
    /* The second value is US or SS by the pixel representation; read as unsigned and sign below. */
    Uint16 u1 = 0;
    if (item->findAndGetUint16(DCM_LUTDescriptor, u1, 1).bad())
        return -1;
    first = signed_first && u1 > 32767 ? (Sint32)u1 - 65536 : (Sint32)u1;
    lut.entries = d0 ? d0 : 65536;
    lut.first = first;
    lut.bits = d2;
    if (item->findAndGetUint16Array(DCM_LUTData, lut.data, &lut.count).bad() || !lut.data || lut.count == 0)
        return -1;
    if ((long)lut.count < lut.entries)
        lut.entries = (long)lut.count;
    return 1;
}

inline double lut_apply(const dicom_lut &lut, double v)
{
    long i = v >= (double)lut.first ? (long)(v - (double)lut.first) : 0;
    if (i < 0)
        i = 0;
    if (i > lut.entries - 1)
        i = lut.entries - 1;
    return lut.data[i];
}

} /* namespace */

extern "C" int dicom_window_parse(const char *name, dicom_window_t *window)
{
    if (name && !strcmp(name, "voi")) *window = DICOM_WINDOW_VOI;
    else if (name && !strcmp(name, "full")) *window = DICOM_WINDOW_FULL;
    else if (name && !strcmp(name, "minmax")) *window = DICOM_WINDOW_MINMAX;
    else return SC_ERR_ARG;
    return SC_OK;
}

extern "C" const char *dicom_window_name(dicom_window_t window)
{
    switch (window) {
    case DICOM_WINDOW_VOI: return "voi";
    case DICOM_WINDOW_FULL: return "full";
    case DICOM_WINDOW_MINMAX: return "minmax";
    }
    return "?";
}

extern "C" int dicom_sniff(const unsigned char *head, int n)
{
    return n >= 132 && !memcmp(head + 128, "DICM", 4);
}

extern "C" int dicom_probe(const char *path, int *w, int *h, char *why, int why_size)
{
    try {
        DcmFileFormat ff;
        dicom_header hd;
        int rc = dicom_load(path, ff, hd, why, why_size);
        if (rc < 0)
            return rc;
        *w = hd.w;
        *h = hd.h;
        return SC_OK;
    } catch (const std::bad_alloc &) {
        set_why(why, why_size, "out of memory");
        return SC_ERR_NOMEM;
    } catch (...) {
        set_why(why, why_size, "DCMTK failed to read the file");
        return SC_ERR_FORMAT;
    }
}

extern "C" int dicom_read_gray(const char *path, dicom_window_t window, int *w, int *h, float **pixels,
                               char *why, int why_size)
{
    *pixels = nullptr;
    float *out = nullptr;
    try {
        DcmFileFormat ff;
        dicom_header hd;
        int rc = dicom_load(path, ff, hd, why, why_size);
        if (rc < 0)
            return rc;
        DcmDataset *ds = ff.getDataset();
        if (DcmXfer(hd.xfer).isEncapsulated()) {
            OFCondition cond = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
            if (cond.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
                char label[256];
                xfer_label(ff, hd.xfer, label, sizeof label);
                set_why(why, why_size, "compressed pixel data (%s) cannot be decoded (DCMTK: %s)", label,
                        cond.bad() ? cond.text() : "no decoder accepted it");
                return SC_ERR_FORMAT;
            }
        }
        size_t n = (size_t)hd.w * hd.h;
        const Uint8 *p8 = nullptr;
        const Uint16 *p16 = nullptr;
        unsigned long count = 0;
        OFCondition cond = hd.bits_allocated == 8 ? ds->findAndGetUint8Array(DCM_PixelData, p8, &count)
                                                  : ds->findAndGetUint16Array(DCM_PixelData, p16, &count);
        if (cond.bad() || (!p8 && !p16)) {
            set_why(why, why_size, "pixel data cannot be read, the file may be truncated (DCMTK: %s)",
                    cond.bad() ? cond.text() : "empty");
            return SC_ERR_FORMAT;
        }
        if (count < n) {
            set_why(why, why_size, "truncated pixel data: %lu of %zu pixels for %dx%d", count, n, hd.w, hd.h);
            return SC_ERR_FORMAT;
        }
        out = (float *)sc_calloc(n, sizeof(float));
        if (!out) {
            set_why(why, why_size, "out of memory for %dx%d pixels", hd.w, hd.h);
            return SC_ERR_NOMEM;
        }
        /* 1. stored values: BitsStored low bits, sign-extended for PixelRepresentation 1. */
        int bs = hd.bits_stored;
        unsigned mask = bs >= 16 ? 0xFFFFu : (1u << bs) - 1u;
        double s_lo = hd.signed_pixels ? -std::ldexp(1.0, bs - 1) : 0.0;
        double s_hi = hd.signed_pixels ? std::ldexp(1.0, bs - 1) - 1.0 : std::ldexp(1.0, bs) - 1.0;
        /* 2. modality */
        dicom_lut mlut, vlut;
        int has_mlut = lut_find(ds, DCM_ModalityLUTSequence, hd.signed_pixels, mlut);
        if (has_mlut < 0) {
            set_why(why, why_size, "malformed Modality LUT Sequence");
            sc_free(out);
            return SC_ERR_FORMAT;
        }
        Float64 slope = 1.0, intercept = 0.0;
        int has_rescale = ds->findAndGetFloat64(DCM_RescaleSlope, slope).good() &&
                          ds->findAndGetFloat64(DCM_RescaleIntercept, intercept).good();
        if (!has_rescale) {
            slope = 1.0;
            intercept = 0.0;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned raw = (p8 ? p8[i] : p16[i]) & mask;
            double s = raw;
            if (hd.signed_pixels && (raw >> (bs - 1)) & 1u)
                s = (double)raw - std::ldexp(1.0, bs);
            out[i] = (float)(has_mlut > 0 ? lut_apply(mlut, s) : s * slope + intercept);
        }
        double m_lo, m_hi;
        if (has_mlut > 0) {
            m_lo = 0.0;
            m_hi = std::ldexp(1.0, mlut.bits) - 1.0;
        } else {
            m_lo = s_lo * slope + intercept;
            m_hi = s_hi * slope + intercept;
            if (m_lo > m_hi) {
                double t = m_lo;
                m_lo = m_hi;
                m_hi = t;
            }
        }
        /* 3. VOI */
        int has_vlut = 0, has_window = 0;
        Float64 center = 0.0, width = 0.0;
        OFString func;
        if (window == DICOM_WINDOW_VOI) {
            has_vlut = lut_find(ds, DCM_VOILUTSequence, hd.signed_pixels && !has_mlut, vlut);
            if (has_vlut < 0) {
                set_why(why, why_size, "malformed VOI LUT Sequence");
                sc_free(out);
                return SC_ERR_FORMAT;
            }
            if (!has_vlut)
                has_window = ds->findAndGetFloat64(DCM_WindowCenter, center, 0).good() &&
                             ds->findAndGetFloat64(DCM_WindowWidth, width, 0).good();
            if (ds->findAndGetOFString(DCM_VOILUTFunction, func).bad())
                func = "LINEAR";
        }
        if (has_vlut > 0) {
            double scale = 255.0 / (std::ldexp(1.0, vlut.bits) - 1.0);
            for (size_t i = 0; i < n; i++)
                out[i] = (float)(lut_apply(vlut, out[i]) * scale);
        } else if (has_window && func == "SIGMOID") {
            if (!(width > 0)) {
                set_why(why, why_size, "WindowWidth %g must be positive", width);
                sc_free(out);
                return SC_ERR_FORMAT;
            }
            for (size_t i = 0; i < n; i++)
                out[i] = (float)(255.0 / (1.0 + std::exp(-4.0 * (out[i] - center) / width)));
        } else if (has_window) {
            int exact = func == "LINEAR_EXACT";
            if (func != "LINEAR" && !exact) {
                set_why(why, why_size, "unknown VOILUTFunction '%s'", func.c_str());
                sc_free(out);
                return SC_ERR_FORMAT;
            }
            if (!exact) { /* PS3.3 C.11.2.1.2.1 */
                if (width < 1) {
                    set_why(why, why_size, "WindowWidth %g must be at least 1 for LINEAR", width);
                    sc_free(out);
                    return SC_ERR_FORMAT;
                }
                center -= 0.5;
                width -= 1.0;
            } else if (!(width > 0)) {
                set_why(why, why_size, "WindowWidth %g must be positive", width);
                sc_free(out);
                return SC_ERR_FORMAT;
            }
            double lo = center - width / 2, hi = center + width / 2;
            for (size_t i = 0; i < n; i++) {
                double v = out[i];
                out[i] = v <= lo ? 0.0f : v > hi ? 255.0f : (float)(((v - center) / width + 0.5) * 255.0);
            }
        } else {
            if (window == DICOM_WINDOW_MINMAX) {
                m_lo = m_hi = out[0];
                for (size_t i = 1; i < n; i++) {
                    if (out[i] < m_lo) m_lo = out[i];
                    if (out[i] > m_hi) m_hi = out[i];
                }
            }
            double range = m_hi - m_lo;
            for (size_t i = 0; i < n; i++)
                out[i] = range > 0 ? (float)((out[i] - m_lo) * 255.0 / range) : 0.0f;
        }
        /* 4. MONOCHROME1: low values are bright. */
        if (hd.monochrome1)
            for (size_t i = 0; i < n; i++)
                out[i] = 255.0f - out[i];
        *w = hd.w;
        *h = hd.h;
        *pixels = out;
        return SC_OK;
    } catch (const std::bad_alloc &) {
        sc_free(out);
        set_why(why, why_size, "out of memory");
        return SC_ERR_NOMEM;
    } catch (...) {
        sc_free(out);
        set_why(why, why_size, "DCMTK failed to decode the file");
        return SC_ERR_FORMAT;
    }
}

extern "C" int dicom_syntax_parse(const char *name, dicom_syntax_t *syntax)
{
    static const char *names[] = {"explicit", "implicit", "jpeg-lossless", "jpeg-ls", "rle", "jpeg-baseline"};
    for (int k = 0; k < 6; k++)
        if (name && !strcmp(name, names[k])) {
            *syntax = (dicom_syntax_t)k;
            return SC_OK;
        }
    return SC_ERR_ARG;
}

extern "C" const char *dicom_syntax_name(dicom_syntax_t syntax)
{
    static const char *names[] = {"explicit", "implicit", "jpeg-lossless", "jpeg-ls", "rle", "jpeg-baseline"};
    return (int)syntax >= 0 && (int)syntax < 6 ? names[syntax] : "?";
}

extern "C" int dicom_write(const char *path, const dicom_write_options_t *opt, int w, int h,
                           const uint16_t *stored)
{
    int rc = SC_OK;
    try {
        dicom_register_codecs();
        int bits = opt->bits_stored;
        if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || bits < 1 || bits > 16 ||
            (opt->syntax == DICOM_SYNTAX_JPEG_BASELINE && bits > 8)) {
            SC_ERROR("%s: cannot write a %dx%d DICOM with %d stored bits in %s", path, w, h, bits,
                     dicom_syntax_name(opt->syntax));
            return SC_ERR_ARG;
        }
        int ba = bits <= 8 ? 8 : 16;
        DcmFileFormat ff;
        DcmDataset *ds = ff.getDataset();
        const char *pid = opt->patient_id ? opt->patient_id : "0";
        char uid[128];
        if (opt->sop_uid)
            snprintf(uid, sizeof uid, "%s", opt->sop_uid);
        else {
            /* A UID from the id's digits (UIDs are digits and dots, no leading zeros in a component). */
            unsigned long long hsh = 1469598103934665603ULL;
            for (const char *c = pid; *c; c++)
                hsh = (hsh ^ (unsigned char)*c) * 1099511628211ULL;
            snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.10.1149.1.%llu", hsh % 100000000000000ULL + 1);
        }
        char study_uid[160], series_uid[160];
        snprintf(study_uid, sizeof study_uid, "%s.1", uid);
        snprintf(series_uid, sizeof series_uid, "%s.2", uid);
        OFCondition c = EC_Normal;
        c = ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
        if (c.good()) c = ds->putAndInsertString(DCM_SOPInstanceUID, uid);
        if (c.good()) c = ds->putAndInsertString(DCM_StudyInstanceUID, study_uid);
        if (c.good()) c = ds->putAndInsertString(DCM_SeriesInstanceUID, series_uid);
        if (c.good()) c = ds->putAndInsertString(DCM_PatientID, pid);
        if (c.good()) c = ds->putAndInsertString(DCM_Modality, "CR");
        if (c.good()) c = ds->putAndInsertString(DCM_BodyPartExamined, "CHEST");
        if (c.good()) c = ds->putAndInsertString(DCM_ViewPosition, "PA");
        if (c.good()) c = ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
        if (c.good()) c = ds->putAndInsertString(DCM_PhotometricInterpretation,
                                                 opt->monochrome1 ? "MONOCHROME1" : "MONOCHROME2");
        if (c.good()) c = ds->putAndInsertUint16(DCM_Rows, (Uint16)h);
        if (c.good()) c = ds->putAndInsertUint16(DCM_Columns, (Uint16)w);
        if (c.good()) c = ds->putAndInsertUint16(DCM_BitsAllocated, (Uint16)ba);
        if (c.good()) c = ds->putAndInsertUint16(DCM_BitsStored, (Uint16)bits);
        if (c.good()) c = ds->putAndInsertUint16(DCM_HighBit, (Uint16)(bits - 1));
        if (c.good()) c = ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
        char num[64];
        if (c.good() && opt->has_rescale) {
            snprintf(num, sizeof num, "%.10g", opt->slope);
            c = ds->putAndInsertString(DCM_RescaleSlope, num);
            snprintf(num, sizeof num, "%.10g", opt->intercept);
            if (c.good()) c = ds->putAndInsertString(DCM_RescaleIntercept, num);
            if (c.good()) c = ds->putAndInsertString(DCM_RescaleType, "US");
        }
        if (c.good() && opt->has_window) {
            snprintf(num, sizeof num, "%.10g", opt->center);
            c = ds->putAndInsertString(DCM_WindowCenter, num);
            snprintf(num, sizeof num, "%.10g", opt->width);
            if (c.good()) c = ds->putAndInsertString(DCM_WindowWidth, num);
        }
        size_t n = (size_t)w * h;
        if (c.good() && ba == 8) {
            Uint8 *buf = new Uint8[n];
            for (size_t i = 0; i < n; i++)
                buf[i] = (Uint8)stored[i];
            c = ds->putAndInsertUint8Array(DCM_PixelData, buf, (unsigned long)n);
            delete[] buf;
        } else if (c.good()) {
            c = ds->putAndInsertUint16Array(DCM_PixelData, stored, (unsigned long)n);
        }
        if (c.bad()) {
            SC_ERROR("%s: cannot build the DICOM data set (DCMTK: %s)", path, c.text());
            return SC_ERR_FORMAT;
        }
        E_TransferSyntax xfer = EXS_LittleEndianExplicit;
        switch (opt->syntax) {
        case DICOM_SYNTAX_EXPLICIT_LE: break;
        case DICOM_SYNTAX_IMPLICIT_LE: xfer = EXS_LittleEndianImplicit; break;
        case DICOM_SYNTAX_JPEG_LOSSLESS: {
            DJ_RPLossless param(1, 0);
            xfer = EXS_JPEGProcess14SV1;
            c = ds->chooseRepresentation(xfer, &param);
            break;
        }
        case DICOM_SYNTAX_JPEG_LS: {
            DJLSRepresentationParameter param(0, OFTrue);
            xfer = EXS_JPEGLSLossless;
            c = ds->chooseRepresentation(xfer, &param);
            break;
        }
        case DICOM_SYNTAX_RLE:
            xfer = EXS_RLELossless;
            c = ds->chooseRepresentation(xfer, nullptr);
            break;
        case DICOM_SYNTAX_JPEG_BASELINE: {
            DJ_RPLossy param(95);
            xfer = EXS_JPEGProcess1;
            c = ds->chooseRepresentation(xfer, &param);
            break;
        }
        }
        if (c.bad() || !ds->canWriteXfer(xfer)) {
            SC_ERROR("%s: DCMTK cannot encode the image in %s (%s)", path, dicom_syntax_name(opt->syntax),
                     c.bad() ? c.text() : "no encoder");
            return SC_ERR_FORMAT;
        }
        c = ff.saveFile(OFFilename(path), xfer);
        if (c.bad()) {
            SC_ERROR("cannot write DICOM file '%s' (DCMTK: %s)", path, c.text());
            remove(path);
            return SC_ERR_IO;
        }
    } catch (const std::bad_alloc &) {
        SC_ERROR("%s: out of memory writing DICOM", path);
        remove(path);
        rc = SC_ERR_NOMEM;
    } catch (...) {
        SC_ERROR("%s: DCMTK failed writing DICOM", path);
        remove(path);
        rc = SC_ERR_FORMAT;
    }
    return rc;
}
