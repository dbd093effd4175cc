"""The logit gap of label smoothing (paper section 5.2, Figure 4): optimal and empirical."""
import numpy as np


def theoretical_gap(num_classes, eps):
    """The optimal gap log((K-1)(1-eps)/eps) under label smoothing (9.10 for K = 1000, eps 0.1)."""
    eps = np.asarray(eps, dtype=np.float64)
    if num_classes < 2:
        raise ValueError("the number of classes must be at least 2, not %s" % num_classes)
    if np.any((eps <= 0) | (eps >= 1)):
        raise ValueError("eps must be in (0, 1)")
    return np.log((num_classes - 1) * (1 - eps) / eps)


def empirical_gap(logits):
    """Per example: the largest logit minus the mean of the other K-1 logits (Figure 4(b))."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError("logits must have shape (N, K) with K >= 2, not %s" % (logits.shape,))
    largest = logits.max(axis=1)
    return largest - (logits.sum(axis=1) - largest) / (logits.shape[1] - 1)


def top1_accuracy(logits, labels):
    """The fraction of examples whose largest logit is the label's."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))
