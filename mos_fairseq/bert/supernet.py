"""The BERT supernet (``--arch bert_supernet``), trained by ``supernet_masked_lm``.

A RoBERTa-style post-norm encoder (learned positions, embedding layer norm, GELU, tied LM head)
built from the elastic blocks the MT supernet uses: :class:`ElasticLinear`,
:class:`ElasticLayerNorm`, :class:`ElasticEmbedding`, the shared attention core and
:class:`ElasticFFNLayer` (with layer- or neuron-wise MoS). ``forward(..., arch=a)`` runs subnet
``a`` (:class:`~mos_fairseq.bert.space.BertArch`):

* bottleneck spaces (SuperShaper): the stream between layers is ``model_dim`` wide; layer ``i``
  maps it to its hidden size ``h_i`` through the prefix ``h_i x model_dim`` of an identity-
  initialised input bottleneck, runs attention (q/k/v ``h_i x h_i``) and FFN at ``h_i``, and maps
  back through the prefix of its output bottleneck;
* homogeneous spaces: embeddings and every layer run at the subnet's hidden size; with these
  settings a subnet is exactly fairseq's ``roberta`` of its size (export relies on it).

The MoS router input is the architecture's encoding (``BertArch.normalized_features``).
"""

import dataclasses
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.models import BaseFairseqModel
from torch import Tensor, nn

from mos_fairseq.bert.architecture import BertArch, BertLayerSizes
from mos_fairseq.bert.space import BertSpace
from mos_fairseq.core.mos_config import MoSConfig
from mos_fairseq.core.space_files import space_from_config
from mos_fairseq.modules.attention import ElasticSelfAttention
from mos_fairseq.modules.dropout import dropout
from mos_fairseq.modules.elastic import ElasticEmbedding, ElasticLayerNorm, ElasticLinear
from mos_fairseq.modules.ffn import ElasticFFNLayer
from mos_fairseq.modules.mos import MoSSpec, arch_encoding, mos_generator


@dataclass
class BertSupernetConfig(MoSConfig):
    search_space: str = field(
        default="supershaper", metadata={"help": "BERT space YAML or built-in name (supershaper, bert_homogeneous)"}
    )
    search_space_spec: str = field(
        default="", metadata={"help": "the space as JSON; filled in at build time and kept in checkpoints"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    max_positions: int = field(default=512, metadata={"help": "max sequence length (capped by the space's)"})


def identity_(linear: ElasticLinear) -> None:
    """SuperShaper's bottleneck initialisation: identity weight, zero bias."""
    with torch.no_grad():
        linear.weight.copy_(torch.eye(linear.out_max, linear.in_max))
        assert linear.bias is not None  # the bottleneck linears have biases
        linear.bias.zero_()


class BertSupernetLayer(ElasticFFNLayer):
    def __init__(self, space: BertSpace, cfg: BertSupernetConfig, mos: MoSSpec, generator):
        super().__init__()
        d, h, f = space.max_embed, space.max_hidden, space.max_ffn
        self.bottleneck = space.kind == "bottleneck"
        if self.bottleneck:
            self.input_bottleneck, self.output_bottleneck = ElasticLinear(d, h), ElasticLinear(h, d)
            identity_(self.input_bottleneck)
            identity_(self.output_bottleneck)
        self.self_attn = ElasticSelfAttention(h, cfg.attention_dropout)
        self.self_attn_layer_norm = ElasticLayerNorm(h)
        self.build_ffn(h, f, mos, generator, activation="gelu")
        self.final_layer_norm = ElasticLayerNorm(h)
        self.dropout, self.activation_dropout = cfg.dropout, cfg.activation_dropout

    def forward(self, x: Tensor, pad_mask: Tensor | None, sizes: BertLayerSizes, encoding: Tensor | None) -> Tensor:
        d, h, heads, ffn = sizes
        if self.bottleneck:
            x = self.input_bottleneck(x, d, h)
        a = self.self_attn(x, x, heads, h, h, key_padding_mask=pad_mask)
        x = self.self_attn_layer_norm(x + dropout(a, self.dropout, self.training), h)
        f = self.ffn(x, h, ffn, encoding, self.activation_dropout)
        x = self.final_layer_norm(x + dropout(f, self.dropout, self.training), h)
        if self.bottleneck:
            x = self.output_bottleneck(x, h, d)
        return x


class BertSupernetModel(BaseFairseqModel):
    """``forward(src_tokens, ..., arch=a)`` -> (MLM logits, extra); default subnet: the largest."""

    arch_type = BertArch

    def __init__(self, cfg: BertSupernetConfig, space: BertSpace, dictionary):
        super().__init__()
        self.cfg, self.space, self.dictionary = cfg, space, dictionary
        self.padding_idx = dictionary.pad()
        d = space.max_embed
        self.max_positions_ = min(cfg.max_positions, space.max_positions)
        mos = dataclasses.replace(MoSSpec.from_config(cfg), encoding_size=space.encoding_size)
        self.mos = mos
        self.embed_tokens = ElasticEmbedding(len(dictionary), d, self.padding_idx)
        self.embed_positions = ElasticEmbedding(self.max_positions_ + self.padding_idx + 1, d, self.padding_idx)
        self.layernorm_embedding = ElasticLayerNorm(d)
        generator = mos_generator() if mos.enabled else None
        self.layers = nn.ModuleList(BertSupernetLayer(space, cfg, mos, generator) for _ in range(space.max_layers))
        self.lm_head_dense = ElasticLinear(d, d)
        self.lm_head_layer_norm = ElasticLayerNorm(d)
        self.lm_head_bias = nn.Parameter(torch.zeros(len(dictionary)))

    @classmethod
    def build_model(cls, cfg: BertSupernetConfig, task) -> "BertSupernetModel":
        return cls(cfg, space_from_config(cfg, BertSpace), task.source_dictionary)

    def max_positions(self) -> int:
        return self.max_positions_

    def extract_features(self, src_tokens: Tensor, arch: BertArch) -> Tensor:
        d = arch.embed_dim
        pad_mask = src_tokens.eq(self.padding_idx)
        positions = utils.make_positions(src_tokens, self.padding_idx)
        x = self.embed_tokens(src_tokens, d) + self.embed_positions(positions, d)
        x = dropout(self.layernorm_embedding(x, d), self.cfg.dropout, self.training)
        x = x * (1 - pad_mask.unsqueeze(-1).type_as(x))  # as fairseq's encoder does
        encoding = arch_encoding(arch, x.device) if self.mos.enabled else None
        for layer, sizes in zip(self.layers, arch.layer_sizes()):
            x = layer(x, pad_mask, sizes, encoding)
        return x

    def output_layer(self, features: Tensor, arch: BertArch, masked_tokens: Tensor | None = None) -> Tensor:
        d = arch.embed_dim
        if masked_tokens is not None:
            features = features[masked_tokens, :]
        x = self.lm_head_layer_norm(F.gelu(self.lm_head_dense(features, d, d)), d)
        return F.linear(x, self.embed_tokens.sliced(d)) + self.lm_head_bias

    def forward(
        self,
        src_tokens: Tensor,
        src_lengths: Tensor | None = None,
        masked_tokens: Tensor | None = None,
        arch: BertArch | None = None,
        features_only: bool = False,
        **_,
    ):
        arch = arch or BertArch.largest(self.space)
        features = self.extract_features(src_tokens, arch)
        if features_only:
            return features, {}
        return self.output_layer(features, arch, masked_tokens), {}

    def bind(self, arch: BertArch | None = None) -> "BertSubnetView":
        return BertSubnetView(self, arch or BertArch.largest(self.space))

    def padding_index(self) -> int:
        return self.padding_idx

    def extract_static(self, arch: BertArch):
        """``arch`` collapsed into a static BERT (MoS mixed, weights sliced; eval mode)."""
        from mos_fairseq.bert.static import extract_subnet

        return extract_subnet(self, arch)

    def ffn_layers(self, arch: BertArch) -> list[tuple[str, BertSupernetLayer]]:
        return [(f"layers.{i}", cast(BertSupernetLayer, layer)) for i, layer in enumerate(self.layers[: arch.layers])]

    def num_params(self, arch: BertArch) -> int:
        return arch.num_params(len(self.dictionary))


class BertSubnetView(BaseFairseqModel):
    """Runs ``arch`` inside the supernet (owns no parameters): what criteria and evaluation get."""

    def __init__(self, supernet: BertSupernetModel, arch: BertArch):
        super().__init__()
        self.supernet = [supernet]  # a list: not registered as a submodule, parameters stay the supernet's
        self.arch = arch
        self.train(supernet.training)

    def forward(self, src_tokens, src_lengths=None, masked_tokens=None, **kwargs):
        return self.supernet[0](src_tokens, src_lengths, masked_tokens, arch=self.arch, **kwargs)

    def max_positions(self):
        return self.supernet[0].max_positions()
