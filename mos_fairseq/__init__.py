"""mos-fairseq: hardware-aware NAS of Transformers (HAT, Mixture-of-Supernets) as a fairseq plugin.

Importing the package is enough to use its checkpoints from Python, the fairseq way: it
allow-lists the globals fairseq checkpoints need (torch's ``weights_only=True`` loading keeps
working) and registers our models, tasks and criterion with fairseq, so
``fairseq.hub_utils.from_pretrained`` loads a ``mos_static_transformer`` export (docs/translation.md, "Export", from Python).
"""

import logging

# fairseq announces an optional speech dependency at import time; it is noise for our users
logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)

from mos_fairseq.plugin import register  # noqa: E402

__version__ = "0.1.0"
__all__ = ["register", "__version__"]

register()
