"""The reproduction kit in scripts/: one recipe per row of the paper's Tables 2-6, and
prepare_imagenet.sh.

Every recipe runs with DRY_RUN=1 (plain bash, no GPU): it must print one horovodrun command whose
`gluon-tricks train` flags the real parser accepts and whose values are the paper's row, as
gluon_tricks.paper.RECIPES names it (the one table of the paper's rows; the scripts' headers and
scripts/README.md are checked against it). Real launches run against stub `horovodrun` and
`gluon-tricks` commands that record their arguments; bad input must end with one line on stderr.
"""
import argparse
import os
import re
import shlex
import stat
import subprocess
import sys
import tarfile

import pytest

from gluon_tricks import paper
from gluon_tricks.training import checkpoint
from gluon_tricks.training.config import add_arguments, tricks_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
# Top-level scripts that are not recipes of a paper row.
NOT_RECIPES = {"install_env.sh", "docker_check.sh", "prepare_imagenet.sh", "cpu_ablation.sh",
               "fetch_gluoncv_logs.sh", "augmentation_probe.py", "twin_runs.py", "gpu_check.sh",
               "finetune_demo.sh", "exact_size_data.py", "reproduce_numbers.sh",
               "segment_demo.sh", "detection_twin.py", "segmentation_twin.py"}
# The Table 9 recipes (FCN on ADE20K from a Table 5/6 backbone): `segment train`, not `train`.
SEGMENTATION_PREFIX = "table9_fcn_"
# Variables the scripts read: cleared so that the caller's shell cannot leak into a test.
SCRIPT_VARIABLES = ("NP", "HOSTS", "DATA_DIR", "REC_DIR", "REC_TRAIN", "REC_TRAIN_IDX", "REC_VAL",
                    "REC_VAL_IDX", "OUT_DIR", "TEACHER_PARAMS", "WORKERS", "HOROVODRUN_ARGS",
                    "DRY_RUN", "IMAGENET_DIR", "IMAGE_DIR", "VAL_LABELS", "WORK_DIR", "RESIZE",
                    "QUALITY", "PYTHON", "BASE_URL", "VOC_DIR", "ADE_ROOT", "BACKBONE_PARAMS",
                    "NGPUS")

# The recipes: script -> paper.Recipe (row, model, total batch, epochs, lr mode, tricks). The
# total batch is 256 or 1024 as in the paper; lr must be 0.1 x total / 256.
EXPECTED = paper.RECIPES
TEACHER = paper.TEACHER_RECIPE
# Table 8's recipes: script -> its paper.TransferRow (named after the backbone's recipe).
DETECTION = {"table8_faster_rcnn_" + (row.recipe.split("_", 1)[1] if row.recipe
                                      else row.backbone): row for row in paper.TABLE8_ROWS}
# A recipe's header names its row on one line: "# Paper row: <PaperRow.describe()>."
HEADER_ROW = re.compile(r"^# Paper row: (.*)\.$", re.MULTILINE)


def header_row(name):
    """The paper row the header of scripts/<name>.sh names, or None (the teacher names none)."""
    with open(os.path.join(SCRIPTS, name + ".sh")) as f:
        found = HEADER_ROW.findall(f.read())
    assert len(found) <= 1, "%s.sh names %d paper rows" % (name, len(found))
    if not found or found[0].startswith("none"):
        return None
    rows = [row for row in paper.ROWS if row.describe() == found[0]]
    assert rows, "%s.sh names a row gluon_tricks.paper does not have: %s" % (name, found[0])
    return rows[0]


def recipes_on_disk():
    """The classification recipes (Tables 2-6); Tables 8 and 9's transfer recipes apart."""
    return sorted(f[:-3] for f in os.listdir(SCRIPTS) if f.startswith("table")
                  and f.endswith(".sh") and not f.startswith(("table8_", SEGMENTATION_PREFIX)))


def segmentation_recipes_on_disk():
    return sorted(f[:-3] for f in os.listdir(SCRIPTS)
                  if f.startswith(SEGMENTATION_PREFIX) and f.endswith(".sh"))


def write_stub(folder, name):
    """An executable `name` that records each call's arguments (one a line) in its own file."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write('#!/usr/bin/env bash\nset -eu\nout="$STUB_CALLS/%s.$$"\n'
                'printf "%%s\\n" "$@" > "$out"\n'
                '[ "${1:-}" != pack ] || touch "$3.rec" "$3.idx"\n' % name)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def stub_calls(calls_dir, name):
    """The recorded calls of a stub, each as its argument list."""
    calls = []
    for f in sorted(os.listdir(calls_dir)):
        if f.startswith(name + "."):
            with open(os.path.join(calls_dir, f)) as handle:
                calls.append(handle.read().splitlines())
    return calls


@pytest.fixture
def sandbox(tmp_path):
    """run(script, *args, **env) -> CompletedProcess, with stubs first on PATH and a clean env."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    for name in ("horovodrun", "gluon-tricks"):
        write_stub(str(bin_dir), name)
    base = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARIABLES}
    base.update(PATH="%s:%s" % (bin_dir, os.environ["PATH"]), STUB_CALLS=str(calls),
                OUT_DIR=str(tmp_path / "out"))

    def run(script, *args, **env):
        merged = dict(base, **{k: str(v) for k, v in env.items()})
        return subprocess.run(["bash", os.path.join(SCRIPTS, script), *map(str, args)],
                              env=merged, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    run.tmp = tmp_path
    run.calls = lambda name: stub_calls(str(calls), name)
    return run


def train_parser():
    parser = argparse.ArgumentParser(prog="gluon-tricks train")
    add_arguments(parser)
    return parser


def dry_run(sandbox, name, *args, **env):
    """The printed command of a recipe as its words; checks it is one line and nothing else."""
    result = sandbox(name + ".sh", *args, DRY_RUN=1, **env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return shlex.split(lines[0])


def split_command(words):
    """(horovodrun words, the `gluon-tricks train` flags)."""
    at = words.index("gluon-tricks")
    assert words[at + 1] == "train"
    return words[:at], words[at + 2:]


def test_every_row_of_the_paper_has_a_recipe_and_every_recipe_a_row():
    assert recipes_on_disk() == sorted(EXPECTED)
    others = sorted(set(os.listdir(SCRIPTS)) - NOT_RECIPES - {n + ".sh" for n in EXPECTED}
                    - {n + ".sh" for n in DETECTION}
                    - {n + ".sh" for n in segmentation_recipes_on_disk()}
                    - {"lib", "README.md", "__pycache__"})  # bytecode of an imported script
    assert others == [], "scripts/ holds scripts this test does not know: %s" % others


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_prints_a_horovodrun_command_with_the_papers_values(sandbox, name):
    recipe = EXPECTED[name]
    model, total, epochs, lr_mode, tricks = (recipe.model, recipe.batch, recipe.epochs,
                                             recipe.lr_mode, list(recipe.tricks))
    rec, out = sandbox.tmp / "rec", sandbox.tmp / "out"
    launcher, flags = split_command(dry_run(sandbox, name, REC_DIR=rec))
    assert launcher == ["horovodrun", "-np", "8", "-H", "localhost:8"]
    config = train_parser().parse_args(flags)  # exits (fails) on a flag `train` does not know

    assert config.model == model
    assert config.batch_size * 8 == total and config.num_gpus == 1
    assert config.lr == pytest.approx(0.1 * total / 256)  # the linear scaling rule
    assert config.num_epochs == epochs and config.lr_mode == lr_mode
    assert tricks_of(config) == tricks
    assert config.warmup_epochs == (5 if "warmup" in tricks else 0)
    assert (config.momentum, config.wd) == (0.9, 0.0001)
    if lr_mode == "step":
        assert config.lr_decay_epoch == "30,60,90" and config.lr_decay == 0.1
    assert config.input_size == (299 if model == "inceptionv3" else None)
    assert config.label_smoothing_eps == 0.1
    if config.mixup:
        assert (config.mixup_alpha, config.mixup_off_epoch, config.num_epochs) == (0.2, 0, 200)
    if config.teacher:
        teacher_model, teacher_epochs = EXPECTED[TEACHER].model, EXPECTED[TEACHER].epochs
        assert config.teacher == teacher_model
        assert (config.temperature, config.hard_weight) == (20.0, 0.5)
        # The default teacher weights are the teacher recipe's last checkpoint, as it names it.
        assert config.teacher_params == checkpoint.checkpoint_prefix(
            str(out / TEACHER), teacher_model, teacher_epochs) + ".params"
    assert config.use_rec and (config.rec_train, config.rec_train_idx, config.rec_val,
                               config.rec_val_idx) == tuple(
        str(rec / f) for f in ("train.rec", "train.idx", "val.rec", "val.idx"))
    assert config.save_dir == str(out / name)
    assert config.logging_file == str(out / name / (name + ".log"))


def test_the_models_are_ones_the_package_builds():
    from gluon_tricks.models import MODEL_NAMES
    assert {recipe.model for recipe in EXPECTED.values()} <= set(MODEL_NAMES)


class ImageNetTrainingSet:
    """What resolve() reads of a training source: ImageNet-1k's size and classes."""
    num_classes = 1000

    def __len__(self):
        return 1281167


def logged_configuration(config, launcher):
    """The configuration `gluon-tricks train` would log for these flags under this horovodrun
    launcher (-np ranks, one GPU each): the trainer's own resolution, on ImageNet."""
    from gluon_tricks.training.distributed import World
    from gluon_tricks.training.run_config import resolve
    ranks = int(launcher[launcher.index("-np") + 1])
    devices = ["gpu(%d)" % i for i in range(max(1, config.num_gpus))]
    return resolve(config, World(size=ranks), devices, ImageNetTrainingSet()).as_dict()


def write_train_log(path, configuration):
    """A one-epoch log written by the trainer's own log writer (text and JSON-lines twin)."""
    from gluon_tricks.training.train_log import TrainLog
    log = TrainLog(str(path), stream=open(os.devnull, "w"))
    try:
        log.namespace(configuration)
        log.epoch(0, "accuracy", 0.5, 2.5, 1000.0, 60.0, 0.4, 0.2)
    finally:
        log.close()


@pytest.mark.parametrize("name", sorted(n for n, recipe in EXPECTED.items() if recipe.row))
def test_report_matches_each_recipe_to_the_row_its_header_names(sandbox, name):
    """Bug: the Inception-V3/MobileNet recipes leave zero gamma out (no residual blocks), and
    `report --paper` matched none of them to a row. Here each recipe's command is parsed by the
    trainer's parser, resolved and logged as the trainer does, and read back by the report."""
    from gluon_tricks.figures import logparse, report
    launcher, flags = split_command(dry_run(sandbox, name))
    config = train_parser().parse_args(flags)
    log_path = sandbox.tmp / (name + ".log")
    write_train_log(log_path, logged_configuration(config, launcher))
    [log] = logparse.load_logs([str(log_path)], pytest.fail)
    summary = report.summarise(log, paper=True)
    entry = summary["paper"]
    named = header_row(name)
    assert named == EXPECTED[name].row
    assert entry is not None, "report --paper finds no row for %s (tricks %s, batch %s)" % (
        name, summary["tricks"], summary["batch"])
    assert (entry["table"], entry["row"], entry["top1"], entry["top5"]) == (
        named.table, named.label, named.top1, named.top5)


def test_the_teacher_recipe_names_no_row_and_report_gives_it_none(sandbox):
    from gluon_tricks.figures import logparse, report
    assert header_row(TEACHER) is None and EXPECTED[TEACHER].row is None
    launcher, flags = split_command(dry_run(sandbox, TEACHER))
    log_path = sandbox.tmp / "teacher.log"
    write_train_log(log_path, logged_configuration(train_parser().parse_args(flags), launcher))
    [log] = logparse.load_logs([str(log_path)], pytest.fail)
    assert report.summarise(log, paper=True)["paper"] is None


def test_np_hosts_and_extra_arguments(sandbox):
    words = dry_run(sandbox, "table4_bs1024_fp16", "--seed", "5", "-j", "3", NP=16,
                    HOSTS="host1:8,host2:8", HOROVODRUN_ARGS="-p 12345", WORKERS=12,
                    DATA_DIR=sandbox.tmp / "images")
    launcher, flags = split_command(words)
    assert launcher == ["horovodrun", "-np", "16", "-H", "host1:8,host2:8", "-p", "12345"]
    config = train_parser().parse_args(flags)
    assert config.batch_size == 64  # the paper's total of 1024 over 16 GPUs
    assert config.seed == 5 and config.num_workers == 3  # a recipe's own arguments come last
    assert config.data_dir == str(sandbox.tmp / "images") and not config.use_rec


def test_each_recordio_file_may_be_given_alone(sandbox):
    files = {v: sandbox.tmp / ("%s.file" % v.lower()) for v in
             ("REC_TRAIN", "REC_TRAIN_IDX", "REC_VAL", "REC_VAL_IDX")}
    config = train_parser().parse_args(split_command(dry_run(
        sandbox, "table2_mobilenet_baseline", **files))[1])
    assert (config.rec_train, config.rec_train_idx, config.rec_val, config.rec_val_idx) == tuple(
        str(files[v]) for v in ("REC_TRAIN", "REC_TRAIN_IDX", "REC_VAL", "REC_VAL_IDX"))


def test_a_launch_runs_exactly_the_printed_command(sandbox):
    images = sandbox.tmp / "images"
    (images / "train").mkdir(parents=True)
    (images / "val").mkdir()
    printed = dry_run(sandbox, "table6_mobilenet_mixup", DATA_DIR=images)
    result = sandbox("table6_mobilenet_mixup.sh", DATA_DIR=images)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls("horovodrun") == [printed[1:]]
    assert (sandbox.tmp / "out" / "table6_mobilenet_mixup").is_dir()


def test_a_distillation_launch_finds_the_teachers_weights(sandbox):
    rec = sandbox.tmp / "rec"
    rec.mkdir()
    for f in ("train.rec", "train.idx", "val.rec", "val.idx"):
        (rec / f).touch()
    teacher = sandbox.tmp / "teacher.params"
    teacher.touch()
    result = sandbox("table6_resnet50_v1d_distill.sh", REC_DIR=rec, TEACHER_PARAMS=teacher)
    assert result.returncode == 0, result.stderr
    [call] = sandbox.calls("horovodrun")
    assert call[call.index("--teacher-params") + 1] == str(teacher)


@pytest.mark.parametrize("env, message", [
    ({"NP": "abc", "DRY_RUN": "1"}, "NP must be a positive whole number"),
    ({"NP": "0", "DRY_RUN": "1"}, "NP must be a positive whole number"),
    ({"NP": "3", "DRY_RUN": "1"}, "does not divide the paper's total batch of 256"),
    ({"NP": "16", "DRY_RUN": "1"}, "has 8 slots"),
    ({"HOSTS": "host1 host2", "DRY_RUN": "1"}, "HOSTS must look like"),
    ({"DRY_RUN": "yes"}, "DRY_RUN must be 1"),
    ({"WORKERS": "many", "DRY_RUN": "1"}, "WORKERS must be a whole number"),
    ({"DATA_DIR": "x", "REC_DIR": "y", "DRY_RUN": "1"}, "not both"),
    ({}, "no data: set REC_DIR"),
    ({"DATA_DIR": "missing"}, "needs train/ and val/ folders"),
    ({"REC_DIR": "missing"}, "no such file"),
    ({"REC_TRAIN": "a.rec"}, "REC_TRAIN_IDX is not set"),
])
def test_bad_input_ends_with_one_line(sandbox, env, message):
    result = sandbox("table2_resnet50_baseline.sh", **env)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr  # one line
    assert result.stderr.startswith("table2_resnet50_baseline: error: ")
    assert message in result.stderr
    assert sandbox.calls("horovodrun") == []


def test_a_missing_teacher_stops_before_launching(sandbox):
    images = sandbox.tmp / "images"
    (images / "train").mkdir(parents=True)
    (images / "val").mkdir()
    result = sandbox("table6_inceptionv3_distill.sh", DATA_DIR=images)
    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1 and "train the teacher first" in result.stderr
    assert sandbox.calls("horovodrun") == []


def test_readme_maps_every_recipe_to_its_row_and_number():
    with open(os.path.join(SCRIPTS, "README.md")) as f:
        readme = f.read()
    for name, recipe in EXPECTED.items():
        rows = [line for line in readme.splitlines() if line.startswith("| `%s.sh` |" % name)]
        assert len(rows) == 1, "%s.sh is not one row of scripts/README.md's table" % name
        if recipe.row is not None:  # the README names the row gluon_tricks.paper gives, numbers too
            assert "| %s |" % recipe.row.describe() in rows[0], (name, rows[0])
        else:
            assert "none" in rows[0]
    for script in ("prepare_imagenet.sh", "cpu_ablation.sh", "fetch_gluoncv_logs.sh"):
        assert script in readme


# -- logs/gluoncv/ and scripts/fetch_gluoncv_logs.sh (offline: a file:// base URL)

GLUONCV_LOGS = os.path.join(REPO, "logs", "gluoncv")
WEB_DATA_COMMIT = "0818ee5787b3824f1bca2f4bd98ef6abe689f7db"


def recorded_sums():
    with open(os.path.join(GLUONCV_LOGS, "SHA256SUMS")) as f:
        return dict(reversed(line.split()) for line in f if line.strip())


def kept_gluoncv_files():
    return sorted(f for f in os.listdir(GLUONCV_LOGS) if f.endswith((".log", ".sh")))


def test_the_gluoncv_logs_are_the_23_published_ones_with_their_provenance():
    import hashlib
    files = kept_gluoncv_files()
    logs = [f for f in files if f.endswith(".log")]
    assert len(logs) == 23 and sorted(f[:-4] + ".sh" for f in logs) == \
        [f for f in files if f.endswith(".sh")]
    sums = recorded_sums()
    for name in files:  # each copy is the recorded upstream file, byte for byte
        with open(os.path.join(GLUONCV_LOGS, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sums[name], name
    with open(os.path.join(GLUONCV_LOGS, "README.md")) as f:
        readme = f.read()
    for fact in ("dmlc/web-data", "gluoncv/logs/classification/imagenet/", WEB_DATA_COMMIT,
                 "Apache License 2.0"):
        assert fact in readme
    for name in logs:
        assert "| `%s` |" % name in readme, name


def test_fetch_dry_run_names_every_kept_file_at_the_pinned_commit(sandbox):
    result = sandbox("fetch_gluoncv_logs.sh", DRY_RUN=1)
    assert result.returncode == 0 and result.stderr == ""
    pairs = [line.split() for line in result.stdout.splitlines()]
    base = ("https://raw.githubusercontent.com/dmlc/web-data/%s/gluoncv/logs/classification/"
            "imagenet/" % WEB_DATA_COMMIT)
    assert [url for url, _ in pairs] == [base + f for f in kept_gluoncv_files()]
    assert [target for _, target in pairs] == [
        str(sandbox.tmp / "out" / f) for f in kept_gluoncv_files()]
    other = sandbox("fetch_gluoncv_logs.sh", "resnext50_32x4d", "mobilenetv2_1.0.log", DRY_RUN=1)
    assert [line.split()[0][len(base):] for line in other.stdout.splitlines()] == \
        ["resnext50_32x4d.log", "resnext50_32x4d.sh", "mobilenetv2_1.0.log"]


def test_fetch_downloads_and_verifies(sandbox):
    result = sandbox("fetch_gluoncv_logs.sh", "resnet50_v1d", "inceptionv3.log",
                     BASE_URL="file://" + GLUONCV_LOGS)
    assert result.returncode == 0, result.stderr
    out = sandbox.tmp / "out"
    assert sorted(os.listdir(out)) == ["inceptionv3.log", "resnet50_v1d.log", "resnet50_v1d.sh"]
    for name in os.listdir(out):
        with open(os.path.join(GLUONCV_LOGS, name), "rb") as f:
            assert (out / name).read_bytes() == f.read()


def test_fetch_refuses_a_changed_file_and_leaves_nothing(sandbox):
    mirror = sandbox.tmp / "mirror"
    mirror.mkdir()
    with open(os.path.join(GLUONCV_LOGS, "resnet50_v1d.log"), "rb") as f:
        data = bytearray(f.read())
    data[-10] ^= 1  # one bit
    (mirror / "resnet50_v1d.log").write_bytes(bytes(data))
    result = sandbox("fetch_gluoncv_logs.sh", "resnet50_v1d.log", BASE_URL="file://%s" % mirror)
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1
    assert "resnet50_v1d.log: SHA-256" in result.stderr and "nothing written" in result.stderr
    assert os.listdir(sandbox.tmp / "out") == []


@pytest.mark.parametrize("args, message", [
    (["no_such_model"], "is not in gluoncv/logs/classification/imagenet"),
    (["../../etc/passwd"], "is not a file name of the folder"),
    (["resnext50_32x4d.log"], "cannot download"),  # listed upstream, absent from the base URL
])
def test_fetch_bad_names_end_with_one_line(sandbox, args, message):
    result = sandbox("fetch_gluoncv_logs.sh", *args, BASE_URL="file://" + GLUONCV_LOGS)
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert not (sandbox.tmp / "out").exists() or os.listdir(sandbox.tmp / "out") == []


def test_every_script_is_valid_bash():
    paths = [os.path.join(SCRIPTS, f) for f in os.listdir(SCRIPTS) if f.endswith(".sh")]
    paths += [os.path.join(SCRIPTS, "lib", f) for f in os.listdir(os.path.join(SCRIPTS, "lib"))
              if f.endswith(".sh")]
    for path in paths:
        result = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
        assert result.returncode == 0, (path, result.stderr)


# -- Table 8: Faster R-CNN on VOC on the backbones of the classification recipes

def detect_parser():
    from gluon_tricks import detect
    parser = argparse.ArgumentParser(prog="gluon-tricks detect")
    detect.add_arguments(parser)
    return parser


def _published_namespace():
    """GluonCV's Namespace of its published faster_rcnn_resnet50_v1b_voc run."""
    path = os.path.join(GLUONCV_LOGS, "detection", "faster_rcnn_resnet50_v1b_voc_train.log")
    from gluon_tricks.figures.transfer_logs import parse_transfer_log
    return parse_transfer_log(path).runs[0].config


def test_every_row_of_table8_has_a_detection_recipe():
    on_disk = sorted(f[:-3] for f in os.listdir(SCRIPTS) if f.startswith("table8_"))
    assert on_disk == sorted(DETECTION) and len(on_disk) == len(paper.TABLE8_ROWS) == 7


@pytest.mark.parametrize("name", sorted(DETECTION))
def test_a_detection_recipe_prints_gluoncvs_voc_run_on_its_rows_backbone(sandbox, name):
    """The printed `detect train` flags parse, give GluonCV's published VOC run (its batch of 4
    over the ranks, lr, schedule, epochs, weight decay) on the row's backbone, and name the
    classification recipe that trains it, whose last checkpoint is the default weights."""
    row = DETECTION[name]
    text = open(os.path.join(SCRIPTS, name + ".sh")).read()
    assert '# Table 8 row: "%s", %s: top-1 %.2f, mAP %.2f.' % (
        row.label, row.backbone, row.top1, row.metric("mAP")) in text
    words = dry_run(sandbox, name, NP=2, HOSTS="localhost:2")
    at = words.index("gluon-tricks")
    assert words[:at] == ["horovodrun", "-np", "2", "-H", "localhost:2"]
    assert words[at + 1:at + 3] == ["detect", "train"]
    args = detect_parser().parse_args(words[at + 2:])
    from gluon_tricks import detect
    config, _ = detect.resolved(args)
    published = _published_namespace()
    assert args.batch_size * 2 == int(published["batch_size"]) == 4
    for key in ("lr", "epochs", "lr_decay", "lr_decay_epoch", "wd", "momentum", "short",
                "max_size", "seed", "dataset", "network"):
        assert str(config[key]) == str(published[key]) or key == "network", key
    assert args.horovod and args.num_gpus == 1 and args.network == row.backbone
    assert args.backbone_recipe == row.recipe
    assert args.save_prefix == str(sandbox.tmp / "out" / name) + "/"
    if row.recipe:
        recipe = paper.RECIPES[row.recipe]
        assert recipe.model == row.backbone
        assert "Backbone recipe: scripts/%s.sh" % row.recipe in text
        assert args.backbone_params == str(sandbox.tmp / "out" / row.recipe / (
            "%s-%04d.params" % (recipe.model, recipe.epochs)))


def test_a_detection_launch_runs_the_printed_command_or_stops_in_one_line(sandbox):
    name = "table8_faster_rcnn_resnet50_v1d_cosine"
    voc = sandbox.tmp / "voc"
    voc.mkdir()
    result = sandbox(name + ".sh", VOC_DIR=voc)
    assert result.returncode == 2 and sandbox.calls("horovodrun") == []
    assert len(result.stderr.splitlines()) == 1
    assert "run scripts/table6_resnet50_v1d_cosine.sh first" in result.stderr
    weights = sandbox.tmp / "out" / "table6_resnet50_v1d_cosine" / "resnet50_v1d-0120.params"
    weights.parent.mkdir(parents=True)
    weights.touch()
    printed = dry_run(sandbox, name, VOC_DIR=voc)
    result = sandbox(name + ".sh", VOC_DIR=voc)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls("horovodrun") == [printed[1:]]
    result = sandbox("table8_faster_rcnn_resnet50_v1b.sh", VOC_DIR=voc)
    assert result.returncode == 2 and "set BACKBONE_PARAMS" in result.stderr


# -- prepare_imagenet.sh, on a fake ImageNet of three classes

WNIDS = ["n01440764", "n01443537", "n01484850"]
VAL = {"ILSVRC2012_val_00000001.JPEG": "n01443537", "ILSVRC2012_val_00000002.JPEG": "n01440764",
       "ILSVRC2012_val_00000003.JPEG": "n01484850"}


def add_file(tar, name, data):
    import io
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def fake_imagenet(folder):
    """ILSVRC2012_img_train.tar (a tar per class inside) and ILSVRC2012_img_val.tar (flat)."""
    import io
    folder.mkdir()
    with tarfile.open(folder / "ILSVRC2012_img_train.tar", "w") as outer:
        for wnid in WNIDS:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for i in range(2):
                    add_file(tar, "%s_%d.JPEG" % (wnid, i), b"jpeg")
            add_file(outer, wnid + ".tar", inner.getvalue())
    with tarfile.open(folder / "ILSVRC2012_img_val.tar", "w") as tar:
        for name in VAL:
            add_file(tar, name, b"jpeg")
    return folder


def fake_devkit(path):
    """ILSVRC2012_devkit_t12.tar.gz: meta.mat (ids 1..3 and a non-leaf synset) + ground truth."""
    import io

    import numpy as np
    from scipy.io import savemat
    synsets = np.array([(i + 1, w, 0) for i, w in enumerate(WNIDS)] + [(1001, "n00001740", 3)],
                       dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")])
    mat = io.BytesIO()
    savemat(mat, {"synsets": synsets})
    truth = "".join("%d\n" % (WNIDS.index(VAL[name]) + 1) for name in sorted(VAL))
    with tarfile.open(path, "w:gz") as tar:
        add_file(tar, "ILSVRC2012_devkit_t12/data/meta.mat", mat.getvalue())
        add_file(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
                 truth.encode())


def folder_listing(folder):
    return {d: sorted(os.listdir(folder / d)) for d in sorted(os.listdir(folder))}


@pytest.mark.parametrize("labels", ["devkit", "text"])
def test_prepare_imagenet_from_the_official_tar_files(sandbox, labels):
    imagenet = fake_imagenet(sandbox.tmp / "imagenet")
    env = dict(IMAGENET_DIR=imagenet, REC_DIR=sandbox.tmp / "rec", WORKERS=2,
               PYTHON=sys.executable)
    if labels == "devkit":
        fake_devkit(imagenet / "ILSVRC2012_devkit_t12.tar.gz")
    else:
        (imagenet / "val.csv").write_text("ImageId,PredictionString\n" + "".join(
            "%s,%s 1 2 3 4\n" % (name[:-5], wnid) for name, wnid in VAL.items()))
        env["VAL_LABELS"] = imagenet / "val.csv"
    result = sandbox("prepare_imagenet.sh", **env)
    assert result.returncode == 0, result.stderr

    images = sandbox.tmp / "rec" / "images"
    assert folder_listing(images / "train") == {
        w: ["%s_0.JPEG" % w, "%s_1.JPEG" % w] for w in WNIDS}
    assert folder_listing(images / "val") == {w: [n for n in VAL if VAL[n] == w] for w in WNIDS}
    rec = str(sandbox.tmp / "rec")
    assert sandbox.calls("gluon-tricks") == [
        ["pack", str(images / split), os.path.join(rec, split), "--resize", "480", "--quality",
         "95", "--workers", "2"] for split in ("train", "val")]

    again = sandbox("prepare_imagenet.sh", **env)  # every step done: nothing runs again
    assert again.returncode == 0, again.stderr
    assert len(sandbox.calls("gluon-tricks")) == 2


def test_prepare_imagenet_dry_run_from_image_folders(sandbox):
    result = sandbox("prepare_imagenet.sh", DRY_RUN=1, IMAGE_DIR="data", REC_DIR="rec",
                     WORKERS=5, RESIZE=320)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines()
                if not line.startswith("#")]
    assert commands == [["gluon-tricks", "pack", str(sandbox.tmp / "data" / split),
                         str(sandbox.tmp / "rec" / split), "--resize", "320", "--quality", "95",
                         "--workers", "5"] for split in ("train", "val")]
    assert sandbox.calls("gluon-tricks") == []


@pytest.mark.parametrize("env, message", [
    ({}, "set IMAGENET_DIR"),
    ({"IMAGE_DIR": "x", "IMAGENET_DIR": "y", "REC_DIR": "r"}, "not both"),
    ({"IMAGE_DIR": "x"}, "set REC_DIR"),
    ({"IMAGE_DIR": "missing", "REC_DIR": "r"}, "needs train/ and val/ folders"),
    ({"IMAGENET_DIR": "missing", "REC_DIR": "r"}, "no such file"),
    ({"IMAGE_DIR": "x", "WORKERS": "0", "DRY_RUN": "1"}, "WORKERS must be a positive"),
])
def test_prepare_imagenet_bad_input_ends_with_one_line(sandbox, env, message):
    result = sandbox("prepare_imagenet.sh", **env)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("prepare_imagenet: error: ") and message in result.stderr


def test_prepare_imagenet_needs_validation_labels(sandbox):
    imagenet = fake_imagenet(sandbox.tmp / "imagenet")
    result = sandbox("prepare_imagenet.sh", IMAGENET_DIR=imagenet, REC_DIR=sandbox.tmp / "rec")
    assert result.returncode != 0 and "no validation labels" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_validation_image_without_label_stops_the_sorting(sandbox):
    imagenet = fake_imagenet(sandbox.tmp / "imagenet")
    (imagenet / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG n01443537\n")
    result = sandbox("prepare_imagenet.sh", IMAGENET_DIR=imagenet, REC_DIR=sandbox.tmp / "rec",
                     VAL_LABELS=imagenet / "val.txt", PYTHON=sys.executable)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if not line.startswith("==>")]
    assert errors == ["imagenet_val: error: no label for 2 of 3 images in %s (first: "
                      "ILSVRC2012_val_00000002.JPEG)" % (sandbox.tmp / "rec" / "images" / "val")]
    assert sandbox.calls("gluon-tricks") == []


# -- install_env.sh (the Dockerfile's checks: tests/test_docker_static.py)

@pytest.mark.parametrize("mxnet_package", [None, "mxnet-cu112==1.9.1"])
def test_install_env_replaces_the_mxnet_pin_with_mxnet_package(tmp_path, mxnet_package):
    """install_env.sh against a stub python that records what pip is asked to install."""
    stub = tmp_path / "python"
    stub.write_text(
        '#!/usr/bin/env bash\n'
        'if [ "$1 $2" = "-m pip" ]; then\n'
        '  prev=""; for a in "$@"; do [ "$prev" != -r ] || cp "$a" "$STUB_OUT"; prev=$a; done\n'
        'elif [[ "$*" == *horovod.__version__* ]]; then echo "$HOROVOD_VERSION"; fi\n')
    stub.chmod(0o755)
    with open(os.path.join(REPO, "requirements.txt")) as f:
        pins = [pin.strip() for pin in f if pin.strip() and not pin.startswith("#")]
    env = {k: v for k, v in os.environ.items() if k != "MXNET_PACKAGE"}
    env.update(PYTHON=str(stub), TMPDIR=str(tmp_path), STUB_OUT=str(tmp_path / "asked.txt"),
               HOROVOD_VERSION=next(p for p in pins if p.startswith("horovod=="))[9:])
    if mxnet_package:
        env["MXNET_PACKAGE"] = mxnet_package
    result = subprocess.run(["bash", os.path.join(SCRIPTS, "install_env.sh"), "system"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    asked = [word.strip() for word in (tmp_path / "asked.txt").read_text().splitlines()
             if word.strip() and not word.startswith("#")]
    mxnet = next(p for p in pins if p.startswith("mxnet=="))
    expected = [p for p in pins if not p.startswith(("horovod==", "mxnet=="))]
    assert sorted(asked) == sorted(expected + [mxnet_package or mxnet])


# -- Table 9: FCN on ADE20K from the backbones of the classification recipes

SEGMENTATION_HEADER = re.compile(r'^# Table 9 row: "(.*)", (\S+): pixAcc ([\d.]+), '
                                 r'mIoU ([\d.]+)\.$', re.MULTILINE)
BACKBONE_RECIPE = re.compile(r"^# Backbone recipe: (\S+)", re.MULTILINE)


def segmentation_header(name):
    """(row label, backbone, pixAcc, mIoU, backbone recipe or None) of scripts/<name>.sh."""
    with open(os.path.join(SCRIPTS, name + ".sh")) as f:
        text = f.read()
    (row,) = SEGMENTATION_HEADER.findall(text)
    (recipe,) = BACKBONE_RECIPE.findall(text)
    return row[0], row[1], float(row[2]), float(row[3]), None if recipe == "none" else recipe


def segment_parser():
    from gluon_tricks.cli import Parser
    from gluon_tricks import segment
    parser = Parser(prog="gluon-tricks segment")
    segment.add_arguments(parser)
    return parser


def test_every_row_of_table9_has_a_recipe_naming_its_backbones_recipe():
    """One script per row of paper.TABLE9_ROWS; its header names the row with its numbers and
    the classification recipe (scripts/table5_*/table6_*) that trains the row's backbone."""
    found = {segmentation_header(name)[0]: name for name in segmentation_recipes_on_disk()}
    assert sorted(found) == sorted(row.label for row in paper.TABLE9_ROWS)
    for row in paper.TABLE9_ROWS:
        label, backbone, pix_acc, miou, recipe = segmentation_header(found[row.label])
        assert (backbone, pix_acc, miou, recipe) == (
            row.backbone, row.metric("pixAcc"), row.metric("mIoU"), row.recipe)
        if recipe is not None:
            assert recipe in recipes_on_disk() and EXPECTED[recipe].model == backbone


@pytest.mark.parametrize("name", segmentation_recipes_on_disk())
def test_a_table9_recipe_prints_gluoncvs_ade20k_command_on_its_backbone(sandbox, name):
    """`segment train` with GluonCV's published ADE20K flags (FCN, auxiliary head, lr 0.01, 120
    epochs, batch 16) on one GPU (its 4 GPUs' synchronised BatchNorm normalises the 16 together)
    and as backbone the last checkpoint of the row's classification recipe."""
    _, backbone, _, _, recipe = segmentation_header(name)
    words = dry_run(sandbox, name, ADE_ROOT=sandbox.tmp / "ade")
    assert words[:3] == ["gluon-tricks", "segment", "train"]
    args = segment_parser().parse_args(words[2:])
    assert (args.model, args.backbone, args.dataset, args.aux) == ("fcn", backbone, "ade20k", True)
    assert (args.lr, args.epochs, args.batch_size, args.crop_size, args.base_size) == (
        0.01, 120, 16, 480, 520)
    assert args.ngpus == 1 and not args.syncbn
    assert args.dataset_root == str(sandbox.tmp / "ade")
    assert args.save_dir == str(sandbox.tmp / "out" / name)
    assert args.backbone_recipe == recipe
    if recipe is None:
        assert args.backbone_params == "<BACKBONE_PARAMS>"
    else:
        checkpoint_name = "%s-%04d.params" % (backbone, EXPECTED[recipe].epochs)
        assert args.backbone_params == str(sandbox.tmp / "out" / recipe / checkpoint_name)


def test_a_table9_launch_runs_the_printed_command_and_checks_its_inputs_first(sandbox):
    name = "table9_fcn_cosine"
    ade = sandbox.tmp / "ade"
    result = sandbox(name + ".sh", ADE_ROOT=ade)
    assert result.returncode == 2 and "no backbone weights at" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and sandbox.calls("gluon-tricks") == []
    weights = sandbox.tmp / "out" / "table6_resnet50_v1d_cosine" / "resnet50_v1d-0120.params"
    weights.parent.mkdir(parents=True)
    weights.touch()
    result = sandbox(name + ".sh", ADE_ROOT=ade)
    assert result.returncode == 2 and "no ADEChallengeData2016 in" in result.stderr
    (ade / "ADEChallengeData2016").mkdir(parents=True)
    printed = dry_run(sandbox, name, ADE_ROOT=ade)
    result = sandbox(name + ".sh", "--workers", "2", ADE_ROOT=ade)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls("gluon-tricks") == [printed[1:] + ["--workers", "2"]]
    result = sandbox("table9_fcn_b_standard.sh", ADE_ROOT=ade)
    assert result.returncode == 2 and "set BACKBONE_PARAMS" in result.stderr
    four = dry_run(sandbox, name, ADE_ROOT=ade, NGPUS="4")
    assert segment_parser().parse_args(four[2:]).ngpus == 4
    result = sandbox(name + ".sh", ADE_ROOT=ade, NGPUS="four")
    assert result.returncode == 2 and "NGPUS must be a positive whole number" in result.stderr


@pytest.mark.parametrize("env, message", [
    ({"EPOCHS": "ten"}, "EPOCHS, BATCH and CROP must be positive whole numbers"),
    ({"LR": "fast"}, "LR must be a number"),
    ({"CLASSIFIER_PARAMS": "/nonexistent.params"}, "no such file"),
])
def test_the_segmentation_demo_refuses_bad_settings_in_one_line(sandbox, env, message):
    result = sandbox("segment_demo.sh", str(sandbox.tmp / "demo"), **env)
    assert result.returncode == 2 and result.stderr.startswith("segment_demo: error: ")
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
