"""The Faster R-CNN training and validation loops of GluonCV's train_faster_rcnn.py (its
ForwardBackwardTask step, losses, learning-rate warmup and steps, VOC 07 mAP), logging in its
format so that `report` and `plot curves` read our logs and GluonCV's alike."""
import time
from dataclasses import dataclass

from gluon_tricks import streams
from gluon_tricks.errors import UserError


@dataclass
class Schedule:
    """GluonCV's detection schedule: `lr` multiplied by `decay` at each epoch of `steps`, and
    in epoch 0 a linear warmup from lr*warmup_factor over the first `warmup` iterations."""
    lr: float
    decay: float
    steps: tuple
    warmup: float
    warmup_factor: float = 1.0 / 3.0

    def epoch_lr(self, epoch):
        return self.lr * self.decay ** sum(1 for step in self.steps if epoch >= step)

    def lr_at(self, epoch, iteration):
        base = self.epoch_lr(epoch)
        if epoch == 0 and self.warmup > 0 and iteration <= self.warmup:
            alpha = iteration / self.warmup
            return base * (self.warmup_factor * (1 - alpha) + alpha)
        return base


def _split_and_load(batch, ctx):
    return [[x.as_in_context(c) for x, c in zip(data, ctx)] if isinstance(data, (list, tuple))
            else [data.as_in_context(ctx[0])] for data in batch]


def validate(net, loader, metric, ctx, world=None):
    """(names, values) of `metric` (VOC07MApMetric: one AP per class, then mAP) over `loader`,
    boxes clipped to the image and scaled back to the original resolution, as GluonCV does.
    Under Horovod each rank's loader holds every N-th image (`val_loader(rank, ranks)`): the
    ranks' detections are gathered and the metric takes them in the images' order, as one
    process would (the same mAP to the bit), on every rank."""
    import gluoncv as gcv
    clipper = gcv.nn.bbox.BBoxClipToImage()
    metric.reset()
    net.hybridize()
    records = []  # the metric's arguments of each image, as NumPy arrays
    for batch in loader:
        for x, y, im_scale in zip(*_split_and_load(batch, ctx)):
            ids, scores, bboxes = net(x)
            scale = im_scale.reshape((-1)).asscalar()
            bboxes = clipper(bboxes, x) * scale
            gt_boxes = y.slice_axis(axis=-1, begin=0, end=4) * scale
            gt_ids = y.slice_axis(axis=-1, begin=4, end=5)
            gt_difficult = y.slice_axis(axis=-1, begin=5, end=6) if y.shape[-1] > 5 else None
            records.append(tuple(None if a is None else a.asnumpy() for a in (
                bboxes, ids, scores, gt_boxes, gt_ids, gt_difficult)))
    if world is not None and world.size > 1:
        shares = world.hvd.allgather_object(records, name="validation_detections")
        records = [shares[i % world.size][i // world.size]
                   for i in range(sum(len(share) for share in shares))]
    for record in records:
        metric.update(*record)
    return metric.get()


def validation_message(epoch, names, values):
    """GluonCV's validation record: one `name=value` line per class, then `mAP=`."""
    return "[Epoch %d] Validation: \n%s" % (epoch, "\n".join(
        "%s=%s" % (name, value) for name, value in zip(names, values)))


def make_trainer(net, lr, wd, momentum, world):
    """SGD over the trainable parameters only (frozen BN, stem and stage 1 stay); under Horovod
    its DistributedTrainer (gradients summed over ranks, the update divided by every rank's
    images), as train_faster_rcnn.py --horovod."""
    import mxnet as mx
    net.collect_params().setattr("grad_req", "null")
    net.collect_train_params().setattr("grad_req", "write")
    settings = {"learning_rate": lr, "wd": wd, "momentum": momentum}
    if world.size > 1:
        return world.hvd.DistributedTrainer(net.collect_train_params(), "sgd", settings)
    return mx.gluon.Trainer(net.collect_train_params(), "sgd", settings, kvstore="local")


def _summed(metrics, world):
    """`name=value` of each metric, its sums and counts added over every rank."""
    sums = world.sum([x for m in metrics for x in (m.sum_metric, m.num_inst)], name="metrics")
    return ",".join("%s=%.3f" % (m.name, total / count if count else float("nan"))
                    for m, total, count in zip(metrics, sums[0::2], sums[1::2]))


def train(net, trainer, loader, val_data, metric, ctx, schedule, epochs, log, guard, end_epoch,
          world, start=(0, 0), seed=233, log_interval=100, val_interval=1):
    """Epochs from `start` (epoch, batch) to epochs-1 on this process's devices `ctx` (one image
    shard each); after each, validation every `val_interval` epochs and `end_epoch(epoch, mAP
    or None)`. `guard` (a RunGuard) agrees with the other ranks before each step whether to
    save and stop. Every random draw is keyed by (seed, epoch, batch, image or device), so a run
    resumed at any batch continues exactly. Returns the last mAP validated (None if none)."""
    import mxnet as mx
    from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
    from gluoncv.utils.metrics.rcnn import (RCNNAccMetric, RCNNL1LossMetric, RPNAccMetric,
                                            RPNL1LossMetric)
    losses = [mx.metric.Loss(name) for name in
              ("RPN_Conf", "RPN_SmoothL1", "RCNN_CrossEntropy", "RCNN_SmoothL1")]
    extra = [RPNAccMetric(), RPNL1LossMetric(), RCNNAccMetric(), RCNNL1LossMetric()]
    task = ForwardBackwardTask(
        net, trainer, mx.gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
        mx.gluon.loss.HuberLoss(rho=1.0 / 9.0), mx.gluon.loss.SoftmaxCrossEntropyLoss(),
        mx.gluon.loss.HuberLoss(rho=1.0), mix_ratio=1.0, amp_enabled=False)
    batch_size = loader.batches.batch_size
    start_epoch, start_batch = start
    log.info("Start training from [Epoch %d]" % start_epoch
             + (" [Batch %d]" % start_batch if start_batch else ""))
    last_map = None
    for epoch in range(start_epoch, epochs):
        first = start_batch if epoch == start_epoch else 0
        net.hybridize()
        for m in losses + extra:
            m.reset()
        tic = btic = time.time()
        for i, batch in enumerate(guard.agreed_batches(epoch, loader.epoch(epoch, first), first),
                                  first):
            lr = schedule.lr_at(epoch, i)
            if lr != trainer.learning_rate:
                trainer.set_learning_rate(lr)
            results = []
            for device, shard in enumerate(zip(*_split_and_load(batch, ctx))):
                mx.random.seed(streams.transfer_step_seed(
                    seed, epoch, i, world.rank * len(ctx) + device), ctx=ctx[device])
                results.append(task.forward_backward(shard))
            trainer.step(batch_size)
            for result in results:
                for m, value in zip(losses, result[:4]):
                    m.update(0, [value])
                for m, pred in zip(extra, result[4:]):
                    m.update(pred[0], pred[1])
            loss = losses[0].get()[1] + losses[2].get()[1]
            if loss != loss:
                raise UserError("the loss became NaN at epoch %d, batch %d (lower --lr?)"
                                % (epoch, i))
            if log_interval and not (i + 1) % log_interval:
                text = _summed(losses + extra, world)
                log.info("[Epoch %d][Batch %d], Speed: %.3f samples/sec, %s" % (
                    epoch, i, log_interval * batch_size * world.size / (time.time() - btic),
                    text))
                btic = time.time()
        log.info("[Epoch %d] Training cost: %.3f, %s" % (epoch, time.time() - tic,
                                                         _summed(losses, world)))
        current = None
        if not (epoch + 1) % val_interval:
            names, values = validate(net, val_data, metric, ctx, world)
            log.info(validation_message(epoch, names, values))
            current = last_map = float(values[-1])
        end_epoch(epoch, current)
    return last_map
