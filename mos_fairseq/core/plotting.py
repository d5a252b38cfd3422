"""Headless matplotlib for the PNGs the pipeline writes (estimator scatter, Pareto front, gap)."""

from __future__ import annotations

import logging


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, with matplotlib's DEBUG logging kept quiet
    (fairseq's logging set-up would otherwise print its font search)."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
