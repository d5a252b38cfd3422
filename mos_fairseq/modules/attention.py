"""Multi-head attention: HAT's fixed q/k/v width (``qkv_dim``) with any head count, or BERT's
q/k/v at the layer's hidden size.

Heads only change how the ``qkv_dim`` features are split (head_dim = qkv_dim / heads), as in
HAT, so the head count never changes the parameters. :class:`ElasticMultiheadAttention` (the
supernet) and :class:`StaticMultiheadAttention` (exported models) share the attention core and
the incremental-decoding cache; they differ only in how q/k/v/out are projected.

Under CPU autocast (``--cpu --bf16`` training, :mod:`mos_fairseq.core.cpu_bf16`) the projections
run in bf16 (the input is cast once for q, k and v) and the attention itself in fp32
(:func:`scaled_dot_product`): the bf16 backward of SDPA's CPU flash kernel is many times slower
than its fp32 backward.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Dict, Mapping

import torch
import torch.nn.functional as F
from fairseq.incremental_decoding_utils import with_incremental_state
from torch import Tensor, nn

from mos_fairseq.modules.elastic import ElasticLinear

IncrementalState = Dict[str, Dict[str, Tensor | None]]
GROWING_KV = "attn_state"  # self-attention: keys and values of every step so far
STATIC_KV = "static_kv_state"  # encoder-decoder attention: keys and values of the encoder output


def attention_mask(
    batch: int, tgt_len: int, src_len: int, key_padding_mask: Tensor | None, causal: bool, device
) -> Tensor | None:
    """Boolean mask ``[B|1, 1, Tq, Tk]``, True where a query may attend to a key."""
    mask = None
    if key_padding_mask is not None:
        mask = (~key_padding_mask.bool())[:, None, None, :]
    if causal:
        tri = torch.ones(tgt_len, src_len, dtype=torch.bool, device=device).tril(src_len - tgt_len)
        mask = tri[None, None] if mask is None else mask & tri
    return mask


def scaled_dot_product(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float) -> Tensor:
    """``F.scaled_dot_product_attention``; under CPU autocast computed in fp32 (q/k/v cast up, the
    output cast back to the autocast dtype), elsewhere as it is."""
    if q.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout_p)
    return out.to(torch.get_autocast_dtype("cpu"))


def autocast_input(x: Tensor) -> Tensor:
    """``x`` in the CPU autocast dtype when autocast is on (so that the q, k and v projections
    of one input share one cast), else ``x``."""
    if x.device.type == "cpu" and x.is_floating_point() and torch.is_autocast_enabled("cpu"):
        return x.to(torch.get_autocast_dtype("cpu"))
    return x


@with_incremental_state
class MultiheadAttentionBase(nn.Module):
    """Scaled dot-product attention over projected q/k/v, batch-first (``B x T x C``)."""

    def __init__(self, qkv_dim: int, dropout: float) -> None:
        super().__init__()
        self.qkv_dim = qkv_dim
        self.dropout = dropout

    if TYPE_CHECKING:  # the methods of the FairseqIncrementalState base @with_incremental_state adds
        # (this module only stores tensors under its keys)

        def get_incremental_state(
            self, incremental_state: IncrementalState | None, key: str
        ) -> Dict[str, Tensor] | None: ...

        def set_incremental_state(
            self, incremental_state: IncrementalState | None, key: str, value: Mapping[str, Tensor | None]
        ) -> IncrementalState | None: ...

    @abstractmethod
    def project(self, name: str, x: Tensor, q_dim: int, kv_dim: int) -> Tensor:
        """Apply projection ``name`` in {q, k, v, out} at the given active widths."""

    def forward(
        self,
        query: Tensor,
        key_value: Tensor | None,
        num_heads: int,
        q_dim: int,
        kv_dim: int,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        incremental_state: IncrementalState | None = None,
        static_kv: bool = False,
    ) -> Tensor:
        bsz, tgt_len, _ = query.shape
        same = key_value is query
        query = autocast_input(query)
        key_value = query if same else (autocast_input(key_value) if key_value is not None else None)
        q = self.project("q", query, q_dim, kv_dim)
        state_key = STATIC_KV if static_kv else GROWING_KV
        saved = self.get_incremental_state(incremental_state, state_key) if incremental_state is not None else None
        if static_kv and saved is not None and "k" in saved:
            k, v = saved["k"], saved["v"]
        else:
            assert key_value is not None, "attention without cached keys needs key_value"
            k = self.project("k", key_value, q_dim, kv_dim)
            v = self.project("v", key_value, q_dim, kv_dim)
            if saved is not None and "k" in saved:
                k = torch.cat([saved["k"], k], dim=1)
                v = torch.cat([saved["v"], v], dim=1)
        if incremental_state is not None:
            if not (static_kv and saved is not None):
                self.set_incremental_state(incremental_state, state_key, {"k": k, "v": v})
            causal = False  # one new query sees every cached key
        src_len = k.size(1)
        width = q.size(-1)  # the fixed qkv_dim (HAT), or the layer's hidden size (BERT)
        head_dim = width // num_heads
        split = lambda t, n: t.view(bsz, n, num_heads, head_dim).transpose(1, 2)  # noqa: E731
        mask = attention_mask(bsz, tgt_len, src_len, key_padding_mask, causal, query.device)
        out = scaled_dot_product(
            split(q, tgt_len), split(k, src_len), split(v, src_len), mask, self.dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(bsz, tgt_len, width)
        return self.project("out", out, q_dim, kv_dim)

    def has_static_kv(self, incremental_state: IncrementalState) -> bool:
        """Whether this (encoder-decoder) attention has cached its projected keys and values."""
        return self.get_incremental_state(incremental_state, STATIC_KV) is not None

    def reorder_incremental_state(self, incremental_state: IncrementalState, new_order: Tensor) -> None:
        saved = self.get_incremental_state(incremental_state, GROWING_KV)
        if saved is not None:
            saved = {key: t.index_select(0, new_order) for key, t in saved.items()}
            self.set_incremental_state(incremental_state, GROWING_KV, saved)
        saved = self.get_incremental_state(incremental_state, STATIC_KV)
        # Keys/values of the encoder output are the same for every hypothesis of a sentence, and beam
        # search only reorders hypotheses within a sentence while the batch keeps its size (stock
        # fairseq's MultiheadAttention makes the same check); when finished sentences leave the
        # batch, the rows are selected.
        if saved is not None and saved["k"].size(0) != new_order.size(0):
            saved = {key: t.index_select(0, new_order) for key, t in saved.items()}
            self.set_incremental_state(incremental_state, STATIC_KV, saved)


class ElasticMultiheadAttention(MultiheadAttentionBase):
    """Supernet attention: projections sliced to the subnet's query/key widths."""

    def __init__(self, q_max: int, kv_max: int, qkv_dim: int, dropout: float = 0.0) -> None:
        super().__init__(qkv_dim, dropout)
        self.q_proj = ElasticLinear(q_max, qkv_dim)
        self.k_proj = ElasticLinear(kv_max, qkv_dim)
        self.v_proj = ElasticLinear(kv_max, qkv_dim)
        self.out_proj = ElasticLinear(qkv_dim, q_max)

    def project(self, name: str, x: Tensor, q_dim: int, kv_dim: int) -> Tensor:
        if name == "q":
            return self.q_proj(x, q_dim, self.qkv_dim)
        if name == "out":
            return self.out_proj(x, self.qkv_dim, q_dim)
        return (self.k_proj if name == "k" else self.v_proj)(x, kv_dim, self.qkv_dim)


class ElasticSelfAttention(MultiheadAttentionBase):
    """BERT supernet attention: q/k/v/out are ``h x h`` at the layer's active hidden size ``h``
    (sliced from ``h_max x h_max``); heads split ``h`` (head_dim = h / heads)."""

    def __init__(self, h_max: int, dropout: float = 0.0) -> None:
        super().__init__(h_max, dropout)
        self.q_proj, self.k_proj = ElasticLinear(h_max, h_max), ElasticLinear(h_max, h_max)
        self.v_proj, self.out_proj = ElasticLinear(h_max, h_max), ElasticLinear(h_max, h_max)

    def project(self, name: str, x: Tensor, q_dim: int, kv_dim: int) -> Tensor:
        return getattr(self, f"{name}_proj")(x, q_dim, q_dim)


class StaticMultiheadAttention(MultiheadAttentionBase):
    """Exported attention with plain ``nn.Linear`` projections of fixed widths."""

    def __init__(self, q_dim: int, kv_dim: int, qkv_dim: int, dropout: float = 0.0) -> None:
        super().__init__(qkv_dim, dropout)
        self.q_dim, self.kv_dim = q_dim, kv_dim
        self.q_proj = nn.Linear(q_dim, qkv_dim)
        self.k_proj = nn.Linear(kv_dim, qkv_dim)
        self.v_proj = nn.Linear(kv_dim, qkv_dim)
        self.out_proj = nn.Linear(qkv_dim, q_dim)

    def project(self, name: str, x: Tensor, q_dim: int, kv_dim: int) -> Tensor:
        return getattr(self, f"{name}_proj")(x)
