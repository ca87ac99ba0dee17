"""Make ``NotoSansCJKsc-subset.otf``: the few Chinese glyphs chapter 08's vocabulary needs.

matplotlib's default font (DejaVu Sans) has no CJK glyphs, and a learner's
machine may have no CJK font at all.  This script cuts, from Noto Sans CJK SC
(SIL Open Font License 1.1, ``OFL.txt`` beside it), only the characters of
:data:`attention_lab.data.dates.VOCAB` that DejaVu Sans lacks, renames the
family (a Modified Version under the OFL keeps no original name that a full
installed copy would share) and writes the result here.  It runs once, by hand,
never at notebook run time::

    apt-get download fonts-noto-cjk && dpkg-deb -x fonts-noto-cjk_*.deb noto
    python -m attention_lab.fonts.subset noto/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

from attention_lab.data.dates import VOCAB
from attention_lab.fonts import FAMILY, SUBSET

SC_NAME = "Noto Sans CJK SC"


def cjk_characters() -> str:
    """The vocabulary's characters outside ASCII: the ones DejaVu Sans lacks."""
    return "".join(c for c in VOCAB if not c.isascii())


def make_subset(source: Path, target: Path = SUBSET) -> Path:
    """Subset Noto Sans CJK SC (a ``.ttc`` collection or its ``.otf``) to :func:`cjk_characters`."""
    fonts = TTCollection(source).fonts if source.suffix == ".ttc" else [TTFont(source)]
    (font,) = [f for f in fonts if f["name"].getDebugName(1) == SC_NAME]
    options = subset.Options()
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # copyright, names, version, licence
    options.layout_features = []
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=cjk_characters())
    subsetter.subset(font)
    postscript = FAMILY.replace(" ", "")
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = FAMILY
        elif record.nameID in (3, 6):
            record.string = f"{postscript}-Regular"
    font["CFF "].cff.fontNames = [f"{postscript}-Regular"]
    font.save(target)
    return target


if __name__ == "__main__":
    print(make_subset(Path(sys.argv[1])))
