"""Measure the training augmentation of mx.io.ImageRecordIter (GluonCV's settings) and of our
`gluoncv` and `paper` flavours from their outputs, and compare the distributions.

Crop and flip: images whose red channel encodes x and green encodes y (blue a constant) go
through the crop alone (colour off); a line fitted to each output's red columns and green rows
gives the crop box (area fraction, aspect ratio w/h, centre) and the flip. Colour: images of
random pixels go through the colour steps alone (no crop: ImageRecordIter's centre crop of an
image of the output's size is the identity); a 3x4 affine map fitted per image (least squares
over the pixels no channel of which saturated) gives the colour transform. End to end: a drawn
scene, and a written digit of exactly the output size (scripts/exact_size_data.py, as PNG: the
case where ImageRecordIter resizes each crop in place over its source), through the whole
pipeline (also as a one-channel PNG, as scikit-learn's digits), per-image mean and spread of
each normalised channel.

Each statistic is compared with a two-sample Kolmogorov-Smirnov test (the flip rate with a
chi-square test); the null "same distribution" is rejected at `--alpha` overall, Bonferroni-
corrected over the statistics of a comparison.

    .venv/bin/python scripts/augmentation_probe.py --draws 4000   # 22 minutes on 2 busy cores
"""
import argparse
import importlib.util
import os
import sys
import tempfile

import cv2
import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gluon_tricks.data import demo_data, sharding, transforms as T  # noqa: E402

PIPELINES = ("recorditer", "gluoncv", "paper")
CROP_STATS = ("area", "log_aspect", "centre_x", "centre_y", "bend_x", "bend_y")
COLOUR_STATS = tuple("m%d%d" % (i, j) for i in range(3) for j in range(3)) + (
    "b0", "b1", "b2", "saturated")
SCENE_STATS = tuple("%s_%s" % (s, c) for s in ("mean", "std") for c in "RGB")
BATCH = 200


# -- sources --------------------------------------------------------------------------------

def coordinate_image(width, height, blue=128):
    """BGR uint8 image: R = x * step_x, G = y * step_y (integer steps when the side fits in
    256 levels, else x scaled to 0-255), B = `blue`. Returns (image, step_x, step_y)."""
    def levels(n):
        step = 255 // (n - 1) if n <= 256 else 255.0 / (n - 1)
        return np.rint(np.arange(n) * step).astype(np.uint8), step
    xs, step_x = levels(width)
    ys, step_y = levels(height)
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = blue
    image[:, :, 1] = ys[:, None]
    image[:, :, 2] = xs[None, :]
    return image, step_x, step_y


def random_pixels(size, seed=0):
    """BGR uint8 size x size image of independent uniform pixels (spans the colour cube)."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


def scene(width, height, seed=0):
    """A BGR demo-set scene of the given size (shapes and textures on a smooth background)."""
    image = demo_data.draw_image(3, np.random.default_rng(seed))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def digit(size, label=3, index=0):
    """A BGR written digit of exactly size x size, from scripts/exact_size_data.py."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exact_size_data.py")
    spec = importlib.util.spec_from_file_location("exact_size_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.exact_size_image(label, size, seed=0, split_id=0, index=index)


def png(image):
    return cv2.imencode(".png", image)[1].tobytes()


# -- ImageRecordIter ------------------------------------------------------------------------

def recorditer_outputs(buf, draws, size, mode, seed=0, workdir=None):
    """Yield (k, 3, size, size) float32 RGB batches of ImageRecordIter over `draws` copies of
    `buf`. mode: "crop" (random_resized_crop and mirror, no colour, raw 0-255 output), "colour"
    (jitter and PCA noise only, raw output) or "full" (GluonCV's train_imagenet.py settings,
    normalised). One decoding thread makes it deterministic: its generator is seeded with a
    constant, and `seed` only skips the first seed * draws outputs. (Not seed_aug: it reseeds
    every image from its position in the batch, so every batch repeats the same draws.)"""
    import mxnet as mx
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        rec, idx = os.path.join(tmp, "probe.rec"), os.path.join(tmp, "probe.idx")
        writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
        skip = seed * draws
        for i in range(skip + draws):
            writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, 0.0, i, 0), buf))
        writer.close()
        crop = dict(random_resized_crop=True, max_aspect_ratio=4.0 / 3.0,
                    min_aspect_ratio=3.0 / 4.0, max_random_area=1.0, min_random_area=0.08,
                    rand_mirror=True)
        colour = dict(brightness=0.4, contrast=0.4, saturation=0.4, pca_noise=0.1)
        norm = dict(zip(("mean_r", "mean_g", "mean_b"), T.MEAN_RGB),
                    **dict(zip(("std_r", "std_g", "std_b"), T.STD_RGB)))
        kwargs = {"crop": crop, "colour": colour, "full": dict(crop, **colour, **norm)}[mode]
        it = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=idx, data_shape=(3, size, size),
                                   batch_size=BATCH, shuffle=False, preprocess_threads=1,
                                   round_batch=False, **kwargs)
        seen = 0
        for batch in it:
            data = batch.data[0].asnumpy()[:BATCH - batch.pad]
            keep = data[max(0, skip - seen):]
            seen += len(data)
            if len(keep):
                yield keep


# -- ours -----------------------------------------------------------------------------------

def _bgr_to_rgb_chw(pixels):
    return pixels[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)


def ours_outputs(buf, draws, size, mode, flavour, seed=0):
    """Our counterpart of recorditer_outputs for `flavour`, one image at a time (shape
    (1, 3, size, size)): "crop" = train_pixels (crop and flip, no colour), "colour" = the colour
    steps alone on the decoded image, "full" = train_sample."""
    image = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
    out = np.empty((3, size, size), np.float32)
    for i in range(draws):
        rng = sharding.sample_rng(seed, 0, i)
        if mode == "crop":
            pixels = T.train_pixels(buf, rng, size, flavour)[0]
            yield _bgr_to_rgb_chw(pixels)[None]
        elif mode == "colour":
            steps, alpha = T.sample_colour(rng, flavour)
            if flavour == "gluoncv":
                yield _bgr_to_rgb_chw(T.recorditer_colour(image, steps, alpha))[None]
            else:  # the paper's folded affine map, back on the 0-255 scale (it never clips)
                T.apply_affine(image, T.colour_affine(steps, alpha), out)
                yield (out * np.asarray(T.STD_RGB, np.float32)[:, None, None]
                       + np.asarray(T.MEAN_RGB, np.float32)[:, None, None])[None]
        else:
            assert T.train_sample(buf, rng, size, flavour, out)
            yield out[None].copy()


# -- recovery -------------------------------------------------------------------------------

def _line(profile):
    """(slope, value at index 0) of a line fitted to the middle half of `profile`."""
    n = len(profile)
    j = np.arange(n // 4, n - n // 4)
    slope, intercept = np.polyfit(j, profile[j], 1)
    return slope, intercept


def recover_crop(rgb, width, height, step_x, step_y):
    """(area fraction, log aspect w/h, centre x / width, centre y / height, bend x, bend y,
    flipped) of the crop of a width x height coordinate image that produced `rgb` (3, S, S), from
    the bilinear sampling grid x(j) = x0 + (j + 1/2) w / S - 1/2. The bends are the RMS distance
    of the whole x and y profiles from their fitted lines, as fractions of the source's side: the
    rows and columns an in-place resize reads back after writing them bend the profile."""
    size = rgb.shape[2]
    xs = rgb[0].mean(axis=0) / step_x
    flipped = _line(xs)[0] < 0
    if flipped:
        xs = xs[::-1]
    ys = rgb[1].mean(axis=1) / step_y
    (sx, cx), (sy, cy) = _line(xs), _line(ys)
    j = np.arange(size)
    bend_x = np.sqrt(np.mean((xs - (cx + sx * j)) ** 2)) / width
    bend_y = np.sqrt(np.mean((ys - (cy + sy * j)) ** 2)) / height
    # a distorted crop (ImageRecordIter's in-place resize) can fit a near-zero or negative
    # slope in y: floor both sides at a hundredth of a pixel so that the ratio stays finite
    w, h = max(sx * size, 0.01), max(sy * size, 0.01)
    x0, y0 = cx - 0.5 * sx + 0.5, cy - 0.5 * sy + 0.5
    return (w * h / (width * height), np.log(w / h), (x0 + w / 2) / width,
            (y0 + h / 2) / height, bend_x, bend_y, flipped)


def recover_colour(source_bgr, rgb):
    """The 3x4 affine map [M | b] (RGB in, RGB out, 0-255) fitted to one output (3, S, S) of the
    colour steps on `source_bgr`, over the pixels with no output channel at 0 or 255; returns
    the 12 entries (row-major M, then b) and the fraction of pixels left out."""
    src = source_bgr[:, :, ::-1].reshape(-1, 3).astype(np.float64)
    dst = rgb.reshape(3, -1).T.astype(np.float64)
    keep = ((dst > 0.5) & (dst < 254.5)).all(axis=1)
    design = np.hstack([src[keep], np.ones((keep.sum(), 1))])
    coef = np.linalg.lstsq(design, dst[keep], rcond=None)[0]  # (4, 3)
    return tuple(coef[:3].T.ravel()) + tuple(coef[3]) + (1.0 - keep.mean(),)


def scene_stats(normalised):
    """Per-channel mean and standard deviation of one normalised output (3, S, S)."""
    return tuple(normalised.mean(axis=(1, 2))) + tuple(normalised.std(axis=(1, 2)))


# -- measurements ---------------------------------------------------------------------------

def _outputs(pipeline, buf, draws, size, mode, seed):
    if pipeline == "recorditer":
        return recorditer_outputs(buf, draws, size, mode, seed)
    return ours_outputs(buf, draws, size, mode, pipeline, seed)


def measure_crops(pipeline, width, height, size, draws, seed=0):
    """dict statistic -> array over `draws` crops of a width x height source at output `size`."""
    image, step_x, step_y = coordinate_image(width, height)
    rows = [recover_crop(o, width, height, step_x, step_y)
            for batch in _outputs(pipeline, png(image), draws, size, "crop", seed) for o in batch]
    values = np.array(rows, np.float64)
    return dict(zip(CROP_STATS + ("flip",), values.T))


def measure_colours(pipeline, size, draws, seed=0):
    """dict statistic -> array: the fitted colour map of `draws` outputs of a size x size image
    of random pixels."""
    image = random_pixels(size, seed=1)
    rows = [recover_colour(image, o)
            for batch in _outputs(pipeline, png(image), draws, size, "colour", seed) for o in batch]
    return dict(zip(COLOUR_STATS, np.array(rows).T))


def measure_scenes(pipeline, width, height, size, draws, seed=0):
    """dict statistic -> array: per-image channel means and spreads of the whole pipeline's
    normalised output on a width x height scene."""
    return _measure_whole(pipeline, png(scene(width, height)), size, draws, seed)


def measure_digits(pipeline, size, grey=False, *, draws, seed=0):
    """As measure_scenes, on a written digit of exactly the output size (a PNG record; with
    `grey` a one-channel PNG, as scikit-learn's digits written by exact_size_data.py --digits)."""
    image = digit(size)
    if grey:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return _measure_whole(pipeline, png(image), size, draws, seed)


def _measure_whole(pipeline, buf, size, draws, seed):
    rows = [scene_stats(o) for batch in _outputs(pipeline, buf, draws, size, "full", seed)
            for o in batch]
    return dict(zip(SCENE_STATS, np.array(rows).T))


def compare(a, b):
    """dict statistic -> p-value of "a and b draw from the same distribution" (KS; the flip
    rate by a chi-square test of the 2x2 table)."""
    pvalues = {}
    for name in a:
        if name == "flip":
            table = [[a[name].sum(), len(a[name]) - a[name].sum()],
                     [b[name].sum(), len(b[name]) - b[name].sum()]]
            pvalues[name] = stats.chi2_contingency(table)[1]
        else:
            pvalues[name] = stats.ks_2samp(a[name], b[name]).pvalue
    return pvalues


def rejected(pvalues, alpha):
    """The statistics whose p-value falls below the Bonferroni-corrected level alpha / count."""
    return sorted(n for n, p in pvalues.items() if p < alpha / len(pvalues))


# -- the report -----------------------------------------------------------------------------

EXPERIMENTS = (
    # (title, measure function, its arguments after pipeline)
    ("crop 500x375 -> 224", measure_crops, (500, 375, 224)),
    ("crop 375x500 -> 224", measure_crops, (375, 500, 224)),
    ("crop 32x32 -> 32", measure_crops, (32, 32, 32)),
    ("crop 48x40 -> 32", measure_crops, (48, 40, 32)),
    ("colour 224x224 (no crop)", measure_colours, (224,)),
    ("colour 32x32 (no crop)", measure_colours, (32,)),
    ("whole pipeline, scene 500x375 -> 224", measure_scenes, (500, 375, 224)),
    ("whole pipeline, scene 32x32 -> 32", measure_scenes, (32, 32, 32)),
    ("whole pipeline, digit 32x32 -> 32", measure_digits, (32,)),
    ("whole pipeline, grey PNG digit 32x32 -> 32", measure_digits, (32, True)),
)


def _summary(values):
    return "%8.4f %8.4f" % (np.mean(values), np.median(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=4000, help="outputs per pipeline (4000)")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="overall significance per comparison, Bonferroni-corrected (0.01)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run the experiments whose title has this")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    print("draws %d per pipeline, KS two-sample, overall alpha %g (Bonferroni)\n"
          % (args.draws, args.alpha))
    for title, measure, extra in EXPERIMENTS:
        if args.only not in title:
            continue
        measured = {p: measure(p, *extra, draws=args.draws, seed=args.seed) for p in PIPELINES}
        print("== %s" % title)
        print("%-12s %17s %17s %17s %11s %11s" % ("statistic", "recorditer mean/med",
                                                 "gluoncv mean/med", "paper mean/med",
                                                 "p(gluoncv)", "p(paper)"))
        p_gluoncv = compare(measured["recorditer"], measured["gluoncv"])
        p_paper = compare(measured["recorditer"], measured["paper"])
        for name in measured["recorditer"]:
            print("%-12s %s %s %s %11.3g %11.3g" % (
                name, *(_summary(measured[p][name]) for p in PIPELINES), p_gluoncv[name],
                p_paper[name]))
        for flavour, pvalues in (("gluoncv", p_gluoncv), ("paper", p_paper)):
            differ = rejected(pvalues, args.alpha)
            print("  %-8s vs ImageRecordIter: %s" % (
                flavour, "differ in " + ", ".join(differ) if differ else "indistinguishable"))
        print(flush=True)


if __name__ == "__main__":
    main()
