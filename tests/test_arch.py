"""The Architecture value type and search spaces: validation, serialisation, counting, features."""

import json
import random

import pytest
import yaml

from mos_fairseq.base.errors import ArchError, SpaceError
from mos_fairseq.translation.architecture import Architecture, decoder_layer_params, encoder_layer_params
from mos_fairseq.translation.space import SearchSpace


def test_hat_space_numbers(hat_space):
    assert hat_space.encoder["embed_dim"] == (512, 640)
    assert hat_space.decoder["layers"] == (1, 2, 3, 4, 5, 6)
    assert hat_space.encoder["ffn_dim"] == (1024, 2048, 3072)
    assert hat_space.qkv_dim == 512
    largest = Architecture.largest(hat_space)
    assert (largest.encoder_embed_dim, largest.encoder_layers, largest.decoder_layers) == (640, 6, 6)
    assert set(largest.encoder_ffn_dims) == {3072} and set(largest.decoder_cross_spans) == {3}
    smallest = Architecture.smallest(hat_space)
    assert smallest.decoder_layers == 1 and smallest.encoder_layers == 6 and smallest.decoder_cross_spans == (1,)


def test_random_is_seeded_and_valid(tiny_space):
    a = [Architecture.random(tiny_space, random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(3)
    many = {Architecture.random(tiny_space, rng) for _ in range(200)}
    assert len(many) > 150  # the sampler explores the space
    for arch in many:
        assert all(k <= arch.encoder_layers for k in arch.decoder_cross_spans)


@pytest.mark.parametrize("fmt", ["yaml", "json", "hat"])
def test_round_trip(tiny_space, hat_space, tmp_path, fmt):
    for space in (tiny_space, hat_space):
        rng = random.Random(11)
        for _ in range(20):
            arch = Architecture.random(space, rng)
            if fmt == "json":
                back = Architecture.from_json(arch.to_json(), space)
            elif fmt == "yaml":
                arch.save(tmp_path / "a.yml")
                back = Architecture.load(tmp_path / "a.yml")  # space found by the name in the file
            else:
                arch.save(tmp_path / "h.yml", hat_format=True)
                back = Architecture.load(tmp_path / "h.yml", space)
            assert back == arch


def test_reads_hat_subtransformer_yaml(hat_space, tmp_path):
    # HAT's published SubTransformer config layout (per-layer lists always 6 long)
    text = """
encoder-embed-dim-subtransformer: 640
decoder-embed-dim-subtransformer: 512
encoder-ffn-embed-dim-all-subtransformer: [3072, 3072, 2048, 3072, 1024, 3072]
decoder-ffn-embed-dim-all-subtransformer: [3072, 2048, 3072, 1024, 2048, 2048]
encoder-layer-num-subtransformer: 6
decoder-layer-num-subtransformer: 3
encoder-self-attention-heads-all-subtransformer: [8, 8, 4, 8, 8, 4]
decoder-self-attention-heads-all-subtransformer: [4, 8, 8, 4, 8, 8]
decoder-ende-attention-heads-all-subtransformer: [8, 8, 4, 8, 8, 8]
decoder-arbitrary-ende-attn-all-subtransformer: [-1, 1, 2, -1, -1, -1]
"""
    (tmp_path / "hat.yml").write_text(text)
    arch = Architecture.load(tmp_path / "hat.yml", hat_space)
    assert arch.decoder_layers == 3 and arch.decoder_ffn_dims == (3072, 2048, 3072)
    assert arch.decoder_cross_spans == (1, 2, 3)
    assert arch.encoder_heads == (8, 8, 4, 8, 8, 4)


def test_features_match_hat_definition(hat_space):
    arch = Architecture.from_dict(
        {
            "encoder": {
                "embed_dim": 640,
                "layers": 6,
                "ffn_dim": [3072, 2048, 1024, 3072, 2048, 1024],
                "heads": [8, 4, 8, 4, 8, 4],
            },
            "decoder": {
                "embed_dim": 512,
                "layers": 2,
                "ffn_dim": [1024, 3072],
                "self_heads": [4, 8],
                "cross_heads": [8, 8],
                "cross_span": [1, 3],
            },
        },
        hat_space,
    )
    assert arch.features() == [640, 6, 2048, 6, 512, 2, 2048, 6, 8, 2]
    assert arch.normalized_features() == pytest.approx([1, 1, 1, 1, 0.8, 1 / 3, 1, 1, 8 / 6, 1])


def test_param_formula_against_hand_count():
    # one post-norm encoder layer, d=4, ffn=8, qkv=4: attn 4*(4*4+4) = 80, ffn 4*8+8+8*4+4 = 76, 2 LNs 16
    assert encoder_layer_params(4, 8, 4) == 80 + 76 + 16
    # decoder adds the cross attention (kv from d_enc=6): 4*4+4 + 2*(6*4+4) + 4*4+4 = 96, and one more LN
    assert decoder_layer_params(4, 6, 8, 4) == 80 + 96 + 76 + 24


def test_shared_embedding_counted_once(tiny_space):
    a = Architecture.largest(tiny_space)
    assert a.num_params(1000) - a.num_params(999) == 32  # one 32-wide row, not two
    b = Architecture.from_dict({**a.to_dict(), "decoder": {**a.to_dict()["decoder"], "embed_dim": 24}}, tiny_space)
    assert b.num_params(1000) - b.num_params(999) == 32 + 24  # unequal widths need two matrices


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["encoder"].update(embed_dim=40), r"encoder.embed_dim=40 is not in the space's choices \[24, 32\]"),
        (
            lambda d: d["decoder"]["ffn_dim"].__setitem__(0, 4096),
            r"decoder.ffn_dim\[0\]=4096 is not in .*\[32, 48, 64\]",
        ),
        (lambda d: d["decoder"].update(layers=4, ffn_dim=[32] * 4), r"decoder.layers=4 is not in"),
        (lambda d: d["decoder"]["cross_span"].__setitem__(0, 4), r"decoder.cross_span\[0\]=4 is not in"),
        (lambda d: d["encoder"].pop("heads"), r"missing encoder.\['heads'\]"),
        (lambda d: d.update(extra=1), r"unknown architecture key\(s\) \['extra'\]"),
        (lambda d: d["decoder"].update(ffn_dim=[32]), r"decoder.ffn_dim has 1 entries, fewer than decoder.layers=3"),
        (lambda d: d["encoder"].update(embed_dim=-32), r"encoder.embed_dim=-32 is not in"),
        (lambda d: d["encoder"].update(embed_dim="big"), r"encoder.embed_dim must be an integer"),
    ],
)
def test_invalid_architectures_name_the_problem(tiny_space, mutate, message):
    data = json.loads(Architecture.largest(tiny_space).to_json())
    mutate(data)
    with pytest.raises(ArchError, match=message):
        Architecture.from_dict(data, tiny_space)


def test_span_cannot_exceed_encoder_depth(tiny_space):
    data = Architecture.largest(tiny_space).to_dict()
    data["encoder"].update(layers=2, ffn_dim=[32, 32], heads=[2, 2])
    with pytest.raises(ArchError, match=r"cross_span\[0\]=3 exceeds the encoder's 2 layers"):
        Architecture.from_dict(data, tiny_space)


def test_architecture_for_another_space_is_refused(tiny_space, hat_space):
    with pytest.raises(ArchError, match="is for space 'hat_wmt14_en_de', not 'tiny'"):
        Architecture.from_dict(Architecture.largest(hat_space).to_dict(), tiny_space)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(colour="red"), r"unknown key\(s\) \['colour'\]"),
        (lambda d: d["encoder"].update(ffn_dim=[]), r"encoder.ffn_dim must be a non-empty list"),
        (lambda d: d["encoder"].update(ffn_dim=[0, 32]), r"encoder.ffn_dim must hold positive integers, got 0"),
        (lambda d: d["decoder"].update(self_heads=[3]), r"decoder.self_heads \[3\] do not divide qkv_dim 32"),
        (lambda d: d.pop("qkv_dim"), r"missing key 'qkv_dim'"),
        (lambda d: d["decoder"].pop("cross_span"), r"missing key\(s\) decoder.\['cross_span'\]"),
        (lambda d: d["decoder"].update(cross_span=[1, 5]), r"cross_span choices must lie in 1..3"),
        (lambda d: d.update(feature_norm=[1, 2]), r"feature_norm must be 10 positive numbers"),
    ],
)
def test_invalid_spaces_name_the_problem(tiny_space, mutate, message):
    data = tiny_space.to_dict()
    mutate(data)
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_dict(data)


def test_space_file_errors(tmp_path):
    with pytest.raises(SpaceError, match="not found"):
        SearchSpace.load(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        SearchSpace.load(bad)
    (tmp_path / "list.yml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(SpaceError, match="must be a mapping"):
        SearchSpace.load(tmp_path / "list.yml")
