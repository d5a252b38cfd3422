"""fairseq ``--user-dir`` entry point: registers mos-fairseq's models, tasks and criteria."""
from mos_fairseq.plugin import register

register()
