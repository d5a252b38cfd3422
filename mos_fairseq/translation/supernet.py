"""The translation SuperTransformer (HAT's weight-sharing supernet), as a fairseq model.

Training samples subnets (:mod:`mos_fairseq.core.sampling`) and runs ``model(..., arch=a)``; every
layer receives its active widths from the architecture, never from stored state. Post-norm
layers (HAT's; pre-norm with ``--encoder-normalize-before`` / ``--decoder-normalize-before``, each side
then ending in an elastic layer norm as fairseq's transformer does), sinusoidal positions computed at the active width, shared embeddings, arbitrary
encoder-decoder attention (decoder layer ``i`` attends to the concatenated outputs of the last
``cross_span[i]`` encoder layers). ``model.bind(arch)`` gives a fairseq model view of one subnet
for criteria and ``fairseq-generate``.
"""

from dataclasses import dataclass, field
from typing import Any, Dict

import torch
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder
from fairseq.modules import SinusoidalPositionalEmbedding
from torch import Tensor, nn

from mos_fairseq.base.errors import CheckpointError
from mos_fairseq.core.mos_config import MoSConfig
from mos_fairseq.core.space_files import space_from_config
from mos_fairseq.modules.attention import ElasticMultiheadAttention
from mos_fairseq.modules.dropout import dropout
from mos_fairseq.modules.elastic import ElasticEmbedding, ElasticLayerNorm, embed_scale, scaled_dropout
from mos_fairseq.modules.ffn import ElasticFFNLayer
from mos_fairseq.modules.mos import MoSSpec, arch_encoding, mos_generator
from mos_fairseq.translation.architecture import Architecture, DecoderLayerSizes, EncoderLayerSizes
from mos_fairseq.translation.encoder_memory import (
    EncoderOut,
    embed_inputs,
    reorder_encoder_out,
    residual_block,
    run_decoder_stack,
    run_encoder_stack,
)
from mos_fairseq.translation.space import SearchSpace


@dataclass
class SuperTransformerConfig(MoSConfig):
    search_space: str = field(
        default="hat_wmt14_en_de",
        metadata={"help": "search space YAML file or built-in name (tiny, hat_wmt14_en_de)"},
    )
    search_space_spec: str = field(
        default="", metadata={"help": "the space as JSON; filled in at build time and kept in checkpoints"}
    )
    dropout: float = field(default=0.3, metadata={"help": "dropout (scaled by active/max width, as HAT)"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    share_all_embeddings: bool = field(
        default=True,
        metadata={
            "help": "one embedding matrix for encoder, decoder and output (joined dict); on by default, so the "
            "flag (fairseq flips a field's default) unties them"
        },
    )
    max_source_positions: int = field(default=1024, metadata={"help": "max source length"})
    max_target_positions: int = field(default=1024, metadata={"help": "max target length"})
    encoder_normalize_before: bool = field(
        default=False, metadata={"help": "pre-norm encoder layers and a layer norm on the encoder's output"}
    )
    decoder_normalize_before: bool = field(
        default=False, metadata={"help": "pre-norm decoder layers and a layer norm before the output projection"}
    )


def _positions(space_dims, padding_idx: int, max_positions: int) -> nn.ModuleDict:
    # one parameter-free sinusoidal table per width, so a subnet sees a static model's positions
    return nn.ModuleDict(
        {
            str(d): SinusoidalPositionalEmbedding(d, padding_idx, init_size=max_positions + padding_idx + 1)
            for d in space_dims
        }
    )


class SuperEncoderLayer(ElasticFFNLayer):
    def __init__(self, space: SearchSpace, cfg: SuperTransformerConfig, mos: MoSSpec, generator):
        super().__init__()
        d, f = space.max_encoder_embed_dim, max(space.encoder["ffn_dim"])
        self.max_dim, self.dropout, self.activation_dropout = d, cfg.dropout, cfg.activation_dropout
        self.normalize_before = bool(getattr(cfg, "encoder_normalize_before", False))  # older checkpoints: post-norm
        self.self_attn = ElasticMultiheadAttention(d, d, space.qkv_dim, cfg.attention_dropout)
        self.self_attn_layer_norm = ElasticLayerNorm(d)
        self.build_ffn(d, f, mos, generator)
        self.final_layer_norm = ElasticLayerNorm(d)

    def forward(self, x: Tensor, pad_mask: Tensor | None, sizes: EncoderLayerSizes, encoding: Tensor | None) -> Tensor:
        d, ffn, pre = sizes.d, sizes.ffn, self.normalize_before
        p = scaled_dropout(self.dropout, d, self.max_dim)
        x = residual_block(
            x,
            lambda h: self.self_attn(h, h, sizes.heads, d, d, key_padding_mask=pad_mask),
            lambda h: self.self_attn_layer_norm(h, d),
            pre,
            p,
            self.training,
        )
        ffn_dropout = scaled_dropout(self.activation_dropout, d, self.max_dim)
        return residual_block(
            x,
            lambda h: self.ffn(h, d, ffn, encoding, ffn_dropout),
            lambda h: self.final_layer_norm(h, d),
            pre,
            p,
            self.training,
        )


class SuperDecoderLayer(ElasticFFNLayer):
    def __init__(self, space: SearchSpace, cfg: SuperTransformerConfig, mos: MoSSpec, generator):
        super().__init__()
        d, de, f = space.max_decoder_embed_dim, space.max_encoder_embed_dim, max(space.decoder["ffn_dim"])
        self.max_dim, self.dropout, self.activation_dropout = d, cfg.dropout, cfg.activation_dropout
        self.normalize_before = bool(getattr(cfg, "decoder_normalize_before", False))
        self.self_attn = ElasticMultiheadAttention(d, d, space.qkv_dim, cfg.attention_dropout)
        self.self_attn_layer_norm = ElasticLayerNorm(d)
        self.encoder_attn = ElasticMultiheadAttention(d, de, space.qkv_dim, cfg.attention_dropout)
        self.encoder_attn_layer_norm = ElasticLayerNorm(d)
        self.build_ffn(d, f, mos, generator)
        self.final_layer_norm = ElasticLayerNorm(d)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None,
        memory_pad_mask: Tensor | None,
        self_pad_mask: Tensor | None,
        sizes: DecoderLayerSizes,
        encoding: Tensor | None,
        incremental_state: Dict[str, Dict[str, Tensor | None]] | None = None,
    ) -> Tensor:
        d, d_enc, ffn, h_self, h_cross = sizes.d, sizes.d_enc, sizes.ffn, sizes.self_heads, sizes.cross_heads
        p, pre, training = scaled_dropout(self.dropout, d, self.max_dim), self.normalize_before, self.training
        x = residual_block(
            x,
            lambda h: self.self_attn(
                h, h, h_self, d, d, key_padding_mask=self_pad_mask, causal=True, incremental_state=incremental_state
            ),
            lambda h: self.self_attn_layer_norm(h, d),
            pre,
            p,
            training,
        )
        x = residual_block(
            x,
            lambda h: self.encoder_attn(
                h,
                memory,
                h_cross,
                d,
                d_enc,
                key_padding_mask=memory_pad_mask,
                incremental_state=incremental_state,
                static_kv=True,
            ),
            lambda h: self.encoder_attn_layer_norm(h, d),
            pre,
            p,
            training,
        )
        ffn_dropout = scaled_dropout(self.activation_dropout, d, self.max_dim)
        return residual_block(
            x,
            lambda h: self.ffn(h, d, ffn, encoding, ffn_dropout),
            lambda h: self.final_layer_norm(h, d),
            pre,
            p,
            training,
        )


class _SupernetSide:
    """What the supernet's encoder and decoder (``side``) build alike: the space, MoS, padding index, the
    shared token embeddings, dropout, one sinusoidal table per width of the side and the side's largest
    stack of ``layer_type`` layers. It comes before the fairseq encoder or decoder class in the bases."""

    side: str  # "encoder" or "decoder"
    layer_type: type[SuperEncoderLayer] | type[SuperDecoderLayer]

    def __init__(
        self,
        cfg: SuperTransformerConfig,
        space: SearchSpace,
        dictionary,
        embed_tokens: ElasticEmbedding,
        mos: MoSSpec,
        generator=None,
    ):
        super().__init__(dictionary)  # type: ignore[call-arg]  # the fairseq encoder's or decoder's
        encoder = self.side == "encoder"
        if encoder:
            self.max_source_positions = cfg.max_source_positions
        else:
            self.max_target_positions = cfg.max_target_positions
        self.space, self.mos = space, mos
        self.padding_idx = dictionary.pad()
        self.embed_tokens = embed_tokens
        self.dropout = cfg.dropout
        max_positions = cfg.max_source_positions if encoder else cfg.max_target_positions
        self.embed_positions = _positions(getattr(space, self.side)["embed_dim"], self.padding_idx, max_positions)
        n_layers = space.max_encoder_layers if encoder else space.max_decoder_layers
        self.layers = nn.ModuleList(self.layer_type(space, cfg, mos, generator) for _ in range(n_layers))
        pre = bool(getattr(cfg, f"{self.side}_normalize_before", False))
        d_max = space.max_encoder_embed_dim if encoder else space.max_decoder_embed_dim
        self.layer_norm = ElasticLayerNorm(d_max) if pre else None  # a pre-norm side's last norm (fairseq's name)


class SuperTransformerEncoder(_SupernetSide, FairseqEncoder):
    side = "encoder"
    layer_type = SuperEncoderLayer

    def forward(
        self, src_tokens: Tensor, src_lengths: Tensor | None = None, arch: Architecture | None = None, **_
    ) -> EncoderOut:
        arch = arch or Architecture.largest(self.space)
        d = arch.encoder_embed_dim
        embed = lambda tokens: self.embed_tokens(tokens, d)  # noqa: E731
        x = embed_inputs(src_tokens, embed, self.embed_positions[str(d)], embed_scale(d))
        x = dropout(x, scaled_dropout(self.dropout, d, self.space.max_encoder_embed_dim), self.training)

        encoding = arch_encoding(arch, x.device) if self.mos.enabled else None

        sizes = arch.encoder_layer_sizes()

        def run_layer(i, layer, x, pad_mask):
            return layer(x, pad_mask, sizes[i], encoding)

        layers = self.layers[: arch.encoder_layers]
        norm = self.layer_norm
        return run_encoder_stack(
            x,
            src_tokens,
            self.padding_idx,
            layers,
            run_layer,
            src_lengths,
            max(arch.decoder_cross_spans),
            (lambda h: norm(h, d)) if norm is not None else None,
        )

    @torch.jit.export
    def reorder_encoder_out(self, encoder_out: EncoderOut, new_order: Tensor) -> EncoderOut:
        return reorder_encoder_out(encoder_out, new_order)

    def max_positions(self) -> int:
        return self.max_source_positions


class SuperTransformerDecoder(_SupernetSide, FairseqIncrementalDecoder):
    side = "decoder"
    layer_type = SuperDecoderLayer

    def forward(
        self,
        prev_output_tokens: Tensor,
        encoder_out: EncoderOut | None = None,
        incremental_state: Dict[str, Dict[str, Tensor | None]] | None = None,
        features_only: bool = False,
        arch: Architecture | None = None,
        **_: Any,
    ):
        arch = arch or Architecture.largest(self.space)
        x = self.extract_features(prev_output_tokens, encoder_out, incremental_state, arch)
        if not features_only:
            x = self.embed_tokens.project_out(x, arch.decoder_embed_dim)
        return x, {"attn": [None], "inner_states": None}

    def extract_features(self, prev_output_tokens, encoder_out, incremental_state, arch: Architecture) -> Tensor:
        d = arch.decoder_embed_dim
        embed = lambda tokens: self.embed_tokens(tokens, d)  # noqa: E731
        x = embed_inputs(prev_output_tokens, embed, self.embed_positions[str(d)], embed_scale(d), incremental_state)
        x = dropout(x, scaled_dropout(self.dropout, d, self.space.max_decoder_embed_dim), self.training)
        self_pad_mask = None
        if incremental_state is None and prev_output_tokens.eq(self.padding_idx).any():
            self_pad_mask = prev_output_tokens.eq(self.padding_idx)

        encoding = arch_encoding(arch, x.device) if self.mos.enabled else None

        sizes = arch.decoder_layer_sizes()

        def run_layer(i, layer, x, memory, memory_mask):
            return layer(x, memory, memory_mask, self_pad_mask, sizes[i], encoding, incremental_state)

        layers = self.layers[: arch.decoder_layers]
        x = run_decoder_stack(x, layers, arch.decoder_cross_spans, encoder_out, incremental_state, run_layer)
        return self.layer_norm(x, d) if self.layer_norm is not None else x

    def output_layer(self, features: Tensor, arch: Architecture | None = None) -> Tensor:
        arch = arch or Architecture.largest(self.space)
        return self.embed_tokens.project_out(features, arch.decoder_embed_dim)

    def max_positions(self) -> int:
        return self.max_target_positions


class SuperTransformerModel(FairseqEncoderDecoderModel):
    """HAT's SuperTransformer. ``forward(..., arch=a)`` runs subnet ``a`` (default: largest)."""

    arch_type = Architecture  # what the supernet tasks sample for this model

    def __init__(self, cfg: SuperTransformerConfig, space: SearchSpace, encoder, decoder):
        super().__init__(encoder, decoder)
        self.cfg = cfg
        self.space = space
        self.mos = encoder.mos

    @classmethod
    def build_model(cls, cfg: SuperTransformerConfig, task) -> "SuperTransformerModel":
        space = space_from_config(cfg, SearchSpace)
        src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
        if cfg.share_all_embeddings:
            if src_dict != tgt_dict:
                raise CheckpointError("--share-all-embeddings needs a joined dictionary (prepare-data makes one)")
            shared = ElasticEmbedding(len(src_dict), space.max_embed_dim, src_dict.pad())
            enc_embed = dec_embed = shared
        else:
            enc_embed = ElasticEmbedding(len(src_dict), space.max_encoder_embed_dim, src_dict.pad())
            dec_embed = ElasticEmbedding(len(tgt_dict), space.max_decoder_embed_dim, tgt_dict.pad())
        mos = MoSSpec.from_config(cfg)
        # MoS-only parameters draw from their own generator: the shared weights equal the
        # standard supernet's for the same seed (and with --mos-init copy, so do the outputs)
        generator = mos_generator() if mos.enabled else None
        encoder = SuperTransformerEncoder(cfg, space, src_dict, enc_embed, mos, generator)
        decoder = SuperTransformerDecoder(cfg, space, tgt_dict, dec_embed, mos, generator)
        return cls(cfg, space, encoder, decoder)

    def forward(self, src_tokens, src_lengths, prev_output_tokens, arch: Architecture | None = None, **kwargs):
        arch = arch or Architecture.largest(self.space)
        encoder_out = self.encoder(src_tokens, src_lengths, arch=arch)
        return self.decoder(prev_output_tokens, encoder_out=encoder_out, arch=arch, **kwargs)

    def bind(self, arch: Architecture | None = None) -> "FairseqEncoderDecoderModel":
        """A fairseq model view that runs subnet ``arch`` (shares this model's parameters)."""
        from mos_fairseq.translation.subnet_view import SubnetModel

        return SubnetModel(self, arch or Architecture.largest(self.space))

    def padding_index(self) -> int:
        return self.decoder.dictionary.pad()

    def extract_static(self, arch: Architecture):
        """``arch`` collapsed into a static model (MoS mixed, weights sliced; eval mode)."""
        from mos_fairseq.translation.static import extract_subnet

        return extract_subnet(self, arch)

    def ffn_layers(self, arch: Architecture) -> list[tuple[str, ElasticFFNLayer]]:
        """``[(state-dict prefix, layer)]`` of the layers ``arch`` runs (what export collapses)."""
        return [
            (f"encoder.layers.{i}", layer) for i, layer in enumerate(self.encoder.layers[: arch.encoder_layers])
        ] + [(f"decoder.layers.{i}", layer) for i, layer in enumerate(self.decoder.layers[: arch.decoder_layers])]

    def num_params(self, arch: Architecture) -> int:
        final_norms = 2 * arch.encoder_embed_dim * bool(getattr(self.cfg, "encoder_normalize_before", False)) + (
            2 * arch.decoder_embed_dim * bool(getattr(self.cfg, "decoder_normalize_before", False))
        )  # a pre-norm side's last layer norm
        return final_norms + arch.num_params(
            len(self.encoder.dictionary), len(self.decoder.dictionary), self.cfg.share_all_embeddings
        )
