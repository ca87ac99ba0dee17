"""attention_lab.fonts and its subset script: the CJK subset covers chapter 08's vocabulary."""

import io
import warnings

from fontTools.ttLib import TTFont
from matplotlib.figure import Figure

from attention_lab.data.dates import VOCAB
from attention_lab.fonts import FAMILY, SUBSET, register_cjk_font
from attention_lab.fonts.subset import cjk_characters


def test_the_subset_has_every_chinese_character_of_the_vocabulary_and_its_licence():
    cmap = TTFont(SUBSET).getBestCmap()
    assert {ord(c) for c in cjk_characters()} <= set(cmap)
    assert set(cjk_characters()) == {c for c in VOCAB if not c.isascii()} and "年" in VOCAB
    assert SUBSET.stat().st_size < 20_000  # a subset, not the 19 MB collection
    assert "SIL OPEN FONT LICENSE Version 1.1" in (SUBSET.parent / "OFL.txt").read_text()


def test_registered_font_draws_chinese_tick_labels_without_missing_glyphs():
    families = register_cjk_font()
    assert register_cjk_font() == families and families[-1] == FAMILY
    fig = Figure(figsize=(3, 1))
    ax = fig.subplots()
    ax.set_xticks(range(3), ["二〇二六", "年十二月", "Dec 1st"], fontfamily=families)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would be a warning
        fig.savefig(io.BytesIO(), format="png")
