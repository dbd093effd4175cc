"""The training loop, one for a single process and for N Horovod ranks: `train(flags, world)`.

A run is: resolve its configuration (a RunConfig, once) -> build data, network, trainer ->
(resume) -> for each epoch `train_one_epoch` then `validate` -> log on rank 0, and checkpoint
through the RunGuard (which also writes the mid-epoch checkpoints).
"""
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, List

from mxnet import gluon
from mxnet.contrib import amp

from gluon_tricks import streams
from gluon_tricks.data.flags import data_sources
from gluon_tricks.data.loader import TrainLoader, ValLoader
from gluon_tricks.data.workers import DataWaitStopped
from gluon_tricks.errors import UserError
from gluon_tricks.evaluation.validation import validate
from gluon_tricks.models import get_model, initialize
from gluon_tricks.models.params import load_into
from gluon_tricks.training import checkpoint
from gluon_tricks.training.finetune import prepare_fine_tuning
from gluon_tricks.training.losses import DistillationLoss
from gluon_tricks.training.optim import apply_no_bias_decay, make_trainer
from gluon_tricks.training.run_config import resolve
from gluon_tricks.training.run_guard import RunGuard
from gluon_tricks.training.schedule import make_lr_schedule
from gluon_tricks.training.targets import (dominant_labels, mixup, sample_mixup_lambda,
                                           smooth_one_hot)
from gluon_tricks.training.tensorboard import TensorBoardLog
from gluon_tricks.training.train_log import TrainLog, etas
from gluon_tricks.training import step as step_module
from gluon_tricks.devices import process_devices
from gluon_tricks.training.loss_scale import LossScaler


Diverged = step_module.Diverged  # the loss, gradients or weights became NaN or infinite


@dataclass
class TrainState:
    """What the epochs update and read: the network, the trainer, this process's devices and
    the step that drives them."""
    net: Any
    trainer: Any
    ctx: List[Any]
    step: Any  # the TrainStep (training/step.py): forward, backward, update, statistics
    tensorboard: Any = None  # a TensorBoardLog (writes nothing without --tensorboard-dir)
    control: Any = None  # a RunGuard: mid-epoch checkpoints and stops between steps
    notes: List[str] = field(default_factory=list)  # for the log: fine-tuning
    validation_seconds: float = 0.0  # the last validation's, for the run's ETA

    @property
    def loss_scaler(self):
        """The step's LossScaler, whose state a checkpoint keeps."""
        return self.step.scaler


def build_network(name, classes, last_gamma, ctx, input_size, dtype, seed):
    """The paper-initialised network on `ctx`, materialised (shapes known) and cast to `dtype`."""
    streams.seed_initialisation(seed)
    net = initialize(get_model(name, classes=classes, last_gamma=last_gamma), ctx, input_size)
    if dtype != "float32":
        net.cast(dtype)
    return net


def load_teacher(run, ctx):
    """The distillation teacher, frozen, or None."""
    if not run.teacher:
        return None
    teacher = get_model(run.teacher, classes=run.classes)
    try:
        load_into(teacher, run.teacher_params, ctx, "--teacher-params",
                  "%s weights for %d classes (the data's)" % (run.teacher, run.classes))
    except UserError as error:
        raise UserError("the teacher does not fit: %s" % error) from None
    if run.dtype != "float32":
        teacher.cast(run.dtype)
    teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


def build_state(run, ctx, world):
    """Network, teacher, trainer and loss of `run`, in the order that fixes the random draws."""
    if run.amp:  # before the network exists: AMP patches MXNet's operators
        amp.init()
    net = build_network(run.model, run.classes, run.last_gamma, ctx, run.input_size, run.dtype,
                        run.seed)
    notes = prepare_fine_tuning(net, run)  # pretrained weights, classifier lr, frozen stages
    teacher = load_teacher(run, ctx)
    if run.no_wd:
        apply_no_bias_decay(net)
    if run.mode == "hybrid":
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(net, run.momentum, run.wd, run.dtype, world, run.num_devices,
                           run.fp16_allreduce, run.gradient_predivide_factor)
    if run.amp:
        amp.init_trainer(trainer)
    loss_fn = (DistillationLoss(run.temperature, run.hard_weight) if teacher is not None
               else gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False))
    step = step_module.TrainStep(net, trainer, loss_fn, ctx, run.dtype,
                                 LossScaler.from_flag(run.loss_scale, run.loss_scale_window),
                                 teacher, run.temperature, amp=run.amp,
                                 settle_gradients=ctx[0].device_type == "cpu")
    return TrainState(net=net, trainer=trainer, ctx=ctx, step=step, notes=notes)


def train_one_epoch(epoch, run, state, loader, schedule, world, log, first_batch=0,
                    log_first=False):
    """One epoch of updates (from batch `first_batch` on, when resumed mid-epoch); returns
    (training accuracy on hard labels, mean training loss, samples/s, seconds). A batch line
    every --log-interval batches, and after the first batch too with `log_first`."""
    totals = step_module.EpochTotals()  # correct counts and loss, read every --log-interval
    mixup_on = run.mixup and epoch < run.num_epochs - run.mixup_off_epoch
    trainer = state.trainer
    batches = loader.epoch(epoch, first_batch)
    if state.control is not None:  # every rank agrees before each step: save, stop, go on
        batches = state.control.agreed_batches(epoch, batches, first_batch)
    tic = interval_tic = time.time()
    seen = 0
    first, last = first_batch, first_batch - 1  # the batches since the last read
    for i, (data, label) in enumerate(batches, first_batch):
        step = epoch * run.iters_per_epoch + i + 1  # the batch being trained, counted from 1
        trainer.set_learning_rate(schedule(step))
        # Targets: (smoothed) one-hot distributions; mixup mixes images and targets alike.
        target = smooth_one_hot(label, run.classes, run.eps)
        hard = label
        if mixup_on:
            lam = sample_mixup_lambda(streams.mixup_rng(run.seed, epoch, i), run.mixup_alpha)
            data, target = mixup(data, target, lam)
            hard = dominant_labels(label, lam)
        state.step(data, target, hard)  # issued, not waited for
        seen += data.shape[0]
        last = i
        if run.log_interval and ((i + 1) % run.log_interval == 0
                                 or (log_first and i == first_batch)):
            # The one read of the device per interval: loss, correct counts, finiteness.
            stats = totals.add(state.step.read(world), epoch, first, i)
            now = time.time()
            speed = (i + 1 - first) * data.shape[0] * world.size / (now - interval_tic)
            loss = stats.loss_sum / max(stats.samples * world.size, 1)
            first = i + 1
            log.batch(epoch, i, speed, "accuracy", totals.accuracy, trainer.learning_rate, loss,
                      run.iters_per_epoch, etas((now - tic) / (i + 1 - first_batch),
                                                run.iters_per_epoch - i - 1,
                                                run.num_epochs - epoch - 1, run.iters_per_epoch,
                                                state.validation_seconds))
            if state.tensorboard is not None:
                state.tensorboard.batch(step, loss, totals.accuracy, trainer.learning_rate, speed,
                                        stats.loss_scale if state.step.scaler.active else None)
            interval_tic = now
    # The epoch's last batches, and the weights, checked before validation and any checkpoint.
    totals.add(state.step.read(world), epoch, first, last)
    seconds = time.time() - tic
    loss = totals.loss_sum / max(seen * world.size, 1)
    if state.tensorboard is not None:
        state.tensorboard.epoch_train((epoch + 1) * run.iters_per_epoch, loss, totals.accuracy,
                                      seen * world.size / max(seconds, 1e-9),
                                      state.step.scaler.scale if state.step.scaler.active else None)
    skipped = int(world.sum([loader.skipped], name="skipped_images")[0])  # of every rank
    if skipped and log.enabled:
        log.info("[Epoch %d] skipped %d corrupt training images" % (epoch, skipped))
    if state.step.scaler.active and log.enabled:
        log.info("[Epoch %d] %s" % (epoch, state.step.scaler.describe()))
    return totals.accuracy, loss, seen * world.size / max(seconds, 1e-9), seconds


def make_loaders(run, train_source, val_source, world, stop_requested=None):
    """This rank's training and validation loaders, as `run` says. A wait for one batch ends
    after --data-timeout seconds (its stuck worker replaced), or with DataWaitStopped as soon as
    `stop_requested()` (a stop signal arrived)."""
    train_loader = TrainLoader(train_source, run.process_batch_size, input_size=run.input_size,
                               flavour=run.augmentation, num_workers=run.num_workers,
                               rank=world.rank, num_ranks=world.size, seed=run.seed,
                               max_bad_fraction=run.max_bad_fraction,
                               data_timeout=run.data_timeout or None,
                               stop_requested=stop_requested)
    assert len(train_loader) == run.iters_per_epoch, "resolve() and the loader disagree"
    # Ranks cannot agree inside validation (one may be in its final sum already): there a stop
    # waits for the validation's end (at most --data-timeout for a stuck worker); one process
    # can stop at once and save the epoch's trained weights.
    val_loader = ValLoader(val_source, run.process_batch_size, input_size=run.input_size,
                           crop_ratio=run.crop_ratio, num_workers=run.num_workers,
                           rank=world.rank, num_ranks=world.size,
                           max_bad_fraction=run.max_bad_fraction,
                           data_timeout=run.data_timeout or None,
                           stop_requested=stop_requested if world.size == 1 else None)
    return train_loader, val_loader


def log_worker_deaths_of_other_ranks(world, log, loaders):
    """The data workers replaced on every rank since the last call, into the log only rank 0
    writes (rank 0's own reach it through the data logger). Every rank calls it."""
    lines = [line for loader in loaders for line in loader.worker_reports()]
    if world.size == 1:
        return
    for rank, text in enumerate(world.gather_text("\n".join(lines), name="worker_deaths")):
        for line in text.splitlines() if rank else ():
            log.info("warning: " + line)


def train(flags, world, signals=None):
    """Train as `flags` (the parsed and checked flags) say; returns the final checkpoint's
    JSON path (rank 0) and the final validation errors (None: nothing was left to train).
    Everything that can refuse the run (data, network, teacher, lock, checkpoint to continue)
    comes before a log line is written; a refused run removes the save dir it created.
    `signals`: the StopSignals caught since the command started (else from now on)."""
    ctx = process_devices(flags.num_gpus, world.local_rank, world.size)
    train_source, val_source = data_sources(flags, train=True)
    run = resolve(flags, world, ctx, train_source)
    guard = RunGuard(run, world, signals)
    guard.signals.install()
    train_loader, val_loader = make_loaders(run, train_source, val_source, world,
                                            guard.signals.requested)
    state = build_state(run, ctx, world)
    made = world.is_root and not os.path.isdir(run.save_dir)  # removed again if refused
    if world.is_root:
        checkpoint.check_writable(run.save_dir)
    log = None
    result = {"checkpoint": None, "err_top1": None, "err_top5": None}
    try:
        guard.start()  # the lock, the checkpoint to continue: before the log is written
        start_notes = list(guard.notes)  # cleaning, a lock taken over
        start_epoch, first_batch = guard.load(state)
        if start_epoch >= run.num_epochs:  # a finished run: its log stays as it is
            if world.is_root:
                for note in start_notes:
                    print(note)
            return result
        log = TrainLog(run.logging_file, enabled=world.is_root)
        log.namespace(run.as_dict())
        for note in train_source.notes + val_source.notes:  # found before the log was open
            log.info("warning: " + note)
        for note in state.notes:
            log.info(note)
        guard.attach(log)
        state.tensorboard = TensorBoardLog(run.tensorboard_dir, enabled=world.is_root)
        state.control = guard
        world.broadcast_parameters(state.net)
        guard.after_broadcast(state)  # mid-epoch: each rank's own BatchNorm statistics
        schedule = make_lr_schedule(run.lr, run.lr_mode, run.num_epochs, run.iters_per_epoch,
                                    run.warmup_epochs, run.warmup_lr, run.lr_decay,
                                    run.lr_decay_epoch, run.lr_decay_period)
        log.info("training epochs %d to %d: %d batches per epoch of %d images on each of %d "
                 "rank(s); a batch line after the first batch, then every %d"
                 % (start_epoch, run.num_epochs - 1, run.iters_per_epoch, run.process_batch_size,
                    world.size, run.log_interval))
        for epoch in range(start_epoch, run.num_epochs):
            try:
                accuracy, loss, speed, seconds = train_one_epoch(
                    epoch, run, state, train_loader, schedule, world, log,
                    first_batch if epoch == start_epoch else 0, epoch == start_epoch)
            except Diverged as error:
                last = checkpoint.find_latest(run.save_dir, run.model)
                raise Diverged("%s; the last good checkpoint is %s" % (
                    error, last["path"] if last else "none (no checkpoint was written yet)"))
            step_module.average_batch_norm_over_devices(state.net)  # what a checkpoint holds
            world.average_batch_norm_statistics(state.net)
            tic = time.time()
            try:
                err_top1, err_top5, _ = validate(state.net, val_loader, ctx, world, run.dtype)
            except DataWaitStopped:  # a stop signal while waiting for validation data
                guard.stopped_in_validation(epoch)
            state.validation_seconds = time.time() - tic
            log_worker_deaths_of_other_ranks(world, log, (train_loader, val_loader))
            log.epoch(epoch, "accuracy", accuracy, loss, speed, seconds, err_top1, err_top5)
            state.tensorboard.validation((epoch + 1) * run.iters_per_epoch, err_top1, err_top5)
            result.update(err_top1=err_top1, err_top5=err_top5)
            done = epoch + 1
            if done == run.num_epochs or (run.save_frequency and done % run.save_frequency == 0):
                result["checkpoint"] = guard.save(done)
        return result
    except UserError:
        if made and log is None:
            shutil.rmtree(run.save_dir, ignore_errors=True)
        raise
    finally:
        guard.close()
        if state.tensorboard is not None:
            state.tensorboard.close()
        if log is not None:
            log.close()
