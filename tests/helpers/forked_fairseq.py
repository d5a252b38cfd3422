"""Run ``fairseq-train`` / ``fairseq-generate`` in a forked copy of the test process: a real process
(its own exit code and output) without paying the seconds of importing torch and fairseq again,
for the many tiny trainings of the bf16 tests.

The child runs torch on one thread (GNU OpenMP's thread pool does not survive a fork), with
fairseq's log lines on its stdout as in a fresh ``fairseq-train``.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import traceback
from typing import Callable


def _run_child(entry: str, args: tuple[str, ...], before: Callable[[], None] | None) -> int:
    logging.root.handlers.clear()
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO, stream=sys.stdout
    )
    import torch

    torch.set_num_threads(1)
    if before is not None:
        before()
    if entry == "train":
        from fairseq_cli.train import cli_main
    else:
        from fairseq_cli.generate import cli_main
    sys.argv = [f"fairseq-{entry}", *args]
    cli_main()
    return 0


def run_fairseq_forked(entry: str, *args: str, before: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """``fairseq-{entry} ARGS`` (entry: train or generate) in a fork, ``before()`` run in the child
    first; returns what ``subprocess.run(..., capture_output=True, text=True)`` would."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
                sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
                code = _run_child(entry, args, before)
            except SystemExit as exc:  # argparse errors and explicit exits
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - shown like an uncaught exception, exit 1
                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            [f"fairseq-{entry}", *args],
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
