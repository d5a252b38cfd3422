"""benchmarks/cpu_bf16.py's report: rebuilt from every measurement record, so a later run adds its rows."""

import json

from tests.helpers.benchmark_scripts import load_benchmark


def _module():
    return load_benchmark("cpu_bf16")


def _record(date: str, config: str, fp32: float, bf16: float, generation: bool) -> dict:
    args = {"rounds": 1, "warmup": 1, "updates": 2, "max_tokens": 1024, "data": "bin", "tiny": False, "profile": 0}
    args |= {"generate": "ckpt.pt", "gen_subset": "test", "gen_batch_size": 64}
    machine = {"cpu_model": "AMD EPYC", "bf16_flags": ["avx512_bf16"], "bf16_capability": "avx512_bf16"}
    machine |= {"cores": 2, "torch": "2.13.0+cpu", "commit": date[-2:]}
    rows = [
        {"config": config, "ranks": 1, "precision": p, "round": 0, "target_tokens_per_s": v, "loss": [9.0]}
        for p, v in (("fp32", fp32), ("bf16", bf16))
    ]
    gen = [{"precision": p, "seconds": s, "tokens_per_s": 1.0, "bleu": 29.0} for p, s in (("fp32", 2.0), ("bf16", 1.0))]
    return {
        "date": date,
        "command": f"--configs {config}",
        "note": "",
        "machine": machine,
        "args": args,
        "training": rows,
        "generation": gen if generation else [],
        "profiles": [],
    }


def test_the_report_keeps_every_record_newest_first(tmp_path):
    cpu_bf16 = _module()
    for rec in (
        _record("2026-12-04", "stock", 1000.0, 1890.0, True),
        _record("2026-12-07", "spos", 400.0, 600.0, False),
    ):
        (tmp_path / f"{rec['date']}.json").write_text(json.dumps(rec))
    text = cpu_bf16.build_report(cpu_bf16.load_records(tmp_path))
    older, newer = text.index("## 2026-12-04"), text.index("## 2026-12-07")
    assert newer < older
    assert "| (c) SPOS supernet, hat_cpu_multi30k | 1 x 1 | 400 | 600 | **1.50x** (1.50) |" in text[newer:older]
    assert "| (a) stock transformer 256/1024/4 heads, 3+3 | 1 x 1 | 1000 | 1890 | **1.89x** (1.89) |" in text[older:]
    assert text.count("bf16 generation is 2.00x fp32's speed.") == 1 and text.index("### Generation") > older
