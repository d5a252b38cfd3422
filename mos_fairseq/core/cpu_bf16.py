"""bf16 on CPUs that have it (the core layer, installed by :func:`mos_fairseq.plugin.register`):
mixed-precision training and bf16 inference for every fairseq command run with our ``--user-dir``,
our supernets and fairseq's stock architectures and tasks alike (``mos-nas retrain``, the GLUE
fine-tuning script).

fairseq's own ``--bf16`` is a TPU path: it implies ``--tpu`` (``fairseq-train --cpu --bf16`` dies on
a missing ``torch_xla``), casts the model to bf16 and keeps an fp32 master copy in an
FP16Optimizer. On CPU the plugin replaces it with what users expect of mixed precision:

* **Command line** (a wrapper of ``fairseq.options.parse_args_and_arch``, so before fairseq's own
  checks and before anything is written): ``--bf16`` with ``--fp16`` or ``--amp``, ``--bf16``
  without ``--cpu`` on a machine without CUDA, and ``--bf16`` on a CPU without bf16 instructions
  (:func:`require_cpu_bf16`: no ``amx_bf16`` / ``avx512_bf16`` flag, ``bf16`` on aarch64) stop with
  one line and exit code 2. A CPU without them would emulate bf16, slower than fp32, so the
  plugin refuses instead of falling back. With ``--cpu``, ``--bf16`` no longer implies ``--tpu``.
* **Training** (a wrapper of ``Trainer.__init__``, where fairseq applies its precision):
  ``common.bf16`` is switched off, so parameters, gradients, the optimizer and its state, and
  checkpoints stay fp32 (a bf16-trained checkpoint resumes in fp32 and the other way round, and
  data-parallel ranks all-reduce fp32 gradients); instead the *criterion's* forward, which is the
  model's forward plus the loss for every task (ours call the criterion once per subnet), runs
  under ``torch.autocast("cpu", dtype=torch.bfloat16)``: matmuls in bf16, log-softmax and the
  loss in fp32 (fairseq normalises in fp32). Backward and the optimizer step run outside autocast;
  backward ops take the dtypes the forward saved. Attention computes in fp32 (SDPA's CPU flash
  kernel is many times slower backward in bf16 than in fp32): our attention casts q/k/v up
  itself (:func:`mos_fairseq.modules.attention.scaled_dot_product`), fairseq's
  ``MultiheadAttention`` gets SDPA's math backend, which computes bf16 inputs in fp32 (and which
  SDPA uses anyway when attention dropout is on). fairseq's label-smoothed cross-entropy (ours is
  it, for one subnet) is computed from the bf16 logits in row chunks, in one pass that also
  writes their gradient, into the logits' own memory where the criterion reads them no more
  (:mod:`mos_fairseq.modules.loss`), instead of through fp32
  log-probabilities of the whole vocabulary; models with another output (adaptive softmax, own
  normalisation) keep fairseq's. Dropout masks (ours and fairseq's ``FairseqDropout``) come
  from 16-bit uniforms instead of one Bernoulli draw per element
  (:mod:`mos_fairseq.modules.dropout`). The last two are not about precision: they remove
  per-element work that bf16 matmuls leave as the largest cost, and fp32 training keeps
  fairseq's own loss and dropout unchanged.
* **Inference** (a wrapper of ``BaseFairseqModel.prepare_for_inference_``, which
  fairseq-generate, fairseq-interactive and the hub interface call with the whole config): the
  model's weights become bf16, a bf16 deployment (as fairseq halves them for ``--fp16``).
  ``mos-nas bleu --bf16`` runs fairseq-generate so; ``mos-nas evaluate --bf16`` and
  ``mos-nas measure-latency --dtype bf16`` convert their static models with :func:`to_bf16`.

Each wrapper leaves fairseq's behaviour unchanged unless ``--cpu`` and ``--bf16`` are both given.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import types
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from mos_fairseq.base.errors import UserError

logger = logging.getLogger(__name__)

# CPU flags that mean native bf16 arithmetic: x86 AMX tiles, x86 AVX-512 BF16, aarch64 BF16
BF16_CAPABILITIES = ("amx_bf16", "avx512_bf16", "bf16")
AUTOCAST_DTYPE = torch.bfloat16


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags: the ``flags`` (x86) or ``Features`` (aarch64) lines of
    ``/proc/cpuinfo`` (or of ``cpuinfo``, its text); empty where it cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def bf16_capability(flags: Iterable[str] | None = None) -> str | None:
    """The best bf16 capability among ``flags`` (default: this CPU's), or None."""
    have = cpu_flags() if flags is None else frozenset(flags)
    return next((c for c in BF16_CAPABILITIES if c in have), None)


def require_cpu_bf16(flags: Iterable[str] | None = None) -> str:
    """This CPU's bf16 capability; a :class:`UserError` naming what is missing when it has none."""
    capability = bf16_capability(flags)
    if capability is None:
        raise UserError(
            "--bf16 on CPU needs bf16 instructions (CPU flag amx_bf16 or avx512_bf16; bf16 on aarch64) and "
            "this CPU has none: bf16 would be emulated, slower than fp32; train and translate without --bf16"
        )
    return capability


def check_precision_options(
    bf16: bool, fp16: bool, amp: bool, cpu: bool, cuda: bool, flags: Iterable[str] | None = None
) -> None:
    """Refuse (:class:`UserError`) the combinations ``--bf16`` cannot run with; ``flags`` as for
    :func:`bf16_capability`. ``--bf16`` on a CUDA machine without ``--cpu`` is left to fairseq."""
    if not bf16:
        return
    if fp16:
        raise UserError("--bf16 and --fp16 exclude each other: give one of them (on CPU, --bf16 with --cpu)")
    if amp:
        raise UserError("--bf16 and --amp exclude each other: on CPU, --bf16 with --cpu is mixed precision")
    if not cpu:
        if cuda:
            return
        raise UserError("--bf16 without --cpu needs a CUDA device and this machine has none: add --cpu")
    require_cpu_bf16(flags)


def wants_cpu_bf16(common: Any) -> bool:
    """Whether a fairseq ``common`` config asks for bf16 on CPU."""
    bf16 = bool(getattr(common, "bf16", False) or getattr(common, "memory_efficient_bf16", False))
    return bf16 and bool(getattr(common, "cpu", False))


def to_bf16(model: nn.Module) -> nn.Module:
    """A model for bf16 inference on CPU: its floating-point weights and buffers in bf16 (in place)."""
    require_cpu_bf16()
    return model.to(dtype=torch.bfloat16)


# ---- training: the criterion's forward under autocast -----------------------------------------
def forward_under(module: nn.Module, context: Callable[[], Any]) -> None:
    """Run every forward of ``module`` inside ``context()`` (a fresh context manager per call,
    entered by a forward pre-hook and left by a forward hook that runs even when forward raises);
    a module given the same context twice keeps one pair of hooks."""
    contexts = getattr(module, "_mos_fairseq_forward_contexts", ())
    if context in contexts:
        return
    module.__dict__["_mos_fairseq_forward_contexts"] = (*contexts, context)  # a plain attribute, no parameter
    entered: list[Any] = []

    def enter(_module, _args) -> None:
        ctx = context()
        ctx.__enter__()
        entered.append(ctx)

    def leave(_module, _args, _output) -> None:
        entered.pop().__exit__(None, None, None)

    module.register_forward_pre_hook(enter)
    module.register_forward_hook(leave, always_call=True)


def bf16_autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=AUTOCAST_DTYPE)


def fp32_math_attention() -> Any:
    """SDPA's math backend while CPU autocast is on: it computes bf16 q/k/v in fp32."""
    return sdpa_kernel([SDPBackend.MATH]) if torch.is_autocast_enabled("cpu") else contextlib.nullcontext()


def use_cpu_bf16_training(cfg: Any, model: nn.Module, criterion: nn.Module) -> bool:
    """Turn fairseq's bf16 off in ``cfg`` and run ``criterion``'s forward under CPU autocast (and
    fairseq's attention modules of ``model`` in fp32), when ``cfg`` asks for bf16 on CPU."""
    common = cfg.common
    if not wants_cpu_bf16(common):
        return False
    check_precision_options(True, common.fp16 or common.memory_efficient_fp16, common.amp, True, False)
    common.bf16 = common.memory_efficient_bf16 = common.tpu = False
    forward_under(criterion, bf16_autocast)
    use_fused_label_smoothing(criterion)
    from fairseq.modules import FairseqDropout, MultiheadAttention

    for module in model.modules():
        if isinstance(module, MultiheadAttention):
            forward_under(module, fp32_math_attention)
        elif isinstance(module, FairseqDropout):
            module.forward = types.MethodType(fairseq_dropout_forward, module)  # this instance's forward
    logger.info(
        "bf16 mixed precision on CPU (%s): fp32 parameters, optimizer and checkpoints, forward under autocast",
        bf16_capability(),
    )
    return True


def fairseq_dropout_forward(self: Any, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``FairseqDropout.forward`` with the mask of :func:`mos_fairseq.modules.dropout.dropout`
    (the cheaper one under CPU autocast, fairseq's elsewhere)."""
    from mos_fairseq.modules.dropout import dropout

    if self.p > 0 and (self.training or self.apply_during_inference):
        return dropout(x, self.p, True)
    return x


def use_fused_label_smoothing(criterion: nn.Module) -> bool:
    """Give a criterion that is fairseq's label-smoothed cross-entropy (or adds no loss of its own)
    the chunked loss of :mod:`mos_fairseq.modules.loss` while CPU autocast is on."""
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion as LS

    if not isinstance(criterion, LS):
        return False
    kind = type(criterion)
    if (kind.compute_loss, kind.get_lprobs_and_target) != (LS.compute_loss, LS.get_lprobs_and_target):
        return False  # a criterion with a loss of its own

    def compute_loss(model, net_output, sample, reduce=True):
        if not (reduce and torch.is_autocast_enabled("cpu") and plain_log_softmax(model)):
            return LS.compute_loss(criterion, model, net_output, sample, reduce)
        from mos_fairseq.modules.loss import label_smoothed_nll_from_logits

        logits, target = net_output[0], model.get_targets(sample, net_output)
        if criterion.ignore_prefix_size > 0:
            logits, target = logits[:, criterion.ignore_prefix_size :], target[:, criterion.ignore_prefix_size :]
        flat = logits.reshape(-1, logits.size(-1))
        eps, pad = criterion.eps, criterion.padding_idx
        return label_smoothed_nll_from_logits(flat, target.reshape(-1), eps, pad, overwrite=overwrite)

    # the logits' memory may take their gradient where nothing reads them after the loss: fairseq's
    # forward (or one declared to only delegate to it: LOGITS_UNREAD_AFTER_LOSS in the class defining
    # forward) without --report-accuracy
    owner = next(c for c in kind.__mro__ if "forward" in vars(c))  # the class whose forward runs
    overwrite = not criterion.report_accuracy and (owner is LS or vars(owner).get("LOGITS_UNREAD_AFTER_LOSS", False))
    criterion.compute_loss = compute_loss  # this criterion instance's loss
    return True


def plain_log_softmax(model: Any) -> bool:
    """Whether ``model``'s log-probabilities are fairseq's plain ``log_softmax`` of its logits."""
    from fairseq.models import BaseFairseqModel, FairseqDecoder
    from fairseq.models.transformer import TransformerModelBase

    decoder = getattr(model, "decoder", None)
    method = getattr(getattr(model, "get_normalized_probs", None), "__func__", None)
    scriptable = getattr(getattr(model, "get_normalized_probs_scriptable", None), "__func__", None)
    return (
        isinstance(decoder, FairseqDecoder)
        and getattr(decoder, "adaptive_softmax", None) is None
        and not getattr(decoder, "onnx_trace", False)
        and method in (BaseFairseqModel.get_normalized_probs, TransformerModelBase.get_normalized_probs)
        and scriptable is BaseFairseqModel.get_normalized_probs_scriptable
        and type(decoder).get_normalized_probs is FairseqDecoder.get_normalized_probs
        and type(decoder).get_normalized_probs_scriptable is FairseqDecoder.get_normalized_probs_scriptable
    )


# ---- fairseq entry points ---------------------------------------------------------------------
def _precision_flags(input_args: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("cpu", "bf16", "fp16", "memory-efficient-bf16", "memory-efficient-fp16", "amp"):
        parser.add_argument(f"--{name}", action="store_true")
    return parser.parse_known_args(input_args)[0]


def check_command_line(parser: argparse.ArgumentParser, input_args: list[str] | None) -> None:
    """Stop a fairseq command line that asks for bf16 it cannot have: one line, exit code 2."""
    flags = _precision_flags(input_args)
    try:
        check_precision_options(
            flags.bf16 or flags.memory_efficient_bf16,
            flags.fp16 or flags.memory_efficient_fp16,
            flags.amp,
            flags.cpu,
            torch.cuda.is_available(),
        )
    except UserError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def install_cpu_bf16() -> None:
    """Install the three wrappers of the module docstring (idempotent)."""
    from fairseq import options, trainer
    from fairseq.models.fairseq_model import BaseFairseqModel

    if getattr(options.parse_args_and_arch, "_mos_fairseq_cpu_bf16", False):
        return
    parse = options.parse_args_and_arch
    init = trainer.Trainer.__init__
    prepare = BaseFairseqModel.prepare_for_inference_

    @functools.wraps(parse)
    def parse_args_and_arch(parser, input_args=None, parse_known=False, suppress_defaults=False, modify_parser=None):
        check_command_line(parser, input_args)
        result = parse(parser, input_args, parse_known, suppress_defaults, modify_parser)
        args = result[0] if parse_known else result
        if wants_cpu_bf16(args):
            args.tpu = False  # fairseq's parser makes --bf16 imply --tpu
        return result

    @functools.wraps(init)
    def trainer_init(self, cfg, task, model, criterion, *args, **kwargs):
        if not isinstance(cfg, argparse.Namespace):
            use_cpu_bf16_training(cfg, model, criterion)
        init(self, cfg, task, model, criterion, *args, **kwargs)

    @functools.wraps(prepare)
    def prepare_for_inference_(self, cfg):
        prepare(self, cfg)
        if wants_cpu_bf16(getattr(cfg, "common", None)):
            to_bf16(self)

    parse_args_and_arch._mos_fairseq_cpu_bf16 = True  # type: ignore[attr-defined]  # a marker attribute on a function
    options.parse_args_and_arch = parse_args_and_arch
    trainer.Trainer.__init__ = trainer_init  # fairseq's precision handling, replaced on CPU
    BaseFairseqModel.prepare_for_inference_ = prepare_for_inference_
