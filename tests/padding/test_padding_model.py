"""Net1/Net2 shapes per conv type, the explicit padding, and the FLOP count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from hw2cli.common.errors import Hw2Error
from hw2cli.padding.model import (
    CONV_TYPES,
    NETS,
    BorderPad,
    PaddingNetConfig,
    PaddingNetStack,
    ReluBorderPad,
    feature_size,
    forward_flops,
    make_model,
    pad2d,
)

EXPECTED_SIDE = {"valid": 2, "sconv": 4, "fconv": 6, "circular": 6, "reflect": 6, "replicate": 6}
EXPECTED_PADDING = {
    "valid": ("zeros", 0),
    "sconv": ("zeros", 1),
    "fconv": ("zeros", 2),
    "circular": ("circular", 2),
    "reflect": ("reflect", 2),
    "replicate": ("replicate", 2),
}


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("conv_type", CONV_TYPES)
def test_shapes_and_layers(net, conv_type):
    model = make_model(PaddingNetConfig(net, conv_type), seed=0)
    x = torch.rand(3, 3, 32, 32)
    assert model(x).shape == (3, 2)
    convs = list(model.convs)
    assert [(c.in_channels, c.out_channels, c.stride[0], c.kernel_size) for c in convs] == [
        (3, 32, 1, (3, 3)),
        (32, 32, 2, (3, 3)),
        (32, 64, 2, (3, 3)),
        (64, 64, 2, (3, 3)),
    ]
    assert all(
        c.bias is None and (c.padding_mode, c.padding[0]) == EXPECTED_PADDING[conv_type] for c in convs
    )
    h = x
    for c in convs:
        h = c(h)
    assert h.shape[-1] == EXPECTED_SIDE[conv_type] == feature_size(conv_type)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if net == "net1":
        assert [(lin.in_features, lin.out_features) for lin in linears] == [(64, 2)]
        assert any(isinstance(m, torch.nn.AdaptiveMaxPool2d) for m in model.modules())
    else:
        s = EXPECTED_SIDE[conv_type]
        assert [(lin.in_features, lin.out_features) for lin in linears] == [(64 * s * s, 64), (64, 2)]


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
def test_border_pad_matches_f_pad_values_and_gradients(mode, layout):
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    g = torch.randn(2, 3, 10, 11, dtype=torch.float64)
    ref = F.pad(x, (2, 2, 2, 2), mode=mode)
    (ref_grad,) = torch.autograd.grad(ref, x, g)
    out = pad2d(x, 2, mode, "fast")  # BorderPad for circular, F.pad's own kernels for the others
    (grad,) = torch.autograd.grad(out, x, g)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad)
    assert out.is_contiguous(memory_format=layout)  # the next convolution reads x's layout
    if mode == "circular":
        assert torch.autograd.gradcheck(lambda t: BorderPad.apply(t, 2), (x,))


def test_relu_border_pad_is_border_pad_of_relu():
    mode = "circular"
    cl = torch.channels_last
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64).contiguous(memory_format=cl).requires_grad_()
    g = torch.randn(2, 3, 10, 11, dtype=torch.float64)
    ref = F.pad(F.relu(x), (2, 2, 2, 2), mode=mode)
    (ref_grad,) = torch.autograd.grad(ref, x, g)
    out = ReluBorderPad.apply(x, 2)
    (grad,) = torch.autograd.grad(out, x, g)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad)
    assert out.is_contiguous(memory_format=cl)
    assert torch.autograd.gradcheck(lambda t: ReluBorderPad.apply(t, 2), (x,))


@pytest.mark.parametrize("conv_type", ["valid", "sconv", "fconv", "circular", "reflect", "replicate"])
def test_images_padded_once_give_the_same_logits_and_gradients(conv_type):
    # the CPU trainer pads its images for the first convolution once, channels-last
    model = make_model(PaddingNetConfig("net1", conv_type), seed=3).to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 1, 1, 0])
    grads = []
    for inputs, padded in ((x, False), (model.convs[0].pad_input(x), True)):
        model.zero_grad()
        logits = model(inputs, padded=padded)
        F.cross_entropy(logits, y).backward()
        grads.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = grads
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(v, u, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("conv_type", ["circular", "reflect", "replicate", "fconv"])
def test_padding_implementations_compute_the_same_network(conv_type, layout):
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=layout)
    outs = [
        make_model(PaddingNetConfig("net1", conv_type, impl), seed=7).to(memory_format=layout)(x)
        for impl in ("builtin", "fast")
    ]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=1e-6)


def test_round_seed_sets_the_initial_weights():
    a, b, c = (make_model(PaddingNetConfig(), s) for s in (1, 1, 2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.convs[0].weight, c.convs[0].weight)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("conv_type", ["valid", "sconv", "circular"])
def test_forward_flops_match_torch_flop_counter(net, conv_type):
    cfg = PaddingNetConfig(net, conv_type)
    with FlopCounterMode(display=False) as counter:
        make_model(cfg, 0)(torch.rand(1, 3, 32, 32))
    assert forward_flops(cfg) == counter.get_total_flops()


def test_unknown_names_are_user_errors():
    with pytest.raises(Hw2Error, match="net3.*net1, net2"):
        PaddingNetConfig("net3")
    with pytest.raises(Hw2Error, match="zero.*valid, replicate"):
        PaddingNetConfig("net1", "zero")


@pytest.mark.parametrize("conv_type", ["valid", "fconv"])
def test_training_flops_match_torch_flop_counter(conv_type):
    # one epoch on 4 images, no validation or test: forward + both gradients, except the first
    # convolution's input gradient, which autograd does not compute
    from hw2cli.padding.train import train_flops

    cfg = PaddingNetConfig(net="net1", conv_type=conv_type)
    model = make_model(cfg, seed=0)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    assert train_flops(cfg, epochs=1, n_train=4, n_val=0, n_test=0) == counter.get_total_flops()


STACKS = [["valid"], ["sconv"], ["fconv", "circular", "reflect", "replicate"], ["reflect", "fconv"]]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("conv_types", STACKS, ids="+".join)
def test_stack_computes_each_network_alone(net, conv_types):
    # every network of the stack: its logits and, from the summed loss, its own gradients
    models = [make_model(PaddingNetConfig(net, ct), seed) for ct in conv_types for seed in (0, 1)]
    stack = PaddingNetStack(models)
    x, y = torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 1])
    logits = stack(x)
    assert logits.shape == (len(models), 3, 2)
    sum(F.cross_entropy(out, y) for out in logits).backward()
    for i, model in enumerate(models):
        F.cross_entropy(model(x), y).backward()
        torch.testing.assert_close(logits[i], model(x), rtol=1e-5, atol=1e-6)
        for (name, p), stacked in zip(model.named_parameters(), stack.parameters(), strict=True):
            torch.testing.assert_close(stacked.grad[i], p.grad, rtol=1e-4, atol=1e-6, msg=name)
        assert {k: v.shape for k, v in stack.state_of(i).items()} == {
            k: v.shape for k, v in model.state_dict().items()
        }
        assert all(torch.equal(stack.state_of(i)[k], v) for k, v in model.state_dict().items())


def test_stack_refuses_networks_of_other_shapes():
    with pytest.raises(ValueError, match="one padding width"):
        PaddingNetStack([make_model(PaddingNetConfig("net1", ct), 0) for ct in ("valid", "sconv")])
    with pytest.raises(ValueError, match="one net"):
        PaddingNetStack([make_model(PaddingNetConfig(net, "fconv"), 0) for net in NETS])
