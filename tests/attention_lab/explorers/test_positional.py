"""Chapter 06's explorer: positional encodings, their Gram rows and the offset rotation."""

import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch

import attention_utils as au
from attention_lab.explorers.positional import (
    PositionalExplorer,
    check_index,
    frequencies,
    offset_rotation,
)
from attention_lab.panel import explorer_panel
from tests.helpers import image_widget


@pytest.fixture(scope="module")
def encodings():
    return au.PositionalEncoding(16, 0.0, max_len=300).P[0].double()  # (300, 16)


@pytest.fixture(scope="module")
def built():
    """One figure for the module: building one costs a full layout draw."""
    return PositionalExplorer(num_hiddens=16, max_position=20, max_offset=10, position=4,
                              offset=3, frequency=1)


@pytest.fixture
def explorer(built):
    """The shared explorer, back at its defaults (t = 4, k = 3, j = 1)."""
    built.update(position=4, offset=3, frequency=1)
    return built


def test_frequencies_are_the_encodings_own(encodings):
    omega = frequencies(16)  # (8,)
    positions = torch.arange(300, dtype=torch.float64)[:, None]
    torch.testing.assert_close(encodings[:, 0::2], torch.sin(positions * omega), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(encodings[:, 1::2], torch.cos(positions * omega), atol=1e-4,
                               rtol=0)
    assert omega[0] == 1.0 and bool((omega.diff() < 0).all())


@pytest.mark.parametrize("num_hiddens", [0, 7, -2, 4.0, True])
def test_frequencies_need_a_positive_even_integer(num_hiddens):
    with pytest.raises(ValueError, match="num_hiddens must be a positive even integer"):
        frequencies(num_hiddens)


@pytest.mark.parametrize("k", [0, 1, 3, 17, -5])
def test_offset_rotation_moves_every_position_by_k(encodings, k):
    R = offset_rotation(k, 16)  # (d, d)
    ts = [t for t in (0, 7, 40, 150, 250) if 0 <= t + k < 300]
    for t in ts:
        torch.testing.assert_close(R @ encodings[t], encodings[t + k], atol=1e-4, rtol=0)


def test_offset_rotation_is_orthogonal_and_composes():
    torch.testing.assert_close(offset_rotation(0, 8), torch.eye(8, dtype=torch.float64))
    R3, R4 = offset_rotation(3, 8), offset_rotation(4, 8)
    torch.testing.assert_close(R3 @ R4, offset_rotation(7, 8))
    torch.testing.assert_close(R3.T @ R3, torch.eye(8, dtype=torch.float64))
    torch.testing.assert_close(R3.T, offset_rotation(-3, 8))
    pairs = torch.arange(8) // 2
    off_blocks = pairs[:, None] != pairs[None, :]  # (d, d): entries outside the 2 x 2 blocks
    assert not offset_rotation(5, 8)[off_blocks].any()


def test_offset_rotation_rejects_non_integer_offsets():
    with pytest.raises(TypeError, match="k \\(the offset\\) must be an integer, got float"):
        offset_rotation(1.5, 8)
    with pytest.raises(TypeError, match="got bool"):
        offset_rotation(True, 8)
    with pytest.raises(ValueError, match="num_hiddens must be a positive even integer"):
        offset_rotation(1, 5)


def test_check_index():
    assert check_index("position", np.int64(3), 0, 5) == 3
    with pytest.raises(ValueError, match=r"position must be an integer in 0 \.\. 5, got 6"):
        check_index("position", 6, 0, 5)
    with pytest.raises(TypeError, match=r"offset must be an integer in 0 \.\. 5, got float 1.0"):
        check_index("offset", 1.0, 0, 5)


def _state(explorer):
    return {"params": explorer.frame_key(),
            "rows": [rect.get_y() for rect in explorer.rows], "band": explorer.band.get_x(),
            "plain": explorer.plain.get_ydata().copy(),
            "rotated": explorer.rotated.get_ydata().copy(),
            "dots": np.array(explorer.dots.get_xydata()),
            "bars": [bar.get_height() for bar in explorer.bars],
            "titles": [title.get_text() for title in explorer.titles]}


def _same(a, b):
    return all(np.array_equal(a[key], b[key]) for key in a)


def test_explorer_draws_the_defaults(explorer):
    t, k, j = 4, 3, 1
    assert explorer.frame_key() == (t, k, j)
    assert explorer.fig.get_layout_engine() is None  # placed by hand: nothing moves on a draw
    assert explorer.P.shape == (31, 16) and explorer.num_positions == 31
    assert [rect.get_y() for rect in explorer.rows] == [t - 0.5, t + k - 0.5]
    assert explorer.band.get_x() == 2 * j - 0.5
    np.testing.assert_allclose(explorer.plain.get_ydata(), explorer.P @ explorer.P[t])
    np.testing.assert_allclose(explorer.rotated.get_ydata(), explorer.P @ explorer.P[t + k],
                               atol=1e-4)
    assert int(np.argmax(explorer.rotated.get_ydata())) == t + k
    np.testing.assert_allclose([bar.get_height() for bar in explorer.bars],
                               np.cos(k * frequencies(16).numpy()))
    omega = frequencies(16)[j].item()
    np.testing.assert_allclose(explorer.point_tk.get_xydata()[0],
                               [math.cos((t + k) * omega), math.sin((t + k) * omega)])
    np.testing.assert_allclose(np.hypot(*explorer.dots.get_data()), 1.0)
    assert list(explorer.equal_marks.get_xdata()) == [t - k, t + k]
    gram_row = explorer.equal_marks.get_ydata()
    assert gram_row[0] == pytest.approx(gram_row[1], abs=1e-5)  # symmetric in +-k
    assert "rows t = 4 and t + k = 7" in explorer.titles[0].get_text()
    assert "peaks at s = 4" in explorer.titles[2].get_text()
    assert "at s = 7" in explorer.titles[2].get_text()


def test_explorer_update_changes_the_artists_in_place(explorer):
    fig, artists = explorer.fig, explorer.changing_artists()
    before = _state(explorer)
    assert explorer.update(position=20, offset=10, frequency=0) is fig
    assert explorer.changing_artists() == artists  # the same objects, changed
    after = _state(explorer)
    assert all(not np.array_equal(before[key], after[key]) for key in before)
    assert int(np.argmax(explorer.rotated.get_ydata())) == 30
    assert list(explorer.equal_marks.get_xdata()) == [10, 30]
    assert explorer.bars[0].get_facecolor() != explorer.bars[1].get_facecolor()


def test_explorer_keeps_what_is_left_out(explorer):
    explorer.update(offset=0)
    assert explorer.frame_key() == (4, 0, 1)
    assert list(explorer.equal_marks.get_xdata()) == [4, 4]
    np.testing.assert_allclose(explorer.rotated.get_ydata(), explorer.plain.get_ydata(),
                               atol=1e-9)


def test_explorer_hides_a_mirror_position_before_zero(explorer):
    explorer.update(position=1, offset=5)
    assert list(explorer.equal_marks.get_xdata()) == [6]


@pytest.mark.parametrize("params", [
    {"position": -1}, {"position": 21}, {"offset": 11}, {"offset": -1}, {"frequency": 8},
    {"position": 2, "frequency": -1}, {"offset": 1, "position": 99}],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_explorer_refuses_out_of_range_values_and_changes_nothing(explorer, params):
    before = _state(explorer)
    with pytest.raises(ValueError, match="must be an integer in 0 .. "):
        explorer.update(**params)
    assert _same(before, _state(explorer))


@pytest.mark.parametrize("params", [{"position": 1.5}, {"offset": True}, {"frequency": "3"},
                                    {"position": 2, "offset": 2.0}])
def test_explorer_refuses_non_integers_and_changes_nothing(explorer, params):
    before = _state(explorer)
    with pytest.raises(TypeError, match="must be an integer"):
        explorer.update(**params)
    assert _same(before, _state(explorer))


def test_explorer_refuses_unknown_keywords(explorer):
    with pytest.raises(TypeError):
        explorer.update(head=1)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"position": 50}, ValueError, r"position must be an integer in 0 \.\. 40"),
    ({"frequency": 16}, ValueError, r"frequency must be an integer in 0 \.\. 15"),
    ({"num_hiddens": 7}, ValueError, "num_hiddens must be a positive even integer"),
    ({"max_offset": -1}, ValueError, "max_offset must be an integer in 0 .. 10000"),
    ({"max_position": 2.5}, TypeError, "max_position must be an integer")])
def test_explorer_rejects_bad_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        PositionalExplorer(**kwargs)


def test_explorer_panel_moves_and_refuses_visibly(explorer):
    controls = {"position": widgets.IntText(value=4), "offset": widgets.IntSlider(3, 0, 10),
                "frequency": widgets.IntSlider(1, 0, 7)}
    panel = explorer_panel(explorer, controls, gpu=False)
    image, status = image_widget(panel), panel.children[-1]
    first = image.value
    controls["offset"].value = 6
    assert explorer.frame_key() == (4, 6, 1) and image.value != first
    moved = image.value
    controls["position"].value = 99
    assert "position must be an integer in 0 .. 20, got 99" in status.value
    assert image.value == moved and explorer.frame_key() == (4, 6, 1)
    controls["position"].value = 4
    controls["offset"].value = 3
    assert image.value == first  # a frame drawn before is reused


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_explorer_on_cuda_draws_what_it_draws_on_the_cpu(explorer):
    cpu = _state(explorer)
    explorer.to("cuda")
    explorer.update(position=5)
    explorer.update(position=4)
    assert explorer.device.type == "cuda" and _same(cpu, _state(explorer))
