"""Write a data set whose every image is exactly SIZE x SIZE pixels (PNG), for training at
`--input-size SIZE`: the case where ImageRecordIter resizes each crop in place over its own source.

Ten classes, the digits 0-9, each written in one of OpenCV's Hershey fonts (the two script
fonts look handwritten) at a random size, stroke, slant, rotation and place, in light, slightly
tinted ink on a dark, smooth background; scanned coarsely (area-averaged to SCAN x SCAN, 8 as
the 8x8 digit scans behind issue 21's data set, quantised to 17 levels), enlarged bilinearly to
SIZE x SIZE, with sensor noise; deterministic from --seed. The coarse scan keeps the strokes
thick and soft: a ResNet-18 without a zero last gamma has to learn them within the 6 epochs of a
twin run under ImageRecordIter's in-place crops, which it did not for crisp 32 px digits (nor
for the demo set's shapes). The folders are packed with `gluon-tricks pack`, as a user would.

    .venv/bin/python scripts/exact_size_data.py runs/exact32          # 1500 train, 500 val, 32 px
    -> runs/exact32/{train,val}/CLASS/NNNNN.png and runs/exact32/{train,val}.{rec,idx,lst}

With --digits CSV the images are instead scikit-learn's digits (UCI's 1,797 8x8 scans, 17 grey
levels), enlarged bilinearly to SIZE x SIZE grey PNGs, in scikit-learn's usual split,
train_test_split(test_size=0.2, random_state=0): 1,437 train, 360 val. CSV is the copy scikit-learn
ships, sklearn/datasets/data/digits.csv.gz (scikit-learn itself is not needed here: install it in
any other environment, or give `--digits` alone to find it in this one).

    .venv/bin/python scripts/exact_size_data.py runs/digits32 --digits \
        /elsewhere/site-packages/sklearn/datasets/data/digits.csv.gz
"""
import argparse
import gzip
import importlib.util
import math
import os
import subprocess
import sys

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = tuple("digit%d" % d for d in range(10))  # packed in this (sorted) order: label = digit
DIGITS_CSV = ("datasets", "data", "digits.csv.gz")  # inside the sklearn package
DIGITS_COUNT = 1797
DIGITS_LEVELS = 16  # the scans' grey levels are 0-16
DIGITS_VAL = 360  # ceil(0.2 * 1797), as train_test_split(test_size=0.2)

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
         cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
DRAW_SCALE = 4  # drawn at this multiple of the output size
SCAN = 8        # then area-averaged to SCAN x SCAN
SCAN_LEVELS = 16  # and quantised to SCAN_LEVELS + 1 levels


def _tinted(rng, low, high, tint=25):
    """A BGR colour of grey level U[low, high] shifted by up to `tint` per channel."""
    return np.clip(rng.uniform(low, high) + rng.uniform(-tint, tint, 3), 0, 255).astype(
        np.float32)


def _digit_mask(digit, rng, side):
    """float32 side x side mask (0-1) of one written digit, placed, slanted and rotated."""
    font = FONTS[int(rng.integers(len(FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    thickness = int(rng.integers(max(1, side // 20), max(2, side // 9) + 1))
    text = str(digit)
    (w, h), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = side * rng.uniform(0.55, 0.8) / max(w, h)
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    mask = np.zeros((side, side), np.uint8)
    cv2.putText(mask, text, ((side - w) // 2, (side + h) // 2), font, scale, 255, thickness,
                cv2.LINE_AA)
    angle = rng.uniform(-12, 12)
    shear = rng.uniform(-0.2, 0.2)
    shift = rng.uniform(-0.08, 0.08, 2) * side
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    turn[0, 1] += shear * math.cos(math.radians(angle))
    turn[:, 2] += shift
    return cv2.warpAffine(mask, turn, (side, side)).astype(np.float32) / 255.0


def exact_size_image(label, size, seed, split_id, index):
    """One BGR uint8 size x size image of the digit `label`."""
    rng = np.random.default_rng([seed, split_id, index])
    side = size * DRAW_SCALE
    a, b = _tinted(rng, 0, 70), _tinted(rng, 0, 70)
    cells = int(rng.integers(2, 5))
    field = cv2.resize(rng.random((cells, cells)).astype(np.float32), (side, side),
                       interpolation=cv2.INTER_CUBIC)
    image = a + np.clip(field, 0, 1)[:, :, None] * (b - a)
    alpha = _digit_mask(label, rng, side)[:, :, None]
    ink = _tinted(rng, 170, 255)
    image = image * (1 - alpha) + ink * alpha
    scan = cv2.resize(image, (SCAN, SCAN), interpolation=cv2.INTER_AREA)
    scan = np.rint(scan * (SCAN_LEVELS / 255.0)) * (255.0 / SCAN_LEVELS)
    small = cv2.resize(scan, (size, size), interpolation=cv2.INTER_LINEAR)
    small += rng.normal(0, rng.uniform(2, 8), small.shape).astype(np.float32)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def write_split(root, split_id, count, size, seed):
    """root/CLASS/NNNNN.png for `count` images, classes in turn."""
    for i in range(count):
        label = i % len(CLASSES)
        folder = os.path.join(root, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "%05d.png" % i)
        if not cv2.imwrite(path, exact_size_image(label, size, seed, split_id, i)):
            sys.exit("exact_size_data: cannot write %s" % path)


def bundled_digits_csv():
    """Path of scikit-learn's digits.csv.gz in this environment (without importing it), or a
    SystemExit saying how to get the file."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("exact_size_data: scikit-learn is not installed here; install it in another "
                 "environment (pip install scikit-learn) and give --digits "
                 "SITE_PACKAGES/sklearn/%s" % "/".join(DIGITS_CSV))
    return os.path.join(list(spec.submodule_search_locations)[0], *DIGITS_CSV)


def read_digits(path):
    """(images (N, 8, 8) uint8 of grey levels 0-16, labels (N,) int) from digits.csv.gz, each row
    64 pixel values then the label."""
    try:
        with gzip.open(path, "rt") as f:
            rows = np.loadtxt(f, delimiter=",", ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        sys.exit("exact_size_data: cannot read the digits from %s: %s" % (path, e))
    if rows.shape != (DIGITS_COUNT, 65) or rows.min() < 0 or rows[:, :64].max() > DIGITS_LEVELS:
        sys.exit("exact_size_data: %s is not scikit-learn's digits.csv.gz (%d x 65 values 0-16)"
                 % (path, DIGITS_COUNT))
    return rows[:, :64].reshape(-1, 8, 8).astype(np.uint8), rows[:, 64].astype(int)


def digits_split():
    """(train, val) row indices of train_test_split(range(1797), test_size=0.2, random_state=0):
    a RandomState(0) permutation, its first 360 for validation and the rest for training."""
    order = np.random.RandomState(0).permutation(DIGITS_COUNT)
    return order[DIGITS_VAL:], order[:DIGITS_VAL]


def digit_scan_image(scan, size):
    """One 8x8 scan (levels 0-16) as a size x size grey uint8 image, enlarged bilinearly."""
    grey = scan.astype(np.float32) * (255.0 / DIGITS_LEVELS)
    big = cv2.resize(grey, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(big), 0, 255).astype(np.uint8)


def write_digits_data(out_dir, csv_path, size=32):
    """scikit-learn's digits at size x size: written, split and packed as write_exact_size_data;
    returns {train_rec, train_idx, val_rec, val_idx, train_count, val_count}."""
    scans, labels = read_digits(csv_path)
    paths = {}
    for split, rows in zip(("train", "val"), digits_split()):
        root = os.path.join(out_dir, split)
        if os.path.exists(root):
            sys.exit("exact_size_data: %s exists; give a new folder" % root)
        for row in rows:
            folder = os.path.join(root, CLASSES[labels[row]])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "%04d.png" % row)
            if not cv2.imwrite(path, digit_scan_image(scans[row], size)):
                sys.exit("exact_size_data: cannot write %s" % path)
        paths.update(_pack(root, os.path.join(out_dir, split), split))
        paths[split + "_count"] = len(rows)
    return paths


def _pack(root, prefix, split):
    subprocess.run([sys.executable, "-m", "gluon_tricks", "pack", "--workers", "1", root, prefix],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return {split + "_rec": prefix + ".rec", split + "_idx": prefix + ".idx"}


def write_exact_size_data(out_dir, size=32, train=1500, val=500, seed=0):
    """Draw, write and pack the set; returns {train_rec, train_idx, val_rec, val_idx}."""
    paths = {}
    for split_id, (split, count) in enumerate((("train", train), ("val", val))):
        root = os.path.join(out_dir, split)
        if os.path.exists(root):
            sys.exit("exact_size_data: %s exists; give a new folder" % root)
        write_split(root, split_id, count, size, seed)
        paths.update(_pack(root, os.path.join(out_dir, split), split))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to create")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (32)")
    parser.add_argument("--train", type=int, default=1500, help="training images (1500)")
    parser.add_argument("--val", type=int, default=500, help="validation images (500)")
    parser.add_argument("--seed", type=int, default=0, help="drawing seed (0)")
    parser.add_argument("--digits", nargs="?", const="", metavar="CSV",
                        help="scikit-learn's digits instead (its digits.csv.gz; alone: the one of "
                        "this environment's scikit-learn); --train/--val/--seed do not apply")
    args = parser.parse_args(argv)
    out_dir = os.path.abspath(args.out_dir)
    if args.digits is not None:
        csv_path = args.digits or bundled_digits_csv()
        if not os.path.isfile(csv_path):
            sys.exit("exact_size_data: --digits: no file %s" % csv_path)
        paths = write_digits_data(out_dir, csv_path, args.size)
    else:
        paths = write_exact_size_data(out_dir, args.size, args.train, args.val, args.seed)
    print("\n".join("%s %s" % item for item in sorted(paths.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
