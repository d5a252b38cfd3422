"""mos-fairseq: hardware-aware NAS of Transformers (HAT, Mixture-of-Supernets) as a fairseq plugin.

Importing the package allow-lists the globals fairseq checkpoints need, so torch's
``weights_only=True`` loading keeps working on our checkpoints.
"""
from mos_fairseq.safe_load import install_safe_globals

__version__ = "0.1.0"

install_safe_globals()
