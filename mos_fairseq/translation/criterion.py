"""``supernet_cross_entropy``: fairseq's label-smoothed cross-entropy for one subnet.

The task passes a bound subnet (``supernet.bind(arch)``); given the bare supernet the criterion
scores its largest subnet, so stock entry points (``fairseq-validate``) still work.
"""

from dataclasses import dataclass

from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)


@dataclass
class SupernetCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    pass


class SupernetCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    LOGITS_UNREAD_AFTER_LOSS = True  # forward only delegates to fairseq's (core.cpu_bf16's fused loss)

    def forward(self, model, sample, reduce=True):
        if hasattr(model, "bind"):
            model = model.bind()
        return super().forward(model, sample, reduce=reduce)
