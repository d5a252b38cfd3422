"""Named ``--arch`` presets of the SuperTransformer (fairseq architecture functions).

Each sets defaults only where the user gave no value on the command line.
"""

from __future__ import annotations


def _default(args, name: str, value) -> None:
    if getattr(args, name, None) is None:
        setattr(args, name, value)


def supertransformer_base(args) -> None:
    """``--arch supertransformer``: HAT's WMT'14 En-De space unless ``--search-space`` says otherwise."""
    _default(args, "search_space", "hat_wmt14_en_de")
    _default(args, "dropout", 0.3)
    _default(args, "attention_dropout", 0.1)
    _default(args, "activation_dropout", 0.0)
    _default(args, "share_all_embeddings", True)


def supertransformer_wmt_en_de(args) -> None:
    """HAT's WMT'14 En-De SuperTransformer (640 embed, 3072 FFN, 8 heads, 6+6 layers)."""
    supertransformer_base(args)


def supertransformer_tiny(args) -> None:
    """The tiny space for tests and the demo (CPU-sized)."""
    _default(args, "search_space", "tiny")
    _default(args, "dropout", 0.1)
    _default(args, "attention_dropout", 0.0)
    supertransformer_base(args)


# ``--arch supertransformer`` itself takes SuperTransformerConfig's defaults (the same as the base).
PRESETS = {
    "supertransformer_wmt_en_de": supertransformer_wmt_en_de,
    "supertransformer_tiny": supertransformer_tiny,
}
