"""The learning-rate schedule per iteration (paper sections 3.1, 5.1) from GluonCV's LRScheduler:
`schedule(step)`, step counted from 1 as MXNet's num_update. Warmup reaches lr at batch m - 1 and
cosine 0 at the last batch (the paper's i/m, t/T: one batch sooner); step decay epochs count from
the start of training."""
from gluoncv.utils import LRScheduler, LRSequential


def decay_epochs(lr_decay_epoch="30,60,90", lr_decay_period=0, num_epochs=120):
    """GluonCV's rule: every `lr_decay_period` epochs when it is > 0, else the listed epochs."""
    if lr_decay_period > 0:
        return list(range(lr_decay_period, num_epochs, lr_decay_period))
    if isinstance(lr_decay_epoch, str):
        return [int(e) for e in lr_decay_epoch.split(",") if e.strip()]
    return list(lr_decay_epoch)


def make_lr_schedule(lr, lr_mode, num_epochs, iters_per_epoch, warmup_epochs=0, warmup_lr=0.0,
                     lr_decay=0.1, lr_decay_epoch="30,60,90", lr_decay_period=0):
    """A callable step -> learning rate (an MXNet LRScheduler, usable by a gluon.Trainer too)."""
    if lr_mode not in ("step", "cosine", "poly", "linear"):
        raise ValueError("lr_mode must be step, cosine, poly or linear, not %r" % lr_mode)
    if not 0 <= warmup_epochs < num_epochs:
        raise ValueError("warmup_epochs (%s) must be in [0, num_epochs=%s)"
                         % (warmup_epochs, num_epochs))
    parts = []
    if warmup_epochs > 0:
        parts.append(LRScheduler("linear", base_lr=warmup_lr, target_lr=lr,
                                 nepochs=warmup_epochs, iters_per_epoch=iters_per_epoch))
    steps_after_warmup = [e - warmup_epochs for e in
                          decay_epochs(lr_decay_epoch, lr_decay_period, num_epochs)]
    parts.append(LRScheduler(lr_mode, base_lr=lr, target_lr=0,
                             nepochs=num_epochs - warmup_epochs, iters_per_epoch=iters_per_epoch,
                             step_epoch=steps_after_warmup, step_factor=lr_decay, power=2))
    return LRSequential(parts)


def lr_per_epoch(schedule, num_epochs, iters_per_epoch, points_per_epoch=20):
    """(epoch, lr) pairs sampled along training, for Figure 3(a)."""
    stride = max(1, iters_per_epoch // points_per_epoch)
    steps = range(1, num_epochs * iters_per_epoch + 1, stride)
    return [((step - 1) / iters_per_epoch, schedule(step)) for step in steps]
