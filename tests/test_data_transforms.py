"""The paper's preprocessing, step by step: statistics over thousands of seeded draws against the
paper's ranges and distributions, exact constants, and agreement with MXNet's own augmenters."""
import math
import random

import cv2
import mxnet as mx
import numpy as np
import pytest
from scipy import stats

from gluon_tricks.data import images, sharding, transforms as T

DRAWS = 4000


def _rngs(n=DRAWS, epoch=0):
    return (sharding.sample_rng(0, epoch, i) for i in range(n))


def _jpeg(image, quality=95):
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def _smooth_image(height, width, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(
        np.uint8)


def test_normalisation_constants_are_the_papers_and_exact():
    assert T.MEAN_RGB == (123.68, 116.779, 103.939)
    assert T.STD_RGB == (58.393, 57.12, 57.375)
    affine = T.colour_affine([], np.zeros(3), bgr_input=False).astype(np.float64)
    for pixel, expected in ((T.MEAN_RGB, 0.0), (np.add(T.MEAN_RGB, T.STD_RGB), 1.0),
                            (np.subtract(T.MEAN_RGB, T.STD_RGB), -1.0)):
        out = affine[:, :3] @ np.asarray(pixel) + affine[:, 3]
        assert np.allclose(out, expected, atol=1e-5)
    # BGR input (what OpenCV decodes) lands on the same RGB output
    bgr = T.colour_affine([], np.zeros(3)).astype(np.float64)
    assert np.allclose(bgr[:, :3] @ np.asarray(T.MEAN_RGB[::-1]) + bgr[:, 3], 0, atol=1e-5)


def test_pca_constants_are_mxnets_imagenet_eigen_decomposition():
    augs = mx.image.CreateAugmenter((3, 32, 32), pca_noise=0.1)
    lighting = [a for a in augs if isinstance(a, mx.image.LightingAug)][0]
    assert np.array_equal(np.asarray(T.PCA_EIGVAL), lighting.eigval)
    assert np.array_equal(np.asarray(T.PCA_EIGVEC), lighting.eigvec)


@pytest.mark.parametrize("flavour", T.FLAVOURS)
def test_crop_area_and_aspect_ratio_follow_the_flavours_distribution(flavour):
    size = 4000  # large enough that rounding w and h does not move the ratio
    boxes = np.array([T.sample_flavour_crop(rng, size, size, flavour) for rng in _rngs()])
    assert boxes.ndim == 2  # on a square image some attempt always fits (no None)
    x0, y0, w, h = boxes.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + w <= size).all() and (y0 + h <= size).all()
    area, ratio = w * h / size ** 2, w / h
    assert area.min() >= 0.08 - 1e-3 and area.max() <= 1.0
    assert ((ratio >= 0.75 - 1e-3) & (ratio <= 4 / 3 + 1e-3)).all()
    # on a square image every crop of area < 3/4 fits at the first try: uniform there
    small = area[area < 0.75]
    assert stats.kstest(small, stats.uniform(0.08, 0.75 - 0.08).cdf).pvalue > 1e-3
    assert abs(small.min() - 0.08) < 0.01
    # crops of area < 1/2 always fit whatever the ratio: its distribution is the flavour's
    r = ratio[area < 0.5]
    drawn = stats.uniform(0.75, 4 / 3 - 0.75)
    uniform = stats.kstest(r, drawn.cdf).pvalue
    # ImageRecordIter (gluoncv): r ~ U[3/4, 4/3], then w and h swapped with p = 1/2 (r -> 1/r)
    swapped = stats.kstest(r, lambda x: 0.5 * drawn.cdf(x) + 0.5 * drawn.sf(1 / x)).pvalue
    if flavour == "paper":
        assert uniform > 1e-3 and swapped < 1e-6
    else:
        assert swapped > 1e-3 and uniform < 1e-6


def test_recorditer_crop_falls_back_to_a_centre_crop_at_the_sources_scale():
    # no attempt fits: None, and the crop is the centre size x size at the image's own scale
    assert T.sample_recorditer_crop(np.random.default_rng(0), 1000, 100, attempts=0) is None
    image = _smooth_image(100, 1000)
    assert np.array_equal(T.recorditer_crop_resize(image, None, 32), image[34:66, 484:516])
    # an image smaller than the output is first enlarged to the output's height, keeping its shape
    small = _smooth_image(20, 40)
    enlarged = cv2.resize(small, (64, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(T.recorditer_crop_resize(small, None, 32), enlarged[:, 16:48])
    # a 10:1 strip: crops of >= 8% area and aspect in [3/4, 4/3] mostly do not fit; those that do
    # are at most 100 px high
    rng = np.random.default_rng(1)
    boxes = [T.sample_recorditer_crop(rng, 1000, 100) for _ in range(200)]
    assert all(b is None or b[3] <= 100 for b in boxes) and any(b is None for b in boxes)


def test_crop_falls_back_to_a_centred_clamped_crop_when_nothing_fits():
    # a 10:1 strip never fits a 3/4..4/3 crop of >= 8% of its area... except thin ones: use
    # zero attempts to force the fallback
    x0, y0, w, h = T.sample_crop(np.random.default_rng(0), 1000, 100, attempts=0)
    assert (w, h) == (133, 100) and x0 == (1000 - 133) // 2 and y0 == 0


def test_flip_rate_is_one_half():
    gradient = np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (64, 1, 3))
    buf = _jpeg(gradient)
    out = np.empty((3, 16, 16), np.float32)
    flipped = 0
    for rng in _rngs():
        assert T.train_sample(buf, rng, 16, "paper", out)
        # grey stays grey under hue/saturation; brightness > 0 keeps the slope's sign
        flipped += out[:, :, :8].mean() > out[:, :, 8:].mean()
    assert abs(flipped / DRAWS - 0.5) < 4 * math.sqrt(0.25 / DRAWS)


@pytest.mark.parametrize("flavour", T.FLAVOURS)
def test_colour_coefficients_are_uniform_in_0_6_to_1_4(flavour):
    draws = [T.sample_colour(rng, flavour) for rng in _rngs()]
    names = {"paper": ["hue", "saturation", "brightness"],
             "gluoncv": ["brightness", "contrast", "saturation"]}[flavour]
    orders = {tuple(n for n, _ in steps) for steps, _ in draws}
    if flavour == "paper":
        assert orders == {tuple(names)}
    else:  # GluonCV applies its three jitters in a random order: all 6 orders occur
        assert len(orders) == 6 and all(sorted(o) == sorted(names) for o in orders)
    for name in names:
        coefs = np.array([c for steps, _ in draws for n, c in steps if n == name])
        assert coefs.min() >= 0.6 and coefs.max() <= 1.4
        assert coefs.min() < 0.61 and coefs.max() > 1.39
        assert stats.kstest(coefs, stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3


def test_pca_lighting_noise_has_the_papers_spread():
    alphas = np.array([T.sample_colour(rng, "paper")[1] for rng in _rngs()])
    assert np.allclose(alphas.std(axis=0), 0.1, rtol=0.06)
    assert np.allclose(alphas.mean(0), 0, atol=0.006)
    offsets = np.array([T.lighting_offset(a) for a in alphas])
    expected = np.sqrt(((np.asarray(T.PCA_EIGVEC) * np.asarray(T.PCA_EIGVAL) * 0.1) ** 2).sum(1))
    assert np.allclose(offsets.std(axis=0), expected, rtol=0.06)  # about 3.2 levels per channel
    # end to end: a flat grey image is shifted by exactly the offset, then normalised
    grey = np.full((4, 4, 3), 100, np.uint8)
    out = np.empty((3, 4, 4), np.float32)
    T.apply_affine(grey, T.colour_affine([], alphas[0]), out)
    expected_rgb = (100 + offsets[0] - np.asarray(T.MEAN_RGB)) / np.asarray(T.STD_RGB)
    assert np.allclose(out[:, 0, 0], expected_rgb, atol=1e-5)


def _mxnet_jitter(aug, image, seed):
    random.seed(seed)
    return aug(mx.nd.array(image.astype(np.float32))).asnumpy()


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation", "hue"])
def test_colour_steps_match_mxnets_augmenters(name):
    rgb = _smooth_image(12, 10).astype(np.float32)
    aug = {"brightness": mx.image.BrightnessJitterAug, "contrast": mx.image.ContrastJitterAug,
           "saturation": mx.image.SaturationJitterAug, "hue": mx.image.HueJitterAug}[name](0.4)
    for seed in range(5):
        random.seed(seed)
        coef = 1.0 + random.uniform(-0.4, 0.4)  # the draw MXNet's augmenter makes
        expected = _mxnet_jitter(aug, rgb, seed)
        affine = T.colour_affine([(name, coef)], np.zeros(3), input_mean=rgb.mean((0, 1)),
                                 bgr_input=False).astype(np.float64)
        ours = ((rgb @ affine[:, :3].T + affine[:, 3]) * np.asarray(T.STD_RGB)
                + np.asarray(T.MEAN_RGB))
        # hue: MXNet's YIQ inverse is rounded to 3 decimals, ours is exact
        assert np.abs(ours - expected).max() < (1.0 if name == "hue" else 1e-3), (name, coef)


def test_hue_rotation_keeps_luma_and_is_identity_at_1():
    assert np.allclose(T.hue_matrix(1.0), np.eye(3), atol=1e-12)
    for coef in (0.6, 0.9, 1.3):
        assert np.allclose(T.LUMA @ T.hue_matrix(coef), T.LUMA, atol=1e-9)
        assert not np.allclose(T.hue_matrix(coef), np.eye(3), atol=1e-2)


def test_lighting_matches_mxnets_lighting_aug():
    aug = mx.image.LightingAug(0.1, np.asarray(T.PCA_EIGVAL), np.asarray(T.PCA_EIGVEC))
    np.random.seed(3)
    alpha = np.random.normal(0, 0.1, size=(3,))
    np.random.seed(3)
    expected = aug(mx.nd.zeros((2, 2, 3))).asnumpy()[0, 0]
    assert np.allclose(T.lighting_offset(alpha), expected, atol=1e-4)


def test_validation_is_deterministic_and_matches_gluoncv_transforms():
    from mxnet.gluon.data.vision import transforms as gt
    image = _smooth_image(60, 84, seed=1)
    buf = _jpeg(image)
    size, crop_ratio = 32, 0.875
    resize = int(math.ceil(size / crop_ratio))
    assert T.val_resize_shape(84, 60, 224) == (358, 256)  # 256 for 224, the paper's setting
    ours = np.empty((3, size, size), np.float32)
    again = np.empty_like(ours)
    assert T.val_sample(buf, size, ours, crop_ratio) and T.val_sample(buf, size, again, crop_ratio)
    assert np.array_equal(ours, again)
    # GluonCV's transform_test (with the paper's mean/std on the 0-255 scale)
    rgb = mx.image.imdecode(buf)
    pipeline = gt.Compose([gt.Resize(resize, keep_ratio=True), gt.CenterCrop(size)])
    theirs = pipeline(rgb).asnumpy().astype(np.float32)
    theirs = ((theirs - np.asarray(T.MEAN_RGB)) / np.asarray(T.STD_RGB)).transpose(2, 0, 1)
    assert np.abs(ours - theirs).mean() < 0.01 and np.abs(ours - theirs).max() < 0.1


def test_reduced_jpeg_decode_is_used_and_close_to_full_decode():
    image = _smooth_image(256, 320, seed=2)
    buf = _jpeg(image)
    assert images.image_size(buf) == (320, 256)
    assert images.reduction_for(256, 200, 32, 32) == 4
    fast, full = np.empty((3, 32, 32), np.float32), np.empty((3, 32, 32), np.float32)
    for i in range(20):
        T.train_sample(buf, sharding.sample_rng(1, 0, i), 32, "paper", fast, fast_decode=True)
        T.train_sample(buf, sharding.sample_rng(1, 0, i), 32, "paper", full, fast_decode=False)
        assert np.abs(fast - full).mean() < 0.025  # under 1.5 grey levels: same crop and colours


def test_headers_and_corrupt_images():
    image = _smooth_image(37, 53)
    buf = _jpeg(image)
    png = cv2.imencode(".png", image)[1].tobytes()
    assert images.image_size(buf) == (53, 37) and images.image_size(png) == (53, 37)
    assert images.decode(buf).shape == (37, 53, 3) and images.decode(png).shape == (37, 53, 3)
    assert images.decode(buf, 2).shape == (19, 27, 3)  # DCT scaling rounds up
    for bad in (buf[:len(buf) // 2], png[:len(png) // 2], b"", b"not an image at all"):
        assert images.decode(bad) is None
    out = np.zeros((3, 8, 8), np.float32)
    assert not T.train_sample(buf[:200], sharding.sample_rng(0, 0, 0), 8, "paper", out)
    assert not T.val_sample(b"garbage", 8, out) and not out.any()


def test_gluoncv_flavour_decodes_at_full_size_as_recorditer():
    # ImageRecordIter resizes from the full-size decode; a reduced JPEG decode would smooth it
    buf = _jpeg(_smooth_image(256, 320, seed=3))
    fast, full = np.empty((3, 32, 32), np.float32), np.empty((3, 32, 32), np.float32)
    for i in range(10):
        T.train_sample(buf, sharding.sample_rng(1, 0, i), 32, "gluoncv", fast, fast_decode=True)
        T.train_sample(buf, sharding.sample_rng(1, 0, i), 32, "gluoncv", full, fast_decode=False)
        assert np.array_equal(fast, full)
