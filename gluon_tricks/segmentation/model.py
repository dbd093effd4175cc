"""GluonCV's FCN (its head on stage 4, its auxiliary head on stage 3) on our dilated ResNet of any
depth and variant, from a classifier checkpoint or from scratch."""
from gluon_tricks.errors import UserError
from gluon_tricks.models import parse_resnet_name
from gluon_tricks.models.backbones import attach_to_segmentation_model, load_backbone

HEAD_LR_MULT = 10  # GluonCV's FCN trains its heads at 10x the learning rate


def stage_channels(depth):
    """(stage 3, stage 4) output channels: the auxiliary head's and the head's input."""
    return (256, 512) if depth < 50 else (1024, 2048)


def build_fcn(backbone, nclass, backbone_params=None, aux=True, base_size=520, crop_size=480):
    """GluonCV's FCN with our dilated `backbone` (resnet50_v1d, resnet18_v1b, ...) in place of
    its own, the backbone's weights from the classifier checkpoint `backbone_params` (None:
    uninitialised, for `initialise`). GluonCV builds heads for 2048/1024 input channels; for a
    ResNet-18/34 they are rebuilt for its 512/256, otherwise as GluonCV's."""
    import mxnet as mx
    from gluoncv.model_zoo.fcn import FCN, _FCNHead
    parsed = parse_resnet_name(backbone)
    if parsed is None:
        raise UserError("--backbone must be one of our ResNets (resnet50_v1d, resnet18_v1b, "
                        "...); got %r" % backbone)
    depth = parsed[0]
    ours = load_backbone(backbone, backbone_params, dilated=True)
    model = FCN(nclass, backbone="resnet%d" % depth, aux=aux, pretrained_base=False,
                base_size=base_size, crop_size=crop_size)
    attach_to_segmentation_model(model, ours)
    aux_channels, channels = stage_channels(depth)
    if channels != 2048:
        with model.name_scope():
            model.head = _FCNHead(channels, nclass)
            if aux:
                model.auxlayer = _FCNHead(aux_channels, nclass)
        for head in [model.head] + ([model.auxlayer] if aux else []):
            head.initialize(ctx=mx.cpu())
            head.collect_params().setattr("lr_mult", HEAD_LR_MULT)
    return model


def initialise(model, ctx):
    """Every parameter without data (a backbone from scratch) gets the paper's initialisation
    (that of `train`'s classifiers); then all of them move to `ctx` (a list of contexts). The
    draws happen here, from the random state of now (not deferred to the first training step,
    whose draws must be that step's dropout alone)."""
    import mxnet as mx
    from gluon_tricks.models import paper_initializer
    missing = [p for p in model.collect_params().values() if p._data is None]
    for param in missing:
        param.initialize(default_init=paper_initializer())
    if missing:  # shapes are known once an image has passed (predict mode: no statistics move)
        model(mx.nd.zeros((1, 3, model.crop_size, model.crop_size)))
    model.collect_params().reset_ctx(ctx)
    return model


def load_fcn(model, path, ctx):
    """An FCN's weights as `segment train` saves them."""
    from gluon_tricks.models.params import load_into
    load_into(model, path, ctx, flag="--params")
