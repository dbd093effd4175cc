"""The embedded demo set: deterministic drawing, the full set's shape, and the cache that builds
it once, atomically, even with two processes asking at the same time."""
import multiprocessing
import os

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import demo_data
from gluon_tricks.data.sources import DataSource


def test_drawing_is_deterministic_and_varied():
    first = [demo_data.draw_image(i % 10, np.random.default_rng([0, i])) for i in range(20)]
    again = [demo_data.draw_image(i % 10, np.random.default_rng([0, i])) for i in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    sizes = {image.shape for image in first}
    assert len(sizes) > 10 and all(64 <= h <= 160 and 64 <= w <= 160 for h, w, _ in sizes)
    other = demo_data.draw_image(0, np.random.default_rng([1, 0]))
    assert other.shape != first[0].shape or not np.array_equal(other, first[0])


def test_full_demo_set_is_packed_balanced_and_readable_by_mxnet(tmp_path, cli):
    status, out, err = cli("demo-data", tmp_path / "demo")
    assert status == 0, err
    paths = demo_data.write_demo_data(tmp_path / "demo")  # complete already: returned as is
    assert all(os.path.exists(p) for p in paths.values())
    for split, count in (("train", 2000), ("val", 500)):
        rec = DataSource.from_rec(paths[split + "_rec"], paths[split + "_idx"])
        folder = DataSource.from_folder(paths[split + "_dir"])
        assert len(rec) == len(folder) == count and folder.ignored == 0
        assert rec.classes == folder.classes == sorted(demo_data.CLASSES)
        assert np.bincount(rec.labels).tolist() == [count // 10] * 10
    records = mx.gluon.data.vision.ImageRecordDataset(paths["val_rec"])
    image, label = records[123]
    assert 64 <= min(image.shape[:2]) and max(image.shape[:2]) <= 160
    status, out, err = cli("demo-data", paths["train_dir"])  # not empty, not a demo set
    assert status == 2 and "not empty" in err


def _build(queue, splits):
    demo_data.SPLITS = splits  # a fresh process: make the set small there too
    queue.put(demo_data.default_demo_data())


def test_default_demo_data_is_built_once_under_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(demo_data.CACHE_ENV, str(tmp_path / "cache"))
    small = {"train": 20, "val": 10}
    monkeypatch.setattr(demo_data, "SPLITS", small)
    context = multiprocessing.get_context("spawn")  # two independent processes race to build
    queue = context.Queue()
    builders = [context.Process(target=_build, args=(queue, small)) for _ in range(2)]
    for builder in builders:
        builder.start()
    results = [queue.get(timeout=60) for _ in builders]
    for builder in builders:
        builder.join()
    assert results[0] == results[1]
    paths = results[0]
    assert paths["train_rec"].startswith(str(tmp_path / "cache" / "demo-data"))
    assert len(DataSource.from_rec(paths["train_rec"])) == 20
    assert sorted(os.listdir(tmp_path / "cache")) == ["demo-data", "demo-data.lock"]  # no debris
    stamp = os.path.getmtime(paths["train_rec"])
    assert demo_data.default_demo_data() == paths and os.path.getmtime(paths["train_rec"]) == stamp
    os.remove(os.path.join(os.path.dirname(paths["train_rec"]), demo_data.MARKER))
    assert demo_data.default_demo_data() == paths  # incomplete: rebuilt
    assert os.path.exists(os.path.join(os.path.dirname(paths["train_rec"]), demo_data.MARKER))


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(demo_data.CACHE_ENV, str(blocker / "cache"))
    from gluon_tricks.errors import UserError
    with pytest.raises(UserError, match=demo_data.CACHE_ENV):
        demo_data.default_demo_data()
