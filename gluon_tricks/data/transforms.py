"""The paper's preprocessing (section 2.1) and GluonCV's published one, as small functions.

Two training flavours share the crop-flip-colour-normalise pipeline and differ where the paper
and GluonCV's published runs differ. GluonCV's ImageNet numbers were all trained through
`mx.io.ImageRecordIter` (`--use-rec`), so "gluoncv" follows what that C++ iterator does
(src/io/image_aug_default.cc, measured by scripts/augmentation_probe.py), which is not always
what its parameters say:

=================  ==================================  ========================================
step               "paper" (He et al. 2019, sec. 2.1)  "gluoncv" (ImageRecordIter, as it runs)
=================  ==================================  ========================================
crop aspect w/h    uniform in [3/4, 4/3]               uniform in [3/4, 4/3], then w and h
                                                       swapped with p = 1/2 (so also 1/U)
no crop fits       whole image, aspect clamped         a size x size centre crop at the source's
(10 attempts)                                          own scale (no resize)
source exactly     ordinary resize                     the resize writes over its own source
size x size                                            (OpenCV in place): distorted, smaller crops
colour jitter      hue, saturation, brightness         brightness, contrast, saturation in a
                   (fixed order), never clipped        random order, each rounded and saturated
                                                       to uint8; grey = 0.299 B + 0.587 G +
                                                       0.114 R (RGB weights on BGR pixels)
PCA lighting       added in float, never clipped       added per pixel, truncated to an integer,
                                                       saturated to [0, 255]
JPEG decode        at a reduced DCT scale when the     at full size (bilinear resize from full
                   crop is shrunk >= 2x anyway         resolution, as MXNet), except a JPEG
                                                       above images.HUGE_PIXELS: the same box,
                                                       from a decode at the largest reduced
                                                       scale that leaves it >= size x size
=================  ==================================  ========================================

Shared: crop area ~ U[8%, 100%] (up to 10 attempts), bilinear resize to the input size, flip
with p = 0.5, PCA lighting noise ~ N(0, 0.1) with ImageNet's eigenvalues/vectors, then the
mean/std normalisation. In the paper flavour every colour step is linear in the pixel values, so
the whole colour chain (BGR->RGB, jitter, lighting, normalisation) is folded into one 3x4 affine
matrix and applied in a single pass; like MXNet's Python augmenters it is not clipped between
steps. The gluoncv flavour runs its steps on uint8 pixels, as the C++ augmenter does.
"""
import math

import cv2
import numpy as np

from gluon_tricks.data import images

FLAVOURS = ("paper", "gluoncv")
MEAN_RGB = (123.68, 116.779, 103.939)
STD_RGB = (58.393, 57.12, 57.375)
# ImageNet's RGB covariance (AlexNet lighting; the values MXNet's CreateAugmenter uses).
PCA_EIGVAL = (55.46, 4.794, 1.148)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))
CROP_AREA = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
JITTER = 0.4          # colour coefficients ~ U[1 - 0.4, 1 + 0.4]
LIGHTING_STD = 0.1    # PCA coefficient ~ N(0, 0.1)
CROP_RATIO_DEFAULT = 0.875  # validation: resize the shorter side to input_size / 0.875
CROP_ATTEMPTS = 10

LUMA = np.array([0.299, 0.587, 0.114])  # the grey MXNet's contrast/saturation jitter use (RGB)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.321],
                        [0.211, -0.523, 0.311]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_BGR_TO_RGB = np.eye(3)[::-1]
_EYE = np.eye(3)
_GREY_ROWS = np.outer(np.ones(3), LUMA)
_HUE_BASIS = tuple(_YIQ_TO_RGB @ r @ _RGB_TO_YIQ for r in (
    np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 1.0]),
    np.array([[0, 0, 0], [0, 0, -1.0], [0, 1, 0]])))
_LIGHTING = np.asarray(PCA_EIGVEC) * np.asarray(PCA_EIGVAL)
_NORM_SCALE = 1.0 / np.asarray(STD_RGB)
_NORM_SHIFT = -np.asarray(MEAN_RGB) / np.asarray(STD_RGB)


def check_flavour(flavour):
    """`flavour` if it is one of FLAVOURS, else a UserError."""
    if flavour not in FLAVOURS:
        from gluon_tricks.errors import UserError
        raise UserError("unknown augmentation flavour %r; valid: %s"
                        % (flavour, ", ".join(FLAVOURS)))
    return flavour


# -- random crop ------------------------------------------------------------------------------

def sample_crop(rng, width, height, area=CROP_AREA, ratio=CROP_RATIO, attempts=CROP_ATTEMPTS):
    """(x0, y0, w, h) of the paper's random crop: area fraction ~ U[area], aspect ratio w/h ~
    U[ratio]; up to `attempts` draws, the first that fits wins. If none fits: the whole image,
    centred, with its aspect ratio clamped into `ratio` (torchvision's fallback)."""
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * width * height
        aspect = rng.uniform(ratio[0], ratio[1])
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
            return x0, y0, w, h
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w = min(width, int(round(height * aspect)))
    h = min(height, int(round(width / aspect)))
    return (width - w) // 2, (height - h) // 2, w, h


def sample_recorditer_crop(rng, width, height, area=CROP_AREA, ratio=CROP_RATIO,
                           attempts=CROP_ATTEMPTS):
    """(x0, y0, w, h) of ImageRecordIter's random_resized_crop, or None if no attempt fits: area
    fraction ~ U[area], aspect ~ U[ratio] (not log-uniform), w = round(sqrt(A r)), h = round(
    sqrt(A / r)), then w and h swapped with p = 1/2, so that w/h is r or 1/r."""
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * width * height
        aspect = rng.uniform(ratio[0], ratio[1])
        h = int(math.floor(math.sqrt(target / aspect) + 0.5))  # std::round: halves away from 0
        w = int(math.floor(math.sqrt(target * aspect) + 0.5))
        if rng.random() > 0.5:
            w, h = h, w
        if 0 < w <= width and 0 < h <= height:
            y0 = int(rng.integers(0, height - h + 1))
            x0 = int(rng.integers(0, width - w + 1))
            return x0, y0, w, h
    return None


def sample_flavour_crop(rng, width, height, flavour):
    """The flavour's crop box: the paper's (uniform aspect ratio, fallback to the whole image), or
    ImageRecordIter's (gluoncv; None when nothing fits, see recorditer_crop_resize)."""
    if flavour == "gluoncv":
        return sample_recorditer_crop(rng, width, height)
    return sample_crop(rng, width, height)


def recorditer_crop_resize(image, box, size):
    """ImageRecordIter's crop of uint8 `image` resized to size x size, bilinear from full size.

    Two behaviours its parameters do not describe: with no box (no attempt fitted) it cuts a
    size x size centre crop at the image's own scale, enlarging the image first only if it is
    smaller than that; and when the image is already size x size, OpenCV resizes the crop into the
    image it is reading from (`cv::resize(res(roi), res, ...)` does not reallocate), so rows and
    columns already written are read back: the output is a smaller, distorted crop. We reproduce
    that by resizing into the same buffer (single-threaded OpenCV, as in our workers). `image` may
    be overwritten."""
    rows, cols = image.shape[:2]
    if box is None:
        if rows < size:
            cols = int(np.float32(size) / np.float32(rows) * np.float32(cols))
            image = cv2.resize(image, (cols, size), interpolation=cv2.INTER_LINEAR)
            rows = size
        if cols < size:
            rows = int(np.float32(size) / np.float32(cols) * np.float32(rows))
            image = cv2.resize(image, (size, rows), interpolation=cv2.INTER_LINEAR)
            cols = size
        y0, x0 = (rows - size) // 2, (cols - size) // 2
        return image[y0:y0 + size, x0:x0 + size]
    x0, y0, w, h = box
    crop = image[y0:y0 + h, x0:x0 + w]
    if (rows, cols) == (size, size) and image.flags.c_contiguous and image.flags.writeable:
        cv2.resize(crop, (size, size), dst=image, interpolation=cv2.INTER_LINEAR)
        return image
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


# -- colour: each step as a 3x3 matrix (and offset) acting on RGB column vectors ---------------

def brightness_matrix(coef):
    """x * coef (MXNet's BrightnessJitterAug)."""
    return coef * _EYE


def saturation_matrix(coef):
    """coef * x + (1 - coef) * grey(x), grey = 0.299 R + 0.587 G + 0.114 B (MXNet's
    SaturationJitterAug): 0 gives grey, 1 the identity."""
    return coef * _EYE + (1.0 - coef) * _GREY_ROWS


def hue_matrix(coef):
    """Rotate the hue by (coef - 1) * 180 degrees in YIQ space, keeping luma (Y) fixed.

    The paper "scales hue" by coef ~ U[0.6, 1.4]; we read that as MXNet's hue jitter 0.4
    (HueJitterAug rotates by alpha * pi with alpha ~ U[-0.4, 0.4]), with coef = 1 + alpha and the
    exact YIQ inverse so that coef = 1 is the identity. Paper flavour only: GluonCV uses no hue.
    """
    angle = (coef - 1.0) * math.pi
    fixed, cosine, sine = _HUE_BASIS  # YIQ^-1 @ rotation @ YIQ, split by cos and sin
    return fixed + math.cos(angle) * cosine + math.sin(angle) * sine


def contrast_affine(coef, mean_grey):
    """coef * x + (1 - coef) * mean grey of the image (MXNet's ContrastJitterAug), as (M, b).
    GluonCV flavour only: the paper lists no contrast jitter."""
    return coef * _EYE, np.full(3, (1.0 - coef) * mean_grey)


def lighting_offset(alpha):
    """AlexNet PCA noise: the RGB shift eigvec @ (alpha * eigval), alpha ~ N(0, 0.1) each."""
    return _LIGHTING @ np.asarray(alpha)


def _saturate_u8(values):
    """Round half to even and saturate to uint8, as OpenCV's saturate_cast<uchar>(float)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _grey_of_bgr_as_rgb(pixels):
    """The grey ImageRecordIter computes: cvtColor(RGB2GRAY) on BGR pixels, i.e. 0.299 B +
    0.587 G + 0.114 R (R and B weights exchanged), rounded to uint8."""
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)


def recorditer_colour(pixels, steps, alpha):
    """uint8 BGR pixels after ImageRecordIter's colour jitter `steps` (brightness, contrast,
    saturation in the drawn order) and PCA noise `alpha`: each step rounded and saturated to
    [0, 255]; the lighting shift is added per pixel and truncated to an integer (C++'s int +=
    float), then saturated. Returns a new array."""
    res = pixels
    for name, coef in steps:
        coef = np.float32(coef)
        if name == "brightness":
            res = _saturate_u8(res.astype(np.float32) * coef)
        elif name == "contrast":
            grey_mean = np.float32(cv2.mean(_grey_of_bgr_as_rgb(res))[0])
            res = _saturate_u8(res.astype(np.float32) * coef + (np.float32(1) - coef) * grey_mean)
        elif name == "saturation":
            grey = cv2.cvtColor(_grey_of_bgr_as_rgb(res), cv2.COLOR_GRAY2BGR)
            res = cv2.addWeighted(res, float(coef), grey, float(1 - coef), 0.0)
        else:
            raise ValueError("ImageRecordIter has no %r jitter" % name)
    shift_bgr = lighting_offset(alpha)[::-1].astype(np.float32)
    shifted = np.trunc(res.astype(np.float32) + shift_bgr)
    return np.clip(shifted, 0, 255).astype(np.uint8)


def sample_colour(rng, flavour):
    """The random colour draws of one image: a list of (step, coefficient) in the order they are
    applied, and the 3 PCA lighting coefficients."""
    if flavour == "paper":
        steps = [("hue", rng.uniform(1 - JITTER, 1 + JITTER)),
                 ("saturation", rng.uniform(1 - JITTER, 1 + JITTER)),
                 ("brightness", rng.uniform(1 - JITTER, 1 + JITTER))]
    else:  # GluonCV's ColorJitterAug: each of the three, in a random order
        coefs = rng.uniform(1 - JITTER, 1 + JITTER, size=3)
        names = ("brightness", "contrast", "saturation")
        steps = [(names[i], coefs[i]) for i in rng.permutation(3)]
    alpha = rng.normal(0.0, LIGHTING_STD, size=3)
    return steps, alpha


def colour_affine(steps, alpha, input_mean=None, bgr_input=True):
    """The (3, 4) matrix [M | b] taking input pixels (BGR by default, in [0, 255]) to normalised RGB
    after the jitter `steps`, the lighting `alpha` and the normalisation, all folded into one.
    `input_mean` (the image's mean pixel, in the input's channel order) is needed only for
    contrast, whose grey level is the mean luma of the image as it is at that step."""
    m, b = (_BGR_TO_RGB if bgr_input else _EYE), np.zeros(3)
    for name, coef in steps:
        if name == "contrast":
            step_m, step_b = contrast_affine(coef, LUMA @ (m @ np.asarray(input_mean) + b))
            m, b = step_m @ m, step_m @ b + step_b
        else:
            step_m = {"hue": hue_matrix, "saturation": saturation_matrix,
                      "brightness": brightness_matrix}[name](coef)
            m, b = step_m @ m, step_m @ b
    affine = np.empty((3, 4), np.float32)
    affine[:, :3] = m * _NORM_SCALE[:, None]  # then (x - mean) / std
    affine[:, 3] = (b + lighting_offset(alpha)) * _NORM_SCALE + _NORM_SHIFT
    return affine


class Scratch:
    """Float buffers reused from image to image: a fresh 600 KB array per image costs more in
    page faults than the arithmetic done in it."""

    def __init__(self):
        self._buffers = {}

    def get(self, shape):
        if shape not in self._buffers:
            self._buffers[shape] = (np.empty(shape, np.float32), np.empty(shape, np.float32))
        return self._buffers[shape]


def apply_affine(pixels, affine, out, scratch=None):
    """out (3, H, W) float32 <- affine [M | b] applied to every pixel of pixels (H, W, 3)."""
    floats, result = (scratch or Scratch()).get(pixels.shape)
    np.copyto(floats, pixels, casting="unsafe")
    cv2.transform(floats, affine, dst=result)  # one SIMD pass over the pixels
    np.copyto(out, result.transpose(2, 0, 1))  # HWC -> CHW as the copy into `out`


# -- whole pipelines -------------------------------------------------------------------------

def crop_resize(buf, box, size, fast_decode=True, image=None, full=None):
    """Decode `buf` (at a reduced JPEG scale when the crop is shrunk anyway; without fast_decode
    only for a huge JPEG of `full` = (width, height)), cut `box` = (x0, y0, w, h) in
    full-resolution pixels and resize it bilinearly to size x size, in uint8 as MXNet's readers
    do. None if the image is corrupt."""
    x0, y0, w, h = box
    reduce = 1
    if image is None:
        if fast_decode and images.is_jpeg(buf):
            reduce = images.reduction_for(w, h, size, size)
        elif full is not None and images.is_jpeg(buf):
            reduce = images.huge_reduction(full[0], full[1], w, h, size, size)
        image = images.decode(buf, reduce)
        if image is None:
            return None
    if reduce == 1:
        return cv2.resize(image[y0:y0 + h, x0:x0 + w], (size, size),
                          interpolation=cv2.INTER_LINEAR)
    # Pixel j of the 1/r image averages full pixels r*j .. r*j + r - 1: sample it at the exact
    # (fractional) points where bilinear resizing of the full image would.
    sx, sy = w / (size * reduce), h / (size * reduce)
    to_source = np.array([[sx, 0, (x0 + 0.5 * w / size) / reduce - 0.5],
                          [0, sy, (y0 + 0.5 * h / size) / reduce - 0.5]])
    return cv2.warpAffine(image, to_source, (size, size), flags=cv2.INTER_LINEAR |
                          cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def train_pixels(buf, rng, size, flavour, fast_decode=True):
    """The geometric part of one training image: (uint8 BGR size x size crop, flipped or not;
    its colour `steps`; its lighting `alpha`), or None if the image is corrupt. All draws come
    from `rng`, in a fixed order: flip, colour, lighting, then the crop attempts."""
    flip = rng.random() < 0.5
    steps, alpha = sample_colour(rng, flavour)
    full = images.image_size(buf) if images.is_jpeg(buf) else None
    if flavour == "gluoncv" and full is not None and full[0] * full[1] > images.HUGE_PIXELS:
        # a huge JPEG: the same box as from the full-size image (its size is the header's), cut
        # from a decode at a reduced scale that still leaves the box at least size x size
        box = sample_flavour_crop(rng, full[0], full[1], flavour)
        if box is None:  # a centre crop at the image's own scale needs the full resolution
            image = images.decode(buf)
            pixels = None if image is None else recorditer_crop_resize(image, box, size)
        else:
            pixels = crop_resize(buf, box, size, fast_decode=False, full=full)
        if pixels is None:
            return None
    elif flavour == "gluoncv":  # full-size decode, ImageRecordIter's crop
        image = images.decode(buf)
        if image is None:
            return None
        box = sample_flavour_crop(rng, image.shape[1], image.shape[0], flavour)
        pixels = recorditer_crop_resize(image, box, size)
    else:
        image, full = None, full or images.image_size(buf)
        if full is None:  # a format whose header we do not read: decode first to learn the size
            image = images.decode(buf)
            if image is None:
                return None
            full = image.shape[1], image.shape[0]
        box = sample_flavour_crop(rng, full[0], full[1], flavour)
        pixels = crop_resize(buf, box, size, fast_decode, image, full)
        if pixels is None:
            return None
    if flip:
        pixels = cv2.flip(pixels, 1)
    return pixels, steps, alpha


def train_sample(buf, rng, size, flavour, out, fast_decode=True, scratch=None):
    """One training image: crop, flip, colour, lighting, normalise into out (3, size, size).
    Returns False (out untouched) if the image is corrupt."""
    drawn = train_pixels(buf, rng, size, flavour, fast_decode)
    if drawn is None:
        return False
    pixels, steps, alpha = drawn
    if flavour == "gluoncv":
        pixels = recorditer_colour(pixels, steps, alpha)
        affine = colour_affine([], np.zeros(3))  # BGR -> RGB and normalise only
    else:
        affine = colour_affine(steps, alpha)
    apply_affine(pixels, affine, out, scratch)
    return True


def val_resize_shape(width, height, input_size, crop_ratio=CROP_RATIO_DEFAULT):
    """(w, h) after resizing the shorter side to ceil(input_size / crop_ratio) keeping the aspect
    ratio (256 for 224), truncating the longer side as MXNet's Resize(keep_ratio=True) does."""
    short = int(math.ceil(input_size / crop_ratio))
    if width <= height:
        return short, int(height * short / width)
    return int(width * short / height), short


def val_sample(buf, size, out, crop_ratio=CROP_RATIO_DEFAULT, fast_decode=True, scratch=None):
    """One validation image: resize the shorter side, centre crop size x size, normalise into
    out. Deterministic. Returns False if the image is corrupt."""
    full = images.image_size(buf)
    reduce = 1
    if full is not None and images.is_jpeg(buf):
        rw, rh = val_resize_shape(full[0], full[1], size, crop_ratio)
        reduce = (images.reduction_for(full[0], full[1], rw, rh) if fast_decode
                  else images.huge_reduction(full[0], full[1], full[0], full[1], rw, rh))
    image = images.decode(buf, reduce)
    if image is None:
        return False
    if full is None:
        full = image.shape[1], image.shape[0]
    rw, rh = val_resize_shape(full[0], full[1], size, crop_ratio)
    resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    x0, y0 = (rw - size) // 2, (rh - size) // 2
    apply_affine(resized[y0:y0 + size, x0:x0 + size], colour_affine([], np.zeros(3)), out, scratch)
    return True
