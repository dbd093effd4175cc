"""Convert the weights of MXNet's / GluonCV's `resnet*_v1` (the paper's ResNet-A baseline) into
this project's `resnet*_v1`.

The two networks have the same layers; only the names differ. MXNet's model zoo keeps the stem and
stages in one `features` sequence and each block's layers in a `body` sequence:

    features.0 / features.1          -> conv1 / bn1                (7x7 stem)
    features.{4+s}.{b}.body.{i}      -> layer{s+1}.{b}.{conv,bn}{k}
                                        (i = 0,1 / 3,4 / 6,7 -> k = 1/2/3)
    features.{4+s}.{b}.downsample.j  -> layer{s+1}.{b}.downsample.j
    output                           -> fc
"""
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
    """Save a dict {MXNet resnet_v1 structural name: NDArray} (for instance
    `mx.nd.load('resnet50_v1-xxxx.params')`) as a .params file that
    `get_model('resnet50_v1').load_parameters(dst_path)` reads."""
    import mxnet as mx
    mx.nd.save(dst_path, {convert_name(name): value for name, value in src_params.items()})
    return dst_path
