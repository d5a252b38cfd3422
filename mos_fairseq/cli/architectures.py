"""``mos-nas`` commands: sample and inspect architectures and checkpoints."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli.options import add_data, add_json, add_out, add_seed, add_space, add_vocab_size, vocab_size_of

if TYPE_CHECKING:
    from mos_fairseq.core.family import Arch


def cmd_sample(args: argparse.Namespace) -> None:
    from mos_fairseq.registry import load_space

    space, family = load_space(args.space)
    arch_type = family.arch_type
    if args.n < 0:
        raise UserError(f"--n must be >= 0, got {args.n}")
    rng = random.Random(args.seed)
    archs: list[tuple[str, Arch]] = []
    if args.largest:
        archs.append(("largest", arch_type.largest(space)))
    if args.smallest:
        archs.append(("smallest", arch_type.smallest(space)))
    archs += [(f"arch_{i:04d}", arch_type.random(space, rng)) for i in range(args.n)]
    if not archs:
        raise UserError("nothing to write: give --n N and/or --largest/--smallest")
    out = Path(args.out)
    for name, arch in archs:
        arch.save(out / f"{name}.yml", **({"hat_format": True} if args.hat_format else {}))
    print(f"wrote {len(archs)} architecture(s) of space '{space.name}' to {out}")


def cmd_info(args: argparse.Namespace) -> None:
    if args.checkpoint:
        if args.arch:
            raise UserError("give --arch or --checkpoint, not both")
        _checkpoint_info(args.checkpoint, args.json)
        return
    if not args.arch:
        raise UserError("give --arch ARCH.yml or --checkpoint CKPT.pt")
    from mos_fairseq.registry import family_of, load_arch

    arch = load_arch(args.arch, args.space)
    vocab = args.vocab_size or (vocab_size_of(args.data) if args.data else arch.space.vocab_size)
    record, lines = family_of(arch).arch_info(arch, vocab)
    print(json.dumps(record) if args.json else "\n".join(lines))


def _checkpoint_info(path: str, as_json: bool) -> None:
    from mos_fairseq.loading import describe_checkpoint

    info = describe_checkpoint(path)
    if as_json:
        print(json.dumps(info, sort_keys=True, default=str))
        return
    lines = [f"checkpoint: {info['path']}", f"kind: {info['kind']} (model '{info['model']}')"]
    if "space" in info:
        lines.append(f"space: {info['space']}")
    if "mos" in info:
        lines.append(f"MoS: {info['mos']}")
    if info.get("arch"):
        lines.append(f"architecture: {_arch_of_record(info['arch']).describe()}")
    if info.get("exported_from"):
        lines.append(f"exported from: {info['exported_from']} (update {info['exported_at_update']})")
    lines.append(f"training updates: {info['updates']}")
    lines.append(f"parameters: {info['params']:,}")
    if info.get("best_valid_losses"):
        losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(info["best_valid_losses"].items()))
        lines.append(f"best validation loss (base 2) per subnet: {losses}")
    elif info.get("best_loss") is not None:
        lines.append(f"best validation loss: {info['best_loss']}")
    if info.get("val_loss") is not None:
        lines.append(f"last validation loss: {info['val_loss']}")
    lines.append(f"task: {info['task']} (data {info['data']})")
    print("\n".join(lines))


def _arch_of_record(arch: dict):
    from mos_fairseq.registry import load_space

    space, family = load_space(arch.get("space", "hat_wmt14_en_de"))
    return family.arch_type.from_dict(arch, space)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="write random (or largest/smallest) architectures of a space as YAML")
    add_space(p, "space YAML or built-in name", required=True)
    p.add_argument("--n", type=int, default=0, help="number of random architectures")
    add_seed(p)
    p.add_argument("--largest", action="store_true", help="also write the largest subnet")
    p.add_argument("--smallest", action="store_true", help="also write the smallest subnet")
    p.add_argument("--hat-format", action="store_true", help="write HAT's SubTransformer keys")
    add_out(p, "output directory")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("info", help="an architecture's parameters and features, or what a checkpoint is")
    p.add_argument("--arch", help="architecture YAML (ours or HAT's keys)")
    p.add_argument("--checkpoint", help="a checkpoint: supernet or exported subnet, MoS, space, updates, losses")
    add_space(p, "space (default: the one the file names)")
    add_vocab_size(p, "vocabulary size for the embedding count")
    add_data(p, "fairseq data directory whose dictionary sets the vocabulary size")
    add_json(p, "print JSON (keys params and features for --arch)")
    p.set_defaults(func=cmd_info)
