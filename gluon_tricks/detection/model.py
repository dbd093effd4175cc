"""GluonCV's Faster R-CNN, configured as its `faster_rcnn_resnet50_v1b_voc`, on our ResNet
(any depth and variant) split by `faster_rcnn_backbone`."""
from gluon_tricks.errors import UserError
from gluon_tricks.models.backbones import faster_rcnn_backbone

# faster_rcnn_resnet50_v1b_voc's arguments to get_faster_rcnn, apart from the backbone, the
# classes, the image size and the trained parameters.
VOC_RECIPE = dict(
    nms_thresh=0.3, nms_topk=400, post_nms=100, roi_mode="align", roi_size=(14, 14), strides=16,
    clip=None, rpn_channel=1024, base_size=16, scales=(2, 4, 8, 16, 32), ratios=(0.5, 1, 2),
    alloc_size=(128, 128), rpn_nms_thresh=0.7, rpn_train_pre_nms=12000, rpn_train_post_nms=2000,
    rpn_test_pre_nms=6000, rpn_test_post_nms=300, rpn_min_size=16, num_sample=128,
    pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=100)
SHORT, MAX_SIZE = 600, 1000

# GluonCV trains the heads, the RPN and the convolutions of stages 2-4 (its pattern
# '.*dense|.*rpn|.*down(2|3|4)_conv|.*layers(2|3|4)_conv'); our blocks put a block name between
# the stage and the convolution (layers2_bottleneckv1b0_conv0), hence `_.*conv`.
TRAIN_PATTERNS = "|".join([".*dense", ".*rpn", ".*down(2|3|4)_conv", ".*layers(2|3|4)_.*conv"])


def proposal_limits(short):
    """The RPN's proposal counts, capped at the anchors of the smallest image (short x short):
    GluonCV slices that many proposals and fails on fewer anchors. No cap at short >= 460,
    where a feature map of (short // 16)^2 positions x 15 anchors exceeds the recipe's 12000."""
    anchors = (short // VOC_RECIPE["strides"]) ** 2 * len(VOC_RECIPE["scales"]) * len(
        VOC_RECIPE["ratios"])
    names = ("rpn_train_pre_nms", "rpn_train_post_nms", "rpn_test_pre_nms", "rpn_test_post_nms")
    return {name: min(VOC_RECIPE[name], anchors) for name in names}


def build_faster_rcnn(network, classes, backbone_params=None, short=SHORT, max_size=MAX_SIZE,
                      per_device_batch_size=1, **overrides):
    """The detector with our `network` as backbone, its weights from a classifier checkpoint
    `backbone_params` (None: from scratch). Parameters not loaded are left uninitialised, for
    `initialise`. overrides: entries of VOC_RECIPE (num_sample, rpn_test_post_nms, ...)."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.faster_rcnn import get_faster_rcnn
    if not classes:
        raise UserError("a detector needs at least one class")
    unknown = sorted(set(overrides) - set(VOC_RECIPE))
    if unknown:
        raise TypeError("not Faster R-CNN recipe entries: %s" % unknown)
    recipe = dict(VOC_RECIPE, **overrides)
    limits = {name: min(recipe[name], cap) for name, cap in proposal_limits(short).items()}
    features, top_features = faster_rcnn_backbone(network, backbone_params)
    return get_faster_rcnn(name=network, dataset="voc", pretrained=False, features=features,
                           top_features=top_features, classes=tuple(classes), short=short,
                           max_size=max_size, train_patterns=TRAIN_PATTERNS,
                           per_device_batch_size=per_device_batch_size,
                           **dict(recipe, **limits))


def initialise(net, ctx):
    """As train_faster_rcnn.py: every parameter that holds no data yet gets its own default
    initialisation; then all of them move to `ctx` (a list of contexts). The shapes left to
    infer are inferred at once from a blank image, so every weight is drawn
    here (from MXNet's generator as seeded before) and not at the first training step, where
    the step's own random draws (the R-CNN sampler's) would follow a different count of
    draws on each rank."""
    import mxnet as mx
    for param in net.collect_params().values():
        if param._data is None:
            param.initialize()
    net.collect_params().reset_ctx(ctx)
    short = net.short[-1] if isinstance(net.short, (tuple, list)) else net.short
    net.infer_shape(mx.nd.zeros((1, 3, short, short), ctx=ctx[0]))  # no forward: no MKLDNN
    for param in net.collect_params().values():  # layouts, which Horovod cannot broadcast
        param._finish_deferred_init()


def prepare_for_loading(net):
    """Build the target generator, whose box-encoding constants training creates and saves with
    the weights (`net.target_generator` is a property that builds it)."""
    return net.target_generator


def load_detector(net, path, ctx):
    """A detector's weights as `detect train` saves them."""
    from gluon_tricks.models.params import load_into
    prepare_for_loading(net)
    load_into(net, path, ctx, flag="--params")
