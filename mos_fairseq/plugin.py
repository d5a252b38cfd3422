"""Registers our models, tasks and criteria with fairseq (idempotent): the layer above the families,
whose models it names.

Importing the package calls :func:`register` (``mos_fairseq/__init__.py``), so every module of the
package may rely on our models being known to fairseq; ``user_dir/__init__.py`` (fairseq's
``--user-dir``, :mod:`mos_fairseq.base.user_dir`) calls it too. Registering twice is a no-op.
"""

from __future__ import annotations

from mos_fairseq.core.cpu_bf16 import install_cpu_bf16
from mos_fairseq.core.fairseq_fixes import (
    install_atomic_checkpoint_copy,
    install_batch_by_size_fix,
    install_numpy_compat_fix,
)
from mos_fairseq.core.safe_load import install_safe_globals


def register() -> None:
    from fairseq.criterions import CRITERION_REGISTRY, register_criterion
    from fairseq.models import MODEL_REGISTRY, register_model, register_model_architecture
    from fairseq.tasks import TASK_REGISTRY, register_task

    from mos_fairseq.bert.static import StaticBertConfig, StaticBertModel
    from mos_fairseq.bert.supernet import BertSupernetConfig, BertSupernetModel
    from mos_fairseq.bert.task import SupernetMaskedLMConfig, SupernetMaskedLMTask
    from mos_fairseq.translation.criterion import (
        SupernetCrossEntropyConfig,
        SupernetCrossEntropyCriterion,
    )
    from mos_fairseq.translation.presets import PRESETS
    from mos_fairseq.translation.static import StaticTransformerConfig, StaticTransformerModel
    from mos_fairseq.translation.supernet import SuperTransformerConfig, SuperTransformerModel
    from mos_fairseq.translation.task import SupernetTranslationConfig, SupernetTranslationTask

    install_safe_globals()
    install_batch_by_size_fix()
    install_atomic_checkpoint_copy()
    install_numpy_compat_fix()
    install_cpu_bf16()
    if "supertransformer" not in MODEL_REGISTRY:
        register_model("supertransformer", dataclass=SuperTransformerConfig)(SuperTransformerModel)
        for name, preset in PRESETS.items():
            register_model_architecture("supertransformer", name)(preset)
    if "mos_static_transformer" not in MODEL_REGISTRY:
        register_model("mos_static_transformer", dataclass=StaticTransformerConfig)(StaticTransformerModel)
    if "supernet_translation" not in TASK_REGISTRY:
        register_task("supernet_translation", dataclass=SupernetTranslationConfig)(SupernetTranslationTask)
    if "bert_supernet" not in MODEL_REGISTRY:
        register_model("bert_supernet", dataclass=BertSupernetConfig)(BertSupernetModel)
    if "mos_static_bert" not in MODEL_REGISTRY:
        register_model("mos_static_bert", dataclass=StaticBertConfig)(StaticBertModel)
    if "supernet_masked_lm" not in TASK_REGISTRY:
        register_task("supernet_masked_lm", dataclass=SupernetMaskedLMConfig)(SupernetMaskedLMTask)
    if "supernet_cross_entropy" not in CRITERION_REGISTRY:
        register_criterion("supernet_cross_entropy", dataclass=SupernetCrossEntropyConfig)(
            SupernetCrossEntropyCriterion
        )
