"""bf16 on CPU: mixed-precision fairseq-train for supernets (sandwich neuron MoS, SPOS) and a stock
transformer (fp32 checkpoints, losses near fp32's, resume across precisions), bf16 generation, the
capability check and the refused combinations."""

import re
import shutil
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils._python_dispatch import TorchDispatchMode

from mos_fairseq.base.errors import UserError
from mos_fairseq.core import cpu_bf16
from mos_fairseq.core.cpu_bf16 import (
    bf16_capability,
    check_precision_options,
    cpu_flags,
    require_cpu_bf16,
    use_cpu_bf16_training,
)
from mos_fairseq.modules.elastic import ElasticLinear

from .conftest import REPO, TRAIN_ARGS, build_supernet
from .helpers.forked_fairseq import run_fairseq_forked

HAS_BF16 = bf16_capability() is not None
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bf16 instructions")

X86_CPUINFO = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 fma\n\n"
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_capability_check_reads_the_flags_and_refuses_a_cpu_without_bf16():
    assert cpu_flags(X86_CPUINFO) >= {"avx512_bf16", "avx2"} and "bf16" in cpu_flags(ARM_CPUINFO)
    assert bf16_capability(cpu_flags(X86_CPUINFO)) == "avx512_bf16"
    assert bf16_capability({"avx512_bf16", "amx_bf16", "amx_tile"}) == "amx_bf16"
    assert bf16_capability(cpu_flags(ARM_CPUINFO)) == "bf16"
    assert bf16_capability({"avx2", "avx512f", "fma"}) is None and bf16_capability(set()) is None
    with pytest.raises(UserError, match="amx_bf16 or avx512_bf16") as err:
        require_cpu_bf16({"avx2", "avx512f"})
    assert "\n" not in str(err.value)
    assert require_cpu_bf16({"amx_bf16"}) == "amx_bf16"


def test_precision_options_refuse_what_bf16_cannot_run_with():
    ok = {"avx512_bf16"}
    check_precision_options(True, False, False, True, False, ok)  # --cpu --bf16
    check_precision_options(False, True, True, False, False, set())  # no --bf16: not ours to judge
    check_precision_options(True, False, False, False, True, set())  # CUDA machine: fairseq's own path
    for args, message in [
        ((True, True, False, True, False, ok), "--bf16 and --fp16"),
        ((True, False, True, True, False, ok), "--bf16 and --amp"),
        ((True, False, False, False, False, ok), "add --cpu"),
        ((True, False, False, True, False, {"avx2"}), "avx512_bf16"),
    ]:
        with pytest.raises(UserError, match=message):
            check_precision_options(*args)


class OpLog(TorchDispatchMode):
    """The aten ops run inside, with the dtypes of their tensor arguments."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, set]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor)}
        self.ops.append((str(func.overloadpacket.__name__), dtypes))
        return func(*args, **(kwargs or {}))

    def dtypes(self, *names: str) -> set:
        return {d for op, ds in self.ops if op in names for d in ds}


def _cpu_bf16_cfg():
    names = ("fp16", "memory_efficient_fp16", "memory_efficient_bf16", "amp")
    return OmegaConf.create({"common": {"cpu": True, "bf16": True, "tpu": True, **dict.fromkeys(names, False)}})


def _sample(dictionary, batch):
    src, lengths, prev = batch
    target = torch.cat([prev[:, 1:], torch.full((prev.size(0), 1), dictionary.eos())], 1)
    target[prev.eq(dictionary.pad())] = dictionary.pad()
    ntokens = int(target.ne(dictionary.pad()).sum())
    net_input = {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev}
    return {"net_input": net_input, "target": target, "ntokens": ntokens, "nsentences": src.size(0)}


def _stock_transformer(dictionary, dropout: float = 0.0):
    from argparse import Namespace

    from fairseq.models.transformer import TransformerModel, base_architecture

    args = Namespace(
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        encoder_layers=2,
        decoder_embed_dim=32,
        decoder_ffn_embed_dim=64,
        decoder_attention_heads=4,
        decoder_layers=2,
        share_all_embeddings=True,
        dropout=dropout,
        attention_dropout=0.0,
        max_source_positions=64,
        max_target_positions=64,
    )
    base_architecture(args)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return TransformerModel.build_model(args, task)


@pytest.mark.parametrize("kind", ["supernet_neuron_mos", "stock_transformer"])
def test_training_forward_runs_matmuls_in_bf16_attention_and_gradients_in_fp32(kind, dictionary, batch):
    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion

    torch.manual_seed(0)
    if kind == "stock_transformer":
        model = _stock_transformer(dictionary).train()
    else:
        model = build_supernet(dictionary, mos="neuron", dropout=0.0, attention_dropout=0.0).train()
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    sample = _sample(dictionary, batch)
    fp32_loss = criterion(model, sample)[0].item()
    cfg = _cpu_bf16_cfg()
    assert use_cpu_bf16_training(cfg, model, criterion)
    assert not cfg.common.bf16 and not cfg.common.tpu  # fairseq's own (pure bf16, TPU) handling is off
    cpu_bf16.forward_under(criterion, cpu_bf16.bf16_autocast)  # a second time: still one pair of hooks
    assert len(criterion._forward_pre_hooks) == len(criterion._forward_hooks) == 1
    forward, backward = OpLog(), OpLog()
    with forward:
        loss = criterion(model, sample)[0]
    assert not torch.is_autocast_enabled("cpu")  # autocast ends with the criterion's forward
    with backward:
        loss.backward()
    assert torch.bfloat16 in forward.dtypes("mm", "addmm", "bmm")  # the matmuls run in bf16
    assert not forward.dtypes("_log_softmax")  # the loss comes from the logits (modules.loss), no fp32 log-probs
    assert loss.dtype == torch.float32 and abs(loss.item() - fp32_loss) < 0.02 * abs(fp32_loss)
    # attention in fp32: no SDPA kernel, forward or backward, sees a bf16 tensor
    flash = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward")
    assert torch.bfloat16 not in forward.dtypes(*flash) | backward.dtypes(*flash)
    assert torch.bfloat16 not in forward.dtypes("_softmax", "_safe_softmax")
    if kind == "supernet_neuron_mos":  # our attention: SDPA's flash kernel on fp32 q/k/v
        assert forward.dtypes(flash[0]) == {torch.float32} and backward.dtypes(flash[1]) == {torch.float32}
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(p.dtype == torch.float32 for p in model.parameters())
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kind", ["supernet_neuron_mos", "stock_transformer"])
def test_bf16_training_draws_dropout_masks_without_bernoulli_and_fp32_keeps_fairseqs(kind, dictionary, batch):
    from fairseq.modules import FairseqDropout

    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion

    torch.manual_seed(0)
    if kind == "stock_transformer":
        model = _stock_transformer(dictionary, dropout=0.3).train()
    else:
        model = build_supernet(dictionary, mos="neuron", dropout=0.3, attention_dropout=0.0).train()
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    sample = _sample(dictionary, batch)
    fp32 = OpLog()
    with fp32:
        criterion(model, sample)
    assert "bernoulli_" in {op for op, _ in fp32.ops}  # fp32 training: fairseq's dropout as it is
    assert use_cpu_bf16_training(_cpu_bf16_cfg(), model, criterion)
    if kind == "stock_transformer":
        dropouts = [m for m in model.modules() if isinstance(m, FairseqDropout)]
        assert dropouts and all(m.forward.__func__ is cpu_bf16.fairseq_dropout_forward for m in dropouts)
    bf16 = OpLog()
    with bf16:
        loss = criterion(model, sample)[0]
    ops = {op for op, _ in bf16.ops}
    assert "bernoulli_" not in ops and "native_dropout" not in ops and "randint" in ops
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with OpLog() as evaluation:
        criterion(model, sample)
    assert not {"bernoulli_", "randint"} & {op for op, _ in evaluation.ops}  # no dropout in evaluation


def test_fused_loss_overwrites_the_logits_only_where_the_criterion_reads_them_no_more(monkeypatch, dictionary, batch):
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

    from mos_fairseq.modules import loss as loss_module
    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion

    class ReadsLogits(SupernetCrossEntropyCriterion):
        def forward(self, model, sample, reduce=True):
            return super().forward(model, sample, reduce)

    seen = []
    fused = loss_module.label_smoothed_nll_from_logits
    monkeypatch.setattr(loss_module, "label_smoothed_nll_from_logits", lambda *a, **k: seen.append(k) or fused(*a, **k))
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model, sample = _stock_transformer(dictionary).train(), _sample(dictionary, batch)
    cases = [
        (LabelSmoothedCrossEntropyCriterion, {}, True),
        (SupernetCrossEntropyCriterion, {}, True),
        (SupernetCrossEntropyCriterion, {"report_accuracy": True}, False),
        (ReadsLogits, {}, False),  # a forward of its own: it may read the logits after the loss
    ]
    for kind, options, overwrite in cases:
        criterion = kind(task, sentence_avg=False, label_smoothing=0.1, **options)
        assert use_cpu_bf16_training(_cpu_bf16_cfg(), model, criterion)
        loss = criterion(model, sample)[0]
        loss.backward()
        assert seen.pop()["overwrite"] is overwrite and torch.isfinite(loss)


def test_sliced_linear_under_autocast_computes_as_autocast_linear():
    torch.manual_seed(0)
    layer = ElasticLinear(16, 12)
    x = torch.randn(5, 10, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, 10, 8)  # the sliced path (SlicedLinear)
        ref = F.linear(x, layer.weight[:8, :10], layer.bias[:8])
    assert out.dtype == ref.dtype == torch.bfloat16 and torch.equal(out, ref)
    g = torch.randn(5, 8)
    (grad_x, grad_w, grad_b) = torch.autograd.grad(out.float(), (x, layer.weight, layer.bias), g)
    (ref_x, ref_w, ref_b) = torch.autograd.grad(ref.float(), (x, layer.weight, layer.bias), g)
    assert grad_w.dtype == grad_b.dtype == grad_x.dtype == torch.float32
    assert torch.equal(grad_x, ref_x) and torch.equal(grad_w, ref_w)
    assert torch.allclose(grad_b, ref_b, rtol=1e-2, atol=1e-2)  # ours sums in fp32, autocast's in bf16
    assert grad_w[8:].abs().sum() == 0 and grad_w[:, 10:].abs().sum() == 0


def test_inference_preparation_converts_the_model_to_bf16_only_when_asked(dictionary):
    gen = {"no_beamable_mm": False, "beam": 4, "print_alignment": False, "retain_dropout": False}
    for bf16, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        if bf16 and not HAS_BF16:
            continue
        model = build_supernet(dictionary)
        model.prepare_for_inference_(OmegaConf.create({"common": {"cpu": True, "bf16": bf16}, "generation": gen}))
        assert {p.dtype for p in model.parameters()} == {dtype}


def test_the_command_line_refuses_bf16_it_cannot_have(monkeypatch, capsys):
    from fairseq import options

    parser = options.get_training_parser()
    with pytest.raises(SystemExit) as exit_:
        options.parse_args_and_arch(parser, ["data", "--cpu", "--bf16", "--fp16"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith(
        "--bf16 and --fp16 exclude each other: give one of them (on CPU, --bf16 with --cpu)"
    )
    monkeypatch.setattr(cpu_bf16, "cpu_flags", lambda cpuinfo=None: frozenset({"avx2", "avx512f"}))
    with pytest.raises(SystemExit):
        options.parse_args_and_arch(parser, ["data", "--cpu", "--bf16"])
    assert "needs bf16 instructions (CPU flag amx_bf16 or avx512_bf16" in capsys.readouterr().err
    monkeypatch.undo()
    if HAS_BF16:
        args = options.parse_args_and_arch(parser, ["data", "--arch", "transformer", "--cpu", "--bf16"])
        assert args.bf16 and not args.tpu  # --bf16 no longer implies --tpu on CPU


# ---- fairseq-train / fairseq-generate ---------------------------------------------------------------
STOCK_ARGS = [
    "--user-dir",
    str(REPO / "user_dir"),
    "--task",
    "translation",
    "--arch",
    "transformer",
    *("--encoder-embed-dim", "32", "--decoder-embed-dim", "32"),
    *("--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64"),
    *("--encoder-layers", "2", "--decoder-layers", "2"),
    *("--encoder-attention-heads", "4", "--decoder-attention-heads", "4"),
    "--share-all-embeddings",
    *("--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"),
    *("--optimizer", "adam", "--lr", "1e-3", "--max-tokens", "1024", "--seed", "7"),
    *("--cpu", "--num-workers", "0", "--log-format", "simple", "--no-epoch-checkpoints"),
]
CONFIGS = {
    "sandwich_neuron_mos": [*TRAIN_ARGS, "--mos", "neuron"],
    "spos": [*TRAIN_ARGS, "--supernet-sampling", "spos"],
    "stock_transformer": STOCK_ARGS,
}
LOSS = re.compile(r"\| train_inner \|.* loss=([0-9.]+),.*num_updates=(\d+)")


def _train(data, save_dir, config, updates, *extra):
    args = [str(data), *CONFIGS[config], "--save-dir", str(save_dir), "--max-update", str(updates)]
    proc = run_fairseq_forked("train", *args, "--log-interval", "1", "--disable-validation", *extra)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    losses = {int(n): float(v) for v, n in LOSS.findall(proc.stdout)}
    return proc.stdout, losses


def _fp32_state(path):
    state = torch.load(path)
    assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())
    moments = [
        t for s in state["last_optimizer_state"]["state"].values() for t in s.values() if isinstance(t, torch.Tensor)
    ]
    assert moments and all(t.dtype == torch.float32 for t in moments if t.is_floating_point())
    return state


@needs_bf16
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_bf16_training_keeps_fp32_checkpoints_tracks_fp32_losses_and_resumes_both_ways(config, synthetic_bin, tmp_path):
    out32, fp32 = _train(synthetic_bin, tmp_path / "fp32", config, 3)
    out16, bf16 = _train(synthetic_bin, tmp_path / "bf16", config, 3, "--bf16")
    assert "bf16 mixed precision on CPU" in out16 and "bf16 mixed precision" not in out32
    assert sorted(fp32) == sorted(bf16) == [1, 2, 3]
    assert all(abs(fp32[u] - bf16[u]) < 0.05 for u in fp32), (fp32, bf16)
    _fp32_state(tmp_path / "fp32" / "checkpoint_last.pt")
    before = _fp32_state(tmp_path / "bf16" / "checkpoint_last.pt")["model"]
    # resume each checkpoint in the other precision for one more update
    for src, dst, extra in (("bf16", "bf16_then_fp32", ()), ("fp32", "fp32_then_bf16", ("--bf16",))):
        shutil.copytree(tmp_path / src, tmp_path / dst)
        out, losses = _train(synthetic_bin, tmp_path / dst, config, 4, *extra)
        assert "(epoch 1 @ 3 updates)" in out and sorted(losses) == [4], out[-2000:]
        state = _fp32_state(tmp_path / dst / "checkpoint_last.pt")
        assert state["optimizer_history"][-1]["num_updates"] == 4
    after = _fp32_state(tmp_path / "bf16_then_fp32" / "checkpoint_last.pt")["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


@pytest.fixture(scope="module")
def bf16_supernet(synthetic_bin, tmp_path_factory):
    """A sandwich neuron-MoS tiny supernet after 2 bf16 updates."""
    root = tmp_path_factory.mktemp("bf16_supernet")
    _train(synthetic_bin, root / "ckpt", "sandwich_neuron_mos", 2, "--bf16")
    return root / "ckpt" / "checkpoint_last.pt"


@needs_bf16
def test_generate_with_bf16_translates_every_sentence(synthetic_bin, bf16_supernet):
    for precision in ((), ("--bf16",)):
        args = [str(synthetic_bin), "--user-dir", str(REPO / "user_dir"), "--task", "supernet_translation"]
        args += ["--path", str(bf16_supernet), "--gen-subset", "test", "--beam", "2", "--max-len-b", "20"]
        proc = run_fairseq_forked("generate", *args, "--batch-size", "32", "--cpu", *precision)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        hyps = [line for line in proc.stdout.splitlines() if line.startswith("H-")]
        assert len(hyps) == 60 and "BLEU4" in proc.stdout


@needs_bf16
def test_mos_nas_evaluate_and_bleu_with_bf16_weights(synthetic_bin, bf16_supernet, tiny_space, tmp_path):
    import json

    from mos_fairseq.translation.architecture import Architecture

    from .conftest import run_cli

    arch = tmp_path / "largest.yml"
    Architecture.largest(tiny_space).save(arch)
    common = ["--checkpoint", str(bf16_supernet), "--data", str(synthetic_bin), "--arch", str(arch)]
    common += ["--valid-max-sentences", "40", "--beam", "2", "--json"]
    fp32 = json.loads(run_cli("evaluate", *common, fork=True).stdout)
    bf16 = json.loads(run_cli("evaluate", *common, "--bf16", fork=True).stdout)
    assert abs(fp32["valid_loss"] - bf16["valid_loss"]) < 0.05 and 0 <= bf16["bleu"] <= 100
    bleu = run_cli("bleu", "--path", str(bf16_supernet), "--data", str(synthetic_bin), "--json", "--bf16", fork=True)
    assert json.loads(bleu.stdout)["sentences"] == 60


def _no_bf16_flags():
    cpu_bf16.cpu_flags = lambda cpuinfo=None: frozenset({"avx2", "avx512f"})


def _no_cuda():  # in the forked fairseq-train: a machine without CUDA, whatever this one has
    torch.cuda.is_available = lambda: False


@pytest.mark.parametrize(
    "extra, before, message",
    [
        (["--bf16", "--fp16"], None, "--bf16 and --fp16 exclude each other"),
        (["--bf16"], _no_bf16_flags, "--bf16 on CPU needs bf16 instructions (CPU flag amx_bf16 or avx512_bf16"),
        (["--bf16", "--no-cpu"], _no_cuda, "--bf16 without --cpu needs a CUDA device and this machine has none"),
    ],
    ids=["with_fp16", "cpu_without_bf16", "without_cpu_or_cuda"],
)
def test_fairseq_train_refuses_bad_bf16_in_one_line_and_writes_nothing(synthetic_bin, tmp_path, extra, before, message):
    args = [a for a in CONFIGS["sandwich_neuron_mos"] if not ("--no-cpu" in extra and a == "--cpu")]
    extra = [a for a in extra if a != "--no-cpu"]
    proc = run_fairseq_forked(
        "train", str(synthetic_bin), *args, *extra, "--save-dir", str(tmp_path / "ckpt"), before=before
    )
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-2000:]
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and err.startswith("fairseq-train: error: "), err
    assert message in err
    assert not (tmp_path / "ckpt").exists()


# ---- latency: bf16 is a device of its own ----------------------------------------------------------
def test_latency_protocol_keeps_fp32_files_as_they_were_and_refuses_bf16_off_the_cpu():
    from mos_fairseq.latency.protocol import Protocol

    assert "dtype" not in Protocol().to_dict()  # fp32 sidecars written before --dtype read the same
    assert Protocol(dtype="bf16").to_dict()["dtype"] == "bf16"
    assert Protocol(**Protocol(dtype="bf16").to_dict()) == Protocol(dtype="bf16")
    with pytest.raises(UserError, match="give --device cpu"):
        Protocol(dtype="bf16", device="cuda")
    with pytest.raises(UserError, match="--dtype must be one of fp32, bf16"):
        Protocol(dtype="fp16")


@needs_bf16
def test_bf16_latency_is_recorded_as_its_own_device_and_never_mixed_with_fp32_rows(tiny_space, tmp_path):
    import json

    from mos_fairseq.base.errors import DataError
    from mos_fairseq.latency.estimator import LatencyEstimator
    from mos_fairseq.latency.measure import build_model, deployed, measure_space, synthetic_dictionary
    from mos_fairseq.latency.protocol import Protocol
    from mos_fairseq.search.verify import DeviceTimer
    from mos_fairseq.translation.architecture import Architecture

    from .conftest import run_cli

    arch = Architecture.largest(tiny_space)
    model = deployed(build_model(arch, synthetic_dictionary(64), "cpu"), "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    fast = dict(repeats=2, warmup=0, vocab_size=64, src_len=5, tgt_len=3, beam=2, threads=1)
    bf16, fp32 = Protocol(dtype="bf16", **fast), Protocol(**fast)
    out16, out32 = tmp_path / "bf16.csv", tmp_path / "fp32.csv"
    assert measure_space(tiny_space, bf16, 12, seed=1, out=out16, progress=False) == 12
    measure_space(tiny_space, fp32, 2, seed=1, out=out32, progress=False)
    side = json.loads(out16.with_suffix(".json").read_text())
    assert side["device"]["dtype"] == "bf16" and side["protocol"]["dtype"] == "bf16"
    assert json.loads(out32.with_suffix(".json").read_text())["device"]["dtype"] == "fp32"
    for out, protocol, other in ((out16, fp32, "fp32"), (out32, bf16, "bf16")):
        before = out.read_bytes()
        with pytest.raises(DataError, match=f"this run with {other}: each dtype is a device of its own") as err:
            measure_space(tiny_space, protocol, 14, seed=1, out=out, progress=False)
        assert "\n" not in str(err.value) and out.read_bytes() == before
    # the estimator's header carries the dtype; verifying its picks measures them in bf16 again
    est = tmp_path / "bf16.safetensors"
    run_cli("train-estimator", "--data", str(out16), "--out", str(est), "--recipe", "least_squares", "--no-hat-recipe")
    estimator = LatencyEstimator.load(est)
    assert estimator.info["measured"]["dtype"] == "bf16" and estimator.info["protocol"]["dtype"] == "bf16"
    assert DeviceTimer(estimator).protocol == bf16


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("weights", [(1.0, 0.0), (2.0, 0.0), (1.0, 0.5)])  # of (loss, nll): fairseq's is (1, 0)
@pytest.mark.parametrize("overwrite", [False, True])
def test_chunked_label_smoothed_loss_equals_fairseqs(dtype, weights, overwrite, monkeypatch):
    from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

    from mos_fairseq.modules import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", 3 * 50)  # 3 rows per chunk: several chunks and a remainder
    g = torch.Generator().manual_seed(0)
    base = (torch.randn(20, 50, generator=g) * 3).to(dtype).requires_grad_()
    target = torch.randint(0, 50, (20,), generator=g)
    target[[2, 7, 19]] = 1  # padding
    lprobs = torch.log_softmax(base.float(), dim=-1)
    ref = label_smoothed_nll_loss(lprobs, target, 0.1, ignore_index=1, reduce=True)
    w_loss, w_nll = weights
    grad_ref = torch.autograd.grad(w_loss * ref[0] + w_nll * ref[1], base, retain_graph=True)[0]
    d_loss = torch.autograd.grad(ref[0], base)[0]
    logits = base * 1  # a non-leaf, as a model's output is
    before = logits.detach().clone()
    ours = loss_module.label_smoothed_nll_from_logits(logits, target, 0.1, 1, overwrite=overwrite)
    grad_ours = torch.autograd.grad(w_loss * ours[0] + w_nll * ours[1], logits)[0]
    assert ours[0].dtype == ours[1].dtype == torch.float32 and grad_ours.dtype == dtype
    assert torch.allclose(ours[0], ref[0], rtol=1e-5) and torch.allclose(ours[1], ref[1], rtol=1e-5)
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(grad_ours.float(), grad_ref.float(), rtol=tol, atol=tol)
    assert grad_ours[[2, 7, 19]].abs().sum() == 0
    if overwrite:  # the logits' memory now holds d loss / d logits
        assert torch.allclose(logits.detach().float(), d_loss.float(), rtol=tol, atol=tol)
    else:
        assert torch.equal(logits, before)  # the loss works on copies of the logits
    kept = before.clone()
    with torch.no_grad():  # no gradient needed: none computed, the logits stay as they are
        again = loss_module.label_smoothed_nll_from_logits(before, target, 0.1, 1, overwrite=True)
    assert torch.allclose(again[0], ref[0], rtol=1e-5) and torch.equal(before, kept)
