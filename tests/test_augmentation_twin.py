"""Our `gluoncv` augmentation against what mx.io.ImageRecordIter really outputs with GluonCV's
settings, on the same records: crop boxes and flips recovered from coordinate-encoding images,
colour maps fitted per image, and whole-pipeline pixel statistics must be statistically
indistinguishable (two-sample KS, overall alpha 0.01, Bonferroni); and the paper flavour, which
does differ, must be told apart by the same measurement. The large-sample version, at 224 px too,
is scripts/augmentation_probe.py.

1000 seeded draws per pipeline (both sides deterministic): enough to reject the differences the
gluoncv flavour used to have (log-uniform aspect ratio, no in-place resize on 32 x 32 sources,
no uint8 saturation between colour steps), see docs/data.md. Sources of exactly the output size
(where ImageRecordIter resizes each crop in place over its source) are covered by the 32 x 32
coordinate image (crop area, aspect, centre and the bend the in-place resize leaves in the rows),
a 32 x 32 scene and a 32 x 32 PNG digit of the twin runs' data set (scripts/exact_size_data.py),
in colour and as a one-channel (grey) PNG.
"""
import importlib.util
import os
import sys

import cv2
import numpy as np
import pytest

from gluon_tricks.data import transforms as T

DRAWS = 1000
ALPHA = 0.01
_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                     "augmentation_probe.py")


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("augmentation_probe", _PATH)
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no scripts/__pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


@pytest.fixture(autouse=True)
def one_opencv_thread():
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in our data workers
    yield
    cv2.setNumThreads(before)


def _differences(probe, measure, *args):
    measured = {p: measure(p, *args, draws=DRAWS, seed=0) for p in probe.PIPELINES}
    return {flavour: probe.rejected(probe.compare(measured["recorditer"], measured[flavour]),
                                    ALPHA)
            for flavour in T.FLAVOURS}


@pytest.mark.parametrize("width, height", [(32, 32), (48, 40)])
def test_crops_and_flips_match_recorditer_on_small_sources(probe, width, height):
    differ = _differences(probe, probe.measure_crops, width, height, 32)
    assert differ["gluoncv"] == []
    if width == height == 32:  # the paper's resize is not done in place: larger, straight crops
        assert {"area", "bend_y"} <= set(differ["paper"])


def _without_in_place_resize(monkeypatch):
    """Make the gluoncv flavour resize its crops into a new buffer, as an ordinary resize."""
    in_place = T.recorditer_crop_resize

    def ordinary(image, box, size):
        image = image.copy()
        image.flags.writeable = False  # recorditer_crop_resize then allocates its output
        return in_place(image, box, size)
    monkeypatch.setattr(T, "recorditer_crop_resize", ordinary)


def test_crops_on_sources_of_the_output_size_tell_an_ordinary_resize_apart(probe, monkeypatch):
    """The measurement has the power to see the in-place resize: without it, the crops of a
    32 x 32 source at 32 px are told apart from ImageRecordIter's by their area and the bend of
    their rows."""
    _without_in_place_resize(monkeypatch)
    measured = {p: probe.measure_crops(p, 32, 32, 32, draws=DRAWS, seed=0)
                for p in ("recorditer", "gluoncv")}
    differ = probe.rejected(probe.compare(measured["recorditer"], measured["gluoncv"]), ALPHA)
    assert {"area", "bend_y"} <= set(differ)


def test_colour_maps_match_recorditer(probe):
    differ = _differences(probe, probe.measure_colours, 32)
    assert differ["gluoncv"] == []
    assert "saturated" in differ["paper"]  # the paper's folded map never clips


def test_whole_pipeline_matches_recorditer_on_a_32px_scene(probe):
    differ = _differences(probe, probe.measure_scenes, 32, 32, 32)
    assert differ["gluoncv"] == []
    assert differ["paper"] != []


@pytest.mark.parametrize("grey", [False, True])
def test_whole_pipeline_matches_recorditer_on_a_png_digit_of_the_output_size(probe, grey):
    """A real-looking source of exactly 32 x 32 (the twin runs' data set), stored as PNG: three
    channels, or one (grey, as scikit-learn's digits of issue 21, decoded to BGR by both)."""
    differ = _differences(probe, probe.measure_digits, 32, grey)
    assert differ["gluoncv"] == []
    assert differ["paper"] != []


def test_a_grey_png_digit_of_the_output_size_tells_an_ordinary_resize_apart(probe, monkeypatch):
    """The whole-pipeline statistics of a grey 32 x 32 digit have the power to see the in-place
    resize too: without it, its per-image channel means and spreads differ from
    ImageRecordIter's."""
    _without_in_place_resize(monkeypatch)
    measured = {p: probe.measure_digits(p, 32, True, draws=DRAWS, seed=0)
                for p in ("recorditer", "gluoncv")}
    differ = probe.rejected(probe.compare(measured["recorditer"], measured["gluoncv"]), ALPHA)
    assert {"mean_R", "std_R"} <= set(differ)


def test_recovery_reads_back_a_known_crop_and_colour(probe):
    """The measurement itself: a known box, flip and colour map come back from their outputs."""
    image, step_x, step_y = probe.coordinate_image(500, 375)
    box = (100, 50, 240, 180)
    pixels = cv2.flip(T.recorditer_crop_resize(image.copy(), box, 224), 1)
    area, log_aspect, cx, cy, bend_x, bend_y, flipped = probe.recover_crop(
        pixels[:, :, ::-1].transpose(2, 0, 1).astype(np.float32), 500, 375, step_x, step_y)
    assert flipped and abs(area - 240 * 180 / (500 * 375)) < 0.005
    assert abs(log_aspect - np.log(240 / 180)) < 0.01
    assert abs(cx - 220 / 500) < 0.005 and abs(cy - 140 / 375) < 0.005
    assert bend_x < 0.002 and bend_y < 0.002  # an ordinary resize of a ramp stays straight
    source = probe.random_pixels(32)
    out = T.recorditer_colour(source, [("brightness", 0.8)], np.zeros(3))
    fitted = probe.recover_colour(source, out[:, :, ::-1].transpose(2, 0, 1))
    assert np.allclose(np.reshape(fitted[:9], (3, 3)), 0.8 * np.eye(3), atol=0.005)
    # only pixels with a channel at 0 (1 - (255/256)^3 of them, about 1.2%) are left out
    assert np.allclose(fitted[9:12], 0, atol=0.3) and fitted[12] < 0.03


def test_every_recorditer_crop_of_a_source_of_the_output_size_is_one_of_ours_exactly(probe):
    """On a 16 x 16 source at 16 px, ImageRecordIter's output (colour off) is, pixel for pixel,
    recorditer_crop_resize of some box, flipped or not: the in-place resize reproduced exactly
    (an ordinary resize of the box matches only some of them)."""
    size = 16
    image = probe.coordinate_image(size, size)[0]
    ours, ordinary = set(), set()
    for w in range(1, size + 1):
        for h in range(1, size + 1):
            for x0 in range(size - w + 1):
                for y0 in range(size - h + 1):
                    box = (x0, y0, w, h)
                    ours.add(T.recorditer_crop_resize(image.copy(), box, size).tobytes())
                    crop = image[y0:y0 + h, x0:x0 + w]
                    ordinary.add(cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
                                 .tobytes())
    found = {"ours": 0, "ordinary": 0}
    batches = probe.recorditer_outputs(probe.png(image), 200, size, "crop", seed=3)
    outputs = [o for batch in batches for o in batch]
    for rgb in outputs:
        bgr = rgb.transpose(1, 2, 0)[:, :, ::-1].astype(np.uint8)
        candidates = (bgr.tobytes(), np.ascontiguousarray(bgr[:, ::-1]).tobytes())
        found["ours"] += any(c in ours for c in candidates)
        found["ordinary"] += any(c in ordinary for c in candidates)
    assert found["ours"] == len(outputs) == 200
    assert found["ordinary"] < 150, found
