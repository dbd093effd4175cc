"""`gluon-tricks plot lr|curves|gap-theory|gap`: files written in each format, not blank, drawn
from the trainer's own schedule and the logs' numbers; bad input ends in one line and status 2."""
import sys
import types

import matplotlib.image
import numpy as np
import pytest

from gluon_tricks.figures import plots
from gluon_tricks.figures.plot_command import output_path
from gluon_tricks.errors import UserError
from conftest import assert_one_line_error, current_epoch, namespace, write_log


@pytest.fixture
def drawn(monkeypatch):
    """The figures the commands save, to look at their data."""
    figures = []
    original = plots.save

    def save(figure, path, fmt):
        figures.append(figure)
        return original(figure, path, fmt)
    monkeypatch.setattr(plots, "save", save)
    return figures


def assert_png_drawn(path):
    """A PNG that is not blank: a real range of colours, a fair share of non-white pixels."""
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    rgb = image[..., :3]
    assert rgb.std() > 0.05
    assert 0.01 < np.mean(rgb.min(axis=2) < 0.9) < 0.6


def lines_of(figure):
    return [(line.get_label(), np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in figure.axes[0].get_lines() if not line.get_label().startswith("_")]


def two_logs(tmp_path):
    step = [namespace(model="resnet50_v1d", warmup_epochs=5, lr=0.4)]
    cosine = [namespace(model="resnet50_v1d", warmup_epochs=5, lr=0.4, lr_mode="cosine",
                        label_smoothing=True)]
    for epoch in range(4):
        step += current_epoch(epoch, 0.2 + 0.1 * epoch, lr=0.4 / (epoch + 1))
        cosine += current_epoch(epoch, 0.25 + 0.1 * epoch, lr=0.3 / (epoch + 1))
    return write_log(tmp_path / "step.log", step), write_log(tmp_path / "cosine.log", cosine)


def test_lr_figure_uses_the_trainers_schedule(cli, tmp_path, drawn):
    from gluon_tricks.training.schedule import lr_per_epoch, make_lr_schedule
    out = tmp_path / "lr.png"
    status, stdout, _ = cli("plot", "lr", "--num-epochs", 12, "--warmup-epochs", 2,
                            "--iters-per-epoch", 10, "--lr-decay-epoch", "4,8", "-o", out)
    assert status == 0 and stdout == "wrote %s\n" % out
    assert_png_drawn(out)
    (step_label, step_x, step_y), (cosine_label, cosine_x, cosine_y) = lines_of(drawn[0])
    assert "step" in step_label and "cosine" in cosine_label
    for mode, xs, ys in (("step", step_x, step_y), ("cosine", cosine_x, cosine_y)):
        expected = lr_per_epoch(make_lr_schedule(0.4, mode, 12, 10, warmup_epochs=2,
                                                 lr_decay_epoch="4,8"), 12, 10)
        np.testing.assert_allclose(xs, [e for e, _ in expected])
        np.testing.assert_allclose(ys, [lr for _, lr in expected])
    assert step_y.max() == pytest.approx(0.4) and step_y[-1] == pytest.approx(0.004)


def test_lr_figure_from_logs(cli, tmp_path, drawn):
    step, cosine = two_logs(tmp_path)
    out = tmp_path / "lr_logs.svg"
    status, stdout, _ = cli("plot", "lr", "--log", step, cosine, "-o", out)
    assert status == 0 and out.stat().st_size > 1000
    assert out.read_text().lstrip().startswith("<?xml")
    (label, xs, ys), _ = lines_of(drawn[0])
    assert label == "resnet50_v1d: warmup"
    # batches 49 and 99 of a 100-batch epoch (the largest batch position logged)
    np.testing.assert_allclose(xs[:3], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(ys[:3], [0.4, 0.4, 0.2])


def test_curves_of_two_logs_in_png_svg_and_pdf(cli, tmp_path, drawn):
    step, cosine = two_logs(tmp_path)
    out = tmp_path / "curves.png"
    status, stdout, _ = cli("plot", "curves", step, cosine, "-o", out)
    assert status == 0 and stdout == "wrote %s\n" % out
    assert_png_drawn(out)
    (label_a, xs, ys), (label_b, _, ys_b) = lines_of(drawn[0])
    assert label_a == "resnet50_v1d: warmup"
    assert label_b == "resnet50_v1d: warmup, cosine, label-smoothing"
    np.testing.assert_allclose(xs, [1, 2, 3, 4])
    np.testing.assert_allclose(ys, [20, 30, 40, 50])
    np.testing.assert_allclose(ys_b, [25, 35, 45, 55])
    assert drawn[0].axes[0].get_ylabel() == "validation top-1 accuracy (%)"

    status, stdout, _ = cli("plot", "curves", step, "--label", "step decay", "--format", "pdf",
                            "-o", tmp_path / "curves")
    assert status == 0 and stdout == "wrote %s\n" % (tmp_path / "curves.pdf")
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    assert lines_of(drawn[1])[0][0] == "step decay"
    status, _, _ = cli("plot", "curves", step, "--format", "svg", "-o", tmp_path / "c.svg")
    assert status == 0 and (tmp_path / "c.svg").stat().st_size > 1000


def test_curves_skip_logs_without_validation_and_fail_when_none_has_any(cli, tmp_path):
    step, _ = two_logs(tmp_path)
    bare = write_log(tmp_path / "bare.log", [namespace()] + current_epoch(0, 0.1, validation=False))
    status, stdout, err = cli("plot", "curves", step, bare, "-o", tmp_path / "c.png")
    assert status == 0 and "warning: %s: no validation lines" % bare in err
    status, out, err = cli("plot", "curves", bare, "-o", tmp_path / "d.png")
    assert_one_line_error(status, out, err, bare, "no validation lines")
    assert not (tmp_path / "d.png").exists()


def test_gap_theory(cli, tmp_path, drawn):
    out = tmp_path / "theory.png"
    status, stdout, _ = cli("plot", "gap-theory", "--classes", 10, 1000, "-o", out)
    assert status == 0
    assert stdout == "optimal gap for K = 1000, eps = 0.1: 9.10\nwrote %s\n" % out
    assert_png_drawn(out)
    curves = lines_of(drawn[0])
    assert [label for label, _, _ in curves] == ["K = 10 classes", "K = 1000 classes"]
    eps, gaps = curves[1][1], curves[1][2]
    np.testing.assert_allclose(gaps, np.log(999 * (1 - eps) / eps))
    status, out_text, err = cli("plot", "gap-theory", "--classes", 1, "-o", tmp_path / "x.png")
    assert_one_line_error(status, out_text, err, "--classes")


def _logits_file(path, model, gap, spread, n=400, classes=50):
    """Logits whose true class stands `gap` (+- spread) above N(0, 1) others."""
    rng = np.random.RandomState(0)
    logits = rng.randn(n, classes).astype(np.float32)
    labels = rng.randint(0, classes, n)
    logits[np.arange(n), labels] += gap + spread * rng.randn(n)
    np.savez(str(path), logits=logits, labels=labels.astype(np.int64), model=np.array(model))
    return str(path)


def test_gap_of_two_logits_files(cli, tmp_path, drawn):
    smooth = _logits_file(tmp_path / "ls.npz", "resnet50_v1d_ls", 6.0, 0.5)
    hard = _logits_file(tmp_path / "hard.npz", "resnet50_v1d", 12.0, 3.0)
    out = tmp_path / "gap.png"
    status, stdout, _ = cli("plot", "gap", smooth, hard, "-o", out)
    assert status == 0 and stdout.endswith("wrote %s\n" % out)
    assert "resnet50_v1d_ls: 400 images, 50 classes, median gap 6." in stdout
    assert "top-1 100.0%" in stdout
    assert_png_drawn(out)
    axes = drawn[0].axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert labels[0].startswith("resnet50_v1d_ls: median gap 6.")
    assert "optimum under label smoothing ε = 0.1, K = 50: %.2f" % np.log(49 * 9) in labels
    marked = [line.get_xdata()[0] for line in axes.get_lines()]
    assert marked == [pytest.approx(np.log(49 * 9))]
    status, _, _ = cli("plot", "gap", smooth, "--format", "pdf", "-o", tmp_path / "gap.pdf")
    assert status == 0 and (tmp_path / "gap.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("arrays, fragment", [
    (dict(logits=np.zeros((4, 3, 2))), "logits have shape (4, 3, 2)"),
    (dict(logits=np.zeros((4, 3)), labels=np.zeros((3,))), "labels have shape (3,)"),
])
def test_gap_with_logits_of_the_wrong_shape(cli, tmp_path, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(str(path), **arrays)
    status, out, err = cli("plot", "gap", path, "-o", tmp_path / "g.png")
    assert_one_line_error(status, out, err, str(path), fragment)
    assert not (tmp_path / "g.png").exists()


def test_gap_without_input(cli, tmp_path):
    status, out, err = cli("plot", "gap", "-o", tmp_path / "g.png")
    assert_one_line_error(status, out, err, "no logits given")


def test_gap_from_a_model_params_and_validation_data(cli, tmp_path, monkeypatch, drawn):
    calls = []

    def compute_logits(model_name, params_path, source, input_size, crop_ratio, batch_size,
                       num_workers):
        calls.append((model_name, params_path, source, input_size, crop_ratio, batch_size,
                      num_workers))
        rng = np.random.RandomState(1)
        return rng.randn(30, 10).astype(np.float32) + 4 * np.eye(10)[np.arange(30) % 10], \
            np.arange(30) % 10

    class StandInSource:
        @classmethod
        def from_rec(cls, rec, idx, max_bad_fraction=None):
            return ("rec", rec, idx)

        @classmethod
        def from_folder(cls, folder):
            return ("folder", folder)
    monkeypatch.setitem(sys.modules, "gluon_tricks.evaluation.validation",
                        types.SimpleNamespace(compute_logits=compute_logits))
    monkeypatch.setitem(sys.modules, "gluon_tricks.data.sources",
                        types.SimpleNamespace(DataSource=StandInSource))
    params = tmp_path / "net.params"
    params.write_bytes(b"weights")
    rec = tmp_path / "val.rec"
    rec.write_bytes(b"records")
    status, stdout, err = cli("plot", "gap", "--model", "resnet50_v1d", "--params", params,
                              "--rec-val", rec, "--batch-size", 8, "-j", 0, "-o",
                              tmp_path / "g.png")
    assert status == 0, err
    assert calls == [("resnet50_v1d", str(params), ("rec", str(rec), str(tmp_path / "val.idx")),
                      224, 0.875, 8, 0)]
    assert "resnet50_v1d: 30 images, 10 classes" in stdout and "top-1 100.0%" in stdout
    assert_png_drawn(tmp_path / "g.png")

    status, out, err = cli("plot", "gap", "--model", "resnet50_v1d", "--params",
                           tmp_path / "none.params", "--val-dir", tmp_path,
                           "-o", tmp_path / "h.png")
    assert_one_line_error(status, out, err, "none.params")


def test_output_path_rules(tmp_path):
    assert output_path(None, None, "fig") == ("fig.png", "png")
    assert output_path(str(tmp_path), "pdf", "fig") == (str(tmp_path / "fig.pdf"), "pdf")
    assert output_path("new/", None, "fig") == ("new/fig.png", "png")
    assert output_path(None, "svg", "fig") == ("fig.svg", "svg")
    assert output_path("out/a.PDF", None, "fig") == ("out/a.PDF", "pdf")
    assert output_path("out/a", "svg", "fig") == ("out/a.svg", "svg")
    assert output_path("run.v2", None, "fig") == ("run.v2.png", "png")
    with pytest.raises(UserError, match="ends in .png but --format is svg"):
        output_path("a.png", "svg", "fig")
    with pytest.raises(UserError, match="cannot write .jpg"):
        output_path("a.jpg", None, "fig")


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: str(tmp / "missing.log"), "no such file"),
    (lambda tmp: (tmp / "empty.log").write_text("") and None or str(tmp / "empty.log"),
     "empty file"),
    (lambda tmp: str(tmp), "directory with no log files"),
])
def test_curves_bad_input(cli, tmp_path, make, fragment):
    status, out, err = cli("plot", "curves", make(tmp_path), "-o", tmp_path / "c.png")
    assert_one_line_error(status, out, err, fragment)
    assert not (tmp_path / "c.png").exists()
