"""`gluon-tricks demo-data OUT_DIR`: the embedded data set, drawn deterministically: ten classes
of shapes and textures on cluttered backgrounds, as JPEGs packed into RecordIO, so the demo and
the tests run the real pipeline."""
import fcntl
import math
import os
import shutil
import tempfile

import numpy as np

from gluon_tricks.errors import UserError

VERSION = 1  # bump when the drawing changes: cached copies are then rebuilt
CLASSES = ("disk", "ring", "square", "frame", "triangle", "cross", "star", "stripes", "checker",
           "dots")
SPLITS = {"train": 2000, "val": 500}
SIZE_RANGE = (64, 160)
MARKER = "COMPLETE"  # written last: a folder without it is incomplete
CACHE_ENV = "GLUON_TRICKS_CACHE"


TASKS = ("classification", "detection", "segmentation")


def add_arguments(parser):
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="drawing seed (default 0)")
    parser.add_argument("--task", choices=TASKS, default="classification",
                        help="classification (default): one shape per image, RecordIO packed; "
                        "detection: several shapes per image with boxes, in Pascal VOC layout; "
                        "segmentation: several shapes per image with pixel masks, in ADE20K "
                        "layout")


def run(args):
    if args.task != "classification":
        from gluon_tricks.data import demo_scenes
        print(demo_scenes.write_scene_set(args.out_dir, args.task, seed=args.seed))
        return 0
    paths = write_demo_data(args.out_dir, seed=args.seed)
    print("demo data (%d classes) in %s: %s" % (len(CLASSES), os.path.dirname(paths["train_rec"]),
          ", ".join("%s %d images (%s/, %s)" % (split, count, split, os.path.basename(
              paths[split + "_rec"])) for split, count in SPLITS.items())))
    return 0


# -- drawing ---------------------------------------------------------------------------------

def _colour(rng, avoid=None):
    """A random BGR colour; with `avoid`, one whose luma differs from it by at least 60."""
    while True:
        colour = rng.integers(0, 256, 3)
        if avoid is None or abs(_luma(colour) - _luma(avoid)) >= 60:
            return tuple(int(c) for c in colour)


def _luma(bgr):
    return 0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2]


def _background(rng, width, height):
    """A smooth random colour field: two random colours blended by low-frequency noise."""
    import cv2
    a, b = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    cells = int(rng.integers(2, 5))
    field = cv2.resize(rng.random((cells, cells)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    return a + np.clip(field, 0, 1)[:, :, None] * (b - a)


def _polygon(cx, cy, radius, angle, corners, inner=None):
    """Vertices of a regular polygon, or of a star when `inner` (the inner radius) is given."""
    points = []
    steps = corners * (2 if inner else 1)
    for k in range(steps):
        r = inner if inner and k % 2 else radius
        t = angle + 2 * math.pi * k / steps
        points.append((cx + r * math.cos(t), cy + r * math.sin(t)))
    return np.round(np.array(points)).astype(np.int32)


def _texture_mask(name, rng, width, height, period, angle):
    """1 where the stripes/checker/dots texture is 'on', over the whole image."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    phase = rng.random() * period
    if name == "stripes":
        return ((u + phase) % period) < period / 2
    if name == "checker":
        return (((u + phase) // (period / 2)) + ((v + phase) // (period / 2))) % 2 == 0
    du, dv = (u + phase) % period - period / 2, (v + phase) % period - period / 2
    return du * du + dv * dv < (period * 0.28) ** 2  # dots


def _clutter(img, rng):
    """Up to two small random blobs, drawn in place."""
    import cv2
    height, width = img.shape[:2]
    for _ in range(int(rng.integers(0, 3))):
        cv2.circle(img, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                   int(rng.integers(2, 6)), _colour(rng), -1, cv2.LINE_AA)


def _finish(img, rng):
    """Sensor noise, then the uint8 image."""
    img += rng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_shape(img, name, cx, cy, radius, angle, colour, rng, texture_side):
    """Paint class `name`'s shape onto the float BGR `img` in place; returns its region (a bool
    mask: the painted pixels, or a texture's whole patch)."""
    import cv2
    height, width = img.shape[:2]
    shape = np.zeros((height, width), np.uint8)
    centre = (int(round(cx)), int(round(cy)))
    thick = max(2, int(radius * rng.uniform(0.2, 0.35)))
    region = None
    if name == "disk":
        cv2.circle(shape, centre, int(radius), 255, -1, cv2.LINE_AA)
    elif name == "ring":
        cv2.circle(shape, centre, int(radius - thick / 2), 255, thick, cv2.LINE_AA)
    elif name in ("square", "frame"):
        square = _polygon(cx, cy, radius, angle, 4)
        if name == "square":
            cv2.fillPoly(shape, [square], 255, cv2.LINE_AA)
        else:
            cv2.polylines(shape, [_polygon(cx, cy, radius - thick / 2, angle, 4)], True, 255,
                          thick, cv2.LINE_AA)
    elif name == "triangle":
        cv2.fillPoly(shape, [_polygon(cx, cy, radius, angle, 3)], 255, cv2.LINE_AA)
    elif name == "cross":
        for t in (angle, angle + math.pi / 2):
            dx, dy = radius * math.cos(t), radius * math.sin(t)
            cv2.line(shape, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 255,
                     thick, cv2.LINE_AA)
    elif name == "star":
        cv2.fillPoly(shape, [_polygon(cx, cy, radius, angle, 5, inner=radius * 0.42)], 255,
                     cv2.LINE_AA)
    else:  # a texture patch: an elliptic region filled with stripes, checker or dots
        cv2.ellipse(shape, (centre, (2 * radius, 2 * radius * rng.uniform(0.7, 1.0)),
                            math.degrees(angle)), 255, -1, cv2.LINE_AA)
        region = shape >= 128
        period = max(6.0, texture_side * rng.uniform(0.14, 0.2))
        shape = (shape * _texture_mask(name, rng, width, height, period, angle)).astype(np.uint8)
    alpha = (shape.astype(np.float32) / 255.0)[:, :, None]
    img[...] = img * (1 - alpha) + np.array(colour, np.float32) * alpha
    return shape >= 128 if region is None else region


def draw_image(label, rng):
    """One BGR uint8 image of class `label`, drawn from `rng`."""
    width, height = (int(v) for v in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, 2))
    img = _background(rng, width, height)
    _clutter(img, rng)
    side = min(width, height)
    radius = side * rng.uniform(0.3, 0.45)
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    angle = rng.uniform(0, 2 * math.pi)
    colour = _colour(rng, avoid=img[int(cy), int(cx)])
    draw_shape(img, CLASSES[label], cx, cy, radius, angle, colour, rng, texture_side=side)
    return _finish(img, rng)


# -- the data set ----------------------------------------------------------------------------

def _write_split(root, split, count, seed):
    import cv2
    split_id = list(SPLITS).index(split)
    for name in CLASSES:
        os.makedirs(os.path.join(root, split, name), exist_ok=True)
    for i in range(count):
        label = i % len(CLASSES)
        rng = np.random.default_rng([VERSION, seed, split_id, i])
        quality = int(rng.integers(75, 96))
        ok, buf = cv2.imencode(".jpg", draw_image(label, rng), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        with open(os.path.join(root, split, CLASSES[label], "%05d.jpg" % i), "wb") as f:
            f.write(buf.tobytes())


def _paths(root):
    root = os.path.abspath(root)
    return {"train_rec": os.path.join(root, "train.rec"),
            "train_idx": os.path.join(root, "train.idx"),
            "val_rec": os.path.join(root, "val.rec"), "val_idx": os.path.join(root, "val.idx"),
            "classes_file": os.path.join(root, "train.classes.txt"),
            "train_dir": os.path.join(root, "train"), "val_dir": os.path.join(root, "val")}


def _marker_text(seed, task="classification"):
    text = "gluon-tricks demo data v%d seed %d" % (VERSION, seed)
    return text + ("\n" if task == "classification" else " task %s\n" % task)


def _is_complete(root, seed, task="classification"):
    try:
        with open(os.path.join(root, MARKER)) as f:
            return f.read() == _marker_text(seed, task)
    except OSError:
        return False


def claim_folder(out_dir, seed, task):
    """Make `out_dir` ready for the `task` set; False when it holds that very set already."""
    if _is_complete(out_dir, seed, task):
        return False
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UserError("%s exists and is not empty; give a new or empty folder" % out_dir)
    os.makedirs(out_dir, exist_ok=True)
    return True


def mark_complete(out_dir, seed, task):
    """Written last: the folder holds the whole `task` set."""
    with open(os.path.join(out_dir, MARKER), "w") as f:
        f.write(_marker_text(seed, task))


def write_demo_data(out_dir, seed=0):
    """Draw the set into out_dir (new, empty or holding it already) and pack it; its paths."""
    from gluon_tricks.data.pack import pack_folder
    out_dir = os.path.expanduser(str(out_dir))
    if not claim_folder(out_dir, seed, "classification"):
        return _paths(out_dir)
    for split, count in SPLITS.items():
        _write_split(out_dir, split, count, seed)
        pack_folder(os.path.join(out_dir, split), os.path.join(out_dir, split), workers=0,
                    progress=False)
    mark_complete(out_dir, seed, "classification")
    return _paths(out_dir)


def cache_dir():
    """$GLUON_TRICKS_CACHE/demo-data, or ~/.cache/gluon-tricks/demo-data."""
    root = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "gluon-tricks")
    return os.path.join(os.path.expanduser(root), "demo-data")


def default_demo_data():
    """The demo set under cache_dir(), drawn once, in a temporary folder renamed into place
    under a lock (no process sees half a set)."""
    final = cache_dir()
    if _is_complete(final, 0):
        return _paths(final)
    parent = os.path.dirname(final)
    try:
        os.makedirs(parent, exist_ok=True)
        lock = open(os.path.join(parent, "demo-data.lock"), "w")
    except OSError as error:
        raise UserError("cannot write the demo data cache in %s (%s); set %s to a writable folder"
                        % (parent, error.strerror, CACHE_ENV)) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse it
        if not _is_complete(final, 0):
            building = tempfile.mkdtemp(prefix="demo-data.building-", dir=parent)
            try:
                write_demo_data(building, seed=0)
                if os.path.exists(final):
                    shutil.rmtree(final)
                os.rename(building, final)
            finally:
                shutil.rmtree(building, ignore_errors=True)
    return _paths(final)
