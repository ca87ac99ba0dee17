"""attention_utils set-up: seeds and the device choice."""

import random

import numpy as np
import torch

import attention_utils as au


def test_set_seed_reproduces_torch_numpy_and_random():
    def draw():
        return torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002

    au.set_seed(7)
    first = draw()
    au.set_seed(7)
    second = draw()
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    au.set_seed(8)
    assert not torch.equal(draw()[0], first[0])


def test_get_device_without_gpu_is_cpu():
    assert au.get_device(False) == torch.device("cpu")
