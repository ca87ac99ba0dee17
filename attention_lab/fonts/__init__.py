"""A font for the Chinese characters of chapter 08, registered with matplotlib's public API.

matplotlib's default font (DejaVu Sans) has no CJK glyphs and many machines
have no CJK font installed.  ``NotoSansCJKsc-subset.otf`` holds just the
glyphs chapter 08's vocabulary needs (made by :mod:`attention_lab.fonts.subset`
from Noto Sans CJK SC, SIL Open Font License 1.1: ``OFL.txt``).  Text drawn
with ``fontfamily=FAMILIES`` takes Latin glyphs from DejaVu Sans and falls back
to the subset for the rest (matplotlib >= 3.6 font fallback).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib import font_manager

SUBSET = Path(__file__).resolve().parent / "NotoSansCJKsc-subset.otf"
FAMILY = "Attention Lab CJK"  # the subset's own family name (a modified Noto Sans CJK SC)
FAMILIES = ["DejaVu Sans", FAMILY]  # Latin first, the subset for the Chinese characters


def register_cjk_font() -> list[str]:
    """Add the subset to matplotlib's font manager (once) and return :data:`FAMILIES`."""
    if FAMILY not in {entry.name for entry in font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(SUBSET))
    return FAMILIES
