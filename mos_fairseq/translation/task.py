"""``supernet_translation``: fairseq's translation task, training and using a SuperTransformer.

Training and validation are :class:`~mos_fairseq.core.task_mixin.SupernetTaskMixin`'s
(sandwich/SPOS subnets per update, per-subnet validation losses); generation runs
``--subnet ARCH.yml`` (default: the largest).
"""

from dataclasses import dataclass, field

from fairseq.tasks.translation import TranslationConfig, TranslationTask

from mos_fairseq.core.task_mixin import SupernetTaskMixin, SupernetTrainingConfig
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.space import SearchSpace


@dataclass
class SupernetTranslationConfig(TranslationConfig, SupernetTrainingConfig):
    subnet: str = field(default="", metadata={"help": "architecture YAML to generate with (default: largest)"})


class SupernetTranslationTask(SupernetTaskMixin, TranslationTask):
    cfg: SupernetTranslationConfig

    def __init__(self, cfg: SupernetTranslationConfig, src_dict, tgt_dict):
        super().__init__(cfg, src_dict, tgt_dict)
        self.init_supernet_state()

    # ---- generation ---------------------------------------------------------------------
    def generation_subnet(self, space: SearchSpace) -> Architecture:
        if self.cfg.subnet:
            return Architecture.load(self.cfg.subnet, space)
        return Architecture.largest(space)

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, prefix_allowed_tokens_fn=None):
        bound = [m.bind(self.generation_subnet(m.space)) if hasattr(m, "bind") else m for m in models]
        return super().build_generator(
            bound,
            args,
            seq_gen_cls=seq_gen_cls,
            extra_gen_cls_kwargs=extra_gen_cls_kwargs,
            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
        )
