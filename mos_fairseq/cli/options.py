"""Options several ``mos-nas`` commands share, declared once, and the defaults they take from the
library's config dataclasses (one source for every default)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from mos_fairseq.base.errors import DataError

__all__ = [
    "ExtendList",
    "accept_repeated_lists",
    "add_data",
    "add_device",
    "add_json",
    "add_out",
    "add_seed",
    "add_space",
    "add_vocab_size",
    "config_from_args",
    "field_default",
    "vocab_size_of",
]


class ExtendList(argparse.Action):
    """A list option that takes both forms users type: ``--x a b`` and ``--x a --x b`` (and mixes of
    them) give ``[a, b]``. The first occurrence replaces the default; later ones extend it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        items = getattr(namespace, self.dest, None)
        items = [] if items is None or items is self.default else list(items)
        setattr(namespace, self.dest, [*items, *(values if isinstance(values, list) else [values])])


def accept_repeated_lists(parser: argparse.ArgumentParser) -> None:
    """Make every list-valued option (``nargs`` ``+`` or ``*``) of ``parser`` and its sub-commands an
    :class:`ExtendList`, so that repeating the flag adds to the list instead of keeping the last one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                accept_repeated_lists(sub)
        elif action.option_strings and action.nargs in ("+", "*") and type(action) is argparse._StoreAction:
            action.__class__ = ExtendList  # type: ignore[assignment]  # same fields, extending __call__


def field_default(cls: Any, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (so the CLI never restates it)."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def config_from_args(cls: Any, args: argparse.Namespace, **given: Any) -> Any:
    """Dataclass ``cls`` from the options named like its fields (``given`` ones instead of options)."""
    names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in given]
    return cls(**{name: getattr(args, name) for name in names}, **given)


def vocab_size_of(data_dir: str) -> int:
    dicts = sorted(Path(data_dir).glob("dict.*.txt")) or sorted(Path(data_dir).glob("dict.txt"))
    if not dicts:
        raise DataError(f"no dict.*.txt or dict.txt in data directory '{data_dir}'")
    from fairseq.data import Dictionary

    return len(Dictionary.load(str(dicts[0])))


def add_space(p: argparse.ArgumentParser, help: str = "space YAML or built-in name", required: bool = False) -> None:
    p.add_argument("--space", required=required, help=help)


def add_data(p: argparse.ArgumentParser, help: str | None = None, required: bool = False) -> None:
    p.add_argument("--data", required=required, help=help)


def add_out(p: argparse.ArgumentParser, help: str | None = None, required: bool = True) -> None:
    p.add_argument("--out", required=required, help=help)


def add_seed(p: argparse.ArgumentParser, default: int = 1) -> None:
    p.add_argument("--seed", type=int, default=default)


def add_device(p: argparse.ArgumentParser, help: str | None = None, auto: bool = True) -> None:
    choices = ("auto", "cpu", "cuda") if auto else ("cpu", "cuda")
    p.add_argument("--device", choices=choices, default=choices[0], help=help)


def add_vocab_size(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--vocab-size", type=int, help=help)


def add_json(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--json", action="store_true", help=help)
