"""attention_lab.panel: the GPU toggle and the explorer panel, without a browser."""

import html
import re

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attention_lab.panel import (
    Explorer,
    check_choice,
    check_data,
    check_figsize,
    check_int,
    check_number,
    explorer_panel,
    gpu_toggle,
)
from attention_lab.render import figure_png
from tests.explorer_cases import CASES, REFUSED
from tests.helpers import image_widget, knobs, pixels


def test_gpu_toggle_is_disabled_with_a_visible_reason_without_cuda():
    toggle, reason = gpu_toggle(cuda_available=False)
    assert toggle.disabled and not toggle.value
    assert "GPU unavailable" in reason.value and "GPU unavailable" in toggle.tooltip


def test_gpu_toggle_is_enabled_with_cuda():
    toggle, reason = gpu_toggle(cuda_available=True)
    assert not toggle.disabled
    assert "CUDA" in reason.value


class LineExplorer(Explorer):
    """The smallest explorer: one line whose slope ``update(slope=...)`` sets."""

    def __init__(self):
        self.fig = Figure(figsize=(2, 2))
        self.x = np.linspace(0, 1, 5)
        (self.line,) = self.fig.add_subplot().plot(self.x, self.x)
        self.calls = []

    def update(self, slope=1.0):
        self.calls.append(slope)
        self.line.set_ydata(slope * self.x)
        return self.fig


def test_explorer_panel_calls_update_and_changes_the_image():
    explorer = LineExplorer()
    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = explorer_panel(explorer, {"slope": slider}, gpu=False)
    image = image_widget(panel)
    before = image.value
    assert explorer.calls == [1.0]  # the panel draws once at the slider's value
    slider.value = -2.0
    assert explorer.calls[-1] == -2.0
    assert image.value != before and bytes(image.value).startswith(b"\x89PNG")


def test_explorer_panel_shows_a_rejected_value_and_keeps_the_figure():
    class PickyExplorer(LineExplorer):
        def update(self, slope):
            if slope < 0:
                raise ValueError(f"slope must be >= 0, got {slope}")
            return super().update(slope)

    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = explorer_panel(PickyExplorer(), {"slope": slider}, gpu=False)
    image = image_widget(panel)
    before = image.value
    slider.value = -1.0
    status = panel.children[-1]
    assert "not updated: slope must be &gt;= 0, got -1.0" in status.value
    assert image.value == before


def test_explorer_panel_reuses_the_frame_of_a_frame_key_seen_before():
    class KeyedExplorer(LineExplorer):
        def frame_key(self):
            return self.calls[-1]

    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = explorer_panel(KeyedExplorer(), {"slope": slider}, gpu=False)
    image, status = image_widget(panel), panel.children[-1]
    first = image.value
    slider.value = 2.0
    assert image.value != first and "draw 0 ms" not in status.value
    slider.value = 1.0
    assert image.value == first and "draw 0 ms (this frame was drawn before)" in status.value


def test_explorer_panel_with_gpu_adds_the_toggle():
    panel = explorer_panel(LineExplorer(), {"slope": widgets.FloatSlider()}, gpu=True)
    toggles = [w for box in panel.children if isinstance(box, widgets.HBox)
               for w in box.children if isinstance(w, widgets.ToggleButton)]
    assert len(toggles) == 1
    assert toggles[0].disabled == (not torch.cuda.is_available())


def _start_values(moves):
    """One value per keyword the moves use: the first each move gives it."""
    values = {}
    for params in moves:
        for name, value in params.items():
            values.setdefault(name, value)
    return values


def _caption(panel):
    captions = [c for c in panel.children[:-1] if isinstance(c, widgets.HTML)]
    return captions[0].value if captions else None


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_update_changes_nothing(case):
    """Every parameter is checked before anything changes: the figure stays, and so does every
    setting (the next update with no arguments draws the same picture)."""
    explorer, moves = CASES[case]()
    explorer.update(**moves[0])
    before = pixels(figure_png(explorer.fig))
    for params, error, match in REFUSED[case]:
        with pytest.raises(error, match=match):
            explorer.update(**params)
        assert (pixels(figure_png(explorer.fig)) == before).all(), params
        explorer.update()
        assert (pixels(figure_png(explorer.fig)) == before).all(), f"{params}, then update()"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_panel_draws_every_move_and_shows_each_refusal(case):
    """In a panel (captions on) every frame equals a full draw; a refused value shows its
    message in the status line, and the image and caption stay."""
    explorer, moves = CASES[case]()
    controls = knobs(**_start_values(moves))
    panel = explorer_panel(explorer, controls, gpu=False)
    image, status = image_widget(panel), panel.children[-1]
    assert (_caption(panel) is None) == (explorer.caption() is None)
    for params in moves:
        for name, value in params.items():
            controls[name].value = value
        assert "last update" in status.value, status.value
        levels = np.abs(pixels(image.value) - pixels(figure_png(explorer.fig))).max(axis=-1)
        assert levels.max() <= 16 and (levels > 0).mean() <= 1e-3, params
    for params, _, match in REFUSED[case]:
        if len(params) != 1 or set(params) - set(controls):
            continue  # a panel changes one control at a time
        ((name, value),) = params.items()
        good, png, caption = controls[name].value, image.value, _caption(panel)
        controls[name].value = value
        assert "not updated" in status.value and re.search(match, html.unescape(status.value))
        assert image.value == png and _caption(panel) == caption
        controls[name].value = good


def test_a_caption_replaces_the_texts_it_stands_for():
    explorer, _ = CASES["temperature"]()
    assert explorer.title.get_text() == "softmax(scores / 1)"  # the static figure reads alone
    controls = knobs(temperature=1.0)
    panel = explorer_panel(explorer, controls, gpu=False)
    controls["temperature"].value = 0.5
    assert "temperature <i>T</i> = 0.5" in _caption(panel)
    assert explorer.title.get_text() == "softmax(scores / T)"
    assert isinstance(panel.children[1], widgets.HTML) and panel.children[2] is image_widget(panel)


class BrokenDraw(LineExplorer):
    """A negative slope names an artist the figure does not draw: figure_png raises."""

    def changing_artists(self):
        return [self.line] if self.calls[-1] >= 0 else [Figure().add_subplot()]


class Overflowing(LineExplorer):
    """A negative slope raises an error that is not a refusal (a bug)."""

    def update(self, slope=1.0):
        if slope < 0:
            raise OverflowError("math range error")
        return super().update(slope)


@pytest.mark.parametrize(("explorer", "message"), [
    (BrokenDraw, "could not draw: changing must hold children of the figure"),
    (Overflowing, "not updated: OverflowError: math range error")])
def test_an_error_while_updating_or_drawing_is_shown_and_the_figure_stays(explorer, message):
    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = explorer_panel(explorer(), {"slope": slider}, gpu=False)
    image, status = image_widget(panel), panel.children[-1]
    before = image.value
    slider.value = -1.0
    assert message in status.value
    assert image.value == before


@pytest.mark.parametrize(("check", "value", "error", "match"), [
    (lambda v: check_int("n", v, 0, 3), 4, ValueError, r"n must be an integer 0 \.\. 3, got 4"),
    (lambda v: check_int("n", v, 1), True, TypeError, r"n must be an integer >= 1, got bool"),
    (lambda v: check_int("n", v, 1), np.int64(0), ValueError, "got 0"),
    (lambda v: check_number("x", v, 0.5, 2.0, "a width"), 3, ValueError,
     r"x \(a width\) must be a number in 0.5 \.\. 2, got 3"),
    (lambda v: check_number("x", v, 0.5, 2.0), None, TypeError, "got NoneType None"),
    (lambda v: check_choice("k", v, [1, 2]), True, ValueError, r"k must be one of \[1, 2\]"),
    (lambda v: check_choice("k", v, [1, 2]), np.ones(2), ValueError, "k must be one of"),
    (lambda v: check_data("x", v, 2, "(n, m)"), torch.zeros(0, 3), ValueError, "no empty"),
    (lambda v: check_data("x", v, 1, "(n,)"), torch.tensor([1.0, float("nan")]), ValueError,
     "finite"),
    (check_figsize, (3, 0.1), ValueError, r"figsize\[1\] \(inches\)"),
    (check_figsize, "3x2", TypeError, "figsize must be"),
])
def test_the_checks_name_the_parameter_the_range_and_the_value(check, value, error, match):
    with pytest.raises(error, match=match):
        check(value)


def test_the_checks_return_the_value_in_its_plain_type():
    assert check_int("n", np.int64(2), 0, 3) == 2 and type(check_int("n", np.int64(2), 0)) is int
    assert check_number("x", 1, 0, 2) == 1.0 and check_choice("k", 2.0, [1, 2]) == 2
    assert check_figsize([3, 2]) == (3.0, 2.0)


def test_an_error_while_moving_to_a_device_is_shown_and_the_figure_stays():
    class Unmovable(LineExplorer):
        def to(self, device):
            raise RuntimeError("CUDA out of memory")

    panel = explorer_panel(Unmovable(), {"slope": widgets.FloatSlider(value=1.0)}, gpu=True)
    image, status = image_widget(panel), panel.children[-1]
    before = image.value
    (toggle,) = [w for box in panel.children if isinstance(box, widgets.HBox)
                 for w in box.children if isinstance(w, widgets.ToggleButton)]
    toggle.value = True
    assert "not moved: RuntimeError: CUDA out of memory" in status.value
    assert image.value == before
