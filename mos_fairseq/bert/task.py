"""``supernet_masked_lm``: fairseq's ``masked_lm`` task training a BERT supernet.

Data, masking and the ``masked_lm`` criterion are fairseq's; training (sandwich/SPOS subnets per
update) and per-subnet validation losses come from
:class:`~mos_fairseq.core.task_mixin.SupernetTaskMixin`, as for translation.
"""

from dataclasses import dataclass

from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from mos_fairseq.core.task_mixin import SupernetTaskMixin, SupernetTrainingConfig


@dataclass
class SupernetMaskedLMConfig(MaskedLMConfig, SupernetTrainingConfig):
    pass


class SupernetMaskedLMTask(SupernetTaskMixin, MaskedLMTask):
    cfg: SupernetMaskedLMConfig

    def __init__(self, cfg: SupernetMaskedLMConfig, dictionary=None):
        super().__init__(cfg, dictionary)
        self.init_supernet_state()
