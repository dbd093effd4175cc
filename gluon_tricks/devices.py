"""The devices of one process: its local GPU under Horovod, `--num-gpus N` GPUs, or the CPU;
GLUON_TRICKS_DEVICES (e.g. `cpu(0),cpu(1)`) names contexts that stand in for GPUs."""
import os
import re

import mxnet as mx

from gluon_tricks.errors import UserError

DEVICES_ENV = "GLUON_TRICKS_DEVICES"


def parse_devices(text):
    """'cpu(0),cpu(1)' or 'gpu(0),gpu(3)' -> MXNet contexts."""
    contexts = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = re.fullmatch(r"(cpu|gpu)\((\d+)\)", item)
        if not match:
            raise UserError("%s=%r: name contexts like cpu(0),cpu(1) or gpu(0),gpu(1)"
                            % (DEVICES_ENV, text))
        contexts.append(mx.Context(match.group(1), int(match.group(2))))
    if not contexts:
        raise UserError("%s is set but names no context" % DEVICES_ENV)
    return contexts


def injected_devices(environ=None):
    """The contexts GLUON_TRICKS_DEVICES names, or None when it is not set."""
    text = (os.environ if environ is None else environ).get(DEVICES_ENV)
    return parse_devices(text) if text else None


def require_gpus(num_gpus, environ=None, flag="--num-gpus"):
    """A one-line error unless `--num-gpus num_gpus` can be had (injected, or visible to MXNet);
    `flag`: the command's name for it (segment's is GluonCV's --ngpus)."""
    if num_gpus < 0:
        raise UserError("%s must be >= 0" % flag)
    if num_gpus and injected_devices(environ) is None:
        visible = mx.context.num_gpus()
        if visible < num_gpus:
            raise UserError("%s %d: this machine/MXNet build sees %d GPU(s)%s" % (
                flag, num_gpus, visible, " (a CPU build of mxnet: install mxnet-cu1xx)"
                if not mx.runtime.Features().is_enabled("CUDA") else ""))


def process_devices(num_gpus, local_rank=0, ranks=1, environ=None, flag="--num-gpus"):
    """The devices this process computes on: the CPU, the local rank's GPU under Horovod, or
    the first N GPUs (or injected contexts)."""
    if not num_gpus:
        return [mx.cpu()]
    available = injected_devices(environ)
    if available is None:
        require_gpus(num_gpus, environ, flag)
        available = [mx.gpu(i) for i in range(max(num_gpus, local_rank + 1))]
    if ranks > 1:
        if local_rank >= len(available):
            raise UserError("local rank %d has no device (%s names %d)"
                            % (local_rank, DEVICES_ENV, len(available)))
        return [available[local_rank]]
    if len(available) < num_gpus:
        raise UserError("%s %d: %s names only %d context(s)"
                        % (flag, num_gpus, DEVICES_ENV, len(available)))
    return available[:num_gpus]


def uses_gpus(num_gpus, environ=None):
    """Whether `--num-gpus num_gpus` means real GPUs (not the CPU, nor injected CPU contexts)."""
    if not num_gpus:
        return False
    injected = injected_devices(environ)
    return injected is None or all(ctx.device_type == "gpu" for ctx in injected)
