"""The widget side of every explorer: the :class:`Explorer` contract, its panel, the GPU toggle.

An explorer (one module per chapter in :mod:`attention_lab.explorers`) owns a
figure and an ``update``; :func:`explorer_panel` wires ipywidgets to it and
shows the figure as a PNG rendered by :mod:`attention_lab.render`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Hashable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import nn

import attention_utils as au
from attention_lab.measure import timed
from attention_lab.render import figure_png, forget_backgrounds


class Explorer:
    """Base of every figure a widget drives; the contract every explorer keeps.

    - ``__init__`` checks every argument (as ``update`` does) and builds
      ``self.fig`` once, draws it at the defaults (the static figure a notebook
      shows before its panel) and freezes its layout
      (:func:`attention_lab.layout.freeze_layout`).
    - ``update(**params)`` checks *every* parameter first (type, range or
      choices, the content of a typed string) and raises
      ``ValueError``/``TypeError`` naming the parameter, what it expected and
      what it got, before it changes anything: a rejected update leaves the
      explorer and its figure exactly as they were.  Values an explorer
      accepts never draw NaN (extreme ones are computed stably or refused).
      Then it recomputes, changes the existing artists (``set_data``,
      ``set_text``, ...; never a new figure) and returns ``self.fig``.
      Parameters left out (or None) keep their current value.
    - ``changing_artists()`` lists **every** artist ``update`` touches: the
      panel redraws only those over a cached background
      (:func:`attention_lab.render.figure_png`), so an artist changed but not
      listed would show stale pixels (tests/attention_lab/test_render.py draws
      every explorer both ways and compares the pixels).  None redraws all.
    - ``caption()`` (optional) returns HTML that a panel shows above the
      figure, read again after every update: the text that changes on every
      move (the current setting, measured numbers).  As HTML it costs the
      browser next to nothing; as pixels matplotlib 3.11 lays out and
      rasterises every glyph on every draw (about 0.1 ms each).
      ``caption_texts()`` maps the figure's texts that the caption stands for
      (titles that carry numbers) to what each reads in a panel: a constant
      heading, or "" for nothing.  The static figure shows the full texts;
      after each update a panel sets these texts to their panel strings and
      redraws them no more (they join the cached background).  A panel also
      calls ``use_caption()`` once, before its first draw: an explorer may
      switch its figure to a panel form there (e.g. tick labels that no
      longer carry what the caption now says).
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

    def caption(self) -> str | None:
        """HTML a panel shows above the figure after each update, or None (no caption)."""
        return None

    def caption_texts(self) -> dict[Text, str]:
        """The figure's texts :meth:`caption` stands for -> their constant text in a panel."""
        return {}

    def use_caption(self) -> None:
        """Called once by a panel that shows :meth:`caption`, before it draws; does nothing
        unless an explorer has a panel form of its figure."""

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


# -- the checks every explorer's __init__ and update run before changing anything ------------


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``low .. high`` (no upper bound for None), else a TypeError or
    ValueError that names ``name``, the range and the value (bools are refused)."""
    span = f"{low} .. {high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer {span}, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {span}, got {value}")
    return int(value)


def check_number(name: str, value: object, low: float, high: float, meaning: str = "") -> float:
    """``value`` as a float in ``low .. high``, else a TypeError or ValueError naming ``name``
    (and what it ``meaning``), the range and the value; NaN, infinities and bools are refused."""
    what = f"{name} ({meaning})" if meaning else name
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{what} must be a number in {low:g} .. {high:g}, got "
                        f"{type(value).__name__} {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{what} must be a number in {low:g} .. {high:g}, got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[object]) -> object:
    """The one of ``choices`` equal to ``value`` (a bool matches no number), else a ValueError
    that lists them."""
    for choice in choices:
        if isinstance(value, bool) == isinstance(choice, bool) and _equal(value, choice):
            return choice
    raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # e.g. an array of several values
        return False


def check_data(name: str, x: object, ndim: int, layout: str) -> None:
    """``x`` must be a floating-point tensor of ``ndim`` dimensions, none empty, all finite."""
    au.check_tensor(name, x, ndim, layout)
    if 0 in x.shape:
        raise ValueError(f"{name} must be {layout} with no empty dimension, got shape "
                         f"{tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must hold finite numbers, got NaN or infinity")


def check_figsize(figsize: object) -> tuple[float, float]:
    """``(width, height)`` in inches, each a number in 0.5 .. 40."""
    if isinstance(figsize, str) or not isinstance(figsize, Sequence) or len(figsize) != 2:
        raise TypeError(f"figsize must be (width, height) in inches, got {figsize!r}")
    return tuple(check_number(f"figsize[{i}]", v, 0.5, 40.0, "inches")  # type: ignore[return-value]
                 for i, v in enumerate(figsize))


def valid_lengths(params: Mapping[str, object], names: Sequence[str], current: Sequence[int],
                  num_kv: int) -> tuple[int, ...]:
    """The valid lengths after the keywords ``valid_len_<i>`` of ``params`` are applied.

    ``names`` are the keywords (one per batch row), ``current`` the lengths
    kept for rows left out (or None).  Each value must be an integer in
    ``0 .. num_kv`` (:func:`check_int`, with the keyword named in the error).
    Raises before anything is changed.
    """
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise TypeError(f"unknown keyword(s) {unknown}: expected {', '.join(names)}")
    lengths = dict(zip(names, current, strict=True))
    for name, value in params.items():
        if value is not None:
            lengths[name] = check_int(name, value, 0, num_kv)
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


CAPTION_STYLE = "font-size: 13px; line-height: 1.4"  # about a figure title's size at 80 dpi


def explorer_panel(explorer: Explorer, controls: Mapping[str, widgets.ValueWidget],
                   gpu: bool = True, dpi: int = 80) -> widgets.VBox:
    """Wire widgets to an explorer: moving a control calls ``explorer.update``.

    ``controls`` maps ``update``'s keyword names to widgets.  The figure is
    shown as a PNG ``widgets.Image`` re-rendered after each update, redrawing
    only :meth:`Explorer.changing_artists` (and reusing the PNG of an earlier
    update with the same :meth:`Explorer.frame_key`); an explorer with a
    :meth:`Explorer.caption` gets it as an HTML line above the image, and its
    :meth:`Explorer.caption_texts` show their constant panel strings.  A status line says
    which device ran the update and how long computing and drawing took, or,
    when ``update`` rejects a value (or fails) or the figure cannot be drawn,
    the error: the last good figure and caption stay.
    With ``gpu=True`` a GPU toggle moves the explorer with
    :meth:`Explorer.to` (disabled, with its reason, where CUDA is absent).
    Children, in order: the control rows, the caption (if any), the image,
    the status line.
    """
    image = widgets.Image(format="png",
                          layout=widgets.Layout(align_self="flex-start"))  # natural size, unblurred
    status = widgets.HTML()
    has_caption = explorer.caption() is not None
    caption = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
    if has_caption:
        explorer.use_caption()
        forget_backgrounds(explorer.fig)  # a cached background may hold the full texts
    frames: dict[Hashable, bytes] = {}  # frame_key -> PNG

    def changing() -> list[Artist] | None:
        """The artists to redraw; the caption's texts get their panel strings and join the
        background."""
        artists = explorer.changing_artists()
        if not has_caption:
            return artists
        texts = explorer.caption_texts()
        for text, panel_text in texts.items():
            text.set_text(panel_text)
        return None if artists is None else [a for a in artists if a not in texts]

    def refuse(what: str, err: Exception) -> None:
        message = str(err) if isinstance(err, ValueError | TypeError) else \
            f"{type(err).__name__}: {err}"
        status.value = (f"<span style='color:#b00'>{what}: {html.escape(message)}</span> "
                        "(the figure shows the last good setting)")

    def draw_frame() -> tuple[bytes, str]:
        """The PNG of the explorer's figure (reused for a frame key seen before) and its timing."""
        key = explorer.frame_key()
        if key in frames:
            return frames[key], "draw 0 ms (this frame was drawn before)"
        png, draw_ms = timed(lambda: figure_png(explorer.fig, dpi, changing()))
        if key is not None:
            frames[key] = png
        return png, f"draw {draw_ms:.0f} ms"

    def redraw(_change=None) -> None:
        params = {name: control.value for name, control in controls.items()}
        try:
            _, compute_ms = timed(lambda: explorer.update(**params), explorer.device)
        except Exception as err:  # noqa: BLE001  (ValueError/TypeError: a refused value)
            refuse("not updated", err)
            return
        try:
            png, draw = draw_frame()
            text = f"<div style='{CAPTION_STYLE}'>{explorer.caption()}</div>" if has_caption \
                else ""
        except Exception as err:  # noqa: BLE001  (shown to the learner, not lost in a log)
            refuse("could not draw", err)
            return
        caption.value = text  # sent before the image, so both show together
        image.value = png
        status.value = (f"last update on <b>{au.device_name(explorer.device)}</b>: "
                        f"compute {compute_ms:.1f} ms, {draw}")

    for control in controls.values():
        control.observe(redraw, names="value")
    rows = [widgets.HBox(list(controls.values()))]
    if gpu:
        toggle, reason = gpu_toggle()

        def move(change) -> None:
            try:
                explorer.to(au.get_device(change["new"]))
            except Exception as err:  # noqa: BLE001  (e.g. CUDA out of memory: shown, not lost)
                refuse("not moved", err)
                return
            reason.value = f"<i>computation on {au.device_name(explorer.device)}</i>"
            redraw()

        toggle.observe(move, names="value")
        rows.append(widgets.HBox([toggle, reason]))
    redraw()
    return widgets.VBox([*rows, *([caption] if has_caption else []), image, status])


def timing_panel(run: Callable[[torch.device], str]) -> widgets.VBox:
    """GPU toggle + "Time it" button: a click shows ``run(device)`` (an HTML string).

    The toggle is disabled, with its reason, where CUDA is absent.  A CPU run
    then ends with a line saying that there is no GPU time to compare it with
    (where CUDA is present but switched off, how to get one), so a CPU run is
    never read as a comparison.
    """
    toggle, reason = gpu_toggle()
    button = widgets.Button(description="Time it", icon="clock")
    result = widgets.HTML()

    def click(_button) -> None:
        device = au.get_device(toggle.value)
        result.value = run(device) + (cpu_only_note() if device.type == "cpu" else "")

    button.on_click(click)
    return widgets.VBox([widgets.HBox([toggle, button, reason]), result])


def cpu_only_note() -> str:
    """What a CPU-only timing can and cannot say, as an HTML line."""
    if torch.cuda.is_available():
        return "<p><i>CPU only: switch the GPU toggle on to time the same case on CUDA.</i></p>"
    return ("<p><i>CPU only: this machine has no CUDA device, so there is no GPU time to "
            "compare with, and no speed-up to report.</i></p>")
