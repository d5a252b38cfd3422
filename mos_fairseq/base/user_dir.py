"""The plugin's ``--user-dir`` (the base layer): the folder every fairseq command we launch is given,
so that fairseq-train, fairseq-generate and the GLUE fine-tuning load our models and the checkpoint
allow-list. It sits beside the package in the source tree."""

from __future__ import annotations

from pathlib import Path

from mos_fairseq.base.errors import UserError

USER_DIR = Path(__file__).resolve().parents[2] / "user_dir"


def plugin_user_dir() -> str:
    """The ``--user-dir`` for fairseq commands we launch. Every fairseq-train we start gets it, stock
    ``transformer``/``roberta`` models included: importing the plugin installs the ``weights_only``
    allow-list, without which torch >= 2.6 refuses fairseq's own ``checkpoint_last.pt`` on resume."""
    if not (USER_DIR / "__init__.py").is_file():
        raise UserError(
            f"the plugin's user_dir is missing at {USER_DIR}: install mos-fairseq from its source tree "
            "(pip install -e .), which keeps user_dir/ beside the package"
        )
    return str(USER_DIR)
