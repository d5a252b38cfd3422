"""Checkpoint loading under torch >= 2.6's ``weights_only=True`` default.

fairseq checkpoints hold a few non-tensor Python objects (its meters, argparse namespaces, numpy
scalars). Instead of disabling the safety, we allow-list exactly those globals; torch still
refuses anything else (e.g. arbitrary pickled callables).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch


def checkpoint_safe_globals() -> list:
    from fairseq.logging import meters
    from numpy._core.multiarray import scalar as numpy_scalar

    allowed = [
        argparse.Namespace,
        collections.OrderedDict,
        collections.defaultdict,
        meters.AverageMeter,
        meters.SumMeter,
        meters.TimeMeter,
        meters.StopwatchMeter,
        meters.MetersDict,
        np.dtype,
        np.ndarray,
        numpy_scalar,  # np._core.multiarray.scalar
        np.dtypes.Float64DType,
        np.dtypes.Float32DType,
        np.dtypes.Int64DType,
    ]
    optional = ("ConcatTensorMeter", "ConcatMeter")
    allowed += [getattr(meters, name) for name in optional if hasattr(meters, name)]
    return allowed


def install_safe_globals() -> None:
    """Allow-list the globals fairseq checkpoints need (idempotent)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
