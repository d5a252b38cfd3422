"""A model's or a subnet's loss on a fixed set of validation batches: what search fitness, ``mos-nas
evaluate`` and ``mos-nas gap`` measure, for any family.

Search scores thousands of candidates, so the batches are built once (the first
``max_sentences`` sentences of the subset, ordered by length, in chunks of ``batch_sentences``)
and every candidate sees exactly the same ones. Masked-LM batches carry the masks of
fairseq-train's validation (epoch 1, which ``Trainer.get_valid_iterator`` fixes), so a subnet's
loss here is the one fairseq-train logs for it: another draw of masks moves a masked-LM
perplexity by a few percent. A candidate is first collapsed into a static model (MoS experts
mixed once for it, weights sliced once; the supernet's ``extract_static``) and then run on all
batches, instead of slicing and mixing the supernet's weights on every batch. The loss is the
token-level negative log-likelihood in bits (no label smoothing). Results are cached by
architecture (:class:`FitnessCache`), so re-visited candidates cost nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mos_fairseq.base.errors import DataError


@dataclass
class ValidationBatches:
    """Collated fairseq samples; identical for every candidate."""

    subset: str
    samples: list[dict]
    sentences: int
    tokens: int

    @classmethod
    def from_task(
        cls, task, subset: str = "valid", max_sentences: int | None = None, batch_sentences: int = 64, epoch: int = 1
    ) -> ValidationBatches:
        """The first ``max_sentences`` sentences of ``subset``; ``epoch`` seeds epoch-dependent data
        (masked LM's masks): 1, as in fairseq-train's validation."""
        try:
            task.load_dataset(subset, combine=False, epoch=epoch)
        except FileNotFoundError as exc:
            raise DataError(f"validation subset '{subset}' not found in {task.cfg.data}: {exc}") from None
        dataset = task.dataset(subset)
        dataset.set_epoch(epoch)  # MaskTokensDataset draws its masks from (seed, epoch, index)
        n = len(dataset) if max_sentences is None else min(max_sentences, len(dataset))
        if n == 0:
            raise DataError(f"validation subset '{subset}' in {task.cfg.data} is empty")
        indices = sorted(range(n), key=lambda i: (int(dataset.num_tokens(i)), i))
        samples = [
            dataset.collater([dataset[i] for i in indices[k : k + batch_sentences]])
            for k in range(0, n, batch_sentences)
        ]
        return cls(subset, samples, n, int(sum(s["ntokens"] for s in samples)))


@dataclass
class FitnessCache:
    """Validation loss by architecture (compact JSON), with hit/miss counts and time spent."""

    losses: dict[str, float] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    seconds: float = 0.0


class SubnetEvaluator:
    """``loss(arch)``: the supernet's validation loss (bits per token) for ``arch``, cached."""

    def __init__(
        self,
        supernet,
        batches: ValidationBatches,
        cache: FitnessCache | None = None,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.supernet = supernet.to(device).eval()
        self.dtype = dtype  # of the static models scored (bf16: a bf16 deployment on CPU)
        if device != "cpu":
            from fairseq import utils

            batches = ValidationBatches(
                batches.subset,
                [utils.move_to_cuda(s, torch.device(device)) for s in batches.samples],
                batches.sentences,
                batches.tokens,
            )
        self.batches = batches
        self.cache = cache if cache is not None else FitnessCache()
        self.pad = supernet.padding_index()

    def loss(self, arch) -> float:
        key = arch.to_json()
        if key in self.cache.losses:
            self.cache.hits += 1
            return self.cache.losses[key]
        start = time.perf_counter()
        value = self.compute(arch)
        self.cache.seconds += time.perf_counter() - start
        self.cache.misses += 1
        self.cache.losses[key] = value
        return value

    @torch.inference_mode()
    def compute(self, arch, collapse: bool = True) -> float:
        """Uncached loss; ``collapse=False`` runs the supernet directly (slow path, for checks)."""
        if not collapse:
            return batches_loss(self.supernet.bind(arch), self.batches, self.pad)
        return batches_loss(self.supernet.extract_static(arch).to(self.dtype), self.batches, self.pad)


@torch.inference_mode()
def batches_loss(model, batches: ValidationBatches, pad: int) -> float:
    """Token-level NLL of ``model`` on ``batches``, in bits: every target token of a translation
    batch, or the masked tokens of a masked-LM batch (perplexity = 2 ** loss)."""
    nll, tokens = 0.0, 0
    for sample in batches.samples:
        net, target = sample["net_input"], sample["target"]
        if "prev_output_tokens" in net:
            logits = model(net["src_tokens"], net["src_lengths"], net["prev_output_tokens"])[0]
        else:  # masked LM: targets are pad except at the masked positions
            masked = target.ne(pad)
            logits, target = model(net["src_tokens"], masked_tokens=masked)[0], target[masked]
        nll += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1), ignore_index=pad, reduction="sum"
        ).item()
        tokens += int(target.ne(pad).sum())
    if tokens == 0:
        raise DataError("the validation batches hold no target tokens")
    return nll / tokens / math.log(2)
