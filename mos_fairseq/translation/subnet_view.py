"""A fairseq model view of one subnet of a supernet.

``SubnetModel(supernet, arch)`` owns no parameters: its encoder and decoder call the supernet's
with ``arch``. Criteria, validation and fairseq's ``SequenceGenerator`` take it as an ordinary
encoder-decoder model, so the sampled architecture travels explicitly and the supernet keeps
no "current subnet" state.
"""

from __future__ import annotations

from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, FairseqIncrementalDecoder

from mos_fairseq.translation.architecture import Architecture


class SubnetEncoder(FairseqEncoder):
    def __init__(self, encoder, arch: Architecture):
        super().__init__(encoder.dictionary)
        self.encoder, self.arch = encoder, arch

    def forward(self, src_tokens, src_lengths=None, **kwargs):
        return self.encoder(src_tokens, src_lengths, arch=self.arch)

    def reorder_encoder_out(self, encoder_out, new_order):
        return self.encoder.reorder_encoder_out(encoder_out, new_order)

    def max_positions(self):
        return self.encoder.max_positions()


class SubnetDecoder(FairseqIncrementalDecoder):
    def __init__(self, decoder, arch: Architecture):
        super().__init__(decoder.dictionary)
        self.decoder, self.arch = decoder, arch

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        return self.decoder(prev_output_tokens, encoder_out, incremental_state, arch=self.arch, **kwargs)

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **kwargs):
        return self.decoder.extract_features(prev_output_tokens, encoder_out, incremental_state, self.arch), None

    def output_layer(self, features, **kwargs):
        return self.decoder.output_layer(features, arch=self.arch)

    def max_positions(self):
        return self.decoder.max_positions()


class SubnetModel(FairseqEncoderDecoderModel):
    """Runs ``arch`` inside ``supernet``; shares (does not copy) the supernet's parameters."""

    def __init__(self, supernet, arch: Architecture):
        super().__init__(SubnetEncoder(supernet.encoder, arch), SubnetDecoder(supernet.decoder, arch))
        self.arch = arch
        self.train(supernet.training)

    def max_positions(self):
        return (self.encoder.max_positions(), self.decoder.max_positions())
