"""figure_png's blitting: redrawing only an explorer's changing artists gives the full picture.

Every explorer declares, in ``changing_artists``, what its ``update`` changes;
``explorer_panel`` then redraws only those over a cached background.  If an
explorer changed anything it did not declare, the blitted frame would show
stale pixels: these tests draw each explorer both ways after updates that move
every control and compare the pixels.  The moves are made twice: the second
time every text is pasted from the glyphs kept the first time.
"""

import io

import numpy as np
import PIL.Image
import pytest
import torch
from matplotlib.figure import Figure

import attention_utils as au

# A tick mark that touches the frame is drawn under the data in a blit and over
# it in a full draw: a handful of pixels at the frame differ, by a few levels.
MAX_LEVELS = 16
MAX_FRACTION = 1e-3


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _nadaraya_watson():
    g = torch.Generator().manual_seed(0)
    x = torch.sort(torch.rand(30, generator=g) * 5).values
    y = 2 * torch.sin(x) + torch.randn(30, generator=g)
    queries = torch.arange(0, 5, 0.25)
    return (au.NadarayaWatsonExplorer(x, y, queries, 2 * torch.sin(queries)),
            [{"sigma": 0.1, "query": 3}, {"sigma": 3.0, "query": 19}, {"sigma": 0.05}])


def _temperature():
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    return (au.SoftmaxTemperatureExplorer(scores, ["a", "b", "c"], ["q1", "q2"]),
            [{"temperature": 0.1}, {"temperature": 5.0}])


def _masked():
    scores = torch.rand(2, 2, 4, generator=torch.Generator().manual_seed(0))
    return (au.MaskedSoftmaxExplorer(scores, valid_lens=(2, 3)),
            [{"valid_len_0": 0, "valid_len_1": 4}, {"valid_len_0": 4, "valid_len_1": 1}])


def _additive():
    return (au.AdditiveAttentionExplorer(),
            [{"valid_len_0": 0, "valid_len_1": 10, "num_hiddens": 64},
             {"valid_len_0": 10, "valid_len_1": 1, "num_hiddens": 1}])


def _scaling():
    return au.ScalingExplorer(), [{"d": 2, "sigma": 0.5}, {"d": 1024, "sigma": 1.5}]


def _multihead():
    return (au.MultiHeadExplorer(),
            [{"valid_len_0": 2}, {"num_heads": 2}, {"num_heads": 2, "valid_len_1": 1},
             {"num_heads": 8}])


def _alignment():
    torch.manual_seed(0)
    models = {name: au.ToySeq2Seq(name, num_hiddens=16, num_steps=4)
              for name in ("concat", "additive")}
    return (au.AlignmentExplorer(models, digits="1234", model="concat"),
            [{"digits": "9071", "model": "additive"}, {"digits": "5555", "model": "concat"}])


def _max_source():
    torch.manual_seed(0)
    return (au.MaxSourceExplorer(au.MaxStateSuper(16, 4), torch.randn(1, 12, 16)),
            [{"head": 0, "channel": 3}, {"head": 2, "length": 5}, {"head": 3, "length": 12}])


def _transformer():
    torch.manual_seed(0)
    model = au.TinyTransformer(vocab_size=10, num_hiddens=32, ffn_num_hiddens=64, num_heads=2,
                               num_blks=2, max_len=6)
    return (au.TransformerAttentionExplorer(model, "314159"),
            [{"sequence": "000000"}, {"sequence": "987654"}])


@pytest.mark.parametrize("make", [_nadaraya_watson, _temperature, _masked, _additive, _scaling,
                                  _multihead, _alignment, _max_source, _transformer],
                         ids=lambda make: make.__name__.strip("_"))
def test_blitted_frames_equal_full_draws(make):
    explorer, moves = make()
    au.figure_png(explorer.fig, changing=explorer.changing_artists())  # caches the background
    for params in [*moves, *moves]:  # the second round pastes kept texts
        explorer.update(**params)
        blit = _pixels(au.figure_png(explorer.fig, changing=explorer.changing_artists()))
        full = _pixels(au.figure_png(explorer.fig))
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
        au.figure_png(fig, changing=[stranger])


def test_a_full_draw_drops_the_cached_background():
    fig, ax, line = _line_figure()
    au.figure_png(fig, changing=[line])
    ax.set_facecolor("black")  # not declared: a full draw must pick it up, and the next blit too
    full = _pixels(au.figure_png(fig))
    assert (_pixels(au.figure_png(fig, changing=[line])) == full).all()


def test_blit_leaves_the_artists_as_they_were():
    fig, ax, line = _line_figure()
    title = ax.set_title("t")
    au.figure_png(fig, changing=[line, title])
    assert line.get_visible() and not line.get_animated() and title.get_alpha() is None


def test_png_bytes_is_lossless():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    png = au.png_bytes(rgb)
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


def test_kept_texts_are_pasted_with_the_same_pixels(monkeypatch):
    monkeypatch.setattr(au, "_glyph_runs", type(au._glyph_runs)())
    fig, texts = _text_figure()
    first = au.figure_png(fig, changing=texts)
    assert len(au._glyph_runs) == len(texts)
    second = au.figure_png(fig, changing=texts)  # every text pasted
    assert second == first
    assert (_pixels(second) == _pixels(au.figure_png(fig))).all()
    assert "draw_text" not in vars(fig.canvas.get_renderer())  # the stand-in is gone


@pytest.mark.parametrize("change", [
    lambda text: text.set_color("blue"), lambda text: text.set_fontsize(12),
    lambda text: text.set_position((0.2, 0.3)), lambda text: text.set_rotation(30),
    lambda text: text.set_text("other"), lambda text: text.set_alpha(0.2)],
    ids=["color", "size", "position", "rotation", "text", "alpha"])
def test_a_changed_text_is_drawn_afresh(change):
    fig, texts = _text_figure()
    au.figure_png(fig, changing=texts)
    change(texts[1])
    assert (_pixels(au.figure_png(fig, changing=texts)) == _pixels(au.figure_png(fig))).all()


def test_mathtext_clipped_texts_and_annotations_are_not_kept(monkeypatch):
    monkeypatch.setattr(au, "_glyph_runs", type(au._glyph_runs)())
    fig, texts = _text_figure()
    texts[1].set_text("$\\sqrt{d}$")
    texts[2].set_clip_box(fig.bbox)
    note = fig.axes[0].annotate("note", (0.2, 0.2), (0.6, 0.8), arrowprops={"arrowstyle": "->"})
    first = au.figure_png(fig, changing=[*texts, note])
    kept = {key[0] for key in au._glyph_runs}
    assert not kept & {"$\\sqrt{d}$", texts[2].get_text(), "note"}
    assert texts[0].get_text() in kept
    assert au.figure_png(fig, changing=[*texts, note]) == first  # the arrow is drawn again


def test_only_the_last_texts_are_kept(monkeypatch):
    monkeypatch.setattr(au, "_glyph_runs", type(au._glyph_runs)())
    monkeypatch.setattr(au, "GLYPH_RUNS_KEPT", 3)
    fig, texts = _text_figure()
    au.figure_png(fig, changing=texts)
    drawn = [artist.get_text() for artist in au._draw_order(fig, texts) if artist in texts]
    assert [key[0] for key in au._glyph_runs] == drawn[-3:]
