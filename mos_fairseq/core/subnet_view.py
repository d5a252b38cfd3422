"""The training view of one subnet of a data-parallel supernet, shared by every family.

Each family's supernet gives ``supernet.bind(arch)``, a fairseq model view that owns no parameters
(translation: :mod:`mos_fairseq.translation.subnet_view`); this wrapper routes the forward pass
through fairseq's data-parallel wrapper so DistributedDataParallel sees it.
"""

from __future__ import annotations

from typing import Any


class DataParallelSubnet:
    """A training view of ``arch`` for a supernet wrapped by fairseq's data-parallel wrapper.

    The forward pass goes through the wrapper (``wrapper(*inputs, arch=arch)``), so torch's
    DistributedDataParallel sees it (its reducer is prepared per forward; with ``no_sync`` it also
    records which parameters this subnet used); everything else (normalised probabilities,
    targets) is the plain subnet view's.
    """

    def __init__(self, wrapper, arch: Any):
        self.wrapper, self.arch = wrapper, arch
        self.view = wrapper.bind(arch)  # fairseq's ModuleProxyWrapper forwards to the supernet

    def __call__(self, *args, **kwargs):
        return self.wrapper(*args, arch=self.arch, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.view, name)
