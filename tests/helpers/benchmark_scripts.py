"""Loads a script of ``benchmarks/`` as a module for the tests (its siblings importable while it loads)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as a fresh module."""
    path = BENCHMARKS / f"{name}.py"
    sys.path.insert(0, str(BENCHMARKS))  # its sibling modules (common, fairseq_logs, ...)
    try:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module
