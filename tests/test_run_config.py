"""The resolved run configuration: the linear scaling rule, batches over devices and ranks, eps,
and resume compatibility from the fields' metadata (every resume-breaking field refuses a resume
when it changes; the others do not)."""
import argparse
import dataclasses
import json
import re

import mxnet as mx
import pytest

from conftest import parse_train_flags
from gluon_tricks.errors import UserError
from gluon_tricks.training import config as train_config
from gluon_tricks.training.checkpoint import check_compatible
from gluon_tricks.training.distributed import World
from gluon_tricks.training.run_config import RunConfig, flag_fields, resolve, resume_fields


class _Data:
    """A training source's size and classes: all resolve() reads of the data."""

    def __init__(self, images=100, classes=10, names=None):
        self.images, self.num_classes = images, classes
        self.classes, self.classes_named = names or [str(i) for i in range(classes)], bool(names)

    def __len__(self):
        return self.images


def _run(*argv, world=World(), devices=(mx.cpu(),), data=None):
    return resolve(parse_train_flags(*argv), world, list(devices), data or _Data())


def test_linear_scaling_rule_sets_the_default_lr():
    run = _run("--batch-size", "4", world=World(rank=0, size=4), devices=[mx.cpu()] * 2,
               data=_Data(images=400))
    assert (run.process_batch_size, run.global_batch_size) == (4 * 2, 4 * 2 * 4)
    assert run.lr == pytest.approx(0.1 * 32 / 256)
    assert run.iters_per_epoch == 400 // 4 // 8
    assert _run("--lr", "0.3").lr == 0.3


def test_eps_is_zero_without_label_smoothing_and_input_size_follows_the_model():
    assert _run("--label-smoothing-eps", "0.3").eps == 0.0
    assert _run("--label-smoothing", "--label-smoothing-eps", "0.3").eps == 0.3
    assert _run().input_size == 224 and _run("--input-size", "64").input_size == 64
    inception = parse_train_flags(model="inceptionv3")
    assert resolve(inception, World(), [mx.cpu()], _Data()).input_size == 299


def test_a_training_set_smaller_than_one_batch_is_refused():
    with pytest.raises(UserError, match="smaller than one batch of 64"):
        _run("--batch-size", "32", world=World(rank=0, size=2), devices=[mx.cpu()] * 2,
             data=_Data(images=100))


def test_every_flag_is_a_field_so_none_escapes_the_resume_check():
    parser = argparse.ArgumentParser()
    train_config.add_arguments(parser)
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert set(flag_fields()) <= dests  # read as is...
    assert dests - set(flag_fields()) == {"lr", "input_size"}  # ...or resolved from the flag
    assert dests <= {f.name for f in dataclasses.fields(RunConfig)}


# (flags of the saved run, flags of the resumed one, resolve() arguments of the resumed one)
BREAKING = {
    "model": ([], ["--model", "resnet34_v1d"], {}),
    "classes": ([], [], {"data": _Data(classes=11)}),
    "train_images": ([], [], {"data": _Data(images=132)}),
    "input_size": ([], ["--input-size", "64"], {}),
    "crop_ratio": ([], ["--crop-ratio", "0.9"], {}),
    "augmentation": ([], ["--augmentation", "gluoncv"], {}),
    "batch_size": ([], ["--batch-size", "16"], {}),
    "num_devices": ([], [], {"devices": [mx.cpu(0), mx.cpu(1)]}),
    "world_size": ([], [], {"world": World(rank=0, size=2)}),
    "process_batch_size": ([], ["--batch-size", "16"], {}),
    "global_batch_size": ([], [], {"world": World(rank=0, size=2)}),
    "iters_per_epoch": ([], [], {"data": _Data(images=200)}),
    "num_epochs": ([], ["--num-epochs", "90"], {}),
    "lr": ([], ["--lr", "0.2"], {}),
    "lr_mode": ([], ["--lr-mode", "cosine"], {}),
    "lr_decay": ([], ["--lr-decay", "0.5"], {}),
    "lr_decay_epoch": ([], ["--lr-decay-epoch", "40,80"], {}),
    "lr_decay_period": ([], ["--lr-decay-period", "10"], {}),
    "warmup_epochs": ([], ["--warmup-epochs", "5"], {}),
    "warmup_lr": ([], ["--warmup-lr", "0.01"], {}),
    "momentum": ([], ["--momentum", "0.8"], {}),
    "wd": ([], ["--wd", "5e-5"], {}),
    "no_wd": ([], ["--no-wd"], {}),
    "last_gamma": ([], ["--last-gamma"], {}),
    "dtype": ([], ["--dtype", "float16"], {}),
    "label_smoothing": ([], ["--label-smoothing"], {}),
    "eps": (["--label-smoothing"], ["--label-smoothing", "--label-smoothing-eps", "0.4"], {}),
    "mixup": ([], ["--mixup"], {}),
    "mixup_alpha": (["--mixup"], ["--mixup", "--mixup-alpha", "0.4"], {}),
    "mixup_off_epoch": (["--mixup"], ["--mixup", "--mixup-off-epoch", "5"], {}),
    "teacher": ([], ["--teacher", "resnet50_v1d"], {}),
    "temperature": ([], ["--temperature", "10"], {}),
    "hard_weight": ([], ["--hard-weight", "0.3"], {}),
    "tricks": ([], ["--lr-mode", "cosine"], {}),
    "seed": ([], ["--seed", "1"], {}),
    "reset_classifier": ([], ["--reset-classifier"], {}),
    "lr_mult_classifier": ([], ["--lr-mult-classifier", "10"], {}),
    "freeze_stages": ([], ["--freeze-stages", "2"], {}),
    "amp": ([], ["--amp"], {}),
    "fp16_allreduce": ([], ["--fp16-allreduce"], {}),
}
HARMLESS = {
    "data_dir": ["--data-dir", "/elsewhere"],
    "rec_train": ["--rec-train", "/elsewhere/train.rec"],
    "rec_train_idx": ["--rec-train-idx", "/elsewhere/train.idx"],
    "train_dir": ["--train-dir", "/elsewhere/train"],
    "rec_val": ["--rec-val", "/elsewhere/val.rec"],
    "rec_val_idx": ["--rec-val-idx", "/elsewhere/val.idx"],
    "val_dir": ["--val-dir", "/elsewhere/val"],
    "use_rec": ["--use-rec"],
    "num_workers": ["-j", "9"],
    "num_gpus": ["--num-gpus", "1"],
    "devices": None,  # the same count of devices, other ids: a Horovod rank on another GPU
    "class_names": {"data": _Data(names=list("abcdefghij"))},  # names to print, not to learn
    "label_smoothing_eps": ["--label-smoothing-eps", "0.4"],  # smoothing is off: eps stays 0
    "teacher_params": ["--teacher-params", "/elsewhere/teacher.params"],
    "mode": ["--mode", "imperative"],
    "save_frequency": ["--save-frequency", "3"],
    "save_dir": ["--save-dir", "/elsewhere"],
    "resume": ["--resume"],
    "resume_epoch": ["--resume-epoch", "3"],
    "resume_params": ["--resume-params", "x.params"],
    "resume_states": ["--resume-states", "x.states"],
    "log_interval": ["--log-interval", "7"],
    "logging_file": ["--logging-file", "/elsewhere/train.log"],
    "tensorboard_dir": ["--tensorboard-dir", "/elsewhere/tb"],
    "pretrained_params": ["--pretrained-params", "/elsewhere/w.params"],
    "loss_scale": ["--loss-scale", "dynamic"],
    "loss_scale_window": ["--loss-scale-window", "100"],
    "gradient_predivide_factor": ["--gradient-predivide-factor", "2"],
    "trust_pickled_states": ["--trust-pickled-states"],
    "fresh_start": ["--fresh-start"],
    "save_interval_minutes": ["--save-interval-minutes", "5"],
    "keep_checkpoints": ["--keep-checkpoints", "3"],
    "data_timeout": ["--data-timeout", "60"],
    "max_bad_fraction": ["--max-bad-fraction", "0.1"],
}


def _saved(run):
    """A checkpoint record of `run`, its config through JSON as save_checkpoint writes it."""
    return {"path": "params/resnet18_v1d-0001.json",
            "config": json.loads(json.dumps(run.as_dict()))}


def test_the_cases_cover_every_field():
    assert set(BREAKING) == set(resume_fields())
    names = {f.name for f in dataclasses.fields(RunConfig)}
    assert set(HARMLESS) == names - set(resume_fields())


@pytest.mark.parametrize("name", sorted(BREAKING))
def test_changing_a_resume_breaking_field_refuses_the_resume(name):
    saved_argv, resumed_argv, resolve_args = BREAKING[name]
    saved = _run(*saved_argv)
    check_compatible(_saved(saved), _run(*saved_argv))  # the same flags resume
    resumed = _run(*resumed_argv, **resolve_args)
    assert getattr(resumed, name) != getattr(saved, name)
    with pytest.raises(UserError) as error:
        check_compatible(_saved(saved), resumed)
    message = str(error.value)
    assert "different run" in message and "\n" not in message
    assert re.search(r"(differs in: |, )%s " % name, message)


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_changing_a_harmless_field_resumes(name):
    saved = _run()
    if HARMLESS[name] is None:
        resumed = dataclasses.replace(saved, devices="gpu(1)")
    elif isinstance(HARMLESS[name], dict):
        resumed = _run(**HARMLESS[name])
    else:
        resumed = _run(*HARMLESS[name])
    assert getattr(resumed, name) != getattr(saved, name)
    check_compatible(_saved(saved), resumed)


def test_a_checkpoint_without_a_newer_field_compares_the_fields_it_holds():
    saved = _saved(_run("--label-smoothing"))
    del saved["config"]["eps"]  # as written before eps was a field
    check_compatible(saved, _run("--label-smoothing", "--label-smoothing-eps", "0.4"))
    with pytest.raises(UserError, match="differs in: seed 0 -> 1"):
        check_compatible(saved, _run("--label-smoothing", "--seed", "1"))


def test_class_names_are_the_datas_when_it_names_them():
    assert _run().class_names == ()  # "0".."9" are indices, not names
    run = _run(data=_Data(names=list("abcdefghij")))
    assert run.class_names == tuple("abcdefghij")
    assert json.loads(json.dumps(run.as_dict()))["class_names"] == list("abcdefghij")
