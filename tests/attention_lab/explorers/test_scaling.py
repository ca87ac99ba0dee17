"""Chapter 04's explorer: score spread and softmax saturation against d."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from attention_lab.explorers.scaling import ScalingExplorer, softmax_jacobian_norm, softmax_stats


def test_softmax_jacobian_norm_matches_autograd():
    scores = torch.randn(4, 7, dtype=torch.float64)
    for row in scores:
        jacobian = torch.autograd.functional.jacobian(lambda s: F.softmax(s, -1), row)
        got = softmax_jacobian_norm(F.softmax(row, -1))
        torch.testing.assert_close(got, torch.linalg.matrix_norm(jacobian))


def test_softmax_stats_limits():
    uniform = softmax_stats(torch.zeros(3, 8))
    assert uniform["max_weight"] == pytest.approx(1 / 8)
    assert uniform["entropy"] == pytest.approx(1.0)
    saturated = softmax_stats(torch.tensor([[100.0, 0, 0, 0]]))
    assert saturated["max_weight"] == pytest.approx(1.0)
    assert saturated["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert saturated["grad_norm"] == pytest.approx(0.0, abs=1e-6)


def test_scaling_explorer_variance_follows_theory():
    explorer = ScalingExplorer(num_queries=256)
    for d in (4, 64, 1024):
        for sigma in (0.5, 1.0):
            scores = explorer.scores(d, sigma)
            assert scores["raw"].var() / (sigma**4 * d) == pytest.approx(1, abs=0.15)
            assert scores["scaled"].var() / sigma**4 == pytest.approx(1, abs=0.15)


def test_scaling_explorer_saturation_grows_with_d_only_without_scaling():
    curves = ScalingExplorer().curves(1.0)
    raw, scaled = curves["raw"], curves["scaled"]
    assert raw["max_weight"][-1] > 0.9 > raw["max_weight"][0]
    assert raw["grad_norm"][-1] < 0.5 * raw["grad_norm"][0]
    assert np.ptp(scaled["max_weight"]) < 0.05 and np.ptp(scaled["grad_norm"]) < 0.05


def test_scaling_explorer_updates_artists_in_place():
    explorer = ScalingExplorer()
    heights = {kind: stairs.get_data().values.copy() for kind, stairs in explorer.stairs.items()}
    theory = explorer.theory["raw"].get_data().values.copy()
    text = explorer.text.get_text()
    curve = explorer.lines["raw", "max_weight"].get_ydata().copy()
    assert explorer.update(d=1024, sigma=1.5) is explorer.fig
    assert not np.allclose(explorer.stairs["raw"].get_data().values, heights["raw"])
    assert not np.allclose(explorer.stairs["scaled"].get_data().values, heights["scaled"])
    assert not np.allclose(explorer.theory["raw"].get_data().values, theory)
    assert not np.allclose(explorer.lines["raw", "max_weight"].get_ydata(), curve)
    assert explorer.text.get_text() != text and "d = 1024" in explorer.text.get_text()
    assert list(explorer.marker.get_xdata()) == [1024, 1024]


def test_scaling_explorer_histograms_are_densities_and_rejects_unknown_d():
    explorer = ScalingExplorer()
    for kind, stairs in explorer.stairs.items():
        widths = np.diff(explorer.bins[kind])
        assert (stairs.get_data().values * widths).sum() == pytest.approx(1)
        theory = explorer.theory[kind].get_data().values
        assert (theory * widths).sum() == pytest.approx(1)
        # measured and theoretical histograms agree bin by bin (4096 samples)
        assert np.abs(stairs.get_data().values - theory).max() < 0.25 * theory.max()
    with pytest.raises(ValueError, match="d must be one of"):
        explorer.update(d=3)


def test_scaling_explorer_to_cpu():
    explorer = ScalingExplorer().to("cpu")
    assert explorer.device.type == "cpu" and explorer.q.device.type == "cpu"
    explorer.update(d=2, sigma=1.5)
