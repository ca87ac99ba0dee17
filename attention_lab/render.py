"""Rendering: the only module that draws figures into pixels.

:func:`figure_png` draws a figure once, or redraws only the artists an
explorer changed over a cached background (blitting), and encodes the
pixels as PNG (:func:`png_bytes`).  Explorers never draw; the panel calls
this module.
"""

from __future__ import annotations

import contextlib
import math
import struct
import zlib
from collections import OrderedDict
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.figure import Figure
from matplotlib.text import Text


def figure_png(fig: Figure, dpi: int = 80, changing: Sequence[Artist] | None = None) -> bytes:
    """Render ``fig`` to PNG bytes: one Agg draw, or a blit of ``changing`` only.

    With ``changing=None`` the whole figure is drawn once (``savefig`` would
    draw twice, once more for the layout engine a colour bar leaves behind, and
    ``bbox_inches='tight'`` adds another pass).  With a list of the artists an
    update changed (children of ``fig`` or of its Axes; an Axes or an Axis
    counts as one artist), the rest of the figure is drawn once into a cached
    background and later calls restore it and draw only those artists, in the
    order a full draw would use, pasting the glyphs of any text drawn before
    (:func:`_draw_text`): several times faster, and the same picture (tested).
    A background is drawn for each dpi, artist list and set of visible Axes
    (the last few are kept); a full draw discards them.  PNGs are RGB (figures
    are opaque), written by :func:`png_bytes`.
    """
    if fig.dpi != dpi:
        fig.set_dpi(dpi)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    if changing is None:
        canvas.draw()
        fig._attention_lab_backgrounds = {}  # a full draw may have changed what they hold
    else:
        _blit(fig, canvas, _draw_order(fig, changing))
    return png_bytes(np.asarray(canvas.buffer_rgba())[..., :3])  # opaque: alpha is waste


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 array as PNG: unfiltered rows, zlib level 1.

    About 40 % faster than Pillow's encoder on these figures (which tries a
    filter per row) and the same size; lossless either way.
    """
    height, width, _ = rgb.shape
    rows = np.zeros((height, 1 + 3 * width), np.uint8)  # each row: filter byte 0, then pixels
    rows[:, 1:].reshape(height, width, 3)[...] = rgb  # one copy, even from a strided RGBA view
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 1)) + _png_chunk(b"IEND", b""))


def _draw_order(fig: Figure, changing: Sequence[Artist]) -> list[Artist]:
    """``changing`` plus the frames (spines) drawn over it, in a full draw's order.

    A full draw paints the figure's children by zorder and each Axes' children
    by zorder; a spine is drawn after the data under it, so an Axes whose data
    change has its spines redrawn too.  Tick labels (``axis.get_majorticklabels()``
    of an Axis with fixed ticks) count as children of their Axes.  Children of
    hidden Axes are left out, as a full draw leaves them out.
    """
    wanted = set(changing)
    for artist in changing:
        parent = artist.axes
        if (parent is not None and parent is not artist and parent not in wanted
                and parent.axison and parent.get_frame_on()):
            wanted.update(parent.spines.values())
    order, hidden = [], []
    for top in sorted(fig.get_children(), key=lambda a: a.get_zorder()):
        if top in wanted:
            order.append(top)
        elif isinstance(top, Axes):
            children = []
            for child in sorted(top.get_children(), key=lambda a: a.get_zorder()):
                if child in wanted:
                    children.append(child)
                elif isinstance(child, Axis):
                    children += [label for tick in child.majorTicks
                                 for label in (tick.label1, tick.label2) if label in wanted]
            (order if top.get_visible() else hidden).extend(children)
    missing = set(changing).difference(order, hidden)
    if missing:
        raise ValueError("changing must hold children of the figure or of its Axes, or tick "
                         f"labels, got {sorted(type(a).__name__ for a in missing)}")
    return order


def _left_out(artist: Artist) -> contextlib.AbstractContextManager:
    """Keep ``artist`` out of the background draw.

    Texts are drawn fully transparent (a tick label must still count in the
    layout of its axis label); other artists are hidden.
    """
    if isinstance(artist, Text):
        return artist._cm_set(alpha=0.0)
    return artist._cm_set(visible=False)


BACKGROUNDS_KEPT = 8  # per figure, e.g. one per number of visible panels


def _blit(fig: Figure, canvas: FigureCanvasAgg, order: list[Artist]) -> None:
    """Restore (or first draw) the background without ``order``, then draw ``order``.

    Backgrounds are kept per dpi, size, artist list and set of visible Axes, so
    moving back to an earlier panel layout does not draw the figure again.
    """
    key = (fig.dpi, canvas.get_width_height(), tuple(map(id, order)),
           tuple(ax.get_visible() for ax in fig.axes))
    backgrounds = fig.__dict__.setdefault("_attention_lab_backgrounds", {})
    if key in backgrounds:
        canvas.restore_region(backgrounds[key])
    else:
        with contextlib.ExitStack() as stack:
            for artist in order:
                stack.enter_context(_left_out(artist))
            canvas.draw()
        if len(backgrounds) >= BACKGROUNDS_KEPT:
            del backgrounds[next(iter(backgrounds))]  # the oldest
        backgrounds[key] = canvas.copy_from_bbox(fig.bbox)
    renderer = canvas.get_renderer()
    for artist in order:
        if isinstance(artist, Text):
            _draw_text(artist, renderer)
        else:
            artist.draw(renderer)


GLYPH_RUNS_KEPT = 4096  # rendered texts kept by _draw_text (tick labels, titles, ...)


_glyph_runs: OrderedDict[tuple, list[tuple[np.ndarray, int, int, float]]] = OrderedDict()


def _text_key(text: Text, renderer: RendererAgg) -> tuple | None:
    """Everything that shapes ``text``'s glyphs, or None for texts that are not kept.

    The anchor is in pixels, so a kept text is pasted exactly where it was
    drawn; colour and alpha are applied when pasting.  Texts with a box, path
    effects, TeX, wrapping or a clip, and subclasses (an Annotation draws its
    arrow too), are drawn afresh every time.
    """
    if (type(text) is not Text or text.get_bbox_patch() is not None
            or text.get_path_effects() or text.get_usetex() or text.get_wrap()
            or text.get_clip_on() and (text.get_clip_box() or text.get_clip_path())):
        return None
    font = text.get_fontproperties()
    return (text.get_text(), tuple(text.get_transform().transform(text.get_unitless_position())),
            text.get_rotation(), text.get_rotation_mode(), text.get_horizontalalignment(),
            text.get_verticalalignment(), text._multialignment, text._linespacing,
            tuple(font.get_family()), font.get_style(), font.get_variant(), font.get_weight(),
            font.get_stretch(), font.get_size_in_points(), font.get_file(),
            text.get_antialiased(), renderer.dpi,
            get_hinting_flag(), matplotlib.rcParams["text.hinting_factor"],
            matplotlib.rcParams["text.kerning_factor"])


class _TextRecorder:
    """Stands in for ``RendererAgg.draw_text`` while one Text draws.

    Paints the same pixels and keeps each line as ``(glyph bitmap, x, y,
    angle)``; a line of mathtext is drawn by Agg and makes the text not kept.
    """

    def __init__(self, renderer: RendererAgg):
        self.renderer = renderer
        self.runs: list[tuple[np.ndarray, int, int, float]] = []
        self.kept = True

    def __call__(self, gc, x, y, s, prop, angle, ismath=False, mtext=None) -> None:
        if ismath:
            self.kept = False
            RendererAgg.draw_text(self.renderer, gc, x, y, s, prop, angle, ismath, mtext)
            return
        font = self.renderer._prepare_font(prop)
        font.set_text(s, 0, flags=get_hinting_flag())
        font.draw_glyphs_to_bitmap(antialiased=gc.get_antialiased())
        descent = font.get_descent() / 64
        x_offset, y_offset = font.get_bitmap_offset()
        x = round(x + x_offset / 64 + descent * math.sin(math.radians(angle)))
        y = round(y + y_offset / 64 + descent * math.cos(math.radians(angle))) + 1
        glyphs = np.array(font.get_image())  # a copy: the font's buffer is reused
        self.renderer._renderer.draw_text_image(glyphs, x, y, angle, gc)
        self.runs.append((glyphs, x, y, angle))


def _draw_text(text: Text, renderer: RendererAgg) -> None:
    """``text.draw(renderer)``, pasting the glyphs of a text drawn before instead of
    laying it out and rasterising it again (tick labels and titles repeat as a
    slider moves back and forth).  Same pixels; the last :data:`GLYPH_RUNS_KEPT`
    texts are kept.
    """
    key = _text_key(text, renderer) if text.get_visible() and text.get_text() else None
    if key is None:
        text.draw(renderer)
        return
    runs = _glyph_runs.get(key)
    if runs is None:
        recorder = _TextRecorder(renderer)
        renderer.draw_text = recorder  # this renderer only, while this text draws
        try:
            text.draw(renderer)
        finally:
            del renderer.draw_text
        if recorder.kept:
            _glyph_runs[key] = recorder.runs
            if len(_glyph_runs) > GLYPH_RUNS_KEPT:
                _glyph_runs.popitem(last=False)  # the least recently used
        return
    _glyph_runs.move_to_end(key)
    gc = renderer.new_gc()
    gc.set_foreground(text.get_color())
    gc.set_alpha(text.get_alpha())
    gc.set_antialiased(text.get_antialiased())
    for glyphs, x, y, angle in runs:
        renderer._renderer.draw_text_image(glyphs, x, y, angle, gc)
    gc.restore()

