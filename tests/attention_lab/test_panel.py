"""attention_lab.panel: the GPU toggle and the explorer panel, without a browser."""

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from attention_lab.panel import Explorer, explorer_panel, gpu_toggle
from tests.helpers import image_widget


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
