"""Training targets: label smoothing and mixup (paper sections 5.2 and 5.4), as pure functions."""
import numpy as np
from mxnet import nd


def smooth_one_hot(labels, classes, epsilon=0.0):
    """Target distributions q for integer `labels` (B,): the paper's label smoothing puts 1 - eps on
    the true class and eps / (K - 1) on each other class (GluonCV's code puts 1 - eps + eps / K and
    eps / K; the two differ by O(eps / K)). epsilon = 0 gives plain one-hot targets."""
    off_value = epsilon / (classes - 1)
    return nd.one_hot(labels, classes, on_value=1.0 - epsilon, off_value=off_value)


def optimal_logit_gap(classes, epsilon):
    """The gap between the true-class logit and the others that minimises the smoothed loss:
    log((K - 1)(1 - eps) / eps) (section 5.2; K = 1000, eps = 0.1 gives 9.10)."""
    return np.log((classes - 1) * (1.0 - epsilon) / epsilon)


def sample_mixup_lambda(rng, alpha):
    """lambda ~ Beta(alpha, alpha), one per batch, from the numpy Generator `rng`."""
    return float(rng.beta(alpha, alpha))


def mixup(data, targets, lam):
    """Mix every example with the batch read backwards, as GluonCV does:
    x = lam * x_i + (1 - lam) * x_j and y likewise, on (smoothed) one-hot targets."""
    mixed_data = lam * data + (1.0 - lam) * data[::-1]
    mixed_targets = lam * targets + (1.0 - lam) * targets[::-1]
    return mixed_data, mixed_targets


def dominant_labels(labels, lam):
    """The hard label of the image that dominates each mixed example: what the training accuracy is
    measured against under mixup (a soft target has no argmax to compare with)."""
    return labels if lam >= 0.5 else labels[::-1]
