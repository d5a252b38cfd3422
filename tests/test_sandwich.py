"""Subnet sampling and the sandwich update (gradient normalisation, parameters reached)."""

import torch

from mos_fairseq.core.sampling import subnets_for_update
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.criterion import (
    SupernetCrossEntropyCriterion,
)
from mos_fairseq.translation.task import SupernetTranslationConfig, SupernetTranslationTask

from .conftest import build_supernet


def test_stream_is_a_function_of_seed_and_update(tiny_space):
    a = [subnets_for_update(tiny_space, 1, u, "sandwich", 2, Architecture) for u in range(50)]
    b = [subnets_for_update(tiny_space, 1, u, "sandwich", 2, Architecture) for u in range(50)]
    assert a == b
    assert all(s[0] == Architecture.largest(tiny_space) and s[1] == Architecture.smallest(tiny_space) for s in a)
    assert all(len(s) == 4 for s in a)
    randoms = {s[2] for s in a}
    assert len(randoms) > 40  # the random member changes from update to update
    assert subnets_for_update(tiny_space, 2, 0, "spos", 1, Architecture) != subnets_for_update(
        tiny_space, 1, 0, "spos", 1, Architecture
    )
    assert len(subnets_for_update(tiny_space, 1, 0, "spos", 1, Architecture)) == 1


class _Optimizer:
    def backward(self, loss):
        loss.backward()


def _task_and_criterion(dictionary, sampling="sandwich", n_random=1):
    cfg = SupernetTranslationConfig(supernet_sampling=sampling, sandwich_random=n_random, seed=1)
    task = SupernetTranslationTask(cfg, dictionary, dictionary)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    return task, criterion


def _sample(batch, dictionary):
    src, lengths, prev = batch
    target = torch.cat([prev[:, 1:], torch.full((3, 1), dictionary.eos())], dim=1)
    target[prev.eq(dictionary.pad())] = dictionary.pad()
    return {
        "net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
        "target": target,
        "ntokens": int(target.ne(dictionary.pad()).sum()),
        "nsentences": 3,
        "id": torch.arange(3),
    }


def test_sandwich_gradient_is_the_mean_over_subnets(dictionary, batch):
    sample = _sample(batch, dictionary)
    model = build_supernet(dictionary, dropout=0.0, attention_dropout=0.0)
    task, criterion = _task_and_criterion(dictionary)
    archs = task.subnets_for_update(model, 0)
    assert len(archs) == 3
    model.zero_grad()
    _, total_size, log = task.train_step(sample, model, criterion, _Optimizer(), update_num=0)
    assert total_size == 3 * sample["ntokens"] and log["subnets"] == 3
    assert log["ntokens"] == sample["ntokens"]  # the log counts the data once
    # what fairseq's trainer applies: the summed gradient divided by the summed sample size
    applied = {n: p.grad / total_size for n, p in model.named_parameters() if p.grad is not None}
    expected = {n: torch.zeros_like(g) for n, g in applied.items()}
    for arch in archs:
        model.zero_grad()
        loss, size, _ = criterion(model.bind(arch), sample)
        loss.backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                expected[n] += p.grad / size / len(archs)
    for n in applied:
        torch.testing.assert_close(applied[n], expected[n], atol=1e-7, rtol=1e-5)


def test_sandwich_update_reaches_largest_only_and_smallest_parameters(dictionary, batch):
    sample = _sample(batch, dictionary)
    model = build_supernet(dictionary)
    task, criterion = _task_and_criterion(dictionary, n_random=0)  # exactly largest + smallest
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.zero_grad()
    task.train_step(sample, model, criterion, _Optimizer(), update_num=0)
    opt.step()
    after = dict(model.named_parameters())
    changed = lambda name, idx=(): not torch.equal(before[name][idx], after[name][idx].detach())  # noqa: E731
    # used only by the largest subnet: the third decoder layer, FFN rows beyond the smallest width
    assert changed("decoder.layers.2.fc1.weight")
    assert changed("encoder.layers.0.fc1.weight", (slice(32, 64), slice(None)))
    assert changed("encoder.embed_tokens.weight", (slice(None), slice(24, 32)))
    # used by the smallest subnet too
    assert changed("encoder.layers.0.fc1.weight", (slice(0, 32), slice(0, 24)))
    assert changed("decoder.layers.0.encoder_attn.k_proj.weight")


def test_spos_update_leaves_unused_parameters_alone(dictionary, batch):
    sample = _sample(batch, dictionary)
    model = build_supernet(dictionary)
    task, criterion = _task_and_criterion(dictionary, sampling="spos")
    (arch,) = task.subnets_for_update(model, 0)
    model.zero_grad()
    task.train_step(sample, model, criterion, _Optimizer(), update_num=0)
    for i, layer in enumerate(model.decoder.layers):
        has_grad = layer.fc1.weight.grad is not None and layer.fc1.weight.grad.abs().sum() > 0
        assert has_grad == (i < arch.decoder_layers)
    grad = model.encoder.layers[0].fc1.weight.grad
    assert grad[arch.encoder_ffn_dims[0] :].abs().sum() == 0
    assert grad[:, arch.encoder_embed_dim :].abs().sum() == 0
