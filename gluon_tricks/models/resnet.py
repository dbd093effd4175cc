"""One parameterised ResNet for the paper's ResNet-A/B/C/D (Figure 2), with a table of variants.
Parameter names and shapes follow GluonCV's `ResNetV1b`, so `.params` files load both ways;
`dilated=True` is its output-stride-8 network for segmentation (same weights)."""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

# The paper's Figure 2. ResNet-A is GluonCV's `resnet*_v1`, whose bottleneck 1x1 convs carry a bias
# (kept so that its weights convert one to one, models/convert.py).
VARIANTS = {
    "v1": dict(stride_in_3x3=False, deep_stem=False, avg_down=False, bottleneck_bias=True),   # A
    "v1b": dict(stride_in_3x3=True, deep_stem=False, avg_down=False, bottleneck_bias=False),  # B
    "v1c": dict(stride_in_3x3=True, deep_stem=True, avg_down=False, bottleneck_bias=False),   # C
    "v1d": dict(stride_in_3x3=True, deep_stem=True, avg_down=True, bottleneck_bias=False),    # D
}
PAPER_NAMES = {"v1": "ResNet-A", "v1b": "ResNet-B", "v1c": "ResNet-C", "v1d": "ResNet-D"}

# depth -> (block kind, blocks per stage)
DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
DEEP_STEM_WIDTH = 32


def _batch_norm(channels, zero_gamma=False, use_global_stats=False):
    """BatchNorm, gamma starting at 0 with `zero_gamma`; `use_global_stats`: frozen BN."""
    return nn.BatchNorm(in_channels=channels, gamma_initializer="zeros" if zero_gamma else "ones",
                        use_global_stats=use_global_stats)


def _conv3x3(channels, strides, dilation):
    """A 3x3 conv whose padding keeps the size (up to the stride) at any dilation."""
    return nn.Conv2D(channels, 3, strides=strides, padding=dilation, dilation=dilation,
                     use_bias=False)


class BasicBlock(HybridBlock):
    """Two 3x3 convs (ResNet-18/34), strided in the first; `dilation` is the first's,
    `stage_dilation` the second's (GluonCV's `previous_dilation`)."""
    expansion = 1

    def __init__(self, planes, strides=1, downsample=None, last_gamma=False, dilation=1,
                 stage_dilation=1, use_global_stats=False, **_variant):
        super().__init__()
        with self.name_scope():
            self.conv1 = _conv3x3(planes, strides, dilation)
            self.bn1 = _batch_norm(planes, use_global_stats=use_global_stats)
            self.conv2 = _conv3x3(planes, 1, stage_dilation)
            self.bn2 = _batch_norm(planes, last_gamma, use_global_stats)
            self.downsample = downsample

    def hybrid_forward(self, F, x):
        out = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.Activation(out + shortcut, act_type="relu")


class Bottleneck(HybridBlock):
    """1x1 -> 3x3 -> 1x1 (ResNet-50/101/152): ResNet-A strides in the first 1x1 conv, B and
    later in the 3x3 (Figure 2a), which alone is dilated."""
    expansion = 4

    def __init__(self, planes, strides=1, downsample=None, last_gamma=False,
                 stride_in_3x3=True, bottleneck_bias=False, dilation=1, use_global_stats=False,
                 **_variant):
        super().__init__()
        stride_1x1, stride_3x3 = (1, strides) if stride_in_3x3 else (strides, 1)
        with self.name_scope():
            self.conv1 = nn.Conv2D(planes, 1, strides=stride_1x1, use_bias=bottleneck_bias)
            self.bn1 = _batch_norm(planes, use_global_stats=use_global_stats)
            self.conv2 = _conv3x3(planes, stride_3x3, dilation)
            self.bn2 = _batch_norm(planes, use_global_stats=use_global_stats)
            self.conv3 = nn.Conv2D(planes * 4, 1, use_bias=bottleneck_bias)
            self.bn3 = _batch_norm(planes * 4, last_gamma, use_global_stats)
            self.downsample = downsample

    def hybrid_forward(self, F, x):
        out = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        out = F.Activation(self.bn2(self.conv2(out)), act_type="relu")
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.Activation(out + shortcut, act_type="relu")


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


# Output stride 8 (dilated=True): stage index -> (stride, dilation) instead of (2, 1).
DILATED_STAGES = {3: (1, 2), 4: (1, 4)}


class ResNet(HybridBlock):
    """ResNet-A/B/C/D by `variant` (a key of VARIANTS) and `depth`; `last_gamma`: zero gamma in
    each block's last BN (section 3.1); `dilated`: output stride 8; `use_global_stats`: frozen BN.
    """

    def __init__(self, depth=50, variant="v1d", classes=1000, last_gamma=False, dilated=False,
                 use_global_stats=False, **kwargs):
        options = dict(VARIANTS[variant], use_global_stats=use_global_stats)
        block_kind, stage_blocks = DEPTHS[depth]
        super().__init__(prefix="resnet%s_" % variant, **kwargs)
        self.depth, self.variant, self.dilated = depth, variant, dilated
        block = BLOCKS[block_kind]
        with self.name_scope():
            self._make_stem(options["deep_stem"], use_global_stats)
            in_channels = 2 * DEEP_STEM_WIDTH if options["deep_stem"] else 64
            for index, (planes, blocks) in enumerate(zip(STAGE_WIDTHS, stage_blocks), start=1):
                strides, dilation = (1 if index == 1 else 2), 1
                if dilated and index in DILATED_STAGES:
                    strides, dilation = DILATED_STAGES[index]
                stage = self._make_stage(index, block, planes, blocks, strides, dilation,
                                         in_channels, last_gamma, options)
                setattr(self, "layer%d" % index, stage)
                in_channels = planes * block.expansion
            self.fc = nn.Dense(classes, in_units=in_channels)

    def _make_stem(self, deep_stem, use_global_stats):
        """ResNet-C/D: three 3x3 convs (32, 32, 64; the first strided) replace the 7x7 conv."""
        if deep_stem:
            width = DEEP_STEM_WIDTH
            self.conv1 = nn.HybridSequential(prefix="conv1")
            with self.conv1.name_scope():
                self.conv1.add(nn.Conv2D(width, 3, strides=2, padding=1, use_bias=False),
                               _batch_norm(width, use_global_stats=use_global_stats),
                               nn.Activation("relu"),
                               nn.Conv2D(width, 3, strides=1, padding=1, use_bias=False),
                               _batch_norm(width, use_global_stats=use_global_stats),
                               nn.Activation("relu"),
                               nn.Conv2D(2 * width, 3, strides=1, padding=1, use_bias=False))
            self.bn1 = _batch_norm(2 * width, use_global_stats=use_global_stats)
        else:
            self.conv1 = nn.Conv2D(64, 7, strides=2, padding=3, use_bias=False)
            self.bn1 = _batch_norm(64, use_global_stats=use_global_stats)
        self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)

    @staticmethod
    def _make_stage(index, block, planes, blocks, strides, dilation, in_channels, last_gamma,
                    options):
        out_channels = planes * block.expansion
        use_global_stats = options["use_global_stats"]
        downsample = None
        if strides != 1 or in_channels != out_channels:
            downsample = nn.HybridSequential(prefix="down%d_" % index)
            with downsample.name_scope():
                if options["avg_down"]:
                    # ResNet-D: a 2x2 average pool strides; stage 1 and dilated stages keep an
                    # identity pool so that the names match GluonCV's
                    downsample.add(nn.AvgPool2D(pool_size=strides, strides=strides,
                                                ceil_mode=True, count_include_pad=False))
                    downsample.add(nn.Conv2D(out_channels, 1, strides=1, use_bias=False))
                else:
                    downsample.add(nn.Conv2D(out_channels, 1, strides=strides, use_bias=False))
                downsample.add(_batch_norm(out_channels, use_global_stats=use_global_stats))
        # GluonCV's: a dilated stage's first block has half its dilation
        first_dilation = max(1, dilation // 2)
        stage = nn.HybridSequential(prefix="layers%d_" % index)
        with stage.name_scope():
            stage.add(block(planes, strides, downsample, last_gamma, dilation=first_dilation,
                            stage_dilation=dilation, **options))
            for _ in range(1, blocks):
                stage.add(block(planes, 1, None, last_gamma, dilation=dilation,
                                stage_dilation=dilation, **options))
        return stage

    def hybrid_forward(self, F, x):
        x = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg")
        return self.fc(F.Flatten(x))
