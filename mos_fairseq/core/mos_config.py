"""The ``--mos*`` model options every supernet (translation, BERT) takes; read by
:meth:`mos_fairseq.modules.mos.MoSSpec.from_config`."""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from mos_fairseq.modules.mos import MOS_INITS, MOS_KINDS


@dataclass
class MoSConfig(FairseqDataclass):
    mos: ChoiceEnum(MOS_KINDS) = field(  # type: ignore[valid-type]  # fairseq builds the choices from this runtime annotation
        default="none",
        metadata={"help": "FFN weights: none (standard weight sharing), layer- or neuron-wise Mixture-of-Supernets"},
    )
    mos_experts: int = field(default=2, metadata={"help": "MoS: number of expert weight matrices (m)"})
    mos_router_hidden: int = field(default=128, metadata={"help": "MoS: router hidden size"})
    mos_router_layers: int = field(default=2, metadata={"help": "MoS: router linear layers (2 = Linear-ReLU-Linear)"})
    mos_router_dropout: float = field(default=0.0, metadata={"help": "MoS: dropout between router layers"})
    mos_init: ChoiceEnum(MOS_INITS) = field(  # type: ignore[valid-type]  # fairseq builds the choices from this runtime annotation
        default="independent",
        metadata={"help": "MoS: experts initialised independently, or all as copies of the first"},
    )
