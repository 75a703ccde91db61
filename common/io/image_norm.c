/*
 * image_norm.c - input conventions as data: presets, specs, fitting to a
 * model's channel count, and applying them (image_norm.h).
 */
#include "io/image_norm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

image_norm_t image_norm_preset(const char *name)
{
    image_norm_t n;
    memset(&n, 0, sizeof n);
    if (!name)
        return n;
    if (!strcmp(name, "inception")) {
        n.channels = 3;
        for (int c = 0; c < 3; c++)
            n.scale[c] = 2.0, n.offset[c] = -1.0;
    } else if (!strcmp(name, "imagenet")) {
        /* torchvision's ImageNet statistics: (p - mean_c) / std_c */
        static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
        n.channels = 3;
        for (int c = 0; c < 3; c++)
            n.scale[c] = 1.0 / std[c], n.offset[c] = -mean[c] / std[c];
    } else if (!strcmp(name, "unit")) {
        n.channels = 3;
        for (int c = 0; c < 3; c++)
            n.scale[c] = 1.0, n.offset[c] = 0.0;
    } else if (!strcmp(name, "xrv")) {
        /* TorchXRayVision's normalize(img, 255): (2 * img/255 - 1) * 1024 */
        n.channels = 1;
        for (int c = 0; c < 3; c++)
            n.scale[c] = 2048.0, n.offset[c] = -1024.0;
    } else {
        return n;
    }
    snprintf(n.name, sizeof n.name, "%s", name);
    return n;
}

/* "a[,b,c]" -> values; returns the count (1 or 3) or -1. */
static int parse_values(const char *s, size_t len, double *out)
{
    char buf[IMAGE_NORM_SPEC_MAX];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    int count = 0;
    char *p = buf;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || count == 3)
            return -1;
        out[count++] = v;
        if (*end == 0)
            break;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
    return count == 1 || count == 3 ? count : -1;
}

int image_norm_parse(const char *spec, image_norm_t *norm)
{
    image_norm_t n = image_norm_preset(spec);
    if (n.channels) {
        *norm = n;
        return SC_OK;
    }
    double scale[3] = {0}, offset[3] = {0};
    int n_scale = 0, n_offset = 0, bad = !spec || !*spec || strlen(spec) >= IMAGE_NORM_SPEC_MAX;
    for (const char *p = spec; !bad && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " ;");
        if (!strncmp(p, "scale=", 6) && !n_scale)
            bad = (n_scale = parse_values(p + 6, len - 6, scale)) < 0;
        else if (!strncmp(p, "offset=", 7) && !n_offset)
            bad = (n_offset = parse_values(p + 7, len - 7, offset)) < 0;
        else
            bad = 1;
        p += len;
    }
    if (bad || !n_scale || !n_offset) {
        SC_ERROR("unknown input convention '%s' (expected inception, imagenet, unit, xrv, or "
                 "\"scale=S[,S,S] offset=O[,O,O]\" with x = scale * gray/255 + offset)",
                 spec ? spec : "");
        return SC_ERR_ARG;
    }
    memset(&n, 0, sizeof n);
    n.channels = n_scale == 3 || n_offset == 3 ? 3 : 1;
    for (int c = 0; c < 3; c++) {
        n.scale[c] = scale[n_scale == 3 ? c : 0];
        n.offset[c] = offset[n_offset == 3 ? c : 0];
    }
    for (int c = 0; c < 3; c++)
        if (n.scale[c] == 0.0) {
            SC_ERROR("input convention '%s': a scale of 0 makes every image the same", spec);
            return SC_ERR_ARG;
        }
    snprintf(n.name, sizeof n.name, "%s", spec);
    *norm = n;
    return SC_OK;
}

int image_norm_fit(image_norm_t *norm, int channels)
{
    if (channels != 1 && channels != 3) {
        SC_ERROR("the model takes %d input channels; salcheck feeds 1 or 3 (the gray radiograph "
                 "copied to each)", channels);
        return SC_ERR_ARG;
    }
    if (norm->channels == channels)
        return SC_OK;
    int alike = 1;
    for (int c = 1; c < norm->channels; c++)
        alike &= norm->scale[c] == norm->scale[0] && norm->offset[c] == norm->offset[0];
    if (!alike) {
        SC_ERROR("input convention '%s' has a different scale or offset per channel (3 channels); "
                 "the model takes %d channel%s: give a one-value convention (e.g. \"scale=S "
                 "offset=O\")", norm->name, channels, channels == 1 ? "" : "s");
        return SC_ERR_ARG;
    }
    for (int c = 1; c < 3; c++) {
        norm->scale[c] = norm->scale[0];
        norm->offset[c] = norm->offset[0];
    }
    norm->channels = channels;
    return SC_OK;
}

int image_norm_resolve(const char *spec, int channels, image_norm_t *norm)
{
    int rc = image_norm_parse(spec, norm);
    return rc < 0 ? rc : image_norm_fit(norm, channels);
}

void image_norm_values(const image_norm_t *norm, int which_offset, char *buf, unsigned long len)
{
    const double *v = which_offset ? norm->offset : norm->scale;
    size_t off = 0;
    buf[0] = 0;
    for (int c = 0; c < norm->channels && off < len; c++)
        off += (size_t)snprintf(buf + off, len - off, c ? ",%.9g" : "%.9g", v[c]);
}

void image_norm_describe(const image_norm_t *norm, char *buf, unsigned long len)
{
    char scale[96], offset[96];
    image_norm_values(norm, 0, scale, sizeof scale);
    image_norm_values(norm, 1, offset, sizeof offset);
    snprintf(buf, len, "%s: %d channel%s, x = scale * gray/255 + offset, scale %s, offset %s",
             norm->name, norm->channels, norm->channels == 1 ? "" : "s", scale, offset);
}

void image_normalize(const float *gray, int n, image_norm_t norm, float *out)
{
    /* Per gray level: multiply by scale/255 and add the offset, both rounded to float once. */
    for (int c = 0; c < norm.channels; c++) {
        float *plane = out + (size_t)c * n;
        const float mul = (float)(norm.scale[c] / 255.0), add = (float)norm.offset[c];
        for (int i = 0; i < n; i++)
            plane[i] = gray[i] * mul + add;
    }
}
