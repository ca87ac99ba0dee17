"""attention_lab.render: blitting gives the full picture, PNGs are lossless.

Every explorer declares, in ``changing_artists``, what its ``update`` changes;
the panel then redraws only those over a cached background.  If an explorer
changed anything it did not declare, the blitted frame would show stale
pixels: these tests draw each explorer both ways after updates that move
every control and compare the pixels.
"""

import gc
import io
import weakref

import numpy as np
import PIL.Image
import pytest
import torch
from matplotlib.figure import Figure

import attention_utils as au
from attention_lab.render import figure_png, png_bytes
from tests.explorer_cases import CASES
from tests.helpers import pixels

MAX_LEVELS = 16

MAX_FRACTION = 1e-3


@pytest.mark.parametrize("case", CASES)
def test_blitted_frames_equal_full_draws(case):
    explorer, moves = CASES[case]()
    figure_png(explorer.fig, changing=explorer.changing_artists())  # caches the background
    for params in [*moves, *moves]:  # the second round restores cached backgrounds
        explorer.update(**params)
        blit = pixels(figure_png(explorer.fig, changing=explorer.changing_artists()))
        full = pixels(figure_png(explorer.fig))
        levels = np.abs(blit - full).max(axis=-1)
        assert levels.max() <= MAX_LEVELS, f"{params}: a pixel differs by {levels.max()}"
        assert (levels > 0).mean() <= MAX_FRACTION, f"{params}: {(levels > 0).sum()} pixels"


def _line_figure():
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    (line,) = ax.plot([0, 1], [0, 1])
    return fig, ax, line


def test_blit_needs_artists_the_figure_draws():
    fig, _, _ = _line_figure()
    _, _, stranger = _line_figure()
    with pytest.raises(ValueError, match=r"children of the figure .* got \['Line2D'\]"):
        figure_png(fig, changing=[stranger])


def test_a_full_draw_drops_the_cached_background():
    fig, ax, line = _line_figure()
    figure_png(fig, changing=[line])
    ax.set_facecolor("black")  # not declared: a full draw must pick it up, and the next blit too
    full = pixels(figure_png(fig))
    assert (pixels(figure_png(fig, changing=[line])) == full).all()


def test_blit_leaves_the_artists_as_they_were():
    fig, ax, line = _line_figure()
    title = ax.set_title("t")
    figure_png(fig, changing=[line, title])
    assert line.get_visible() and not line.get_animated() and title.get_alpha() is None


def test_png_bytes_is_lossless():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    png = png_bytes(rgb)
    assert png.startswith(b"\x89PNG")
    assert (np.asarray(PIL.Image.open(io.BytesIO(png))) == rgb).all()


def _text_figure():
    fig = Figure(figsize=(2.5, 2))
    ax = fig.add_subplot()
    ax.set_xticks([0, 0.5, 1], ["0:3", "1:4", "2:1"], rotation=90)
    texts = [ax.set_title("head 1: H = 1.23\nd = 0.45", fontsize=9),
             ax.text(0.5, 0.5, "plain", color="tab:red", alpha=0.6, ha="center"),
             fig.suptitle("input 314 -> output 413"), *ax.get_xticklabels()]
    return fig, texts


@pytest.mark.parametrize("change", [
    lambda text: text.set_color("blue"), lambda text: text.set_fontsize(12),
    lambda text: text.set_position((0.2, 0.3)), lambda text: text.set_rotation(30),
    lambda text: text.set_text("other"), lambda text: text.set_alpha(0.2)],
    ids=["color", "size", "position", "rotation", "text", "alpha"])
def test_a_changed_text_is_drawn_afresh(change):
    fig, texts = _text_figure()
    figure_png(fig, changing=texts)
    change(texts[1])
    assert (pixels(figure_png(fig, changing=texts)) == pixels(figure_png(fig))).all()


def test_figure_png_returns_png_bytes():
    png = figure_png(au.show_heatmaps(torch.eye(3), "Keys", "Queries"))
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_cached_background_does_not_keep_its_figure_alive():
    fig, ax, line = _line_figure()
    figure_png(fig, changing=[line])
    ref = weakref.ref(fig)
    del fig, ax, line
    gc.collect()
    assert ref() is None
