"""The Faster R-CNN training and validation loops of GluonCV's train_faster_rcnn.py (its
ForwardBackwardTask step, losses, learning-rate warmup and steps, VOC 07 mAP), logging in its
format so that `report` and `plot curves` read our logs and GluonCV's alike."""
import time
from dataclasses import dataclass

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


def epoch_seed(seed, epoch):
    """The seed of epoch `epoch`'s random streams (a 32-bit value, distinct per epoch)."""
    return (seed * 1000003 + epoch) % (1 << 31)


def _split_and_load(batch, ctx):
    return [[x.as_in_context(c) for x, c in zip(data, ctx)] if isinstance(data, (list, tuple))
            else [data.as_in_context(ctx[0])] for data in batch]


def validate(net, loader, metric, ctx):
    """(names, values) of `metric` (VOC07MApMetric: one AP per class, then mAP) over `loader`,
    boxes clipped to the image and scaled back to the original resolution, as GluonCV does."""
    import gluoncv as gcv
    clipper = gcv.nn.bbox.BBoxClipToImage()
    metric.reset()
    net.hybridize()
    for batch in loader:
        for x, y, im_scale in zip(*_split_and_load(batch, ctx)):
            ids, scores, bboxes = net(x)
            scale = im_scale.reshape((-1)).asscalar()
            bboxes = clipper(bboxes, x) * scale
            gt_boxes = y.slice_axis(axis=-1, begin=0, end=4) * scale
            gt_ids = y.slice_axis(axis=-1, begin=4, end=5)
            gt_difficult = y.slice_axis(axis=-1, begin=5, end=6) if y.shape[-1] > 5 else None
            metric.update(bboxes, ids, scores, gt_boxes, gt_ids, gt_difficult)
    return metric.get()


def validation_message(epoch, names, values):
    """GluonCV's validation record: one `name=value` line per class, then `mAP=`."""
    return "[Epoch %d] Validation: \n%s" % (epoch, "\n".join(
        "%s=%s" % (name, value) for name, value in zip(names, values)))


def make_trainer(net, lr, wd, momentum):
    """SGD over the trainable parameters only (frozen BN, stem and stage 1 stay)."""
    import mxnet as mx
    net.collect_params().setattr("grad_req", "null")
    net.collect_train_params().setattr("grad_req", "write")
    return mx.gluon.Trainer(net.collect_train_params(), "sgd",
                            {"learning_rate": lr, "wd": wd, "momentum": momentum},
                            kvstore="local")


def train(net, trainer, train_data, val_data, metric, ctx, schedule, epochs, log, save,
          start_epoch=0, seed=233, log_interval=100, val_interval=1, batch_size=1):
    """Epochs start_epoch..epochs-1; after each, validation every `val_interval` epochs and
    `save(epoch, mAP or None)`. Returns the last mAP validated (None if none). The random
    streams (Python's, NumPy's, MXNet's: data order, flips, the RPN's and R-CNN's samplers) are
    seeded from (seed, epoch) at each epoch, so a run resumed at an epoch continues exactly."""
    from gluoncv.utils import random as gcv_random
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
    log.info("Start training from [Epoch %d]" % start_epoch)
    last_map = None
    for epoch in range(start_epoch, epochs):
        gcv_random.seed(epoch_seed(seed, epoch))
        net.hybridize()
        for m in losses + extra:
            m.reset()
        tic = btic = time.time()
        for i, batch in enumerate(train_data):
            lr = schedule.lr_at(epoch, i)
            if lr != trainer.learning_rate:
                trainer.set_learning_rate(lr)
            result = task.forward_backward(list(zip(*_split_and_load(batch, ctx)))[0])
            trainer.step(batch_size)
            for m, value in zip(losses, result[:4]):
                m.update(0, [value])
            for m, pred in zip(extra, result[4:]):
                m.update(pred[0], pred[1])
            loss = losses[0].get()[1] + losses[2].get()[1]
            if loss != loss:
                raise UserError("the loss became NaN at epoch %d, batch %d (lower --lr?)"
                                % (epoch, i))
            if log_interval and not (i + 1) % log_interval:
                log.info("[Epoch %d][Batch %d], Speed: %.3f samples/sec, %s" % (
                    epoch, i, log_interval * batch_size / (time.time() - btic),
                    ",".join("%s=%.3f" % m.get() for m in losses + extra)))
                btic = time.time()
        log.info("[Epoch %d] Training cost: %.3f, %s" % (
            epoch, time.time() - tic, ",".join("%s=%.3f" % m.get() for m in losses)))
        current = None
        if not (epoch + 1) % val_interval:
            names, values = validate(net, val_data, metric, ctx)
            log.info(validation_message(epoch, names, values))
            current = last_map = float(values[-1])
        save(epoch, current)
    return last_map
