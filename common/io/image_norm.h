/*
 * image_norm.h - input conventions: how a gray radiograph becomes the network
 * input (module io, prefix image_norm_).
 *
 * A convention is data, not a fixed list: a channel count (1 or 3; the gray
 * image is copied to every channel) and a scale and offset per channel. With
 * p = gray / 255 in [0, 1], channel c of the input is
 *
 *     x_c = scale_c * p + offset_c
 *
 * Presets (docs/methods.md section 2; the spec string is the name):
 *   inception  3 channels, scale 2, offset -1: [-1, 1] (the paper's InceptionV3)
 *   imagenet   3 channels, scale 1/std_c, offset -mean_c/std_c with torchvision's
 *              mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) (DenseNet, ResNet)
 *   unit       3 channels, scale 1, offset 0: [0, 1]
 *   xrv        1 channel, scale 2048, offset -1024: [-1024, 1024] (TorchXRayVision)
 * Any other convention is written "scale=S[,S,S] offset=O[,O,O]" (one value: every
 * channel alike and 1 channel; three: per channel, 3 channels). That text is
 * what model files store (attribute normalize) and job files give (key input).
 *
 * A convention whose channels are all alike (inception, unit, xrv, one-value
 * specs) fits a model of either channel count; imagenet and other per-channel
 * specs need a 3-channel model (image_norm_fit).
 */
#ifndef IMAGE_NORM_H
#define IMAGE_NORM_H

#define IMAGE_NORM_SPEC_MAX 96

typedef struct image_norm {
    char name[IMAGE_NORM_SPEC_MAX]; /* the spec: a preset's name or "scale=... offset=..." */
    int channels;                   /* 1 or 3 */
    double scale[3], offset[3];     /* x_c = scale_c * gray/255 + offset_c */
} image_norm_t;

/* The preset called name (inception, imagenet, unit, xrv); channels 0 when unknown. */
image_norm_t image_norm_preset(const char *name);
#define IMAGE_NORM_INCEPTION image_norm_preset("inception")
#define IMAGE_NORM_IMAGENET image_norm_preset("imagenet")
#define IMAGE_NORM_UNIT image_norm_preset("unit")
#define IMAGE_NORM_XRV image_norm_preset("xrv")

/* Parse a spec (a preset name or "scale=... offset=..."); SC_ERR_ARG (logged,
 * naming the spec) for anything else. */
int image_norm_parse(const char *spec, image_norm_t *norm);
/* Fit norm to a model taking `channels` input channels (1 or 3): conventions
 * whose channels are alike take the model's count; a per-channel one needs
 * channels == 3. SC_ERR_ARG (logged) when it cannot fit. */
int image_norm_fit(image_norm_t *norm, int channels);
/* image_norm_parse then image_norm_fit. */
int image_norm_resolve(const char *spec, int channels, image_norm_t *norm);
/* "xrv: 1 channel, x = 2048 * gray/255 - 1024" for people (info, explain). */
void image_norm_describe(const image_norm_t *norm, char *buf, unsigned long len);
/* Per-channel values as "a,b,c" (norm->channels of them), %.9g: model-file attributes. */
void image_norm_values(const image_norm_t *norm, int which_offset, char *buf, unsigned long len);

/*
 * Gray values 0..255 (n pixels) -> the input tensor out [norm->channels][n]
 * (planar, the caller's buffer). The gray image is copied to every channel.
 */
void image_normalize(const float *gray, int n, image_norm_t norm, float *out);
/* The older name, from when every convention had 3 channels. */
#define image_normalize_3ch image_normalize

#endif /* IMAGE_NORM_H */
