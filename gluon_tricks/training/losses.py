"""The training loss: softmax cross-entropy on target distributions, and knowledge distillation."""
from mxnet import gluon


class DistillationLoss(gluon.HybridBlock):
    """Knowledge distillation (section 5.3), weighted as GluonCV weights it:

        hard_weight * CE(q, softmax(z))
        + (1 - hard_weight) * T^2 * CE(softmax(r / T), softmax(z / T))

    z are the student's logits, r the teacher's (given here already softened as
    `soft_target` = softmax(r / T), computed outside autograd), q the (smoothed, mixed) target.
    The T^2 factor keeps the soft term's gradients at the scale of the hard term's."""

    def __init__(self, temperature=20.0, hard_weight=0.5, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.hard_weight = hard_weight
        with self.name_scope():
            self.cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)

    def hybrid_forward(self, F, logits, target, soft_target):
        soft = self.cross_entropy(logits / self.temperature, soft_target) * self.temperature ** 2
        hard = self.cross_entropy(logits, target)
        return self.hard_weight * hard + (1.0 - self.hard_weight) * soft


def soft_targets(teacher_logits, temperature):
    """The teacher's distribution softened at temperature T: softmax(r / T)."""
    return (teacher_logits / temperature).softmax(axis=-1)
