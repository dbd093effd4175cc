"""The paper's networks: ResNet-A/B/C/D written here, Inception-V3 and MobileNet from GluonCV."""
import mxnet as mx

from gluon_tricks.errors import UserError
from gluon_tricks.models.resnet import DEPTHS, VARIANTS, ResNet

RESNET_NAMES = tuple("resnet%d_%s" % (depth, variant) for variant in VARIANTS for depth in DEPTHS)
# The paper's other baselines (Tables 2 and 6), taken from GluonCV's model zoo as they are.
GLUONCV_NAMES = ("inceptionv3", "mobilenet1.0")
MODEL_NAMES = RESNET_NAMES + GLUONCV_NAMES
INPUT_SIZES = {"inceptionv3": 299}  # every other model is trained at 224x224


def parse_resnet_name(name):
    """'resnet50_v1d' -> (50, 'v1d'); None for a name that is not one of our ResNets."""
    if name not in RESNET_NAMES:
        return None
    depth, variant = name[len("resnet"):].split("_")
    return int(depth), variant


def get_model(name, classes=1000, last_gamma=False, **kwargs):
    """A hybridizable, uninitialised network by name (see MODEL_NAMES).

    last_gamma zero-initialises the last BN gamma of every residual block (ResNets only);
    dilated=True gives a ResNet of output stride 8 (ResNets only, see models/resnet.py).
    """
    resnet = parse_resnet_name(name)
    if resnet is not None:
        depth, variant = resnet
        return ResNet(depth=depth, variant=variant, classes=classes, last_gamma=last_gamma,
                      **kwargs)
    if name in GLUONCV_NAMES:
        if kwargs.get("dilated"):
            raise UserError("dilated applies to our ResNets; %s has no dilated form" % name)
        if last_gamma:
            raise UserError("--last-gamma applies to residual networks; %s has no residual "
                            "blocks" % name)
        from gluoncv.model_zoo import get_model as gluoncv_get_model
        return gluoncv_get_model(name, classes=classes, pretrained=False, **kwargs)
    raise UserError("unknown model %r; valid names: %s" % (name, ", ".join(MODEL_NAMES)))


def paper_initializer():
    """The paper's initialisation (section 2.1): Xavier uniform with a = sqrt(6 / (d_in + d_out))
    for conv and dense weights; biases 0, BN gamma 1 and beta 0 (MXNet's defaults by name).
    A parameter's own initializer (zero gamma) still wins over this default."""
    return mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3)


def initialize(net, ctx, input_size=None):
    """Initialise `net` on the contexts `ctx` with the paper's scheme. With `input_size`, shapes are
    inferred first so every parameter exists at once (no forward pass: an inference pass would
    leave oneDNN-layout weights behind, which Horovod cannot broadcast)."""
    if input_size:
        net.infer_shape(mx.nd.zeros((1, 3, input_size, input_size)))
    net.initialize(paper_initializer(), ctx=ctx)
    return net
