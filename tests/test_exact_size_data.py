"""scripts/exact_size_data.py --digits: scikit-learn's 8x8 digits as exactly-output-size PNGs in
scikit-learn's usual split, packed as a user would (issue 21's data set), without scikit-learn."""
import gzip
import importlib.util
import os
import sys

import cv2
import numpy as np
import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                     "exact_size_data.py")


@pytest.fixture(scope="module")
def data():
    spec = importlib.util.spec_from_file_location("exact_size_data", _PATH)
    module = importlib.util.module_from_spec(spec)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no scripts/__pycache__
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module


def _fake_digits_csv(path, rng):
    """A file shaped as scikit-learn's digits.csv.gz: 1797 rows of 64 levels 0-16 and a label."""
    scans = rng.integers(0, 17, (1797, 64))
    labels = np.arange(1797) % 10
    with gzip.open(path, "wt") as f:
        np.savetxt(f, np.column_stack([scans, labels]), fmt="%d", delimiter=",")
    return scans.reshape(-1, 8, 8), labels


def test_split_is_scikit_learns_train_test_split(data):
    """train_test_split(range(1797), test_size=0.2, random_state=0), first indices as
    scikit-learn 1.9.1 gives them; 1437 + 360, disjoint."""
    train, val = data.digits_split()
    assert (len(train), len(val)) == (1437, 360)
    assert list(train[:6]) == [1109, 940, 192, 260, 1148, 966]
    assert list(val[:6]) == [1081, 1707, 927, 713, 262, 182]
    assert sorted(np.concatenate([train, val])) == list(range(1797))


def test_scan_enlarged_bilinearly_keeps_levels_and_corners(data):
    scan = np.zeros((8, 8), np.uint8)
    scan[0, 0], scan[7, 7] = 16, 8
    image = data.digit_scan_image(scan, 32)
    assert image.shape == (32, 32) and image.dtype == np.uint8
    assert image[0, 0] == 255 and image[31, 31] == 128  # 8 * 255 / 16, rounded
    assert image[30, 0] == 0 and 0 < image[3, 3] < 255  # between two levels: interpolated
    assert (data.digit_scan_image(np.full((8, 8), 4, np.uint8), 32) == 64).all()


def test_digits_written_split_and_packed(data, tmp_path):
    """Every row becomes a grey PNG of its scan in its label's folder and split, and the packed
    records hold those bytes under the label."""
    import mxnet as mx
    scans, labels = _fake_digits_csv(tmp_path / "digits.csv.gz", np.random.default_rng(0))
    paths = data.write_digits_data(str(tmp_path / "out"), str(tmp_path / "digits.csv.gz"), 16)
    assert (paths["train_count"], paths["val_count"]) == (1437, 360)
    train, val = data.digits_split()
    row = int(val[0])
    png = tmp_path / "out" / "val" / ("digit%d" % labels[row]) / ("%04d.png" % row)
    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED),
                          data.digit_scan_image(scans[row], 16))
    reader = mx.recordio.MXIndexedRecordIO(paths["val_idx"], paths["val_rec"], "r")
    found = {}
    for key in reader.keys:
        header, buf = mx.recordio.unpack(reader.read_idx(key))
        found[buf] = header.label
    reader.close()
    assert len(found) == 360 and found[png.read_bytes()] == labels[row]


def test_not_the_digits_file_is_one_line(data, tmp_path):
    bad = tmp_path / "digits.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("1,2,3\n")
    with pytest.raises(SystemExit, match="not scikit-learn's digits.csv.gz"):
        data.read_digits(str(bad))
    (tmp_path / "plain.csv.gz").write_text("not gzip")
    with pytest.raises(SystemExit, match="cannot read the digits"):
        data.read_digits(str(tmp_path / "plain.csv.gz"))
