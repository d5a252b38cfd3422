#!/usr/bin/env python3
"""Time a latency plan on a device that has only PyTorch (no fairseq, no mos-fairseq).

A plan is written where mos-fairseq is installed:

    mos-nas measure-latency --space hat_cpu_multi30k --n-archs 100 --order spread --plan plan.json

and carried to the device with this one file, which needs Python 3.9+ and torch only:

    python torch_latency.py --plan plan.json --out board.csv [--threads 4] [--device cpu|cuda]

It builds each planned architecture as the static encoder-decoder model ``mos-nas export`` writes
(post-norm Transformer, HAT's fixed q/k/v width, per-layer FFN width and heads, each decoder layer
attending to the last ``span`` encoder layers concatenated along time, output projection tied to the
decoder embedding; random weights: latency does not depend on them), times it with HAT's protocol
as ``mos-nas measure-latency`` does (encoder on the batch; then the decoder incrementally for
``tgt_len`` steps on ``batch x beam`` hypotheses with cached keys; ``warmup`` untimed runs,
``repeats`` timed runs, ``trim`` of each end dropped), and appends one row per architecture to
``--out`` in mos-nas's latency CSV format with the sidecar (``.json``) mos-nas reads: the file
trains an estimator (``mos-nas train-estimator --data board.csv``) like any measured on the host.
An interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PLAN_VERSION = 1
MAX_POSITIONS = 1024


class Attention(nn.Module):
    def __init__(self, q_in: int, kv_in: int, qkv: int, out: int, heads: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(q_in, qkv), nn.Linear(kv_in, qkv), nn.Linear(kv_in, qkv)
        self.o, self.heads, self.qkv = nn.Linear(qkv, out), heads, qkv

    def attend(self, q, k, v, mask=None):
        b, tq, _ = q.shape
        hd = self.qkv // self.heads
        split = lambda t: t.view(b, t.size(1), self.heads, hd).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        return self.o(out.transpose(1, 2).reshape(b, tq, self.qkv))


class EncoderLayer(nn.Module):
    def __init__(self, d: int, qkv: int, ffn: int, heads: int):
        super().__init__()
        self.attn, self.ln1 = Attention(d, d, qkv, d, heads), nn.LayerNorm(d)
        self.fc1, self.fc2, self.ln2 = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)

    def forward(self, x, mask):
        a = self.attn
        x = self.ln1(x + a.attend(a.q(x), a.k(x), a.v(x), mask))
        return self.ln2(x + self.fc2(F.relu(self.fc1(x))))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, d_enc: int, qkv: int, ffn: int, self_heads: int, cross_heads: int, span: int):
        super().__init__()
        self.self_attn, self.ln1 = Attention(d, d, qkv, d, self_heads), nn.LayerNorm(d)
        self.cross, self.ln2 = Attention(d, d_enc, qkv, d, cross_heads), nn.LayerNorm(d)
        self.fc1, self.fc2, self.ln3 = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)
        self.span = span

    def forward(self, x, states, cache, i):
        a, c = self.self_attn, self.cross
        k, v = a.k(x), a.v(x)
        if f"k{i}" in cache:  # incremental decoding: this step's keys join the cached ones
            k, v = torch.cat([cache[f"k{i}"], k], 1), torch.cat([cache[f"v{i}"], v], 1)
        cache[f"k{i}"], cache[f"v{i}"] = k, v
        x = self.ln1(x + a.attend(a.q(x), k, v))
        if f"ck{i}" not in cache:  # encoder-decoder keys and values: computed once
            memory = torch.cat(states[-self.span :], 1)
            cache[f"ck{i}"], cache[f"cv{i}"] = c.k(memory), c.v(memory)
        x = self.ln2(x + c.attend(c.q(x), cache[f"ck{i}"], cache[f"cv{i}"]))
        return self.ln3(x + self.fc2(F.relu(self.fc1(x))))


def sinusoids(n: int, d: int, device) -> torch.Tensor:
    half = d // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    ang = torch.arange(n, dtype=torch.float)[:, None] * freq[None]
    table = torch.cat([torch.sin(ang), torch.cos(ang)], 1)
    return F.pad(table, (0, d % 2)).to(device)


class Model(nn.Module):
    """The static encoder-decoder of one planned architecture."""

    def __init__(self, spec: dict, vocab: int):
        super().__init__()
        de, dd, qkv = spec["encoder_embed_dim"], spec["decoder_embed_dim"], spec["qkv_dim"]
        self.embed_enc = nn.Embedding(vocab, de)
        self.embed_dec = self.embed_enc if de == dd else nn.Embedding(vocab, dd)
        self.enc = nn.ModuleList(EncoderLayer(de, qkv, f, h) for f, h in spec["encoder_layers"])
        self.dec = nn.ModuleList(DecoderLayer(dd, de, qkv, f, hs, hc, s) for f, hs, hc, s in spec["decoder_layers"])
        self.keep = max(s for *_, s in spec["decoder_layers"])
        self.de, self.dd = de, dd
        # fairseq's sinusoidal positions (padding index 1: the first position is 2), computed once
        self.register_buffer("pos_enc", sinusoids(MAX_POSITIONS + 2, de, "cpu"), persistent=False)
        self.register_buffer("pos_dec", sinusoids(MAX_POSITIONS + 2, dd, "cpu"), persistent=False)

    def encode(self, src):
        x = math.sqrt(self.de) * self.embed_enc(src) + self.pos_enc[2 : src.size(1) + 2][None]
        states = []
        for layer in self.enc:
            x = layer(x, None)  # no padding: no mask, as the exported model
            states.append(x)
        return states[-self.keep :]

    def decode_step(self, token, step, states, cache):
        x = math.sqrt(self.dd) * self.embed_dec(token) + self.pos_dec[step + 2]
        for i, layer in enumerate(self.dec):
            x = layer(x, states, cache, i)
        return F.linear(x, self.embed_dec.weight)


def trimmed(samples: list[float], trim: float) -> tuple[float, float]:
    k = int(len(samples) * trim)
    kept = sorted(samples)[k : len(samples) - k] or sorted(samples)
    return statistics.fmean(kept), statistics.pstdev(kept)


def time_arch(model: Model, proto: dict, device: str) -> tuple[float, float, float, float]:
    b, beam, sl, tl = proto["batch_size"], proto["beam"], proto["src_len"], proto["tgt_len"]
    src = torch.full((b, sl), 4, dtype=torch.long, device=device)
    src[:, 0] = 2
    order = torch.arange(b, device=device).repeat_interleave(beam)
    token = torch.full((b * beam, 1), 4, dtype=torch.long, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    enc_t, dec_t = [], []
    with torch.inference_mode():
        for run in range(proto["warmup"] + proto["repeats"]):
            sync()
            t0 = time.perf_counter()
            states = model.encode(src)
            sync()
            t1 = time.perf_counter()
            states = [s.index_select(0, order) for s in states]
            cache: dict = {}
            for step in range(tl):
                model.decode_step(token, step, states, cache)
            sync()
            t2 = time.perf_counter()
            if run >= proto["warmup"]:
                enc_t.append((t1 - t0) * 1000)
                dec_t.append((t2 - t1) * 1000)
    (em, es), (dm, ds) = trimmed(enc_t, proto["trim"]), trimmed(dec_t, proto["trim"])
    return em, dm, es, ds


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", required=True, help="plan JSON written by mos-nas measure-latency --plan")
    ap.add_argument("--out", required=True, help="latency CSV to write or continue (sidecar: same name, .json)")
    ap.add_argument("--device", choices=("cpu", "cuda"), help="default: the plan's")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: the plan's, else torch's)")
    args = ap.parse_args(argv)
    try:
        plan = json.loads(Path(args.plan).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"torch_latency: error: cannot read plan '{args.plan}' ({exc})", file=sys.stderr)
        return 2
    if plan.get("version") != PLAN_VERSION or "archs" not in plan:
        print(f"torch_latency: error: '{args.plan}' is not a latency plan of version {PLAN_VERSION}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.is_dir():
        print(f"torch_latency: error: --out '{out}' is a directory; give the CSV file to write", file=sys.stderr)
        return 2
    proto = dict(plan["protocol"])
    proto["device"] = args.device or proto["device"]
    proto["threads"] = args.threads or proto.get("threads")
    if proto["device"] == "cuda" and not torch.cuda.is_available():
        print("torch_latency: error: --device cuda: no CUDA device is available to this torch build", file=sys.stderr)
        return 2
    threads = proto["threads"] or torch.get_num_threads()
    torch.set_num_threads(threads)
    device = {
        "device": proto["device"],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **({"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda} if proto["device"] == "cuda" else {}),
    }
    sidecar = {
        "version": 1,
        "tool": "torch_latency.py (torch only)",
        "space": plan["space"],
        "seed": plan["seed"],
        **({"order": plan["order"]} if plan.get("order", "uniform") != "uniform" else {}),
        "protocol": proto,
        "device": device,
        "columns": plan["columns"],
        "units": "milliseconds",
    }
    side_path = out.with_suffix(".json")
    done = 0
    if out.is_file() and out.stat().st_size > 0:
        old = json.loads(side_path.read_text()) if side_path.is_file() else {}
        if (
            any(old.get(k) != sidecar[k] for k in ("space", "seed", "protocol"))
            or old.get("device", {}).get("cpu") != device["cpu"]
        ):
            print(
                f"torch_latency: error: {out} was measured with another plan, protocol or device; choose another --out",
                file=sys.stderr,
            )
            return 2
        with open(out, newline="") as f:
            done = sum(1 for _ in csv.DictReader(f))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        side_path.write_text(json.dumps(sidecar, indent=2) + "\n")
        with open(out, "w", newline="") as f:
            csv.writer(f).writerow(plan["columns"])
    for entry in plan["archs"][done:]:
        torch.manual_seed(0)
        model = Model(entry["spec"], plan["vocab_size"]).to(proto["device"]).eval()
        em, dm, es, ds = time_arch(model, proto, proto["device"])
        row = {
            "arch_id": entry["arch_id"],
            "arch": entry["arch"],
            "params": entry["params"],
            **entry["features"],
            "latency_mean_encoder": em,
            "latency_mean_decoder": dm,
            "latency_std_encoder": es,
            "latency_std_decoder": ds,
        }
        with open(out, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=plan["columns"]).writerow(row)
            f.flush()
            os.fsync(f.fileno())
        print(f"{entry['arch_id']}: encoder {em:.2f} ms, decoder {dm:.2f} ms", flush=True)
    print(f"{out}: {len(plan['archs'])} architectures (sidecar {side_path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
