"""Search, a family-neutral stage above latency: constraints, HAT's evolutionary search, the loss
predictor, the runner (``mos-nas search`` / ``evaluate``) and its outputs. A subnet's validation loss
is :mod:`mos_fairseq.core.validation`; a family's specifics come through the registry."""
