"""Shared fixtures: a fixed MXNet/numpy seed per test, and the CLI runner."""
import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def fixed_seeds():
    import mxnet as mx
    mx.random.seed(7)
    np.random.seed(7)
    random.seed(7)


@pytest.fixture
def cli(capsys):
    """Run `gluon-tricks ARGS...` in-process; returns (exit status, stdout, stderr)."""
    from gluon_tricks.cli import main

    def run(*args):
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="session")
def small_image_set(tmp_path_factory):
    """A 3-class image folder (36 JPEGs and PNGs of 40-64 px whose grey level encodes the label,
    plus one non-image file) and its packed .rec/.idx: {folder, prefix, rec, idx, count}."""
    import cv2
    from gluon_tricks.data.pack import pack_folder
    root = tmp_path_factory.mktemp("small_image_set")
    folder = root / "images"
    rng = np.random.default_rng(0)
    for label, name in enumerate(["ant", "bee", "cat"]):
        (folder / name).mkdir(parents=True)
        for i in range(12):
            height, width = rng.integers(40, 65, 2)
            image = np.full((height, width, 3), 40 + 80 * label, np.uint8)
            image[::4, ::4] += 10  # a little texture
            ext = ".png" if i == 11 else ".jpg"
            cv2.imwrite(str(folder / name / ("%02d%s" % (i, ext))), image)
    (folder / "bee" / "readme.txt").write_text("not an image")
    prefix = str(root / "small")
    pack_folder(str(folder), prefix, workers=0, progress=False)
    return {"folder": str(folder), "prefix": prefix, "rec": prefix + ".rec",
            "idx": prefix + ".idx", "count": 36}
