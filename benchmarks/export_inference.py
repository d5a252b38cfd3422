"""CPU inference of an exported subnet vs the same subnet run inside the supernet.

HAT WMT'14 En-De space, vocabulary 32,768, a seeded (untrained) supernet of the chosen MoS kind.
100 source sentences whose lengths are those of the first 100 lines of a real test set
(``--lengths-from``, words x 1.3 for subwords, at most 80), random tokens. Beam 4 with fairseq's
SequenceGenerator, batches of 25 sentences, at most ``1.2 * src_len + 10`` target tokens (an
untrained model rarely stops early, so every model does the same, maximal, amount of work; all
compared models produce identical tokens, which the script checks).

Compared, for a heterogeneous random subnet (exported as ``mos_static_transformer``) and a
homogeneous 512-wide subnet (exported as stock ``transformer``):
  supernet   ``supernet.bind(arch)`` (elastic slicing and MoS mixing on every call)
  exported   the model ``mos-nas export`` writes
  static     (homogeneous subnet) our ``mos_static_transformer`` of the same subnet, for the stock comparison

    python benchmarks/export_inference.py [--mos neuron] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import synthetic_dictionary  # noqa: E402

DEFAULT_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mt-ende" / "test.en"


def _lengths(path: Path, n: int) -> list[int]:
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()[:n]
        return [max(2, min(80, round(len(line.split()) * 1.3))) for line in lines]
    rng = random.Random(0)  # no test set here: a fixed, plausible spread
    return [rng.randint(8, 50) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mos", default="neuron", choices=["none", "layer", "neuron"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=100)
    ap.add_argument("--lengths-from", default=str(DEFAULT_TEST))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "export_inference.md"))
    args = ap.parse_args()

    import torch
    from fairseq.sequence_generator import SequenceGenerator

    from mos_fairseq.translation.architecture import Architecture
    from mos_fairseq.translation.export import build_export
    from mos_fairseq.translation.supernet import SuperTransformerConfig, SuperTransformerModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d = synthetic_dictionary(32768)
    dicts = SimpleNamespace(source_dictionary=d, target_dictionary=d)
    supernet = SuperTransformerModel.build_model(
        SuperTransformerConfig(search_space="hat_wmt14_en_de", mos=args.mos), dicts
    ).eval()
    space = supernet.space
    hetero = Architecture.random(space, random.Random(4))
    homog = Architecture.from_dict(
        {
            "encoder": {"embed_dim": 512, "ffn_dim": [2048] * 6, "heads": [8] * 6},
            "decoder": {
                "embed_dim": 512,
                "ffn_dim": [2048] * 3,
                "self_heads": [8] * 3,
                "cross_heads": [8] * 3,
                "cross_span": [1] * 3,
            },
        },
        space,
    )

    lengths = _lengths(Path(args.lengths_from), args.sentences)
    g = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, len(lengths), 25):
        lens = lengths[start : start + 25]
        width = max(lens)
        src = torch.full((len(lens), width), d.pad())
        for row, n in enumerate(lens):
            src[row, width - n : width - 1] = torch.randint(4, len(d), (n - 1,), generator=g)
            src[row, width - 1] = d.eos()
        batches.append(
            {
                "net_input": {"src_tokens": src, "src_lengths": torch.tensor(lens)},
                "id": torch.arange(start, start + len(lens)),
            }
        )

    def run(model) -> tuple[float, list]:
        gen = SequenceGenerator([model], d, beam_size=4, max_len_a=1.2, max_len_b=10)
        times, outputs = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with torch.no_grad():
                out = [h[0]["tokens"].tolist() for b in batches for h in gen.generate([model], b)]
            times.append(time.perf_counter() - t0)
            outputs = out
        return statistics.median(times), outputs

    rows = []
    for name, arch in (("heterogeneous random", hetero), ("homogeneous 512", homog)):
        built = build_export(supernet, dicts, arch)
        exported, reason = built.model, built.stock_reason
        kind = "mos_static_transformer" if reason else "stock transformer"
        t_super, out_super = run(supernet.bind(arch))
        t_exp, out_exp = run(exported)
        row = {
            "subnet": name,
            "arch": arch.describe(),
            "exported_as": kind,
            "supernet_s": t_super,
            "exported_s": t_exp,
            "identical": out_super == out_exp,
            "tokens": sum(len(o) for o in out_exp),
        }
        if not reason:
            static = build_export(supernet, dicts, arch, force_static=True).model
            t_static, out_static = run(static)
            row.update(static_s=t_static, identical=row["identical"] and out_static == out_exp)
        rows.append(row)
        print(row, flush=True)

    lines = [
        "# Inference: exported subnet vs the subnet inside the supernet (CPU)",
        "",
        f"Command: `python benchmarks/export_inference.py --mos {args.mos} --repeats {args.repeats} --threads {args.threads}`",
        "",
        f"HAT WMT'14 space, vocabulary 32,768, {args.mos}-MoS supernet (seeded, untrained); {len(lengths)} sentences "
        f"(lengths of the first {len(lengths)} lines of `{Path(args.lengths_from).name}` x 1.3), beam 4, batches of 25, "
        f"max length 1.2 x src + 10; median of {args.repeats} runs; {args.threads} threads.",
        "",
        "| subnet | exported as | generated tokens | in supernet (s) | exported (s) | supernet / exported | ours static (s) | static / stock | identical output |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        static = f"{r['static_s']:.2f}" if "static_s" in r else "-"
        ratio = f"{r['static_s'] / r['exported_s']:.3f}" if "static_s" in r else "-"
        lines.append(
            f"| {r['subnet']} | {r['exported_as']} | {r['tokens']} | {r['supernet_s']:.2f} | {r['exported_s']:.2f} | "
            f"{r['supernet_s'] / r['exported_s']:.3f} | {static} | {ratio} | {r['identical']} |"
        )
    lines += ["", "Architectures: " + "; ".join(f"{r['subnet']}: {r['arch']}" for r in rows)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
