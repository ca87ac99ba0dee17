"""attention_lab.architectures: sequential products and path lengths of CNN, RNN, self-attention."""

import pytest
import torch

from attention_lab.architectures import (
    ConvLayer,
    RNNLayer,
    SelfAttentionLayer,
    dependence,
    fewest_steps,
    recurrent_outputs,
    sequential_products,
    stacked_outputs,
)

D = 8


def _x(n, batch=2, dtype=torch.float64, seed=0):
    return torch.randn(batch, n, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _convs(count, kernel_size=3, dilation=1):
    torch.manual_seed(0)
    return [ConvLayer(D, kernel_size, dilation).double() for _ in range(count)]


@pytest.mark.parametrize("layer", [ConvLayer(D), RNNLayer(D), SelfAttentionLayer(D)],
                         ids=["conv", "rnn", "attention"])
def test_layers_keep_the_shape(layer):
    x = _x(5, dtype=torch.float32)
    assert layer(x).shape == (2, 5, D)


def test_conv_layer_needs_an_odd_kernel():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd number, got 4"):
        ConvLayer(D, 4)


@pytest.mark.parametrize(("n", "kernel_size", "dilation", "layers"),
                         [(9, 3, 1, 8), (9, 5, 1, 4), (17, 9, 1, 4), (9, 3, 2, 4), (2, 3, 1, 1)])
def test_a_conv_stack_needs_n_over_its_reach_layers(n, kernel_size, dilation, layers):
    """Each layer reaches dilation * (kernel_size - 1) / 2 positions further."""
    convs = _convs(n, kernel_size, dilation)
    assert fewest_steps(stacked_outputs(convs, -1), _x(n), source=0) == layers


def test_an_rnn_needs_one_update_per_position():
    torch.manual_seed(0)
    rnn = RNNLayer(D).double()
    for n in (1, 4, 12):
        assert fewest_steps(recurrent_outputs(rnn, -1), _x(n), source=0) == n
    assert fewest_steps(recurrent_outputs(rnn, 3), _x(8), source=2) == 2


def test_self_attention_connects_every_pair_in_one_layer_and_a_causal_mask_cuts_one_way():
    torch.manual_seed(0)
    layer = SelfAttentionLayer(D).double()
    n = 16
    causal = torch.arange(1, n + 1).repeat(2, 1)  # (B, Tq): query i keeps keys 0..i
    assert fewest_steps(stacked_outputs([layer], -1), _x(n), source=0) == 1
    assert fewest_steps(stacked_outputs([layer], -1, valid_lens=causal), _x(n), source=0) == 1
    assert fewest_steps(stacked_outputs([layer, layer], 0, valid_lens=causal), _x(n),
                        source=-1) is None


def test_fewest_steps_checks_its_input_and_leaves_it_alone():
    convs = _convs(3)
    with pytest.raises(TypeError, match="x must be float64"):
        fewest_steps(stacked_outputs(convs, -1), _x(4, dtype=torch.float32), source=0)
    with pytest.raises(ValueError, match=r"source must be a position in 0 \.\. 3, got 4"):
        fewest_steps(stacked_outputs(convs, -1), _x(4), source=4)
    with pytest.raises(ValueError, match="x must be 3-D"):
        fewest_steps(stacked_outputs(convs, -1), _x(4)[0], source=0)
    x = _x(4)
    before = x.clone()
    fewest_steps(stacked_outputs(convs, -1), x, source=0)
    assert torch.equal(x, before) and not x.requires_grad


def test_dependence_is_exactly_zero_until_a_path_exists_and_checks_eagerly():
    sizes = list(dependence(stacked_outputs(_convs(5), -1), _x(5), source=0))
    assert sizes[:3] == [0.0, 0.0, 0.0] and all(size > 0 for size in sizes[3:])
    with pytest.raises(TypeError, match="x must be float64"):
        dependence(stacked_outputs(_convs(1), -1), _x(4, dtype=torch.float32), source=0)


def test_fewest_steps_is_none_when_no_step_reaches():
    assert fewest_steps(stacked_outputs(_convs(2), -1), _x(9), source=0) is None


def test_sequential_products_count_the_longest_chain():
    torch.manual_seed(0)
    x = _x(10, dtype=torch.float32).requires_grad_(True)
    conv, rnn, attention = ConvLayer(D), RNNLayer(D), SelfAttentionLayer(D)
    assert sequential_products(conv(x)) == 1
    assert sequential_products(conv(conv(conv(x)))) == 3
    assert sequential_products(rnn(x)) == 10  # one hidden-state product per position
    assert sequential_products(attention(x)) == 4  # W_q, Q K^T, weights @ V, W_o
    assert sequential_products(attention(attention(x))) == 8


def test_sequential_products_walk_graphs_deeper_than_the_python_stack():
    torch.manual_seed(0)
    x = torch.randn(1, 1500, 2, requires_grad=True)
    assert sequential_products(RNNLayer(2)(x)) == 1500


def test_sequential_products_need_a_recorded_graph():
    with torch.no_grad():
        output = ConvLayer(D)(_x(4, dtype=torch.float32))
    with pytest.raises(ValueError, match="computed with autograd recording"):
        sequential_products(output)
    with pytest.raises(ValueError, match="computed with autograd recording"):
        sequential_products("not a tensor")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_path_lengths_on_cuda_equal_the_cpu_ones():
    convs = _convs(9)
    cpu = fewest_steps(stacked_outputs(convs, -1), _x(9), source=0)
    cuda_convs = [conv.to("cuda") for conv in convs]
    assert fewest_steps(stacked_outputs(cuda_convs, -1), _x(9).cuda(), source=0) == cpu
    torch.manual_seed(0)
    rnn = RNNLayer(D).double().to("cuda")
    assert fewest_steps(recurrent_outputs(rnn, -1), _x(6).cuda(), source=0) == 6
