"""Reads fairseq-train logs (``--log-format simple``) for the benchmark reports: updates done,
training wall time and the validation lines. Shared by gap_report.py and bert_report.py."""
from __future__ import annotations

import re
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
