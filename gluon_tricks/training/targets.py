"""Training targets: label smoothing and mixup (paper sections 5.2 and 5.4), as pure functions."""
import numpy as np
from mxnet import nd


def smooth_one_hot(labels, classes, epsilon=0.0):
    """Target distributions for integer `labels` (B,): the paper's smoothing, 1 - eps on the true
    class and eps / (K - 1) elsewhere (GluonCV: eps / K); epsilon 0: one-hot."""
    off_value = epsilon / (classes - 1)
    return nd.one_hot(labels, classes, on_value=1.0 - epsilon, off_value=off_value)


def optimal_logit_gap(classes, epsilon):
    """The logit gap minimising the smoothed loss, log((K - 1)(1 - eps) / eps) (section 5.2)."""
    return np.log((classes - 1) * (1.0 - epsilon) / epsilon)


def sample_mixup_lambda(rng, alpha):
    """lambda ~ Beta(alpha, alpha), one per batch, from the numpy Generator `rng`."""
    return float(rng.beta(alpha, alpha))


def mixup(data, targets, lam):
    """Mix every example and target with the batch read backwards, as GluonCV does."""
    mixed_data = lam * data + (1.0 - lam) * data[::-1]
    mixed_targets = lam * targets + (1.0 - lam) * targets[::-1]
    return mixed_data, mixed_targets


def dominant_labels(labels, lam):
    """The label of the image dominating each mixed example (for the training accuracy)."""
    return labels if lam >= 0.5 else labels[::-1]
