"""mos-fairseq: hardware-aware NAS of Transformers (HAT, Mixture-of-Supernets) as a fairseq plugin.

Importing the package allow-lists the globals fairseq checkpoints need, so torch's
``weights_only=True`` loading keeps working on our checkpoints.
"""
import logging

# fairseq announces an optional speech dependency at import time; it is noise for our users
logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)

from mos_fairseq.safe_load import install_safe_globals  # noqa: E402

__version__ = "0.1.0"

install_safe_globals()
