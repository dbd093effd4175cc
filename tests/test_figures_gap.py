"""The logit gap against its formula and a hand computation; logits files good and bad."""
import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.evaluation.logits_file import load_logits
from gluon_tricks.figures.gap import empirical_gap, theoretical_gap, top1_accuracy


def test_theoretical_gap_is_the_papers_value():
    assert round(float(theoretical_gap(1000, 0.1)), 2) == 9.10
    assert float(theoretical_gap(1000, 0.1)) == pytest.approx(np.log(999 * 0.9 / 0.1))
    assert float(theoretical_gap(2, 0.5)) == pytest.approx(0.0)
    assert float(theoretical_gap(10, 0.9)) == pytest.approx(0.0)  # eps = (K-1)/K: no gap
    gaps = theoretical_gap(1000, np.array([0.01, 0.1, 0.5]))
    assert np.all(np.diff(gaps) < 0)  # smaller eps, larger gap (unbounded as eps -> 0)
    for classes, eps in ((1, 0.1), (1000, 0.0), (1000, 1.0)):
        with pytest.raises(ValueError):
            theoretical_gap(classes, eps)


def test_empirical_gap_by_hand():
    logits = np.array([[1.0, 2.0, 3.0, 6.0],    # 6 - (1+2+3)/3 = 4
                       [0.0, 0.0, 0.0, 0.0],    # 0
                       [5.0, -1.0, 1.0, 3.0],   # 5 - (-1+1+3)/3 = 4
                       [2.0, 7.0, 7.0, -2.0]])  # a tie: 7 - (2+7-2)/3 = 14/3
    assert empirical_gap(logits) == pytest.approx([4.0, 0.0, 4.0, 14.0 / 3])
    assert top1_accuracy(logits, np.array([3, 1, 0, 2])) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        empirical_gap(np.zeros((3,)))


def _save(path, **arrays):
    np.savez(str(path), **arrays)
    return str(path)


def test_load_logits_of_eval_save_logits(tmp_path):
    logits = np.random.randn(6, 5).astype(np.float32)
    path = _save(tmp_path / "ls.npz", logits=logits, labels=np.arange(6) % 5,
                 model=np.array("resnet50_v1d"))
    loaded = load_logits(path)
    assert loaded.name == "resnet50_v1d"
    np.testing.assert_array_equal(loaded.logits, logits)
    assert loaded.labels.tolist() == [0, 1, 2, 3, 4, 0]
    unnamed = load_logits(_save(tmp_path / "plain.npz", logits=logits))
    assert unnamed.name == "plain" and unnamed.labels is None


@pytest.mark.parametrize("arrays, message", [
    (dict(logits=np.zeros(10), labels=np.zeros(10)), r"shape \(10,\)"),
    (dict(logits=np.zeros((2, 3, 4))), r"shape \(2, 3, 4\)"),
    (dict(logits=np.zeros((4, 1))), r"K >= 2"),
    (dict(logits=np.zeros((0, 10))), r"N >= 1"),
    (dict(logits=np.zeros((4, 10)), labels=np.zeros(5)), r"labels have shape \(5,\)"),
    (dict(logits=np.full((2, 3), np.nan)), "finite"),
    (dict(scores=np.zeros((2, 3))), "no 'logits' array"),
])
def test_bad_logits_files(tmp_path, arrays, message):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message) as error:
        load_logits(path)
    assert path in str(error.value) and "\n" not in str(error.value)


def test_files_that_are_not_npz(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("not numpy\n")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    single = tmp_path / "single.npy"
    np.save(str(single), np.zeros((3, 4)))
    for path, message in ((text, "not a logits .npz"), (empty, "empty file"),
                          (single, "single array"), (tmp_path / "missing.npz", "no such file"),
                          (tmp_path, "is a directory")):
        with pytest.raises(UserError, match=message):
            load_logits(str(path))
