"""Evaluation as a library: top-k counting by hand, and the logits file (what it stores, old
files still read, and `plot gap` marking the eps its models were trained with)."""
import json

import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.evaluation.logits_file import load_logits, save_logits
from gluon_tricks.evaluation.validation import count_correct


def test_count_correct_by_hand():
    logits = np.array([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # top-1 1
                       [0.6, 0.1, 0.5, 0.4, 0.3, 0.2],   # top-5 drops class 1 (the smallest)
                       [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])  # ties: argsort keeps index order
    assert count_correct(logits, np.array([1, 1, 5])) == (2, 2)
    # row 2: classes 0-3 precede 4 among the tied zeros, so 4 is not in its top 5
    assert count_correct(logits, np.array([0, 2, 4]), k=5) == (0, 2)
    assert count_correct(logits, np.array([3, 0, 0]), k=1) == (1, 1)


def _data():
    return {"source": "/val", "kind": "folder", "images": 6, "classes": 3, "input_size": 32,
            "crop_ratio": 0.875}


def test_logits_file_keeps_the_model_its_eps_and_the_data(tmp_path):
    logits = np.random.RandomState(0).randn(6, 3).astype(np.float32)
    path = str(tmp_path / "sub" / "ls.npz")
    save_logits(path, logits, np.arange(6) % 3, "resnet18_v1d", eps=0.1, data=_data(),
                params="w.params")
    loaded = load_logits(path)
    np.testing.assert_array_equal(loaded.logits, logits)
    assert loaded.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert (loaded.name, loaded.model, loaded.eps, loaded.data) == (
        "resnet18_v1d", "resnet18_v1d", 0.1, _data())
    save_logits(path, logits, np.arange(6) % 3, "resnet18_v1d")  # eps and data unknown
    assert (load_logits(path).eps, load_logits(path).data) == (None, None)


def test_logits_files_of_the_first_format_still_load(tmp_path):
    path = str(tmp_path / "old.npz")
    np.savez(path, logits=np.eye(3, dtype=np.float32), labels=np.arange(3),
             model=np.array("resnet50_v1d"))
    loaded = load_logits(path)
    assert (loaded.name, loaded.model, loaded.eps, loaded.data) == (
        "resnet50_v1d", "resnet50_v1d", None, None)


def test_a_logits_file_with_a_broken_about_entry_is_refused(tmp_path):
    path = str(tmp_path / "bad.npz")
    np.savez(path, logits=np.eye(3), about=np.array(json.dumps([1, 2])))
    with pytest.raises(UserError, match="not a JSON object"):
        load_logits(path)
    np.savez(path, logits=np.eye(3), about=np.array("{not json"))
    with pytest.raises(UserError, match="not a logits .npz file"):
        load_logits(path)


def test_plot_gap_asks_for_eps_when_the_models_disagree(cli, tmp_path):
    rng = np.random.RandomState(1)
    for name, eps in (("a", 0.1), ("b", 0.2)):
        save_logits(str(tmp_path / (name + ".npz")), rng.randn(20, 5), np.arange(20) % 5,
                    "resnet18_v1d", eps=eps)
    status, out, err = cli("plot", "gap", tmp_path / "a.npz", tmp_path / "b.npz",
                           "-o", tmp_path / "g.png")
    assert status == 2 and "different label smoothing eps (0.1, 0.2)" in err
    assert err.count("\n") == 1
    status, out, err = cli("plot", "gap", tmp_path / "a.npz", tmp_path / "b.npz", "--eps", "0.1",
                           "-o", tmp_path / "g.png")
    assert status == 0, err
