"""`gluon-tricks plot lr|curves|gap-theory|gap`: files written in each format, not blank, drawn
from the trainer's own schedule and the logs' numbers; bad input ends in one line and status 2."""
import json
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


def _seed_logs(tmp_path, finals):
    """One log per seed of one configuration; seed s reaches top-1 finals[s] - 0.1 * (3 - epoch)."""
    paths = []
    for seed, final in enumerate(finals):
        lines = [namespace(model="resnet18_v1d", lr_mode="cosine", seed=seed, num_epochs=4)]
        for epoch in range(4):
            lines += current_epoch(epoch, final - 0.1 * (3 - epoch))
        paths.append(write_log(tmp_path / ("cosine_seed%d.log" % seed), lines))
    return paths


def test_curves_group_seeds_draw_the_mean_and_the_min_max_band(cli, tmp_path, drawn):
    seeds = _seed_logs(tmp_path, [0.60, 0.70, 0.68])
    step, _ = two_logs(tmp_path)
    status, _, err = cli("plot", "curves", "--group-seeds", *seeds, step, "-o", tmp_path / "a.png")
    assert status == 0, err
    axes = drawn[0].axes[0]
    (label, xs, ys), (single_label, _, single_ys) = lines_of(drawn[0])
    assert label == "resnet18_v1d: cosine (seeds 0, 1, 2)"
    np.testing.assert_allclose(xs, [1, 2, 3, 4])
    np.testing.assert_allclose(ys, [100 * (0.66 - 0.1 * (3 - e)) for e in range(4)])
    assert single_label == "resnet50_v1d: warmup"
    np.testing.assert_allclose(single_ys, [20, 30, 40, 50])
    (band,) = axes.collections  # one band: the single log has none
    vertices = band.get_paths()[0].vertices
    for epoch in range(4):
        at = {round(y, 6) for x, y in vertices if x == epoch + 1}
        assert at == {round(100 * (f - 0.1 * (3 - epoch)), 6) for f in (0.60, 0.70)}
    assert "min to max" in axes.get_title()
    # the same mean as the grouped report's table
    status, out, _ = cli("report", "--group-seeds", "--json", *seeds)
    assert json.loads(out)[0]["mean_top1"] == pytest.approx(ys[-1])


def test_curves_without_group_seeds_name_repeated_configurations_by_file(cli, tmp_path, drawn):
    seeds = _seed_logs(tmp_path, [0.60, 0.70, 0.68])
    status, _, err = cli("plot", "curves", *seeds[:2], "-o", tmp_path / "a.png")
    assert status == 0, err
    assert [label for label, _, _ in lines_of(drawn[0])] == [
        "resnet18_v1d: cosine (cosine_seed0.log)", "resnet18_v1d: cosine (cosine_seed1.log)"]
    assert not drawn[0].axes[0].collections
    status, _, err = cli("plot", "curves", "--group-seeds", *seeds, "--label", "a", "--label",
                         "b", "-o", tmp_path / "b.png")
    assert_one_line_error(status, _, err, "2 --label for 1 line")


def test_logged_step_decay_is_drawn_as_steps_at_the_epoch_boundary(cli, tmp_path, drawn):
    """Step decay changes the lr only at an epoch's start: the line drops vertically there;
    warmup and cosine change it every iteration: their logged points are joined by lines."""
    step = [namespace(model="resnet18_v1d", warmup_epochs=1, lr_decay_epoch="2,3")]
    cosine = [namespace(model="resnet18_v1d", warmup_epochs=1, lr_mode="cosine")]
    for epoch, lr in enumerate([0.05, 0.1, 0.01, 0.001]):
        step += current_epoch(epoch, 0.5, lr=lr)
        cosine += current_epoch(epoch, 0.5, lr=[0.05, 0.1, 0.06, 0.02][epoch])
    status, _, err = cli("plot", "lr", "--log", write_log(tmp_path / "step.log", step),
                         write_log(tmp_path / "cosine.log", cosine), "-o", tmp_path / "lr.png")
    assert status == 0, err
    (_, step_x, step_y), (_, cosine_x, cosine_y) = lines_of(drawn[0])
    # batches 49 and 99 of 100: the points at epoch + 0.5 and epoch + 1
    np.testing.assert_allclose(step_x, [0.5, 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4])
    np.testing.assert_allclose(step_y, [0.05, 0.05, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001,
                                        0.001])
    np.testing.assert_allclose(cosine_x, [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])


def test_logged_step_decay_between_points_epochs_apart_stays_a_line(cli, tmp_path, drawn):
    """A log line every 2 epochs cannot say at which boundary the lr dropped: no step is made up."""
    lines = [namespace(model="resnet18_v1d", lr_decay_epoch="3")]
    for epoch, lr in enumerate([0.1, 0.1, 0.1, 0.01, 0.01]):
        lines += current_epoch(epoch, 0.5, lr=lr, batches=(99,) if epoch % 2 == 0 else ())
    status, _, err = cli("plot", "lr", "--log", write_log(tmp_path / "sparse.log", lines),
                         "-o", tmp_path / "lr.png")
    assert status == 0, err
    (_, xs, ys), = lines_of(drawn[0])
    np.testing.assert_allclose(xs, [1, 3, 5])
    np.testing.assert_allclose(ys, [0.1, 0.1, 0.01])


def _saved_logits(path, model, eps, classes=10):
    from gluon_tricks.evaluation.logits_file import save_logits
    rng = np.random.RandomState(0)
    labels = np.arange(40) % classes
    save_logits(str(path), rng.randn(40, classes) + 5 * np.eye(classes)[labels], labels, model,
                eps=eps)
    return str(path)


def test_gap_legends_name_the_model_and_eps_of_the_logits_files(cli, tmp_path, drawn):
    hard = _saved_logits(tmp_path / "3_cosine_seed0.logits.npz", "resnet18_v1d", 0.0)
    smooth = _saved_logits(tmp_path / "4_ls_seed0.logits.npz", "resnet18_v1d", 0.1)
    status, out, err = cli("plot", "gap", hard, smooth, "-o", tmp_path / "gap.png")
    assert status == 0, err
    labels = drawn[0].axes[0].get_legend_handles_labels()[1]
    assert labels[0].startswith("resnet18_v1d, eps=0 (one-hot): median gap ")
    assert labels[1].startswith("resnet18_v1d, label smoothing eps=0.1: median gap ")
    assert "resnet18_v1d, label smoothing eps=0.1: 40 images, 10 classes" in out
    # two files of the same model and eps: told apart by their file names
    again = _saved_logits(tmp_path / "4_ls_seed1.logits.npz", "resnet18_v1d", 0.1)
    status, out, err = cli("plot", "gap", smooth, again, "-o", tmp_path / "gap2.png")
    assert status == 0, err
    labels = drawn[1].axes[0].get_legend_handles_labels()[1]
    assert labels[0].startswith("resnet18_v1d, label smoothing eps=0.1 (4_ls_seed0.logits.npz):")
    assert labels[1].startswith("resnet18_v1d, label smoothing eps=0.1 (4_ls_seed1.logits.npz):")


def test_gap_theory_takes_k_and_eps_from_logits_files(cli, tmp_path, drawn):
    smooth = _saved_logits(tmp_path / "ls.npz", "resnet18_v1d", 0.2, classes=10)
    status, out, err = cli("plot", "gap-theory", smooth, "-o", tmp_path / "a.png")
    assert status == 0, err
    assert out.startswith("optimal gap for K = 10, eps = 0.2: %.2f\n" % np.log(9 * 0.8 / 0.2))
    curves = lines_of(drawn[0])
    assert [label for label, _, _ in curves] == ["K = 10 classes"]
    np.testing.assert_allclose(curves[0][2], np.log(9 * (1 - curves[0][1]) / curves[0][1]))
    # --classes adds curves; the mark stays at the data's K
    status, out, err = cli("plot", "gap-theory", smooth, "--classes", 1000, "--eps", 0.1,
                           "-o", tmp_path / "b.png")
    assert status == 0, err
    assert out.startswith("optimal gap for K = 10, eps = 0.1: %.2f\n" % np.log(9 * 9))
    assert [label for label, _, _ in lines_of(drawn[1])] == ["K = 10 classes", "K = 1000 classes"]
    # nothing to match: the paper's K = 1000
    status, out, _ = cli("plot", "gap-theory", "-o", tmp_path / "c.png")
    assert status == 0 and out.startswith("optimal gap for K = 1000, eps = 0.1: 9.10\n")


def test_an_unwritable_output_ends_in_one_line(cli, tmp_path):
    step, _ = two_logs(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    status, out, err = cli("plot", "curves", step, "-o", blocker / "fig.png")
    assert_one_line_error(status, out, err, "cannot write %s" % (blocker / "fig.png"))


def test_group_seeds_draw_only_the_epochs_every_seed_validated(cli, tmp_path, drawn):
    seeds = _seed_logs(tmp_path, [0.60, 0.70])
    gappy = [namespace(model="resnet18_v1d", lr_mode="cosine", seed=2, num_epochs=4)]
    for epoch in range(4):
        gappy += current_epoch(epoch, 0.5, validation=epoch != 1)
    seeds.append(write_log(tmp_path / "cosine_seed2.log", gappy))
    status, _, err = cli("plot", "curves", "--group-seeds", *seeds, "-o", tmp_path / "a.png")
    assert status == 0
    (_, xs, ys), = lines_of(drawn[0])
    np.testing.assert_allclose(xs, [1, 3, 4])
    np.testing.assert_allclose(ys[-1], 100 * (0.60 + 0.70 + 0.5) / 3)
    assert err.count("epoch(s) 2 not drawn: not validated in every seed") == 2
    bare = [namespace(model="resnet18_v1d", lr_mode="cosine", seed=3, num_epochs=4)]
    for epoch in range(4):
        bare += current_epoch(epoch, 0.5, validation=False)
    bare = write_log(tmp_path / "cosine_seed3.log", bare)
    status, out, err = cli("plot", "curves", "--group-seeds", seeds[0], bare,
                           "-o", tmp_path / "b.png")
    assert_one_line_error(status, out, err, "no epoch validated in every seed", bare)
