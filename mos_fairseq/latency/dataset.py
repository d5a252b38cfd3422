"""Latency datasets on disk: our CSV (written by ``measure-latency``) and HAT's CSV.

Our CSV is a superset of HAT's: ``arch_id``, ``arch`` (the architecture as compact JSON),
``params`` (exact, shared embeddings, the protocol's vocabulary), the space's latency features
(HAT's 10 for translation spaces; for BERT spaces the shape and ``model_params``, see
``BertSpace.latency_feature_names``) and HAT's four latency columns (milliseconds; a BERT model's
decoder columns are 0). HAT's files carry only the features and latencies; how to read them
(their columns, and their parameter counts recomputed exactly from the features) is the translation
family's, asked of the registry (``hat_latency_format``). Rows are appended one at a time and
flushed to disk, so a crash loses at most the row being written; :func:`open_for_append` repairs
a torn last line before appending. Every malformed input fails with a one-line
:class:`~mos_fairseq.base.errors.DataError` naming the file, row and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mos_fairseq.base.errors import DataError
from mos_fairseq.registry import hat_latency_format

LATENCY_COLUMNS = ("latency_mean_encoder", "latency_mean_decoder", "latency_std_encoder", "latency_std_decoder")
HAT_COLUMNS = hat_latency_format().feature_names + LATENCY_COLUMNS
ID_COLUMNS = ("arch_id", "arch", "params")


def our_columns(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Our CSV's columns for a space with these latency features."""
    return ID_COLUMNS + tuple(feature_names) + LATENCY_COLUMNS


FORMATS = ("auto", "ours", "hat")


@dataclass
class LatencyDataset:
    """Rows of one file as arrays: raw features ``[n, features]``, latencies in ms, parameter counts."""

    path: str
    format: str
    features: np.ndarray
    encoder_ms: np.ndarray
    decoder_ms: np.ndarray
    params: np.ndarray
    archs: list[str] | None = None  # compact JSON per row (our format only)
    feature_names: tuple[str, ...] = field(default_factory=lambda: hat_latency_format().feature_names)  # HAT's

    @property
    def total_ms(self) -> np.ndarray:
        """The estimator's target: encoder + decoder mean latency (HAT's definition)."""
        return self.encoder_ms + self.decoder_ms

    def __len__(self) -> int:
        return len(self.features)


def _number(path: str, row: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DataError(f"{path}: row {row}: column '{column}' is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{path}: row {row}: column '{column}' is not finite: {text!r}")
    return value


def read_header(path: Path) -> list[str] | None:
    """The CSV's column names, or None for an empty file."""
    with open(path, newline="") as f:
        line = f.readline()
    if not line.strip():
        return None
    return next(csv.reader([line]))


def read_latency_csv(
    path: str | Path, fmt: str = "auto", qkv_dim: int = 512, vocab_size: int = 32768
) -> LatencyDataset:
    """Read and validate a latency CSV. ``qkv_dim``/``vocab_size`` give HAT files their parameter counts."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown latency CSV format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not path.is_file():
        raise DataError(f"latency CSV '{path}' does not exist")
    header = read_header(path)
    if header is None:
        raise DataError(f"{path}: empty file (no header)")
    if fmt == "auto":
        fmt = "ours" if "arch" in header else "hat"
    needed = ID_COLUMNS + LATENCY_COLUMNS if fmt == "ours" else HAT_COLUMNS
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} for the {fmt} format")
    hat = hat_latency_format()
    names = tuple(c for c in header if c not in needed) if fmt == "ours" else hat.feature_names
    if not names:
        raise DataError(f"{path}: no feature columns between 'params' and the latency columns")
    feats, enc, dec, params, archs = [], [], [], [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        for row_no, row in enumerate(reader, start=1):
            if None in row or any(v is None for v in row.values()):
                raise DataError(f"{path}: row {row_no}: has {len(header)} columns expected, found a different number")
            values = [_number(str(path), row_no, c, row[c]) for c in names]
            lat = [_number(str(path), row_no, c, row[c]) for c in LATENCY_COLUMNS]
            if lat[0] < 0 or lat[1] < 0:
                raise DataError(f"{path}: row {row_no}: negative latency")
            feats.append(values)
            enc.append(lat[0])
            dec.append(lat[1])
            if fmt == "ours":
                params.append(_number(str(path), row_no, "params", row["params"]))
                archs.append(row["arch"])
            else:
                params.append(hat.params(values, qkv_dim, vocab_size))
    if not feats:
        raise DataError(f"{path}: no data rows")
    return LatencyDataset(
        str(path),
        fmt,
        np.asarray(feats, dtype=np.float64),
        np.asarray(enc),
        np.asarray(dec),
        np.asarray(params, dtype=np.float64),
        archs if fmt == "ours" else None,
        names,
    )


def format_header(columns: Sequence[str]) -> str:
    """The header line (with newline) of our CSV."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(columns)
    return buf.getvalue()


def format_row(row: dict, columns: Sequence[str]) -> str:
    """One CSV line (with newline) in ``columns`` order."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[c] for c in columns])
    return buf.getvalue()


def open_for_append(path: Path, columns: Sequence[str]) -> list[dict]:
    """Prepare ``path`` for appending rows and return the complete rows already in it.

    Creates the file with its header if missing. A last line without its newline (a crash while
    writing) is cut off. A file with other columns is refused, never touched.
    """
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow(columns)
            f.flush()
            os.fsync(f.fileno())
        return []
    header = read_header(path)
    if header != list(columns):
        raise DataError(f"{path}: not a mos-nas latency CSV of this space (columns {header}); choose another --out")
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        if row["arch_id"] != str(i):
            raise DataError(f"{path}: row {i + 1}: arch_id {row['arch_id']!r}, expected {i}; the file was edited")
        try:
            json.loads(row["arch"])
        except (TypeError, json.JSONDecodeError):
            raise DataError(f"{path}: row {i + 1}: column 'arch' is not JSON") from None
    return rows


def append_row(path: Path, row: dict, columns: Sequence[str]) -> None:
    """Append one row and force it to disk."""
    with open(path, "a", newline="") as f:
        f.write(format_row(row, columns))
        f.flush()
        os.fsync(f.fileno())
