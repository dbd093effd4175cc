"""Our ResNets as the backbones of GluonCV's detection and segmentation networks.

Faster R-CNN (the paper's Table 8) runs the stem and stages 1-3 on the whole image (`features`,
stride 16) and stage 4 on each pooled region (`top_features`), with frozen BN, exactly as
GluonCV's `faster_rcnn_resnet50_v1b_voc` splits GluonCV's own ResNet. FCN (Table 9) runs the
dilated network (`dilated=True`, stride 8) as the stages of GluonCV's SegBaseModel.
"""
from mxnet.gluon import nn

from gluon_tricks.errors import UserError
from gluon_tricks.models import get_model, parse_resnet_name

# GluonCV's split of its ResNetV1b, by attribute; `relu` has no parameters and our ResNet
# applies it inline, so an equal Activation block stands in for it.
FEATURE_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
TOP_FEATURE_LAYERS = ("layer4",)


SEGMENTATION_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


def _stage(net, name):
    return nn.Activation("relu") if name == "relu" else getattr(net, name)


def split_for_faster_rcnn(net):
    """(features, top_features) of our ResNet `net`, in the order and with the children of
    GluonCV's split, sharing `net`'s blocks (and so its parameters)."""
    features = nn.HybridSequential(prefix="")
    top_features = nn.HybridSequential(prefix="")
    for name in FEATURE_LAYERS:
        features.add(_stage(net, name))
    for name in TOP_FEATURE_LAYERS:
        top_features.add(_stage(net, name))
    return features, top_features


def attach_to_segmentation_model(model, net):
    """Put the stages of our dilated ResNet `net` in place of the backbone stages that GluonCV's
    SegBaseModel (FCN, PSP, DeepLab) took from its own ResNet; returns `model`. The replaced
    children keep their names and order, so the model saves and loads as GluonCV's does."""
    if not getattr(net, "dilated", False):
        raise UserError("a segmentation backbone must be dilated (output stride 8); build it "
                        "with dilated=True")
    for name in SEGMENTATION_STAGES:
        # Gluon refuses to change a child's type (our plain stem for GluonCV's deep one at depth
        # 50, our deep stem for its plain one at 18): drop the old child first.
        del model.__dict__[name]
        setattr(model, name, _stage(net, name))
    return model


def load_backbone(name, params_file=None, ctx=None, **kwargs):
    """Our ResNet `name` (any depth and variant), with a classifier's weights from `params_file`
    (a `.params` file of this project or GluonCV's; its number of classes is read from it).
    kwargs: dilated, use_global_stats (see ResNet)."""
    import mxnet as mx
    if parse_resnet_name(name) is None:
        raise UserError("a backbone must be one of our ResNets (resnet50_v1d, ...); got %r" % name)
    if params_file is None:
        return get_model(name, **kwargs)
    try:
        saved = mx.nd.load(params_file)
    except (OSError, mx.base.MXNetError) as error:
        raise UserError("cannot read the weights file %s (%s)" % (
            params_file, str(error).strip().splitlines()[0] if str(error).strip() else
            type(error).__name__)) from None
    if not isinstance(saved, dict) or "fc.weight" not in saved:
        raise UserError("%s holds no ResNet classifier weights (no fc.weight)" % params_file)
    net = get_model(name, classes=saved["fc.weight"].shape[0], **kwargs)
    try:
        net.load_parameters(params_file, ctx=ctx)
    except (AssertionError, ValueError, mx.base.MXNetError) as error:
        raise UserError("the weights in %s are not those of %s: %s" % (
            params_file, name, str(error).strip().splitlines()[0])) from None
    return net


def faster_rcnn_backbone(name, params_file=None, ctx=None):
    """(features, top_features) for GluonCV's FasterRCNN: our ResNet `name` with frozen BN (as
    GluonCV builds its base network), loaded from `params_file` when given."""
    return split_for_faster_rcnn(load_backbone(name, params_file, ctx, use_global_stats=True))
