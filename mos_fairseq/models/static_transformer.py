"""A static (non-elastic) encoder-decoder transformer with per-layer widths and heads.

What a subnet becomes once it leaves the supernet: plain ``nn.Linear``/``nn.LayerNorm``/
``nn.Embedding`` modules of exactly the subnet's sizes, HAT's fixed ``qkv_dim`` attention and
arbitrary encoder-decoder attention. It is the non-elastic reference the supernet is tested
against, the model whose latency we measure, and the export target when stock fairseq's
``transformer`` cannot express a subnet. Parameter names equal the supernet's, so collapsing a
subnet is a prefix slice of each supernet tensor (:func:`static_state_dict`).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder
from fairseq.modules import SinusoidalPositionalEmbedding
from torch import Tensor, nn

from mos_fairseq.arch import Architecture
from mos_fairseq.models.transformer_common import (
    EncoderOut,
    embed_inputs,
    reorder_encoder_out,
    run_decoder_stack,
    run_encoder_stack,
)
from mos_fairseq.modules.attention import StaticMultiheadAttention


class StaticEncoderLayer(nn.Module):
    def __init__(self, d: int, ffn: int, heads: int, qkv: int, dropout: float, attention_dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.self_attn = StaticMultiheadAttention(d, d, qkv, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        d = x.size(-1)
        h = self.self_attn(x, x, self.heads, d, d, key_padding_mask=pad_mask)
        x = self.self_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.fc2(F.relu(self.fc1(x)))
        return self.final_layer_norm(x + F.dropout(h, self.dropout, self.training))


class StaticDecoderLayer(nn.Module):
    def __init__(self, d: int, d_enc: int, ffn: int, heads: int, cross_heads: int, qkv: int, dropout: float,
                 attention_dropout: float):
        super().__init__()
        self.heads, self.cross_heads, self.d_enc, self.dropout = heads, cross_heads, d_enc, dropout
        self.self_attn = StaticMultiheadAttention(d, d, qkv, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = StaticMultiheadAttention(d, d_enc, qkv, attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, memory, memory_pad_mask, self_pad_mask, incremental_state=None) -> Tensor:
        d = x.size(-1)
        h = self.self_attn(x, x, self.heads, d, d, key_padding_mask=self_pad_mask, causal=True,
                           incremental_state=incremental_state)
        x = self.self_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.encoder_attn(x, memory, self.cross_heads, d, self.d_enc, key_padding_mask=memory_pad_mask,
                              incremental_state=incremental_state, static_kv=True)
        x = self.encoder_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        h = self.fc2(F.relu(self.fc1(x)))
        return self.final_layer_norm(x + F.dropout(h, self.dropout, self.training))


class StaticTransformerEncoder(FairseqEncoder):
    def __init__(self, arch: Architecture, dictionary, embed_tokens: nn.Embedding, dropout: float,
                 attention_dropout: float, max_positions: int):
        super().__init__(dictionary)
        d, pad = arch.encoder_embed_dim, dictionary.pad()
        self.padding_idx, self.dropout, self.max_source_positions = pad, dropout, max_positions
        self.embed_tokens = embed_tokens
        self.embed_scale = d**0.5
        self.embed_positions = SinusoidalPositionalEmbedding(d, pad, init_size=max_positions + pad + 1)
        self.layers = nn.ModuleList(
            StaticEncoderLayer(d, f, h, arch.qkv_dim, dropout, attention_dropout)
            for f, h in zip(arch.encoder_ffn_dims, arch.encoder_heads)
        )

    def forward(self, src_tokens: Tensor, src_lengths: Tensor | None = None, **_) -> EncoderOut:
        x = embed_inputs(src_tokens, self.embed_tokens, self.embed_positions, self.embed_scale)
        x = F.dropout(x, self.dropout, self.training)
        run_layer = lambda i, layer, x, pad_mask: layer(x, pad_mask)  # noqa: E731
        return run_encoder_stack(x, src_tokens, self.padding_idx, self.layers, run_layer, src_lengths)

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: EncoderOut, new_order: Tensor) -> EncoderOut:
        return reorder_encoder_out(encoder_out, new_order)

    def max_positions(self) -> int:
        return self.max_source_positions


class StaticTransformerDecoder(FairseqIncrementalDecoder):
    def __init__(self, arch: Architecture, dictionary, embed_tokens: nn.Embedding, dropout: float,
                 attention_dropout: float, max_positions: int):
        super().__init__(dictionary)
        d, pad = arch.decoder_embed_dim, dictionary.pad()
        self.padding_idx, self.dropout, self.max_target_positions = pad, dropout, max_positions
        self.spans = arch.decoder_cross_spans
        self.embed_tokens = embed_tokens
        self.embed_scale = d**0.5
        self.embed_positions = SinusoidalPositionalEmbedding(d, pad, init_size=max_positions + pad + 1)
        self.layers = nn.ModuleList(
            StaticDecoderLayer(d, arch.encoder_embed_dim, f, hs, hc, arch.qkv_dim, dropout, attention_dropout)
            for f, hs, hc in zip(arch.decoder_ffn_dims, arch.decoder_self_heads, arch.decoder_cross_heads)
        )

    def forward(self, prev_output_tokens, encoder_out: EncoderOut | None = None,
                incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
                features_only: bool = False, **_):
        x = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, {"attn": [None], "inner_states": None}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **_) -> Tensor:
        x = embed_inputs(prev_output_tokens, self.embed_tokens, self.embed_positions, self.embed_scale,
                         incremental_state)
        x = F.dropout(x, self.dropout, self.training)
        self_pad_mask = None
        if incremental_state is None and prev_output_tokens.eq(self.padding_idx).any():
            self_pad_mask = prev_output_tokens.eq(self.padding_idx)

        def run_layer(i, layer, x, memory, memory_mask):
            return layer(x, memory, memory_mask, self_pad_mask, incremental_state)

        return run_decoder_stack(x, self.layers, self.spans, encoder_out, incremental_state, run_layer)

    def output_layer(self, features: Tensor, **_) -> Tensor:
        return F.linear(features, self.embed_tokens.weight)

    def max_positions(self) -> int:
        return self.max_target_positions


class StaticTransformerModel(FairseqEncoderDecoderModel):
    """One fixed architecture; build with :meth:`from_arch`."""

    def __init__(self, arch: Architecture, encoder, decoder):
        super().__init__(encoder, decoder)
        self.arch = arch

    @classmethod
    def from_arch(cls, arch: Architecture, src_dict, tgt_dict, share_all_embeddings: bool = True,
                  dropout: float = 0.0, attention_dropout: float = 0.0, max_source_positions: int = 1024,
                  max_target_positions: int = 1024) -> "StaticTransformerModel":
        de, dd = arch.encoder_embed_dim, arch.decoder_embed_dim
        enc_embed = nn.Embedding(len(src_dict), de, padding_idx=src_dict.pad())
        if share_all_embeddings and de == dd:
            dec_embed = enc_embed
        else:
            dec_embed = nn.Embedding(len(tgt_dict), dd, padding_idx=tgt_dict.pad())
        encoder = StaticTransformerEncoder(arch, src_dict, enc_embed, dropout, attention_dropout, max_source_positions)
        decoder = StaticTransformerDecoder(arch, tgt_dict, dec_embed, dropout, attention_dropout, max_target_positions)
        return cls(arch, encoder, decoder)


def static_state_dict(supernet_state: Dict[str, Tensor], static_model: nn.Module) -> Dict[str, Tensor]:
    """Collapse: each static tensor is the top-left block of the supernet tensor of the same name."""
    out = {}
    for name, param in static_model.state_dict().items():
        if name not in supernet_state:
            raise KeyError(f"supernet has no tensor '{name}'")
        source = supernet_state[name]
        out[name] = source[tuple(slice(0, n) for n in param.shape)].clone()
    return out


def extract_subnet(supernet, arch: Architecture) -> StaticTransformerModel:
    """A static model holding ``arch``'s weights sliced out of ``supernet`` (eval mode)."""
    model = StaticTransformerModel.from_arch(
        arch,
        supernet.encoder.dictionary,
        supernet.decoder.dictionary,
        share_all_embeddings=supernet.cfg.share_all_embeddings,
        max_source_positions=supernet.encoder.max_positions(),
        max_target_positions=supernet.decoder.max_positions(),
    )
    model.load_state_dict(static_state_dict(supernet.state_dict(), model))
    return model.eval()
