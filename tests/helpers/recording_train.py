"""Test instrumentation: ``fairseq-train`` in this process, recording after every update the flat
parameter vector (float64) of this rank's model.

Usage: python -m tests.helpers.recording_train OUT.pt [fairseq-train arguments...]
OUT.pt holds ``{"params": [tensor per update], "rss_mb": peak resident memory}``.
``RECORDING_TRAIN_EMULATE_BF16=1``: the CPU is taken to have ``avx512_bf16``, so that ``--bf16`` runs (in
torch's emulation, slower but the same arithmetic) on a CPU without bf16 instructions, which the plugin
refuses otherwise.
"""

import os
import resource
import sys

import torch
from fairseq import trainer as trainer_module
from fairseq_cli import train


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    if os.environ.get("RECORDING_TRAIN_EMULATE_BF16") == "1":
        from mos_fairseq.core import cpu_bf16

        flags = cpu_bf16.cpu_flags()
        cpu_bf16.cpu_flags = lambda cpuinfo=None: flags | {"avx512_bf16"}
    params: list[torch.Tensor] = []
    original = trainer_module.Trainer.train_step

    def train_step(self, samples, raise_oom=False):
        result = original(self, samples, raise_oom)
        model = self.get_model()
        params.append(torch.cat([p.detach().reshape(-1).double() for _, p in sorted(model.named_parameters())]))
        return result

    trainer_module.Trainer.train_step = train_step
    sys.argv = ["fairseq-train", *argv]
    train.cli_main()
    torch.save({"params": params, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, out)


if __name__ == "__main__":
    main()
