"""A static BERT subnet (``mos_static_bert``): what a BERT supernet subnet becomes on export.

Plain ``nn.Linear``/``nn.LayerNorm``/``nn.Embedding`` of exactly the subnet's sizes, per-layer
hidden sizes behind bottleneck matrices where the space has them; the forward pass is the
supernet's (:mod:`mos_fairseq.bert.supernet`) at fixed sizes. Parameter names equal the
supernet's, so collapsing is a prefix slice of each (MoS-mixed) supernet tensor. Homogeneous
subnets are written as stock fairseq ``roberta`` instead (:mod:`mos_fairseq.bert.export`).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel
from torch import Tensor, nn

from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.space import BertSpace
from mos_fairseq.core.arch_spec import arch_from_config, arch_spec_json
from mos_fairseq.core.collapse import collapsed_supernet_state, static_state_dict
from mos_fairseq.modules.attention import StaticMultiheadAttention
from mos_fairseq.modules.dropout import dropout


@dataclass
class StaticBertConfig(FairseqDataclass):
    arch_spec: str = field(default="", metadata={"help": "the BERT architecture and its space as JSON"})
    subnet_arch: str = field(default="", metadata={"help": "architecture YAML (when there is no arch_spec)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    max_positions: int = field(default=512, metadata={"help": "max sequence length"})


class StaticBertLayer(nn.Module):
    def __init__(self, d: int, h: int, ffn: int, bottleneck: bool, dropouts: tuple[float, float, float]):
        super().__init__()
        self.bottleneck = bottleneck
        if bottleneck:
            self.input_bottleneck, self.output_bottleneck = nn.Linear(d, h), nn.Linear(h, d)
        self.self_attn = StaticMultiheadAttention(h, h, h, dropouts[1])
        self.self_attn_layer_norm = nn.LayerNorm(h)
        self.fc1, self.fc2 = nn.Linear(h, ffn), nn.Linear(ffn, h)
        self.final_layer_norm = nn.LayerNorm(h)
        self.dropout, self.activation_dropout = dropouts[0], dropouts[2]

    def forward(self, x: Tensor, pad_mask: Tensor | None, heads: int) -> Tensor:
        if self.bottleneck:
            x = self.input_bottleneck(x)
        h = x.size(-1)
        a = self.self_attn(x, x, heads, h, h, key_padding_mask=pad_mask)
        x = self.self_attn_layer_norm(x + dropout(a, self.dropout, self.training))
        f = self.fc2(dropout(F.gelu(self.fc1(x)), self.activation_dropout, self.training))
        x = self.final_layer_norm(x + dropout(f, self.dropout, self.training))
        return self.output_bottleneck(x) if self.bottleneck else x


class StaticBertModel(BaseFairseqModel):
    def __init__(self, arch: BertArch, dictionary, cfg: StaticBertConfig):
        super().__init__()
        self.arch, self.cfg, self.dictionary = arch, cfg, dictionary
        self.padding_idx = dictionary.pad()
        d = arch.embed_dim
        self.max_positions_ = cfg.max_positions
        self.embed_tokens = nn.Embedding(len(dictionary), d, padding_idx=self.padding_idx)
        self.embed_positions = nn.Embedding(cfg.max_positions + self.padding_idx + 1, d, padding_idx=self.padding_idx)
        self.layernorm_embedding = nn.LayerNorm(d)
        dropouts = (cfg.dropout, cfg.attention_dropout, cfg.activation_dropout)
        bottleneck = arch.space.kind == "bottleneck"
        self.layers = nn.ModuleList(
            StaticBertLayer(s.d, s.hidden, s.ffn, bottleneck, dropouts) for s in arch.layer_sizes()
        )
        self.lm_head_dense = nn.Linear(d, d)
        self.lm_head_layer_norm = nn.LayerNorm(d)
        self.lm_head_bias = nn.Parameter(torch.zeros(len(dictionary)))

    @classmethod
    def build_model(cls, cfg: StaticBertConfig, task) -> "StaticBertModel":
        arch = arch_from_config(cfg, BertSpace, BertArch, "mos_static_bert")
        return cls(arch, task.source_dictionary, cfg)

    def max_positions(self) -> int:
        return self.max_positions_

    def forward(
        self,
        src_tokens: Tensor,
        src_lengths: Tensor | None = None,
        masked_tokens: Tensor | None = None,
        features_only: bool = False,
        **_,
    ):
        pad_mask = src_tokens.eq(self.padding_idx)
        x = self.embed_tokens(src_tokens) + self.embed_positions(utils.make_positions(src_tokens, self.padding_idx))
        x = dropout(self.layernorm_embedding(x), self.cfg.dropout, self.training)
        x = x * (1 - pad_mask.unsqueeze(-1).type_as(x))
        for layer, sizes in zip(self.layers, self.arch.layer_sizes()):
            x = layer(x, pad_mask, sizes.heads)
        if features_only:
            return x, {}
        if masked_tokens is not None:
            x = x[masked_tokens, :]
        x = self.lm_head_layer_norm(F.gelu(self.lm_head_dense(x)))
        return F.linear(x, self.embed_tokens.weight) + self.lm_head_bias, {}


def extract_subnet(supernet, arch: BertArch) -> "StaticBertModel":
    """A static model holding ``arch``'s collapsed weights (eval mode)."""
    cfg = supernet.cfg
    static_cfg = StaticBertConfig(
        arch_spec=arch_spec_json(arch),
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        activation_dropout=cfg.activation_dropout,
        max_positions=supernet.max_positions(),
    )
    model = StaticBertModel(arch, supernet.dictionary, static_cfg)
    model.load_state_dict(static_state_dict(collapsed_supernet_state(supernet, arch), model))
    return model.eval()
