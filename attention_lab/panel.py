"""The widget side of every explorer: the :class:`Explorer` contract, its panel, the GPU toggle.

An explorer (one module per chapter in :mod:`attention_lab.explorers`) owns a
figure and an ``update``; :func:`explorer_panel` wires ipywidgets to it and
shows the figure as a PNG rendered by :mod:`attention_lab.render`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable, Mapping, Sequence

import ipywidgets as widgets
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch import nn

import attention_utils as au
from attention_lab.measure import timed
from attention_lab.render import figure_png


class Explorer:
    """Base of every figure a widget drives; the contract every explorer keeps.

    - ``__init__`` builds ``self.fig`` once, draws it at the defaults (the
      static figure a notebook shows before its panel) and freezes its layout
      (:func:`attention_lab.layout.freeze_layout`).
    - ``update(**params)`` checks *every* parameter first and raises
      ``ValueError``/``TypeError`` naming the parameter, what it expected and
      what it got, before it changes anything: a rejected update leaves the
      explorer exactly as it was.  Then it recomputes, changes the existing
      artists (``set_data``, ``set_text``, ...; never a new figure) and returns
      ``self.fig``.  Parameters left out keep their current value.
    - ``changing_artists()`` lists **every** artist ``update`` touches: the
      panel redraws only those over a cached background
      (:func:`attention_lab.render.figure_png`), so an artist changed but not
      listed would show stale pixels (tests/attention_lab/test_render.py draws
      every explorer both ways and compares the pixels).  None redraws all.
    - ``frame_key()`` returns a key that fixes the whole picture, if there is
      one, so the panel can show a frame it drew before; None draws every update.
    - :meth:`to` moves every tensor and module the explorer holds (the GPU
      toggle); ``self.device`` says where the next update runs.

    Explorers are plain objects: tests call ``update`` without a browser.
    """

    fig: Figure
    device: torch.device = torch.device("cpu")

    def update(self, **params) -> Figure:
        raise NotImplementedError

    def changing_artists(self) -> list[Artist] | None:
        """The artists :meth:`update` changes, which :func:`figure_png` redraws alone."""
        return None

    def frame_key(self) -> Hashable | None:
        """A key that fixes the whole picture, if there is one; the panel reuses its frames."""
        return None

    def to(self, device: torch.device | str) -> Explorer:
        """Move every tensor and module held in an attribute (or in a dict, list or tuple)."""
        self.device = torch.device(device)
        for name, value in vars(self).items():
            setattr(self, name, _moved(value, self.device))
        return self


def _moved(value: object, device: torch.device) -> object:
    if isinstance(value, torch.Tensor | nn.Module):
        return value.to(device)
    if type(value) is dict:
        return {key: _moved(item, device) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_moved(item, device) for item in value)
    return value


def valid_lengths(params: Mapping[str, object], names: Sequence[str], current: Sequence[int],
                  num_kv: int) -> tuple[int, ...]:
    """The valid lengths after the keywords ``valid_len_<i>`` of ``params`` are applied.

    ``names`` are the keywords (one per batch row), ``current`` the lengths
    kept for rows left out.  Each value goes through the same check as every
    ``valid_lens`` of :mod:`attention_utils` (an integer in ``0 .. num_kv``),
    with the keyword named in the error.  Raises before anything is changed.
    """
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise TypeError(f"unknown keyword(s) {unknown}: expected {', '.join(names)}")
    lengths = dict(zip(names, current, strict=True))
    for name, value in params.items():
        lengths[name] = int(au.check_valid_lens([value], 1, 1, num_kv, torch.device("cpu"),
                                                name)[0, 0])
    return tuple(lengths[name] for name in names)


def gpu_toggle(cuda_available: bool | None = None) -> tuple[widgets.ToggleButton, widgets.HTML]:
    """The GPU toggle and the line that explains its state.

    Enabled only when CUDA is available; otherwise disabled, with the reason
    shown next to it (and in its tooltip).  ``cuda_available`` overrides
    ``torch.cuda.is_available()`` for tests.
    """
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    reason = ("computation runs on the CPU; switch on to move it to CUDA" if available else
              "GPU unavailable: torch.cuda.is_available() is False on this machine")
    toggle = widgets.ToggleButton(value=False, description="GPU", icon="microchip",
                                  disabled=not available, tooltip=reason)
    return toggle, widgets.HTML(f"<i>{reason}</i>")


def explorer_panel(explorer: Explorer, controls: Mapping[str, widgets.ValueWidget],
                   gpu: bool = True, dpi: int = 80) -> widgets.VBox:
    """Wire widgets to an explorer: moving a control calls ``explorer.update``.

    ``controls`` maps ``update``'s keyword names to widgets.  The figure is
    shown as a PNG ``widgets.Image`` re-rendered after each update, redrawing
    only :meth:`Explorer.changing_artists` (and reusing the PNG of an earlier
    update with the same :meth:`Explorer.frame_key`); a status line says which
    device ran the update and how long computing and drawing took, or, when
    ``update`` rejects a value or the figure cannot be drawn, the error: the
    last good figure stays.
    With ``gpu=True`` a GPU toggle moves the explorer with
    :meth:`Explorer.to` (disabled, with its reason, where CUDA is absent).
    """
    image = widgets.Image(format="png",
                          layout=widgets.Layout(align_self="flex-start"))  # natural size, unblurred
    status = widgets.HTML()
    frames: dict[Hashable, bytes] = {}  # frame_key -> PNG

    def refuse(what: str, err: Exception) -> None:
        status.value = (f"<span style='color:#b00'>{what}: {html.escape(str(err))}</span> "
                        "(the figure shows the last good setting)")

    def redraw(_change=None) -> None:
        params = {name: control.value for name, control in controls.items()}
        try:
            _, compute_ms = timed(lambda: explorer.update(**params), explorer.device)
        except (ValueError, TypeError) as err:  # e.g. a value typed into a Text box
            refuse("not updated", err)
            return
        key = explorer.frame_key()
        if key in frames:
            image.value, draw = frames[key], "draw 0 ms (this frame was drawn before)"
        else:
            try:
                png, draw_ms = timed(lambda: figure_png(explorer.fig, dpi,
                                                        explorer.changing_artists()))
            except Exception as err:  # noqa: BLE001  (shown to the learner, not lost in a log)
                refuse("could not draw", err)
                return
            image.value, draw = png, f"draw {draw_ms:.0f} ms"
            if key is not None:
                frames[key] = png
        status.value = (f"last update on <b>{au.device_name(explorer.device)}</b>: "
                        f"compute {compute_ms:.1f} ms, {draw}")

    for control in controls.values():
        control.observe(redraw, names="value")
    rows = [widgets.HBox(list(controls.values()))]
    if gpu:
        toggle, reason = gpu_toggle()

        def move(change) -> None:
            explorer.to(au.get_device(change["new"]))
            reason.value = f"<i>computation on {au.device_name(explorer.device)}</i>"
            redraw()

        toggle.observe(move, names="value")
        rows.append(widgets.HBox([toggle, reason]))
    redraw()
    return widgets.VBox([*rows, image, status])


def timing_panel(run: Callable[[torch.device], str]) -> widgets.VBox:
    """GPU toggle + "Time it" button: a click shows ``run(device)`` (an HTML string).

    The toggle is disabled, with its reason, where CUDA is absent.
    """
    toggle, reason = gpu_toggle()
    button = widgets.Button(description="Time it", icon="clock")
    result = widgets.HTML()

    def click(_button) -> None:
        result.value = run(au.get_device(toggle.value))

    button.on_click(click)
    return widgets.VBox([widgets.HBox([toggle, button, reason]), result])

