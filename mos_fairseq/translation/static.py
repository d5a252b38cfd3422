"""A static (non-elastic) encoder-decoder transformer with per-layer widths and heads.

What a subnet becomes once it leaves the supernet: plain ``nn.Linear``/``nn.LayerNorm``/
``nn.Embedding`` modules of exactly the subnet's sizes, HAT's fixed ``qkv_dim`` attention and
arbitrary encoder-decoder attention. It is the non-elastic reference the supernet is tested
against, the model whose latency we measure, and the export target when stock fairseq's
``transformer`` cannot express a subnet (registered with fairseq as ``mos_static_transformer``;
the architecture is stored in the model config). Parameter names equal the supernet's, so
collapsing a subnet is a prefix slice of each collapsed supernet tensor
(:mod:`mos_fairseq.core.collapse`). Post-norm layers, or pre-norm ones with a last layer norm per side
(``encoder_normalize_before`` / ``decoder_normalize_before``, fairseq's names and parameter names).
"""

from dataclasses import dataclass, field
from typing import Dict, NamedTuple

import torch
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder
from fairseq.modules import SinusoidalPositionalEmbedding
from torch import Tensor, nn

from mos_fairseq.base.errors import CheckpointError
from mos_fairseq.core.arch_spec import arch_from_config
from mos_fairseq.core.collapse import collapsed_supernet_state, static_state_dict
from mos_fairseq.modules.attention import StaticMultiheadAttention
from mos_fairseq.modules.dropout import dropout
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.encoder_memory import (
    EncoderOut,
    embed_inputs,
    reorder_encoder_out,
    residual_block,
    run_decoder_stack,
    run_encoder_stack,
)
from mos_fairseq.translation.space import SearchSpace


def init_fresh_weights(model: nn.Module) -> None:
    """The supernet's initialisation (fairseq's transformer one): Xavier-uniform linear weights
    with zero biases, N(0, d^-1/2) embeddings with a zero padding row. A standalone model trained
    from scratch starts like the supernet does; a loaded checkpoint overwrites all of it."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=module.embedding_dim**-0.5)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])


class Dropouts(NamedTuple):
    dropout: float
    attention_dropout: float
    activation_dropout: float


class SideOptions(NamedTuple):
    """What the static encoder or decoder is built with besides its architecture."""

    dropouts: Dropouts
    max_positions: int
    normalize_before: bool = False  # pre-norm layers and a last layer norm


class StaticEncoderLayer(nn.Module):
    def __init__(
        self,
        d: int,
        ffn: int,
        heads: int,
        qkv: int,
        dropout: float,
        attention_dropout: float,
        activation_dropout: float = 0.0,
        normalize_before: bool = False,
    ):
        super().__init__()
        self.heads, self.dropout, self.activation_dropout = heads, dropout, activation_dropout
        self.normalize_before = normalize_before
        self.self_attn = StaticMultiheadAttention(d, d, qkv, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def ffn(self, x: Tensor) -> Tensor:
        return self.fc2(dropout(F.relu(self.fc1(x)), self.activation_dropout, self.training))

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        d, pre, p = x.size(-1), self.normalize_before, self.dropout
        x = residual_block(
            x,
            lambda h: self.self_attn(h, h, self.heads, d, d, key_padding_mask=pad_mask),
            self.self_attn_layer_norm,
            pre,
            p,
            self.training,
        )
        return residual_block(x, self.ffn, self.final_layer_norm, pre, p, self.training)


class StaticDecoderLayer(nn.Module):
    def __init__(
        self,
        d: int,
        d_enc: int,
        ffn: int,
        heads: int,
        cross_heads: int,
        qkv: int,
        dropout: float,
        attention_dropout: float,
        activation_dropout: float = 0.0,
        normalize_before: bool = False,
    ):
        super().__init__()
        self.heads, self.cross_heads, self.d_enc, self.dropout = heads, cross_heads, d_enc, dropout
        self.activation_dropout, self.normalize_before = activation_dropout, normalize_before
        self.self_attn = StaticMultiheadAttention(d, d, qkv, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = StaticMultiheadAttention(d, d_enc, qkv, attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def ffn(self, x: Tensor) -> Tensor:
        return self.fc2(dropout(F.relu(self.fc1(x)), self.activation_dropout, self.training))

    def forward(self, x, memory, memory_pad_mask, self_pad_mask, incremental_state=None) -> Tensor:
        d, pre, p, training = x.size(-1), self.normalize_before, self.dropout, self.training
        x = residual_block(
            x,
            lambda h: self.self_attn(
                h, h, self.heads, d, d, key_padding_mask=self_pad_mask, causal=True, incremental_state=incremental_state
            ),
            self.self_attn_layer_norm,
            pre,
            p,
            training,
        )
        x = residual_block(
            x,
            lambda h: self.encoder_attn(
                h,
                memory,
                self.cross_heads,
                d,
                self.d_enc,
                key_padding_mask=memory_pad_mask,
                incremental_state=incremental_state,
                static_kv=True,
            ),
            self.encoder_attn_layer_norm,
            pre,
            p,
            training,
        )
        return residual_block(x, self.ffn, self.final_layer_norm, pre, p, training)


def _embed_side(
    side: FairseqEncoder | FairseqIncrementalDecoder,
    d: int,
    embed_tokens: nn.Embedding,
    dropout: float,
    max_positions: int,
) -> None:
    """The static encoder's and decoder's inputs alike: padding index, dropout, the (shared) token
    embeddings and their scale, sinusoidal positions of width ``d``."""
    pad = side.dictionary.pad()
    side.padding_idx, side.dropout = pad, dropout
    side.embed_tokens = embed_tokens
    side.embed_scale = d**0.5
    side.embed_positions = SinusoidalPositionalEmbedding(d, pad, init_size=max_positions + pad + 1)


class StaticTransformerEncoder(FairseqEncoder):
    def __init__(self, arch: Architecture, dictionary, embed_tokens: nn.Embedding, options: "SideOptions"):
        super().__init__(dictionary)
        (dropout, attention_dropout, activation_dropout), max_positions, normalize_before = options
        self.max_source_positions = max_positions
        self.keep_states = max(arch.decoder_cross_spans)  # the encoder layers the decoder attends to
        _embed_side(self, arch.encoder_embed_dim, embed_tokens, dropout, max_positions)
        self.layers = nn.ModuleList(
            StaticEncoderLayer(
                s.d, s.ffn, s.heads, arch.qkv_dim, dropout, attention_dropout, activation_dropout, normalize_before
            )
            for s in arch.encoder_layer_sizes()
        )
        self.layer_norm = nn.LayerNorm(arch.encoder_embed_dim) if normalize_before else None

    def forward(self, src_tokens: Tensor, src_lengths: Tensor | None = None, **_) -> EncoderOut:
        x = embed_inputs(src_tokens, self.embed_tokens, self.embed_positions, self.embed_scale)
        x = dropout(x, self.dropout, self.training)
        run_layer = lambda i, layer, x, pad_mask: layer(x, pad_mask)  # noqa: E731
        return run_encoder_stack(
            x, src_tokens, self.padding_idx, self.layers, run_layer, src_lengths, self.keep_states, self.layer_norm
        )

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: EncoderOut, new_order: Tensor) -> EncoderOut:
        return reorder_encoder_out(encoder_out, new_order)

    def max_positions(self) -> int:
        return self.max_source_positions


class StaticTransformerDecoder(FairseqIncrementalDecoder):
    def __init__(self, arch: Architecture, dictionary, embed_tokens: nn.Embedding, options: "SideOptions"):
        super().__init__(dictionary)
        (dropout, attention_dropout, activation_dropout), max_positions, normalize_before = options
        self.max_target_positions = max_positions
        self.spans = arch.decoder_cross_spans
        _embed_side(self, arch.decoder_embed_dim, embed_tokens, dropout, max_positions)
        self.layers = nn.ModuleList(
            StaticDecoderLayer(
                s.d,
                s.d_enc,
                s.ffn,
                s.self_heads,
                s.cross_heads,
                arch.qkv_dim,
                dropout,
                attention_dropout,
                activation_dropout,
                normalize_before,
            )
            for s in arch.decoder_layer_sizes()
        )
        self.layer_norm = nn.LayerNorm(arch.decoder_embed_dim) if normalize_before else None

    def forward(
        self,
        prev_output_tokens,
        encoder_out: EncoderOut | None = None,
        incremental_state: Dict[str, Dict[str, Tensor | None]] | None = None,
        features_only: bool = False,
        **_,
    ):
        x = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, {"attn": [None], "inner_states": None}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **_) -> Tensor:
        x = embed_inputs(
            prev_output_tokens, self.embed_tokens, self.embed_positions, self.embed_scale, incremental_state
        )
        x = dropout(x, self.dropout, self.training)
        self_pad_mask = None
        if incremental_state is None and prev_output_tokens.eq(self.padding_idx).any():
            self_pad_mask = prev_output_tokens.eq(self.padding_idx)

        def run_layer(i, layer, x, memory, memory_mask):
            return layer(x, memory, memory_mask, self_pad_mask, incremental_state)

        x = run_decoder_stack(x, self.layers, self.spans, encoder_out, incremental_state, run_layer)
        return self.layer_norm(x) if self.layer_norm is not None else x

    def output_layer(self, features: Tensor, **_) -> Tensor:
        return F.linear(features, self.embed_tokens.weight)

    def max_positions(self) -> int:
        return self.max_target_positions


class StaticTransformerModel(FairseqEncoderDecoderModel):
    """One fixed architecture; build with :meth:`from_arch` (or fairseq's ``--arch mos_static_transformer``)."""

    def __init__(self, arch: Architecture, encoder, decoder, cfg: "StaticTransformerConfig | None" = None):
        super().__init__(encoder, decoder)
        self.arch = arch
        self.cfg = cfg

    @classmethod
    def from_arch(
        cls,
        arch: Architecture,
        src_dict,
        tgt_dict,
        share_all_embeddings: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        max_source_positions: int = 1024,
        max_target_positions: int = 1024,
        cfg: "StaticTransformerConfig | None" = None,
        normalize_before: tuple[bool, bool] = (False, False),
    ) -> "StaticTransformerModel":
        """``arch`` with fresh weights; ``normalize_before``: (encoder, decoder) pre-norm."""
        de, dd = arch.encoder_embed_dim, arch.decoder_embed_dim
        enc_embed = nn.Embedding(len(src_dict), de, padding_idx=src_dict.pad())
        if share_all_embeddings and de == dd:
            dec_embed = enc_embed
        else:
            dec_embed = nn.Embedding(len(tgt_dict), dd, padding_idx=tgt_dict.pad())
        dropouts = Dropouts(dropout, attention_dropout, activation_dropout)
        encoder = StaticTransformerEncoder(
            arch, src_dict, enc_embed, SideOptions(dropouts, max_source_positions, normalize_before[0])
        )
        decoder = StaticTransformerDecoder(
            arch, tgt_dict, dec_embed, SideOptions(dropouts, max_target_positions, normalize_before[1])
        )
        model = cls(arch, encoder, decoder, cfg)
        with torch.no_grad():
            init_fresh_weights(model)
        return model

    @classmethod
    def build_model(cls, cfg: "StaticTransformerConfig", task) -> "StaticTransformerModel":
        arch = arch_from_config(cfg, SearchSpace, Architecture, "mos_static_transformer")
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        if cfg.share_all_embeddings and src_dict != tgt_dict:
            raise CheckpointError("--share-all-embeddings needs a joined dictionary (prepare-data makes one)")
        return cls.from_arch(
            arch,
            src_dict,
            tgt_dict,
            cfg.share_all_embeddings,
            cfg.dropout,
            cfg.attention_dropout,
            cfg.activation_dropout,
            cfg.max_source_positions,
            cfg.max_target_positions,
            cfg,
            normalize_before_of(cfg),
        )


@dataclass
class StaticTransformerConfig(FairseqDataclass):
    subnet_arch: str = field(
        default="", metadata={"help": "architecture YAML to build (its space is named in the file)"}
    )
    arch_spec: str = field(
        default="",
        metadata={"help": "the architecture and its space as JSON; filled at build time, kept in checkpoints"},
    )
    # off unless given, as stock fairseq's transformer: a fairseq flag flips its field's default, so a default of
    # True would make --share-all-embeddings (what retraining passes) untie the embeddings
    share_all_embeddings: bool = field(default=False, metadata={"help": "one embedding for encoder, decoder, output"})
    dropout: float = field(default=0.1, metadata={"help": "dropout"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    max_source_positions: int = field(default=1024, metadata={"help": "max source length"})
    max_target_positions: int = field(default=1024, metadata={"help": "max target length"})
    encoder_normalize_before: bool = field(default=False, metadata={"help": "pre-norm encoder (last layer norm)"})
    decoder_normalize_before: bool = field(default=False, metadata={"help": "pre-norm decoder (last layer norm)"})


def normalize_before_of(cfg) -> tuple[bool, bool]:
    """(encoder, decoder) pre-norm of a model config (older ones: post-norm)."""
    return bool(getattr(cfg, "encoder_normalize_before", False)), bool(getattr(cfg, "decoder_normalize_before", False))


def extract_subnet(supernet, arch: Architecture, **static_kwargs) -> "StaticTransformerModel":
    """A static model holding ``arch``'s collapsed weights (eval mode, same device as the supernet)."""
    model = StaticTransformerModel.from_arch(
        arch,
        supernet.encoder.dictionary,
        supernet.decoder.dictionary,
        share_all_embeddings=supernet.cfg.share_all_embeddings,
        max_source_positions=supernet.encoder.max_positions(),
        max_target_positions=supernet.decoder.max_positions(),
        normalize_before=normalize_before_of(supernet.cfg),
        **static_kwargs,
    )
    device = next(supernet.parameters()).device
    model.to(device)
    model.load_state_dict(static_state_dict(collapsed_supernet_state(supernet, arch), model))
    return model.eval()
