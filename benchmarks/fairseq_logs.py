"""Reads fairseq-train logs (``--log-format simple``) for the benchmark reports: updates done,
training wall time, seconds per update, the validation lines and the training precision. Shared by the
reports and the recorders (gap_report.py, bert_report.py, bert_glue_record.py, multi30k_record.py)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

NUM = r"([-+0-9.eE]+)"


def train_progress(log: Path) -> dict:
    """Updates done, training wall seconds and the validation lines of a fairseq-train log."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    updates = [int(m) for m in re.findall(r"num_updates=(\d+)", text)]
    walls = [float(m) for m in re.findall(r"train_wall=(\d+)", text)]
    valids = []
    for line in text.splitlines():
        if "valid on 'valid' subset" not in line:
            continue
        fields = dict(re.findall(r"\| (\w+) " + NUM, line))
        valids.append({k: float(v) for k, v in fields.items()})
    return {"updates": max(updates, default=0), "train_wall_s": sum(walls), "valid": valids}


def training_dtype(log: Path) -> str:
    """The precision a fairseq-train run was started with: ``bf16``, ``fp16`` or ``fp32``, from the
    configuration fairseq logs at each start (a resumed run logs it again; starts that differ give e.g.
    ``bf16+fp32``). Its checkpoints cannot tell: with ``--cpu --bf16`` the plugin switches
    ``common.bf16`` off once the trainer is built, so that parameters and optimizer state stay fp32."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    starts = set()
    for line in text.splitlines():
        if "'common': {" not in line:  # the logged configuration
            continue
        bf16, fp16 = "'bf16': True" in line, "'fp16': True" in line
        starts.add("bf16" if bf16 else "fp16" if fp16 else "fp32")
    return "+".join(sorted(starts)) or "fp32"


def seconds_per_update(log: Path) -> float | None:
    """Median training seconds per update over the log intervals (robust to a paused or resumed run,
    whose interval spans the pause)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    rates, last = [], None
    for line in text.splitlines():
        m = re.search(r"num_updates=(\d+).*train_wall=(\d+)", line)
        if not m:
            continue
        upd, wall = int(m.group(1)), float(m.group(2))
        if last is not None and upd > last:
            rates.append(wall / (upd - last))
        last = upd
    return statistics.median(rates) if rates else None


def updates_in(log: Path, hours: float) -> int:
    """Updates a run trains in ``hours`` at the speed of its log: the median ``ups`` of the log intervals
    after the first (which holds the start-up); fairseq logs ``ups`` with 2 decimals, ``train_wall`` in
    whole seconds, so short probes read speed from ``ups``."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    ups = [float(m) for m in re.findall(r"\bups=([0-9.]+)", text)][1:]
    if not ups:
        raise ValueError(f"{log}: no training interval after the first")
    return int(hours * 3600 * statistics.median(ups))
