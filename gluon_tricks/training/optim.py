"""The optimiser: NAG with momentum and weight decay, no decay on biases and BN (section 3.1),
FP32 master weights under FP16 (section 3.2)."""
from mxnet import gluon

NO_DECAY_PATTERN = ".*beta|.*gamma|.*bias"


def apply_no_bias_decay(net):
    """wd_mult = 0 for every bias and BN gamma/beta; returns their names."""
    exempted = net.collect_params(NO_DECAY_PATTERN)
    for param in exempted.values():
        param.wd_mult = 0.0
    return sorted(exempted.keys())


def optimizer_settings(momentum, wd, dtype):
    """Arguments of the 'nag' optimiser; the learning rate is set by the loop every batch."""
    settings = {"momentum": momentum, "wd": wd, "learning_rate": 0.0}
    if dtype != "float32":
        settings["multi_precision"] = True  # an FP32 master copy of FP16 weights for the update
    return settings


def make_trainer(net, momentum, wd, dtype, world, num_devices=1, fp16_allreduce=False,
                 gradient_predivide_factor=1.0):
    """A gluon.Trainer (devices reduce through the 'device' kvstore and update their own copies,
    so the step can check the reduced gradients first), or Horovod's DistributedTrainer."""
    settings = optimizer_settings(momentum, wd, dtype)
    if world.size > 1:
        compression = (world.hvd.Compression.fp16 if fp16_allreduce
                       else world.hvd.Compression.none)
        return world.hvd.DistributedTrainer(net.collect_params(), "nag", settings,
                                            compression=compression,
                                            gradient_predivide_factor=gradient_predivide_factor)
    return gluon.Trainer(net.collect_params(), "nag", settings,
                         kvstore="device" if num_devices > 1 else None,
                         update_on_kvstore=False if num_devices > 1 else None)
