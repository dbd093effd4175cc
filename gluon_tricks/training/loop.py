"""The training loop, one for a single process and for N Horovod ranks: `train(config, world)`.

A run is: resolve the configuration -> build data, network, trainer -> (resume) -> for each epoch
`train_one_epoch` then `validate` -> log and checkpoint on rank 0.
"""
import os
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from gluon_tricks.errors import UserError, error_summary
from gluon_tricks.evaluate import validate
from gluon_tricks.models import INPUT_SIZES, get_model, initialize
from gluon_tricks.training import checkpoint
from gluon_tricks.training.config import tricks_of
from gluon_tricks.training.losses import DistillationLoss, soft_targets
from gluon_tricks.training.optim import apply_no_bias_decay, make_trainer
from gluon_tricks.training.schedule import make_lr_schedule
from gluon_tricks.training.targets import (dominant_labels, mixup, sample_mixup_lambda,
                                           smooth_one_hot)
from gluon_tricks.training.train_log import TrainLog

MIXUP_STREAM = 1  # tags of the random streams derived from (seed, epoch)


class Diverged(UserError):
    """The loss became NaN or infinite."""


def stream(seed, epoch, tag):
    """A numpy Generator that depends only on (seed, epoch, tag): what makes resume exact."""
    return np.random.default_rng([seed, epoch, tag])


def devices(config, world):
    """The devices of this process: its local GPU under Horovod, else --num-gpus GPUs, or the CPU."""
    if not config.num_gpus:
        return [mx.cpu()]
    if world.size > 1:
        return [mx.gpu(world.local_rank)]
    return [mx.gpu(i) for i in range(config.num_gpus)]


def resolve(config, world, num_devices, num_classes, iters_per_epoch):
    """The configuration a run really uses (logged, and saved in checkpoints)."""
    resolved = dict(vars(config))
    for internal in ("_command", "command"):  # argparse bookkeeping, not configuration
        resolved.pop(internal, None)
    global_batch = config.batch_size * num_devices * world.size
    resolved.update(
        lr=config.lr if config.lr is not None else 0.1 * global_batch / 256,  # linear scaling
        input_size=config.input_size or INPUT_SIZES.get(config.model, 224),
        global_batch_size=global_batch, world_size=world.size, classes=num_classes,
        iters_per_epoch=iters_per_epoch, tricks=",".join(tricks_of(config)) or "baseline")
    return resolved


def build_network(name, classes, last_gamma, ctx, input_size, dtype, seed):
    """The paper-initialised network on `ctx`, materialised (shapes known) and cast to `dtype`."""
    mx.random.seed(seed)
    net = initialize(get_model(name, classes=classes, last_gamma=last_gamma), ctx, input_size)
    if dtype != "float32":
        net.cast(dtype)
    return net


def load_teacher(config, classes, ctx, input_size):
    """The distillation teacher, frozen, or None."""
    if not config.teacher:
        return None
    import mxnet.base
    teacher = get_model(config.teacher, classes=classes)
    try:
        teacher.load_parameters(os.path.expanduser(config.teacher_params), ctx=ctx)
    except (AssertionError, mxnet.base.MXNetError) as error:
        raise UserError("--teacher-params %s does not fit %s with %d classes (the data's): %s"
                        % (config.teacher_params, config.teacher, classes,
                           error_summary(error))) from None
    if config.dtype != "float32":
        teacher.cast(config.dtype)
    teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


def train_one_epoch(epoch, net, teacher, trainer, loader, schedule, loss_fn, config, run, ctx,
                    world, log):
    """One epoch of updates; returns (training accuracy on hard labels, samples/s, seconds)."""
    metric = mx.metric.Accuracy()
    mixup_on = config.mixup and epoch < config.num_epochs - config.mixup_off_epoch
    mixup_rng = stream(config.seed, epoch, MIXUP_STREAM)
    eps = config.label_smoothing_eps if config.label_smoothing else 0.0
    iters, classes = len(loader), run["classes"]
    batches = loader.epoch(epoch)
    if log.enabled and sys.stdout.isatty():
        from tqdm import tqdm
        batches = tqdm(batches, total=iters, desc="epoch %d" % epoch, leave=False)
    tic = interval_tic = time.time()
    seen = 0
    for i, (data, label) in enumerate(batches):
        step = epoch * iters + i + 1  # the batch being trained, counted from 1 like MXNet's
        trainer.set_learning_rate(schedule(step))
        # Targets: (smoothed) one-hot distributions; mixup mixes images and targets alike.
        target = smooth_one_hot(label, classes, eps)
        hard = label
        if mixup_on:
            lam = sample_mixup_lambda(mixup_rng, config.mixup_alpha)
            data, target = mixup(data, target, lam)
            hard = dominant_labels(label, lam)
        data_parts = gluon.utils.split_and_load(data, ctx, even_split=False)
        target_parts = gluon.utils.split_and_load(target, ctx, even_split=False)
        # The teacher's soft targets are computed outside autograd.
        teacher_parts = ([soft_targets(teacher(x.astype(config.dtype, copy=False))
                                       .astype("float32"), config.temperature)
                          for x in data_parts] if teacher is not None else [None] * len(ctx))
        with autograd.record():
            outputs = [net(x.astype(config.dtype, copy=False)).astype("float32")
                       for x in data_parts]
            losses = [loss_fn(out, y) if soft is None else loss_fn(out, y, soft)
                      for out, y, soft in zip(outputs, target_parts, teacher_parts)]
        autograd.backward(losses)
        loss_sum = float(sum(l.sum().asscalar() for l in losses))
        if not np.isfinite(world.sum([loss_sum], name="loss")[0]):
            raise Diverged("the loss is %s at epoch %d, batch %d: training stopped"
                           % (loss_sum, epoch, i))
        trainer.step(data.shape[0])
        metric.update(gluon.utils.split_and_load(hard, ctx, even_split=False), outputs)
        seen += data.shape[0]
        if config.log_interval and (i + 1) % config.log_interval == 0:
            speed = config.log_interval * data.shape[0] * world.size / (time.time() - interval_tic)
            log.batch(epoch, i, speed, "accuracy", metric.get()[1], trainer.learning_rate)
            interval_tic = time.time()
    seconds = time.time() - tic
    if loader.skipped and log.enabled:
        log.info("[Epoch %d] skipped %d corrupt training images" % (epoch, loader.skipped))
    return metric.get()[1], seen * world.size / max(seconds, 1e-9), seconds


def _resume(config, run, net, trainer, ctx, log):
    """(first epoch, global step) after loading a checkpoint, if this run continues one."""
    if config.resume_params:
        net.load_parameters(os.path.expanduser(config.resume_params), ctx=ctx)
        trainer.load_states(os.path.expanduser(config.resume_states))
        log.info("resumed from %s at epoch %d" % (config.resume_params, config.resume_epoch))
        return config.resume_epoch, config.resume_epoch * run["iters_per_epoch"]
    record = checkpoint.find_latest(config.save_dir, config.model)
    if record is None:
        if config.resume:
            raise UserError("--resume: no checkpoint of %s in %s" % (config.model, config.save_dir))
        return 0, 0
    checkpoint.check_compatible(record, run)
    epoch, step = checkpoint.load_checkpoint(record, net, trainer, ctx)
    log.info("resumed from %s: %d epochs done, step %d" % (record["path"], epoch, step))
    return epoch, step


def train(config, world):
    """Train as `config` (the parsed and checked flags) says; returns the final checkpoint's
    JSON path (rank 0) and the final validation errors."""
    from gluon_tricks.data.loader import TrainLoader, ValLoader
    from gluon_tricks.training.inputs import data_sources

    ctx = devices(config, world)
    if world.is_root:
        checkpoint.check_writable(config.save_dir)
    train_source, val_source = data_sources(config, train=True)
    input_size = config.input_size or INPUT_SIZES.get(config.model, 224)
    train_loader = TrainLoader(train_source, config.batch_size * len(ctx), input_size=input_size,
                               flavour=config.augmentation, num_workers=config.num_workers,
                               rank=world.rank, num_ranks=world.size, seed=config.seed)
    val_loader = ValLoader(val_source, config.batch_size * len(ctx), input_size=input_size,
                           crop_ratio=config.crop_ratio, num_workers=config.num_workers,
                           rank=world.rank, num_ranks=world.size)
    if len(train_loader) == 0:
        raise UserError("the training set (%d images over %d rank(s)) is smaller than one batch "
                        "of %d" % (len(train_source), world.size, config.batch_size * len(ctx)))
    run = resolve(config, world, len(ctx), train_source.num_classes, len(train_loader))
    log = TrainLog(config.logging_file, enabled=world.is_root)
    try:
        log.namespace(run)
        net = build_network(config.model, run["classes"], config.last_gamma, ctx, input_size,
                            config.dtype, config.seed)
        teacher = load_teacher(config, run["classes"], ctx, input_size)
        if config.no_wd:
            apply_no_bias_decay(net)
        if config.mode == "hybrid":
            net.hybridize(static_alloc=True, static_shape=True)
        trainer = make_trainer(net, config.momentum, config.wd, config.dtype, world, len(ctx))
        start_epoch, _ = _resume(config, run, net, trainer, ctx, log)
        world.broadcast_parameters(net)
        schedule = make_lr_schedule(run["lr"], config.lr_mode, config.num_epochs,
                                    len(train_loader), config.warmup_epochs, config.warmup_lr,
                                    config.lr_decay, config.lr_decay_epoch, config.lr_decay_period)
        loss_fn = (DistillationLoss(config.temperature, config.hard_weight) if teacher is not None
                   else gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False))
        result = {"checkpoint": None, "err_top1": None, "err_top5": None}
        for epoch in range(start_epoch, config.num_epochs):
            try:
                accuracy, speed, seconds = train_one_epoch(
                    epoch, net, teacher, trainer, train_loader, schedule, loss_fn, config, run,
                    ctx, world, log)
            except Diverged as error:
                last = checkpoint.find_latest(config.save_dir, config.model)
                raise Diverged("%s; the last good checkpoint is %s" % (
                    error, last["path"] if last else "none (no checkpoint was written yet)"))
            world.average_batch_norm_statistics(net)
            err_top1, err_top5, _ = validate(net, val_loader, ctx, world, config.dtype)
            log.epoch(epoch, "accuracy", accuracy, speed, seconds, err_top1, err_top5)
            result.update(err_top1=err_top1, err_top5=err_top5)
            done = epoch + 1
            due = done == config.num_epochs or (config.save_frequency
                                                and done % config.save_frequency == 0)
            if due and world.is_root:
                result["checkpoint"] = checkpoint.save_checkpoint(
                    config.save_dir, net, trainer, config.model, done, done * len(train_loader),
                    run)
        return result
    finally:
        log.close()
