"""Convert the weights of GluonCV's `resnet*_v1` (the paper's ResNet-A) into this project's: the
same layers, renamed from `features.{4+s}.{b}.body.{i}` etc. to `layer{s+1}.{b}.conv{k}`."""
import re

_BODY_TO_BLOCK = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "6": "conv3", "7": "bn3"}
_STEM = {"0": "conv1", "1": "bn1"}


def convert_name(name):
    """The name in this project's ResNet-A of MXNet's `resnet*_v1` parameter `name`."""
    match = re.fullmatch(r"features\.(\d+)\.(\d+)\.body\.(\d+)\.(\w+)", name)
    if match:
        stage, block, layer, kind = match.groups()
        return "layer%d.%s.%s.%s" % (int(stage) - 3, block, _BODY_TO_BLOCK[layer], kind)
    match = re.fullmatch(r"features\.(\d+)\.(\d+)\.downsample\.(\d+)\.(\w+)", name)
    if match:
        stage, block, layer, kind = match.groups()
        return "layer%d.%s.downsample.%s.%s" % (int(stage) - 3, block, layer, kind)
    match = re.fullmatch(r"features\.([01])\.(\w+)", name)
    if match:
        return "%s.%s" % (_STEM[match.group(1)], match.group(2))
    match = re.fullmatch(r"output\.(\w+)", name)
    if match:
        return "fc." + match.group(1)
    raise ValueError("not a parameter of MXNet's resnet_v1: %s" % name)


def convert_resnet_v1_params(src_params, dst_path):
    """Save {MXNet resnet_v1 structural name: NDArray} as .params our resnet*_v1 loads."""
    import mxnet as mx
    mx.nd.save(dst_path, {convert_name(name): value for name, value in src_params.items()})
    return dst_path
