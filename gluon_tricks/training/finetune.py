"""Fine-tuning: start from trained weights (ours or GluonCV's, matched by structural names),
re-initialise the classifier (the last Dense layer) when the class count differs, give it a larger
learning rate, freeze the stem and the first K stages (BN included)."""
import os

from mxnet.gluon import nn

from gluon_tricks.errors import UserError
from gluon_tricks.models import parse_resnet_name
from gluon_tricks.models.params import by_structural_names, classifier_prefix, read_arrays

# The stem of our ResNets (and GluonCV's ResNetV1b): the parameters before `layer1`.
RESNET_STEM = ("conv1", "bn1")
RESNET_STAGES = 4


def classifier_names(net):
    """The structural names of the output layer's parameters: {'fc.weight', 'fc.bias'}."""
    prefix = classifier_prefix(net) + "."
    return {name for name in net._collect_params_with_prefix() if name.startswith(prefix)}


def load_pretrained(net, path, model, reset_classifier=False):
    """Copy the weights of `path` into the initialised `net`; returns a sentence for the log.
    The classifier keeps its initialisation when its shape differs or with `reset_classifier`;
    anything else that does not fit is a UserError."""
    loaded = by_structural_names(net, read_arrays(path, "--pretrained-params"))
    own = net._collect_params_with_prefix()
    head = classifier_names(net)
    missing = sorted(set(own) - set(loaded) - head)
    unknown = sorted(set(loaded) - set(own))
    if missing or unknown:
        detail = ("lacks %d of its weights (e.g. %s)" % (len(missing), missing[0]) if missing else
                  "holds %d weights it does not have (e.g. %s)" % (len(unknown), unknown[0]))
        raise UserError("--pretrained-params %s is not a %s .params file: it %s"
                        % (path, model, detail))
    reinitialised = []
    for name, param in sorted(own.items()):
        value = loaded.get(name)
        if value is not None and (value.shape != param.shape or reset_classifier and name in head):
            if name in head:
                reinitialised.append(name)
                continue
            raise UserError("--pretrained-params %s does not fit %s: %s has shape %s, not %s"
                            % (path, model, name, value.shape, param.shape))
        if value is None:  # a classifier parameter absent from the file
            reinitialised.append(name)
            continue
        param.set_data(value.astype(param.dtype, copy=False))
    if reinitialised:
        head_weight = classifier_prefix(net) + ".weight"
        weight, own_weight = loaded.get(head_weight), own[head_weight]
        was = "%d classes" % weight.shape[0] if weight is not None else "no classifier"
        why = ("--reset-classifier" if reset_classifier and weight is not None
               and weight.shape == own_weight.shape
               else "it does not fit %d classes" % own_weight.shape[0])
        return ("loaded %s; its classifier (%s) is left out (%s): %s re-initialised"
                % (path, was, why, ", ".join(reinitialised)))
    return "loaded %s, classifier included" % path


def set_classifier_lr_mult(net, mult):
    """The output layer learns `mult` times faster (Parameter.lr_mult; GluonCV's recipe: 10)."""
    params = net._collect_params_with_prefix()
    for name in classifier_names(net):
        params[name].lr_mult = mult
    return sorted(classifier_names(net))


def frozen_prefixes(stages):
    """The structural-name prefixes frozen by --freeze-stages K: the stem and layer1..layerK."""
    if not 0 <= stages <= RESNET_STAGES:
        raise UserError("--freeze-stages must be in [0, %d], not %d" % (RESNET_STAGES, stages))
    if stages == 0:
        return ()
    return RESNET_STEM + tuple("layer%d" % i for i in range(1, stages + 1))


def _freezable(model, stages):
    """frozen_prefixes(stages), refused for a network that is not a ResNet."""
    prefixes = frozen_prefixes(stages)
    if prefixes and parse_resnet_name(model) is None:
        raise UserError("--freeze-stages applies to the ResNets (stem + layer1..4); %s has no "
                        "such stages" % model)
    return prefixes


def freeze_stages(net, model, stages):
    """Freeze the stem and first `stages` stages of a ResNet (no gradient, BN on its running
    statistics), before hybridizing and making the trainer; returns the frozen names."""
    prefixes = _freezable(model, stages)
    if not prefixes:
        return []

    def walk(block, prefix):
        if isinstance(block, nn.BatchNorm) and prefix.split(".")[0] in prefixes:
            block._kwargs["use_global_stats"] = True  # normalise with, and keep, the running stats
        for name, child in block._children.items():
            walk(child, prefix + "." + name if prefix else name)
    walk(net, "")
    frozen = []
    for name, param in net._collect_params_with_prefix().items():
        if name.split(".")[0] in prefixes:
            param.grad_req = "null"
            param.frozen = True  # equal on every rank: World leaves it out of BN averaging
            frozen.append(name)
    return sorted(frozen)


def add_finetune_arguments(parser):
    """The fine-tuning flags of `gluon-tricks train`."""
    group = parser.add_argument_group("fine-tuning")
    group.add_argument("--pretrained-params", metavar="FILE", default="",
                       help="start from these weights (ours or GluonCV's model zoo, same "
                            "architecture); the classifier is re-initialised when the class "
                            "count differs")
    group.add_argument("--reset-classifier", action="store_true",
                       help="re-initialise the classifier even when the class count matches "
                            "(a new task with as many classes)")
    group.add_argument("--lr-mult-classifier", type=float, default=1.0, metavar="M",
                       help="learning rate multiplier of the output layer (GluonCV's "
                            "fine-tuning recipe: 10)")
    group.add_argument("--freeze-stages", type=int, default=0, metavar="K",
                       help="freeze the stem and the first K of the 4 ResNet stages, BN "
                            "included (its running statistics are used, not updated)")


def check_finetune_flags(flags):
    """One line for each fine-tuning flag that cannot work, before anything is built."""
    if flags.reset_classifier and not flags.pretrained_params:
        raise UserError("--reset-classifier needs --pretrained-params FILE")
    if flags.pretrained_params and not os.path.isfile(os.path.expanduser(flags.pretrained_params)):
        raise UserError("--pretrained-params: no such file: %s" % flags.pretrained_params)
    if not flags.lr_mult_classifier > 0:
        raise UserError("--lr-mult-classifier must be positive")
    _freezable(flags.model, flags.freeze_stages)


def prepare_fine_tuning(net, run):
    """Apply a run's fine-tuning flags to its fresh network; returns the sentences to log."""
    notes = []
    if run.pretrained_params:
        notes.append("fine-tuning: " + load_pretrained(net, run.pretrained_params, run.model,
                                                       run.reset_classifier))
    if run.lr_mult_classifier != 1.0:
        names = set_classifier_lr_mult(net, run.lr_mult_classifier)
        notes.append("fine-tuning: learning rate x%g on %s" % (run.lr_mult_classifier,
                                                             ", ".join(names)))
    if run.freeze_stages:
        frozen = freeze_stages(net, run.model, run.freeze_stages)
        notes.append("fine-tuning: froze the stem and stages 1-%d (%d parameters, BN statistics "
                     "included)" % (run.freeze_stages, len(frozen)))
    return notes
