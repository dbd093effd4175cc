"""`gluon-tricks demo-data --task detection|segmentation`: scenes of several demo shapes, drawn
deterministically, written as a small Pascal VOC detection set or ADE20K segmentation set.

The shapes, colours, backgrounds and noise are the classification demo's (demo_data.py); a scene
places one to three of them without overlap, so each object's box and mask are exact.
"""
import math
import os

import numpy as np

from gluon_tricks.data import ade20k, voc
from gluon_tricks.data.demo_data import (CLASSES, _background, _clutter, _colour, _finish,
                                         claim_folder, draw_shape, mark_complete)

SCENE_SIZE_RANGE = (64, 96)
OBJECTS_RANGE = (1, 3)
MIN_RADIUS = 9
JPEG_QUALITY = 90
VOC_YEAR = 2007
# split name -> image count; VOC's trainval/test, ADE20K's train/val
DETECTION_SPLITS = {"trainval": 100, "test": 40}
SEGMENTATION_SPLITS = {"train": 100, "val": 40}
_STREAM_IDS = {"trainval": 0, "test": 1, "train": 2, "val": 3}


def draw_scene(rng):
    """(BGR uint8 image, objects): objects are (label, (x0, y0, x1, y1) 0-based inclusive box,
    bool region mask), placed so that their bounding circles do not overlap."""
    width, height = (int(v) for v in rng.integers(SCENE_SIZE_RANGE[0], SCENE_SIZE_RANGE[1] + 1,
                                                  2))
    img = _background(rng, width, height)
    _clutter(img, rng)
    side = min(width, height)
    circles, objects = [], []
    for _ in range(int(rng.integers(OBJECTS_RANGE[0], OBJECTS_RANGE[1] + 1))):
        label = int(rng.integers(len(CLASSES)))
        for _attempt in range(20):
            radius = rng.uniform(MIN_RADIUS, 0.3 * side)
            cx = rng.uniform(radius + 1, width - radius - 1)
            cy = rng.uniform(radius + 1, height - radius - 1)
            if all(math.hypot(cx - x, cy - y) > radius + r + 2 for x, y, r in circles):
                break
        else:
            continue  # no room left for this one
        circles.append((cx, cy, radius))
        angle = rng.uniform(0, 2 * math.pi)
        colour = _colour(rng, avoid=img[int(cy), int(cx)])
        region = draw_shape(img, CLASSES[label], cx, cy, radius, angle, colour, rng,
                            texture_side=2.6 * radius)
        ys, xs = np.nonzero(region)
        if len(xs):
            objects.append((label, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())),
                            region))
    return _finish(img, rng), objects


def _scenes(split, count, seed):
    for i in range(count):
        yield i, draw_scene(np.random.default_rng([seed, 17, _STREAM_IDS[split], i]))


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _encoded(extension, image, params=()):
    import cv2
    ok, buf = cv2.imencode(extension, image, list(params))
    assert ok, "OpenCV could not encode a %s" % extension
    return buf.tobytes()


def write_detection_set(out_dir, seed=0):
    """The detection set in VOC layout under out_dir/VOCdevkit/VOC2007; returns {split: (images,
    objects)}."""
    folder = voc.year_folder(os.path.join(out_dir, "VOCdevkit"), VOC_YEAR)
    counts, offset = {}, 0
    for split, count in DETECTION_SPLITS.items():
        ids, objects = [], 0
        for i, (image, scene) in _scenes(split, count, seed):
            image_id = "%06d" % (offset + i)
            ids.append(image_id)
            _write(os.path.join(folder, voc.IMAGES, image_id + ".jpg"),
                   _encoded(".jpg", image, (_jpeg_quality_flag(), JPEG_QUALITY)))
            boxes = [(CLASSES[label], tuple(v + 1 for v in box)) for label, box, _ in scene]
            _write(os.path.join(folder, voc.ANNOTATIONS, image_id + ".xml"),
                   voc.annotation_xml(image_id + ".jpg", image.shape[1], image.shape[0], boxes))
            objects += len(boxes)
        offset += count
        _write(os.path.join(folder, voc.IMAGE_SETS, split + ".txt"),
               "".join(i + "\n" for i in ids).encode())
        counts[split] = (count, objects)
    return counts


def write_segmentation_set(out_dir, seed=0):
    """The segmentation set in ADE20K layout under out_dir/ADEChallengeData2016: masks hold 0
    for background (ignored, as ADE20K's "other") and 1..10 for the demo classes; returns
    {split: (images, objects)}."""
    counts = {}
    for split, count in SEGMENTATION_SPLITS.items():
        images_dir, masks_dir = ade20k.split_folders(out_dir, split)
        prefix = "ADE_train_" if split == "train" else "ADE_val_"
        objects = 0
        for i, (image, scene) in _scenes(split, count, seed):
            stem = "%s%08d" % (prefix, i + 1)
            mask = np.zeros(image.shape[:2], np.uint8)
            for label, _, region in scene:
                mask[region] = label + 1
            _write(os.path.join(images_dir, stem + ".jpg"),
                   _encoded(".jpg", image, (_jpeg_quality_flag(), JPEG_QUALITY)))
            _write(os.path.join(masks_dir, stem + ".png"), _encoded(".png", mask))
            objects += len(scene)
        counts[split] = (count, objects)
    return counts


def _jpeg_quality_flag():
    import cv2
    return cv2.IMWRITE_JPEG_QUALITY


WRITERS = {"detection": (write_detection_set, "Pascal VOC layout, VOCdevkit/VOC2007"),
           "segmentation": (write_segmentation_set, "ADE20K layout, %s" % ade20k.BASE_DIR)}


def write_scene_set(out_dir, task, seed=0):
    """Write the `task` set into out_dir (new, empty, or already holding this very set); returns
    the one-line summary that `demo-data` prints."""
    out_dir = os.path.expanduser(str(out_dir))
    writer, layout = WRITERS[task]
    if claim_folder(out_dir, seed, task):
        counts = writer(out_dir, seed)
        mark_complete(out_dir, seed, task)
    else:
        counts = {split: (n, None) for split, n in (DETECTION_SPLITS if task == "detection"
                                                    else SEGMENTATION_SPLITS).items()}
    return "demo %s data (%d classes, %s) in %s: %s" % (
        task, len(CLASSES), layout, os.path.abspath(out_dir), ", ".join(
            "%s %d images%s" % (split, n, "" if objects is None else " with %d objects" % objects)
            for split, (n, objects) in counts.items()))
