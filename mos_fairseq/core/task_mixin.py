"""What every supernet task shares (translation, masked LM): the subnets of each update, the
sandwich/SPOS training step, per-subnet validation losses and their record in checkpoints.

Training: each update runs the subnets of :func:`mos_fairseq.core.sampling.subnets_for_update`
(SPOS: one random; sandwich: largest + smallest + N random), one forward/backward each and one
optimizer step; the returned sample size is the sum over subnets, so fairseq's gradient
normalisation averages the subnets instead of adding them. In data-parallel training the
subnet's forward goes through fairseq's wrapper and all but the last subnet run under
``no_sync``: one gradient all-reduce per update. Parameters that no subnet of the update reached
have no gradient in one process, so Adam leaves them (and their moments) alone; fairseq's
``legacy_ddp`` all-reduces zeros for them, which Adam would take as gradients, so
:meth:`SupernetTaskMixin.optimizer_step` gives them no gradient again (every rank runs the same
subnets, so they are unreached on every rank). Validation logs the loss of the largest and
smallest subnets and of ``--valid-archs``; ``--best-checkpoint-subnet`` picks the one reported as
``loss``. The architecture class comes from the model (``model.arch_type``), so the same code
serves encoder-decoder and BERT supernets.
"""

import contextlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.distributed import utils as dist_utils
from fairseq.logging import metrics
from omegaconf import II

from mos_fairseq.base.errors import ArchError
from mos_fairseq.core.sampling import SAMPLING_METHODS, subnets_for_update
from mos_fairseq.core.subnet_view import DataParallelSubnet


@dataclass
class SupernetTrainingConfig(FairseqDataclass):
    """The options every supernet task adds to its fairseq base task."""

    supernet_sampling: ChoiceEnum(SAMPLING_METHODS) = field(  # type: ignore[valid-type]  # fairseq builds the choices from this runtime annotation
        default="sandwich",
        metadata={"help": "subnets per update: spos (one random, HAT) or sandwich (largest+smallest+random)"},
    )
    sandwich_random: int = field(default=1, metadata={"help": "random subnets per sandwich update"})
    valid_archs: str = field(
        default="",
        metadata={"help": "extra subnets to validate: a YAML of {name: arch} or a list, or a directory of YAMLs"},
    )
    best_checkpoint_subnet: str = field(
        default="largest",
        metadata={
            "help": "subnet whose validation loss is reported as 'loss' (largest, smallest, or a valid-archs name)"
        },
    )
    log_subnets: str = field(
        default="", metadata={"help": "append 'update<TAB>arch json' lines to this file (rank N > 0: FILE.rankN)"}
    )
    seed: int = II("common.seed")


def subnet_for_training(model, arch):
    """``arch`` of ``model``: the bare supernet's view, or one that runs through fairseq's
    data-parallel wrapper (which holds the supernet as ``.module``)."""
    return DataParallelSubnet(model, arch) if hasattr(model, "module") else model.bind(arch)


class SupernetTaskMixin:
    """Mix into a fairseq task (before it); call :meth:`init_supernet_state` in ``__init__``.

    ``self.cfg`` needs ``seed``, ``supernet_sampling``, ``sandwich_random``, ``log_subnets``,
    ``valid_archs`` and ``best_checkpoint_subnet``.
    """

    cfg: Any  # the task's config, set by the fairseq task this is mixed into

    def init_supernet_state(self) -> None:
        if self.cfg.sandwich_random < 0:
            raise ArchError(f"--sandwich-random must be >= 0, got {self.cfg.sandwich_random}")
        self._last_logged_update = -1
        self._current_update = 0
        # (update, parameters no subnet of that update reached): given no gradient again before the optimizer step
        self._unreached: tuple[int, list[torch.nn.Parameter]] = (-1, [])
        # validation loss sums of the latest pass and the best averages so far (kept in checkpoints)
        self._valid_pass: tuple[int, dict[str, list[float]]] | None = None  # (update, {subnet: [loss sum, size]})
        self._best_valid_losses: dict[str, float] = {}

    # ---- training -----------------------------------------------------------------------
    def subnets_for_update(self, model, update_num: int) -> list:
        return subnets_for_update(
            model.space,
            self.cfg.seed,
            update_num,
            self.cfg.supernet_sampling,
            self.cfg.sandwich_random,
            model.arch_type,
        )

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        model.train()
        model.set_num_updates(update_num)
        self._current_update = update_num + 1  # updates done once this step completes
        archs = self.subnets_for_update(model, update_num)
        self._log_subnets(update_num, archs)
        total_loss, total_size, logs = 0.0, 0, []
        for i, arch in enumerate(archs):
            # data-parallel: gradients are all-reduced once per update, after the last subnet's
            # backward (fairseq's own no_sync covers all but the last batch of --update-freq)
            sync = contextlib.nullcontext() if i == len(archs) - 1 or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with torch.autograd.profiler.record_function("forward"):
                    loss, sample_size, logging_output = criterion(subnet_for_training(model, arch), sample)
                if ignore_grad:
                    loss *= 0
                with torch.autograd.profiler.record_function("backward"):
                    optimizer.backward(loss)
            total_loss += loss.detach()
            total_size += sample_size
            logs.append(logging_output)
        # after the last batch of an update (--update-freq) this holds what none of its batches reached
        self._unreached = (update_num, [p for p in model.parameters() if p.requires_grad and p.grad is None])
        return total_loss, total_size, merge_subnet_logs(logs)

    def optimizer_step(self, optimizer, model, update_num):
        """The parameters this update's subnets never reached step as in one process: without a gradient
        (fairseq's legacy_ddp gives them all-reduced zeros, which Adam would use to move them)."""
        reached_at, unreached = self._unreached
        if reached_at == update_num:
            for p in unreached:
                p.grad = None
        super().optimizer_step(optimizer, model, update_num)  # the fairseq task mixed in after this class

    def _log_subnets(self, update_num: int, archs: list) -> None:
        if not self.cfg.log_subnets or update_num == self._last_logged_update:
            return
        rank = dist_utils.get_global_rank()
        self._last_logged_update = update_num
        path = self.cfg.log_subnets if rank == 0 else f"{self.cfg.log_subnets}.rank{rank}"
        with open(path, "a") as fh:
            fh.write(f"{update_num}\t{json.dumps([a.to_dict() for a in archs], sort_keys=True)}\n")

    # ---- validation ---------------------------------------------------------------------
    def validation_subnets(self, model) -> "OrderedDict":
        space, arch_type = model.space, model.arch_type
        archs = OrderedDict(largest=arch_type.largest(space), smallest=arch_type.smallest(space))
        archs.update(load_named_archs(self.cfg.valid_archs, space, arch_type) if self.cfg.valid_archs else {})
        if self.cfg.best_checkpoint_subnet not in archs:
            raise ArchError(f"--best-checkpoint-subnet '{self.cfg.best_checkpoint_subnet}' is none of {list(archs)}")
        return archs

    def valid_step(self, sample, model, criterion):
        archs = self.validation_subnets(model)
        primary = self.cfg.best_checkpoint_subnet
        loss, sample_size, logging_output = super().valid_step(sample, model.bind(archs[primary]), criterion)
        with torch.no_grad():
            for name, arch in archs.items():
                log = logging_output if name == primary else criterion(model.bind(arch), sample)[2]
                logging_output[f"loss_{name}"] = log["loss"]
                logging_output[f"nll_loss_{name}"] = log.get("nll_loss", log["loss"])
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        ntokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        names = sorted({k[len("loss_") :] for log in logging_outputs for k in log if k.startswith("loss_")})
        for name in names:
            loss = sum(log.get(f"loss_{name}", 0) for log in logging_outputs)
            nll = sum(log.get(f"nll_loss_{name}", 0) for log in logging_outputs)
            if sample_size > 0:
                metrics.log_scalar(f"loss_{name}", loss / sample_size / math.log(2), sample_size, round=3)
                self._record_valid_loss(name, float(loss), float(sample_size))
            if ntokens > 0:
                metrics.log_scalar(f"nll_loss_{name}", nll / ntokens / math.log(2), ntokens, round=3)

    # ---- validation losses per subnet, kept in the checkpoint's task state -------------------
    def _record_valid_loss(self, name: str, loss_sum: float, sample_size: float) -> None:
        if self._valid_pass is None or self._valid_pass[0] != self._current_update:
            self._fold_best()
            self._valid_pass = (self._current_update, {})
        sums = self._valid_pass[1].setdefault(name, [0.0, 0.0])
        sums[0] += loss_sum
        sums[1] += sample_size

    def last_valid_losses(self) -> dict[str, float]:
        """Base-2 loss per validation subnet of the latest validation pass."""
        if self._valid_pass is None:
            return {}
        return {n: s / size / math.log(2) for n, (s, size) in self._valid_pass[1].items() if size > 0}

    def _fold_best(self) -> None:
        for name, value in self.last_valid_losses().items():
            self._best_valid_losses[name] = min(value, self._best_valid_losses.get(name, math.inf))

    def state_dict(self):
        self._fold_best()
        state = dict(super().state_dict())
        if self._valid_pass is not None:
            state["valid_losses"] = self.last_valid_losses()
            state["valid_losses_update"] = self._valid_pass[0]
        if self._best_valid_losses:
            state["best_valid_losses"] = dict(self._best_valid_losses)
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        best = state_dict.pop("best_valid_losses", None) or {}
        state_dict.pop("valid_losses", None)
        state_dict.pop("valid_losses_update", None)
        self._best_valid_losses = {str(k): float(v) for k, v in best.items()}
        super().load_state_dict(state_dict)


BATCH_KEYS = ("ntokens", "nsentences", "sample_size")


def merge_subnet_logs(logs: list[dict]) -> dict:
    """One update's log: losses averaged over its subnets, batch sizes counted once.

    Gradient normalisation uses the summed sample size returned by ``train_step``; the log
    describes the data (so wps/wpb are real tokens) and the mean loss of the subnets.
    """
    n = len(logs)
    merged = {key: (logs[0][key] if key in BATCH_KEYS else sum(log[key] for log in logs) / n) for key in logs[0]}
    merged["subnets"] = n
    return merged


def load_named_archs(source: str, space, arch_type) -> "OrderedDict":
    """Architectures by name from a directory of YAMLs, a YAML mapping, or a YAML list."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.yml")) + sorted(path.glob("*.yaml"))
        if not files:
            raise ArchError(f"--valid-archs directory '{path}' holds no .yml files")
        return OrderedDict((f.stem, arch_type.load(f, space)) for f in files)
    if not path.is_file():
        raise ArchError(f"--valid-archs '{path}' not found")
    data = yaml.safe_load(path.read_text())
    if isinstance(data, list):
        data = {f"arch{i}": a for i, a in enumerate(data)}
    if not isinstance(data, dict) or not data:
        raise ArchError(f"--valid-archs '{path}' must hold a non-empty mapping or list of architectures")
    if arch_type.is_single_arch_dict(data):
        return OrderedDict([(path.stem, arch_type.from_dict(data, space))])
    return OrderedDict((str(name), arch_type.from_dict(a, space)) for name, a in data.items())
