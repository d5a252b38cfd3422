"""The family-neutral core, above base and modules and below the families: the family interface,
checkpoints (reading imports no model), collapse, sampling, validation loss, the supernet task mixin,
export records and the fairseq repairs."""
