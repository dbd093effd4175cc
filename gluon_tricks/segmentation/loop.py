"""The training and validation of GluonCV's segmentation train.py: SGD under its polynomial
schedule (power 0.9, after an optional linear warmup), MixSoftmaxCrossEntropyLoss with the
auxiliary head, and pixAcc/mIoU by its SegmentationMetric; logging in its format so that
`report` and `plot curves` read our logs and GluonCV's alike."""
import itertools
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


def make_trainer(model, momentum, weight_decay, scheduler, no_wd=False, world=None):
    """SGD over every trained parameter (the heads at GluonCV's 10x lr_mult), as train.py builds
    it; no_wd: no weight decay on biases and BN (train.py's --no-wd). Under Horovod its
    DistributedTrainer: gradients summed over ranks, the update divided by every rank's images,
    as one process sums its devices'. Unlike train.py's, the trainer does not hold the BN
    running statistics: its kvstore, set up at the first step, would copy device 0's over the
    other devices' (a rank keeps its own); they are averaged after each epoch instead."""
    import mxnet as mx
    if no_wd:
        for param in model.collect_params(".*beta|.*gamma|.*bias").values():
            param.wd_mult = 0.0
    # train.py also passes learning_rate, which MXNet ignores beside a scheduler (printing a
    # warning to stdout): the scheduler alone gives every step's rate.
    settings = {"lr_scheduler": scheduler, "wd": weight_decay, "momentum": momentum}
    trained = {name: param for name, param in model.collect_params().items()
               if param.grad_req != "null"}
    if world is not None and world.size > 1:
        return world.hvd.DistributedTrainer(trained, "sgd", settings)
    return mx.gluon.Trainer(trained, "sgd", settings, kvstore="local")


def make_criterion(aux, aux_weight):
    from gluoncv.loss import MixSoftmaxCrossEntropyLoss
    return MixSoftmaxCrossEntropyLoss(aux, aux_weight=aux_weight)


COUNTS = ("total_correct", "total_label", "total_inter", "total_union")  # SegmentationMetric's


def validate(model, loaders, metric, ctx, world=None):
    """(pixAcc, mIoU) of `model.evaluate` (the main head's scores at the crop size), as
    train.py's validation with SegEvalModel: loaders[d] (a share of the images) on device
    ctx[d]; under Horovod the metric's pixel and class counts are summed over ranks, so every
    rank gets the value one process gets (exact: whole numbers in float64)."""
    metric.reset()
    for batches in itertools.zip_longest(*loaders):  # every device's batch queued, then read
        outputs = [(model.evaluate(batch[0].as_in_context(device)), batch[1], device)
                   for batch, device in zip(batches, ctx) if batch is not None]
        for output, target, device in outputs:
            # NDArrays, not lists: SegmentationMetric runs a list in threads that swallow errors
            metric.update(target.as_in_context(device), output)
    if world is not None and world.size > 1:
        counts = world.sum(np.concatenate([np.ravel(getattr(metric, name)) for name in COUNTS]),
                           name="segmentation_counts")
        metric.total_correct, metric.total_label = counts[0], counts[1]
        metric.total_inter, metric.total_union = np.split(counts[2:], 2)
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


def train(model, trainer, criterion, loader, val_loaders, metric, ctx, epochs, log, guard,
          end_epoch, world, start=(0, 0), seed=0, log_interval=20, no_val=False):
    """Epochs from `start` (epoch, batch) to epochs-1 of train.py's Trainer.training, this
    process's batch split over its devices `ctx`, each followed by validation (unless no_val;
    `val_loaders`: one per device) and `end_epoch(epoch, mIoU or None)`. `guard` (a RunGuard)
    is asked before each step whether to checkpoint and stop. The data's draws are keyed by
    (seed, epoch, image), the heads' dropout by (seed, epoch, batch, device of all ranks): a run
    resumed at any batch continues exactly, and N ranks of one device train what one process
    of N devices does. The logged loss is the mean over the epoch's steps and every device.
    Returns the last (pixAcc, mIoU) validated, or None."""
    import mxnet as mx
    from mxnet import autograd
    from gluon_tricks import streams
    from gluon_tricks.training.step import average_batch_norm_over_devices
    batch_size = loader.batches.batch_size
    start_epoch, start_batch = start
    first_device, devices = world.rank * len(ctx), world.size * len(ctx)
    log.info("Starting Epoch: %d" % start_epoch
             + (" (batch %d)" % start_batch if start_batch else ""))
    log.info("Total Epochs: %d" % epochs)
    last = None
    for epoch in range(start_epoch, epochs):
        first = start_batch if epoch == start_epoch else 0
        batches = loader.epoch(epoch, first)
        iterations, tic = len(loader), time.time()
        totals = np.zeros(devices)  # each device's sum of its mean loss per step
        for i, (data, target) in enumerate(guard.agreed_batches(epoch, batches, first), first):
            data = mx.gluon.utils.split_and_load(data, ctx)
            target = mx.gluon.utils.split_and_load(target, ctx)
            losses = []
            with autograd.record(True):
                for d, (x, y) in enumerate(zip(data, target)):
                    mx.random.seed(streams.transfer_step_seed(seed, epoch, i, first_device + d),
                                   ctx=ctx[d])
                    losses.append(criterion(*model(x), y))
            autograd.backward(losses)
            trainer.step(batch_size)
            for d, loss in enumerate(losses):
                totals[first_device + d] += float(np.mean(loss.asnumpy()))
            summed = world.sum(totals, name="segmentation_loss")  # every rank's devices
            mean = float(np.sum(summed)) / devices / (i + 1 - first)
            if mean != mean:  # every rank sees it: the ranks stop together
                raise UserError("the loss became NaN at epoch %d, iteration %d (lower --lr?)"
                                % (epoch, i))
            if (log_interval and i and not i % log_interval) or i + 1 == iterations:
                log.info(training_message(epoch, i + 1 if i + 1 == iterations else i,
                                          iterations, mean))
        log.info("Epoch %d training cost: %.1f s" % (epoch, time.time() - tic))
        average_batch_norm_over_devices(model)  # one network to validate and save
        world.average_batch_norm_statistics(model)
        current = None
        if not no_val:
            last = validate(model, val_loaders, metric, ctx, world)
            log.info(validation_message(epoch, *last))
            current = float(last[1])
        end_epoch(epoch, current)
    return last
