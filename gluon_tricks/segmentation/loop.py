"""The training and validation of GluonCV's segmentation train.py: SGD under its polynomial
schedule (power 0.9, after an optional linear warmup), MixSoftmaxCrossEntropyLoss with the
auxiliary head, and pixAcc/mIoU by its SegmentationMetric; logging in its format so that
`report` and `plot curves` read our logs and GluonCV's alike."""
import time

import numpy as np

from gluon_tricks.errors import UserError

POLY_POWER = 0.9  # GluonCV's train.py


def lr_scheduler(lr, epochs, warmup_epochs, iters_per_epoch):
    """GluonCV's train.py schedule: linear from 0 to `lr` over `warmup_epochs`, then `poly`
    (power 0.9) down to 0 over the remaining epochs, per iteration (its LRSequential)."""
    from gluoncv.utils import LRScheduler, LRSequential
    return LRSequential([
        LRScheduler("linear", base_lr=0, target_lr=lr, nepochs=warmup_epochs,
                    iters_per_epoch=iters_per_epoch),
        LRScheduler(mode="poly", base_lr=lr, nepochs=epochs - warmup_epochs,
                    iters_per_epoch=iters_per_epoch, power=POLY_POWER)])


def make_trainer(model, lr, momentum, weight_decay, scheduler, no_wd=False):
    """SGD over every parameter (the heads at GluonCV's 10x lr_mult), as train.py builds it;
    no_wd: no weight decay on biases and BN (train.py's --no-wd)."""
    import mxnet as mx
    if no_wd:
        for param in model.collect_params(".*beta|.*gamma|.*bias").values():
            param.wd_mult = 0.0
    return mx.gluon.Trainer(model.collect_params(), "sgd",
                            {"lr_scheduler": scheduler, "wd": weight_decay,
                             "momentum": momentum, "learning_rate": lr}, kvstore="local")


def make_criterion(aux, aux_weight):
    from gluoncv.loss import MixSoftmaxCrossEntropyLoss
    return MixSoftmaxCrossEntropyLoss(aux, aux_weight=aux_weight)


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch`'s MXNet/NumPy streams (dropout in the heads)."""
    return (seed * 1000003 + epoch) % (1 << 31)


def validate(model, loader, metric, ctx):
    """(pixAcc, mIoU) over `loader` of `model.evaluate` (the main head's scores at the crop
    size), as train.py's validation with SegEvalModel."""
    metric.reset()
    for data, target in loader:
        output = model.evaluate(data.as_in_context(ctx))
        # NDArrays, not lists: SegmentationMetric runs a list in threads that swallow errors
        metric.update(target.as_in_context(ctx), output)
    return metric.get()


def validate_multi_scale(model, loader, metric, nclass, ctx, scales, flip=True):
    """(pixAcc, mIoU) over whole images with GluonCV's MultiEvalModel: each image at every scale
    of `base_size` (sliding crops where larger than the crop), flipped too, scores summed (its
    test.py --eval)."""
    from gluoncv.model_zoo.segbase import MultiEvalModel
    evaluator = MultiEvalModel(model, nclass, ctx_list=[ctx], flip=flip, scales=list(scales))
    metric.reset()
    for images, targets in loader:
        # One image at a time (test.py's parallel_forward drops the batch axis on one device)
        for image, target in zip(images, targets):
            scores = evaluator(image.as_in_context(ctx))
            metric.update(target.expand_dims(0).as_in_context(ctx), scores)
    return metric.get()


def validation_message(epoch, pix_acc, miou):
    """train.py's validation line (newer form), at six decimals instead of its three."""
    return "Epoch %d validation pixAcc: %.6f, mIoU: %.6f" % (epoch, pix_acc, miou)


def training_message(epoch, iteration, iterations, loss):
    """train.py's log-interval line: the mean training loss of the epoch so far."""
    return "Epoch %d iteration %04d/%04d: training loss %.3f" % (epoch, iteration, iterations,
                                                                loss)


def train_epoch(model, trainer, criterion, loader, ctx, epoch, batch_size, log,
                log_interval=20):
    """One epoch of train.py's Trainer.training; returns the epoch's mean training loss.
    Logs every `log_interval` iterations and after the last."""
    import mxnet as mx
    from mxnet import autograd
    total, iterations = 0.0, len(loader)
    for i, (data, target) in enumerate(loader):
        data, target = data.as_in_context(ctx), target.as_in_context(ctx)
        with autograd.record(True):
            outputs = model(data)
            losses = criterion(*outputs, target)
            mx.nd.waitall()
        autograd.backward(losses)
        trainer.step(batch_size)
        total += float(np.mean(losses.asnumpy()))
        mean = total / (i + 1)
        if mean != mean:
            raise UserError("the loss became NaN at epoch %d, iteration %d (lower --lr?)"
                            % (epoch, i))
        if (log_interval and i and not i % log_interval) or i + 1 == iterations:
            log.info(training_message(epoch, i + 1 if i + 1 == iterations else i, iterations,
                                      mean))
    return total / max(iterations, 1)


def train(model, trainer, criterion, train_data, batches, val_data, metric, ctx, epochs, log,
          save, start_epoch=0, seed=1, batch_size=16, log_interval=20, no_val=False):
    """Epochs start_epoch..epochs-1, each followed by validation (unless no_val) and
    `save(epoch, mIoU or None)`; returns the last (pixAcc, mIoU) validated, or None. The random
    streams of an epoch follow from (seed, epoch), so a run resumed at an epoch continues
    exactly."""
    from gluoncv.utils import random as gcv_random
    log.info("Starting Epoch: %d" % start_epoch)
    log.info("Total Epochs: %d" % epochs)
    last = None
    for epoch in range(start_epoch, epochs):
        gcv_random.seed(epoch_seed(seed, epoch))
        batches.set_epoch(epoch)
        tic = time.time()
        train_epoch(model, trainer, criterion, train_data, ctx, epoch, batch_size, log,
                    log_interval)
        log.info("Epoch %d training cost: %.1f s" % (epoch, time.time() - tic))
        current = None
        if not no_val:
            last = validate(model, val_data, metric, ctx)
            log.info(validation_message(epoch, *last))
            current = float(last[1])
        save(epoch, current)
    return last
