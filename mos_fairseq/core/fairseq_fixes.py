"""Repairs of fairseq behaviour we depend on, installed by :func:`mos_fairseq.plugin.register`.

``batch_by_size`` drops sentences: in the ``ve-fairseq`` 0.12.3 build, the compiled
``data_utils_fast`` batching cuts every batch to a multiple of ``required_batch_size_multiple``
(8 by default) and loses the remainder of the last one, so ``fairseq-generate`` and validation
silently skip up to 7 sentences of a subset (e.g. 4 of a 60-sentence test set). The wrapper keeps
fairseq's batches and appends the dropped indices, in order, as one more batch (they fitted in
the batch they were cut from, so they respect the size limits). Idempotent.

Checkpoint copies are not atomic: fairseq writes ``checkpoint_1_800.pt`` atomically, then
*copies* it onto ``checkpoint_last.pt`` in place; a job killed during that copy (preemption)
leaves a truncated ``checkpoint_last.pt`` and cannot resume. The fix copies local files to a
temporary name next to the target and renames it over the target (atomic on POSIX). Idempotent.

``np.compat`` is gone in NumPy 2: fairseq's ``TokenBlockDataset`` (``--sample-break-mode eos``) and
``LanguagePairDataset`` still name ``np.compat.long``. Those two modules get a NumPy of their own that
adds it (NumPy itself is left as it is). Idempotent.
"""

from __future__ import annotations

import os
import shutil
import types

import numpy as np


def install_batch_by_size_fix() -> None:
    from fairseq.data import data_utils

    original = data_utils.batch_by_size
    if getattr(original, "_mos_fairseq_fixed", False):
        return

    def batch_by_size(
        indices,
        num_tokens_fn,
        num_tokens_vec=None,
        max_tokens=None,
        max_sentences=None,
        required_batch_size_multiple=1,
        fixed_shapes=None,
    ):
        batches = original(
            indices,
            num_tokens_fn,
            num_tokens_vec=num_tokens_vec,
            max_tokens=max_tokens,
            max_sentences=max_sentences,
            required_batch_size_multiple=required_batch_size_multiple,
            fixed_shapes=fixed_shapes,
        )
        return complete_batches(batches, indices)

    batch_by_size._mos_fairseq_fixed = True  # type: ignore[attr-defined]  # a marker attribute on a function
    batch_by_size.__doc__ = original.__doc__
    data_utils.batch_by_size = batch_by_size


def complete_batches(batches: list, indices) -> list:
    """``batches`` plus one batch with the ``indices`` none of them holds (in ``indices`` order)."""
    indices = np.asarray(indices, dtype=np.int64)
    covered = sum(len(b) for b in batches)
    if covered >= len(indices):
        return batches
    seen = np.concatenate([np.asarray(b, dtype=np.int64) for b in batches]) if batches else np.zeros(0, np.int64)
    missing = indices[~np.isin(indices, seen)]
    return list(batches) + [missing]


def install_atomic_checkpoint_copy() -> None:
    from fairseq.file_io import PathManager

    original = PathManager.copy
    if getattr(original, "_mos_fairseq_fixed", False):
        return

    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if "://" in str(src_path) or "://" in str(dst_path):
            return original(src_path, dst_path, overwrite)
        return atomic_copy(src_path, dst_path, overwrite)

    copy._mos_fairseq_fixed = True  # type: ignore[attr-defined]  # a marker attribute on a function
    PathManager.copy = staticmethod(copy)


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copy ``src_path`` to ``dst_path`` so that ``dst_path`` is never seen half-written."""
    if os.path.exists(dst_path) and not overwrite:
        return False
    tmp = f"{dst_path}.tmp-copy"
    with open(src_path, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, length=16 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, dst_path)
    return True


class NumpyWithCompat:
    """NumPy as fairseq's older modules expect it: every attribute NumPy's, plus ``compat.long``."""

    compat = types.SimpleNamespace(long=np.int64)

    def __getattr__(self, name: str):
        return getattr(np, name)


def install_numpy_compat_fix() -> None:
    from fairseq.data import language_pair_dataset, token_block_dataset

    for module in (token_block_dataset, language_pair_dataset):
        if not hasattr(module.np, "compat"):
            module.np = NumpyWithCompat()
