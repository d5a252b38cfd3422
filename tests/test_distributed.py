"""Data-parallel supernet training (two gloo processes on CPU) and exact resume after a kill."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

from mos_fairseq.core.cpu_bf16 import bf16_capability

from .conftest import BIN, REPO, TRAIN_ARGS

# sandwich (largest + smallest + 1 random) with neuron-wise MoS, no dropout (so that one process
# with both ranks' batches draws no different dropout masks), 10 updates, no checkpoints
DP_ARGS = [
    *TRAIN_ARGS,
    "--mos",
    "neuron",
    "--dropout",
    "0",
    "--attention-dropout",
    "0",
    "--max-update",
    "10",
    "--no-save",
    "--disable-validation",
    "--max-tokens",
    "512",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recording_train(out, args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if "--bf16" in args and bf16_capability() is None:  # no bf16 instructions: torch emulates them
        env["RECORDING_TRAIN_EMULATE_BF16"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.recording_train", str(out), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(procs, timeout=600):
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def _stream(path):
    return dict(line.split("\t", 1) for line in path.read_text().splitlines())


# SPOS: one random subnet per update, so whole layers are unused and get no gradient in one process; fairseq's
# legacy_ddp all-reduces zeros for them, which Adam would take as gradients (its moments moving the weights)
# (sandwich_bf16: bf16 mixed precision; every rank's forward is the one process's for that batch)
SAMPLING = {
    "sandwich": ([], 3),
    "sandwich_bf16": (["--bf16"], 3),
    "spos": (["--supernet-sampling", "spos", "--mos", "none"], 1),
}


@pytest.mark.parametrize("sampling", sorted(SAMPLING))
def test_distributed_two_gloo_ranks_train_like_one_process_with_both_batches(synthetic_bin, tmp_path, sampling):
    extra, n_subnets = SAMPLING[sampling]
    port = _free_port()
    dist = [
        "--distributed-world-size",
        "2",
        "--distributed-backend",
        "gloo",
        "--ddp-backend",
        "legacy_ddp",
        "--distributed-init-method",
        f"tcp://127.0.0.1:{port}",
        "--distributed-no-spawn",
    ]
    log = tmp_path / "subnets.tsv"
    ranks = [
        _recording_train(
            tmp_path / f"rank{r}.pt",
            [str(synthetic_bin), *DP_ARGS, *extra, *dist, "--distributed-rank", str(r), "--log-subnets", str(log)],
        )
        for r in (0, 1)
    ]
    single = _recording_train(
        tmp_path / "single.pt",
        [str(synthetic_bin), *DP_ARGS, *extra, "--update-freq", "2", "--log-subnets", str(tmp_path / "single.tsv")],
    )
    _wait([*ranks, single])
    r0, r1, one = (torch.load(tmp_path / f"{n}.pt")["params"] for n in ("rank0", "rank1", "single"))
    assert len(r0) == len(r1) == len(one) == 10
    # bf16: the fp32 rounding differences of the gradient sums (1e-7 relative) flip bf16 roundings of
    # the weights' casts from some update on, and those grow; 2e-3 stays 15x below the distance trained
    tolerance = 2e-3 if "--bf16" in extra else 1e-5
    for update, (a, b, c) in enumerate(zip(r0, r1, one), 1):
        assert torch.equal(a, b), f"ranks differ after update {update}"
        rel = ((a - c).norm() / c.norm()).item()
        assert rel < (1e-5 if update == 1 else tolerance), (
            f"update {update}: two ranks vs one process with both batches, relative difference {rel}"
        )
    assert not torch.equal(r0[0], r0[-1])  # it trained
    # the same subnets on both ranks, and the same as the single process's
    s0, s1, s = _stream(log), _stream(tmp_path / "subnets.tsv.rank1"), _stream(tmp_path / "single.tsv")
    assert len(s0) == 10 and s0 == s1 == s
    assert all(len(json.loads(archs)) == n_subnets for archs in s0.values())  # sandwich: largest, smallest, one random


def test_resume_after_kill_equals_an_uninterrupted_run(synthetic_bin, tmp_path):
    """SIGKILL mid-training (after the update-8 checkpoint), restart: same parameters at update 12."""
    args = [
        str(BIN / "fairseq-train"),
        str(synthetic_bin),
        *TRAIN_ARGS,
        "--mos",
        "neuron",
        "--max-update",
        "12",
        "--save-interval-updates",
        "4",
        "--disable-validation",
        "--log-interval",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        [*args, "--save-dir", str(tmp_path / "full"), "--log-subnets", str(tmp_path / "full.tsv")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert full.returncode == 0, full.stderr[-3000:]

    resumed = [*args, "--save-dir", str(tmp_path / "resumed"), "--log-subnets", str(tmp_path / "resumed.tsv")]
    proc = subprocess.Popen(resumed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    killed_at = None
    for line in proc.stdout:
        if "num_updates=9" in line or "num_updates=10" in line:  # past the update-8 checkpoint
            proc.send_signal(signal.SIGKILL)
            killed_at = line
            break
    proc.wait(timeout=60)
    assert killed_at and proc.returncode == -signal.SIGKILL
    assert len(_stream(tmp_path / "resumed.tsv")) > 8  # it got past the checkpoint before dying
    out = subprocess.run(resumed, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "@ 8 updates" in out.stdout + out.stderr

    a = torch.load(tmp_path / "full" / "checkpoint_last.pt")
    b = torch.load(tmp_path / "resumed" / "checkpoint_last.pt")
    assert a["optimizer_history"][-1]["num_updates"] == b["optimizer_history"][-1]["num_updates"] == 12
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert _stream(tmp_path / "full.tsv") == _stream(tmp_path / "resumed.tsv")


DDP_CASES = [("sandwich", "neuron"), ("sandwich", "layer"), ("spos", "none")]


def _ddp_worker(rank: int, port: int, out: str) -> None:
    """One rank of torch's DistributedDataParallel (the engine fairseq's c10d backend uses on GPUs)
    on CPU/gloo: our task's step through fairseq's ModuleProxyWrapper, then the gradients, for each
    of DDP_CASES (one process pair for all: spawning costs more than the steps)."""
    from types import SimpleNamespace

    import torch.distributed as dist
    from fairseq.data import Dictionary
    from fairseq.distributed import ModuleProxyWrapper

    from mos_fairseq.plugin import register
    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion
    from mos_fairseq.translation.task import SupernetTranslationConfig, SupernetTranslationTask

    from .conftest import build_supernet

    register()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    d = Dictionary()
    for i in range(60):
        d.add_symbol(f"w{i}")
    d.finalize(padding_factor=8)
    optimizer = SimpleNamespace(backward=lambda loss: loss.backward())

    def sample(seed):
        g = torch.Generator().manual_seed(seed)
        src, tgt = torch.randint(4, len(d), (4, 7), generator=g), torch.randint(4, len(d), (4, 6), generator=g)
        prev = torch.cat([torch.full((4, 1), d.eos()), tgt[:, :-1]], 1)
        return {
            "net_input": {"src_tokens": src, "src_lengths": torch.full((4,), 7), "prev_output_tokens": prev},
            "target": tgt,
            "ntokens": tgt.numel(),
            "nsentences": 4,
        }

    results = {}
    for sampling, mos in DDP_CASES:
        task = SupernetTranslationTask(
            SupernetTranslationConfig(data="", seed=3, supernet_sampling=sampling, sandwich_random=2), d, d
        )
        criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
        # reference: one process, both ranks' batches, summed (fairseq divides by the summed sample size)
        reference = build_supernet(d, seed=1, mos=mos, dropout=0.0, attention_dropout=0.0)
        for r in (0, 1):
            task.train_step(sample(r), reference, criterion, optimizer, update_num=5)
        model = build_supernet(d, seed=1, mos=mos, dropout=0.0, attention_dropout=0.0)
        ddp = ModuleProxyWrapper(torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True))
        task.train_step(sample(rank), ddp, criterion, optimizer, update_num=5)
        results[f"{sampling}-{mos}"] = {
            "grads": {
                n: (p.grad * 2 if p.grad is not None else None) for n, p in model.named_parameters()
            },  # DDP averages
            "reference": {n: p.grad for n, p in reference.named_parameters()},
        }
    torch.save(results, out)
    dist.destroy_process_group()


def test_distributed_torch_ddp_syncs_subnet_gradients_once_per_update(tmp_path):
    """The GPU engine's logic on CPU: forward through the DDP wrapper, no_sync for all but the last
    subnet, parameters unused by the last subnet still reduced: grads = both batches' grads.
    Sandwich with neuron- and layer-wise MoS, and SPOS without MoS."""
    import torch.multiprocessing as mp

    port = _free_port()
    procs = [
        mp.get_context("spawn").Process(target=_ddp_worker, args=(r, port, str(tmp_path / f"rank{r}.pt")))
        for r in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert sorted(r0) == sorted(f"{s}-{m}" for s, m in DDP_CASES)
    for case in r0:
        used = 0
        for name, ref in r0[case]["reference"].items():
            a, b = r0[case]["grads"][name], r1[case]["grads"][name]
            if ref is None:
                assert a is None or not a.any(), (case, name)
                continue
            used += 1
            assert torch.equal(a, b), f"{case} {name}: ranks differ"
            assert torch.allclose(a, ref, rtol=1e-4, atol=1e-7), (
                f"{case} {name}: max diff {(a - ref).abs().max().item()}"
            )
        assert used > 20, case


def test_resume_survives_a_kill_during_the_checkpoint_last_copy(tmp_path, monkeypatch):
    """fairseq copies checkpoint_N.pt onto checkpoint_last.pt; a copy that dies half-way must leave
    the previous checkpoint_last.pt intact (the plugin makes the copy write-then-rename)."""
    from fairseq import checkpoint_utils

    from mos_fairseq.core import fairseq_fixes

    src, last = tmp_path / "checkpoint_1_8.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    last.write_bytes(b"old" * 1000)

    def dies_half_way(fsrc, fdst, length=0):
        fdst.write(fsrc.read(1500))
        raise KeyboardInterrupt  # the job is killed mid-copy

    monkeypatch.setattr(fairseq_fixes.shutil, "copyfileobj", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_utils.PathManager.copy(str(src), str(last), overwrite=True)
    assert last.read_bytes() == b"old" * 1000
    monkeypatch.undo()
    assert checkpoint_utils.PathManager.copy(str(src), str(last), overwrite=True)
    assert last.read_bytes() == b"new" * 1000
