"""Fixtures shared by the unit tests."""

import pytest
import torch

from attention_lab.models.cummax import MaxStateSuper


@pytest.fixture
def one_thread():
    """Train tiny models on one thread: faster than two on a busy runner, same numbers anywhere."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def block() -> MaxStateSuper:
    """A seeded cumulative-max block: width 16, 4 heads."""
    torch.manual_seed(0)
    return MaxStateSuper(16, 4)
