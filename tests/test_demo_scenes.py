"""`demo-data --task detection|segmentation`: deterministic sets in VOC and ADE20K layout that
GluonCV's own readers read, with boxes and masks that match the drawn shapes."""
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from gluon_tricks.data import ade20k, demo_data, demo_scenes, voc
from gluon_tricks.data.demo_data import CLASSES


def _tree_digest(root):
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def scene_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for task in ("detection", "segmentation"):
        demo_scenes.write_scene_set(str(root / task), task)
    return root


def test_classification_drawing_is_unchanged_by_the_shared_shape_code():
    """draw_shape was factored out of draw_image: the classification images keep their bytes
    (digest of these 60 images taken before the change, with this environment's OpenCV)."""
    digest = hashlib.sha256()
    for i in range(60):
        rng = np.random.default_rng([1, 0, 0, i])
        digest.update(demo_data.draw_image(i % 10, rng).tobytes())
        digest.update(rng.integers(0, 1 << 30, 1).tobytes())  # the stream ends where it did
    assert digest.hexdigest() == \
        "327616f9a429ee34553fb1a0c94d12bb31a6dde74b732f17265d32f05ca8c473"


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_sets_are_the_same_bytes_twice_and_differ_by_seed(task, scene_sets, tmp_path, cli):
    status, out, err = cli("demo-data", "--task", task, tmp_path / "again")
    assert status == 0 and err == ""
    assert out.startswith("demo %s data (10 classes" % task) and "100 images" in out
    assert _tree_digest(tmp_path / "again") == _tree_digest(scene_sets / task)
    status, out, _ = cli("demo-data", "--task", task, tmp_path / "again")  # complete: reused
    assert status == 0
    demo_scenes.write_scene_set(str(tmp_path / "seed1"), task, seed=1)
    assert _tree_digest(tmp_path / "seed1") != _tree_digest(scene_sets / task)


def test_a_folder_holding_another_task_is_refused(scene_sets, cli):
    status, out, err = cli("demo-data", "--task", "segmentation", scene_sets / "detection")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "exists and is not empty" in err


def test_gluoncvs_voc_reader_reads_the_detection_set(scene_sets):
    root = str(scene_sets / "detection" / "VOCdevkit")
    counts = voc.validate_voc(root, [(2007, "trainval"), (2007, "test")], CLASSES)
    for name, images in (("trainval", 100), ("test", 40)):
        labels = voc.gluoncv_dataset(root, [(2007, name)], CLASSES)._label_cache
        assert counts[(2007, name)] == (images, sum(len(label) for label in labels))
    dataset = voc.gluoncv_dataset(root, [(2007, "trainval")], CLASSES)
    assert len(dataset) == 100
    seen = set()
    for index in range(0, 100, 7):
        image, label = dataset[index]
        image = image.asnumpy()
        assert 64 <= min(image.shape[:2]) and max(image.shape[:2]) <= 96
        assert 1 <= len(label) <= 3
        for xmin, ymin, xmax, ymax, class_id, difficult in label:
            seen.add(int(class_id))
            assert difficult == 0 and 0 <= xmin < xmax <= image.shape[1]
            # the object sits in its box: the box's pixels vary far more than a background's
            patch = image[int(ymin):int(ymax) + 1, int(xmin):int(xmax) + 1].astype(float)
            assert patch.std() > 10
    assert len(seen) >= 5


def test_gluoncvs_ade20k_reader_reads_the_segmentation_set(scene_sets):
    from gluoncv.data import ADE20KSegmentation
    root = str(scene_sets / "segmentation")
    for split, count in (("train", 100), ("val", 40)):
        assert ade20k.validate_ade20k(root, split, num_classes=len(CLASSES))["images"] == count
        dataset = ADE20KSegmentation(root=root, split=split, mode="testval")
        assert len(dataset) == count
    image, mask = dataset[3]  # GluonCV shifts labels by -1: background (0) becomes -1, ignored
    written = np.array(Image.open(dataset.masks[3]))
    assert np.array_equal(mask.asnumpy(), written.astype(np.int32) - 1)
    assert image.shape[:2] == written.shape
    assert set(np.unique(written)) - {0} and 0 in written  # objects and background
    assert written.max() <= len(CLASSES)


def test_masks_and_boxes_agree_with_the_drawn_regions():
    image, objects = demo_scenes.draw_scene(np.random.default_rng([0, 17, 2, 5]))
    for label, (x0, y0, x1, y1), region in objects:
        ys, xs = np.nonzero(region)
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)
        assert 0 <= label < len(CLASSES)
    regions = [o[2] for o in objects]
    assert sum(r.sum() for r in regions) == np.logical_or.reduce(regions).sum()  # disjoint
