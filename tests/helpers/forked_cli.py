"""Run ``mos-nas`` in a forked copy of the test process: a real process (its own exit code, its own
stdout/stderr file descriptors, Python's default logging to stderr), without paying the 3-5 s of
importing torch and fairseq again for each of the many short bad-input cases.

The child runs single-threaded (GNU OpenMP's thread pool does not survive a fork, as in torch's
DataLoader workers), so use it for commands that fail fast, not for benchmarks.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import traceback


def run_cli_forked(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """``mos-nas ARGS`` in a fork; returns what ``subprocess.run(..., capture_output=True, text=True)`` would."""
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
                logging.root.handlers.clear()  # a fresh interpreter's logging: warnings go to stderr
                logging.root.setLevel(logging.WARNING)
                if cwd is not None:
                    os.chdir(cwd)
                import torch

                torch.set_num_threads(1)
                from mos_fairseq import cli

                sys.argv = ["mos-nas", *args]
                code = cli.main(list(args))
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
            ["mos-nas", *args],
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
