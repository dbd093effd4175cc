"""The ADE20K scene-parsing layout (ADEChallengeData2016/images|annotations/training|validation,
JPEG images with PNG masks of the same name; mask value 0 = other/ignored, 1..K the classes) and
a check of a set before training.

GluonCV's ADE20KSegmentation prints and skips an image without its mask and never compares a
mask with its image; `validate_ade20k` refuses those and out-of-range labels with one line.
"""
import os

import numpy as np

from gluon_tricks.errors import UserError

BASE_DIR = "ADEChallengeData2016"
SPLIT_FOLDERS = {"train": "training", "val": "validation"}
NUM_CLASSES = 150  # ADE20K's SceneParsing benchmark


def split_folders(root, split):
    """(images folder, annotations folder) of `split` ('train' or 'val') under `root` (the
    folder holding ADEChallengeData2016, as GluonCV's `root`)."""
    sub = SPLIT_FOLDERS[split]
    base = os.path.join(root, BASE_DIR)
    return os.path.join(base, "images", sub), os.path.join(base, "annotations", sub)


def _listing(folder, extension):
    try:
        names = os.listdir(folder)
    except OSError:
        raise UserError("no folder %s (the ADE20K layout: %s/images|annotations/"
                        "training|validation)" % (folder, BASE_DIR)) from None
    return {os.path.splitext(n)[0]: n for n in sorted(names) if n.lower().endswith(extension)}


def _read_mask(path):
    from PIL import Image
    try:
        with Image.open(path) as mask:
            if mask.mode not in ("L", "P"):
                raise UserError("mask %s is %s, not one label per pixel (a greyscale or palette "
                                "PNG)" % (path, mask.mode))
            return np.array(mask)
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError("cannot read the mask %s (%s)" % (path, error)) from None


def _image_size(path):
    from PIL import Image
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError("cannot read the image %s (%s)" % (path, error)) from None


def validate_ade20k(root, split="train", num_classes=NUM_CLASSES):
    """Check one split: images and masks pair up one to one, each mask has its image's size and
    labels in 0..num_classes. Returns {"images": n, "labels": sorted labels seen}; raises
    UserError naming the first defect."""
    images_dir, masks_dir = split_folders(root, split)
    images, masks = _listing(images_dir, ".jpg"), _listing(masks_dir, ".png")
    if not images:
        raise UserError("no .jpg images in %s" % images_dir)
    for stem in sorted(set(images) ^ set(masks)):
        if stem in images:
            raise UserError("image %s has no mask %s" % (
                os.path.join(images_dir, images[stem]), os.path.join(masks_dir, stem + ".png")))
        raise UserError("mask %s has no image %s" % (
            os.path.join(masks_dir, masks[stem]), os.path.join(images_dir, stem + ".jpg")))
    seen = set()
    for stem in sorted(images):
        image_path, mask_path = (os.path.join(images_dir, images[stem]),
                                 os.path.join(masks_dir, masks[stem]))
        mask = _read_mask(mask_path)
        width, height = _image_size(image_path)
        if mask.shape[:2] != (height, width):
            raise UserError("mask %s is %dx%d but its image %s is %dx%d" % (
                mask_path, mask.shape[1], mask.shape[0], image_path, width, height))
        labels = np.unique(mask)
        if labels.max() > num_classes:
            raise UserError("mask %s has labels out of range: %s (0 = ignored, 1..%d the "
                            "classes)" % (mask_path, ", ".join(
                                str(v) for v in labels[labels > num_classes][:5]), num_classes))
        seen.update(int(v) for v in labels)
    return {"images": len(images), "labels": sorted(seen)}
