"""Human-written dates and their ISO form, the translation task of chapter 08.

Everything comes from the standard library (``datetime``, ``calendar``) and a
seed: :data:`FORMATS` writes a date in English or Chinese
(``"Tuesday, 1 December 2026"``, ``"Dec 1st 26"``, ``"1/12/2026"``,
``"2026年12月1日"``, ``"二〇二六年十二月一日"``, ...), :func:`iso` gives the target
``"2026-12-01"``, :func:`parse` reads a typed date back (or says why it
cannot), and :func:`split_dates` holds out test *dates* that no training
example ever shows.  Numeric dates are day first (``1/12/2026`` is 1 December),
two-digit years are 1950-2049 (``26`` is 2026, ``87`` is 1987).
"""

from __future__ import annotations

import calendar
import datetime
import locale
import random
import re
from collections.abc import Sequence

import torch

FIRST, LAST = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)


def _english_names() -> tuple[tuple[str, ...], ...]:
    """calendar's month and weekday names in the C locale (English), whatever the locale is:
    the vocabulary and the stored model must not change with the learner's LC_TIME."""
    saved = locale.setlocale(locale.LC_TIME)
    try:
        locale.setlocale(locale.LC_TIME, "C")
        return (tuple(calendar.month_name[1:]), tuple(calendar.month_abbr[1:]),
                tuple(calendar.day_name), tuple(calendar.day_abbr))
    finally:
        locale.setlocale(locale.LC_TIME, saved)


MONTHS, MONTHS_ABBR, WEEKDAYS, WEEKDAYS_ABBR = _english_names()  # "January", "Jan", "Monday", ..
CHINESE_DIGITS = "〇一二三四五六七八九"

# name -> template; each {field} appears at most once (see _FIELDS)
FORMATS = {
    "weekday_day_month_year": "{weekday}, {day} {month} {yyyy}",  # Tuesday, 1 December 2026
    "day_month_year": "{day} {month} {yyyy}",  # 1 December 2026
    "month_day_year": "{month} {day}, {yyyy}",  # December 1, 2026
    "month_ordinal_year": "{month} {dth}, {yyyy}",  # December 1st, 2026
    "abbr_ordinal_yy": "{mon} {dth} {yy}",  # Dec 1st 26
    "day_abbr_year": "{day} {mon} {yyyy}",  # 1 Dec 2026
    "wd_day_abbr_year": "{wd} {day} {mon} {yyyy}",  # Tue 1 Dec 2026
    "slash": "{day}/{m}/{yyyy}",  # 1/12/2026
    "slash_yy": "{dd}/{mm}/{yy}",  # 01/12/26
    "dots": "{dd}.{mm}.{yyyy}",  # 01.12.2026
    "year_slash": "{yyyy}/{mm}/{dd}",  # 2026/12/01
    "chinese_arabic": "{yyyy}年{m}月{day}日",  # 2026年12月1日
    "chinese_arabic_yy": "{yy}年{m}月{day}日",  # 26年12月1日
    "chinese_numerals": "{cyear}年{cmonth}月{cday}日",  # 二〇二六年十二月一日
    "ordinal_month_year": "{dth} {month} {yyyy}",  # 1st December 2026 (never trained on)
}
UNSEEN_FORMAT = "ordinal_month_year"  # kept out of training: chapter 08's exercise
TRAIN_FORMATS = tuple(name for name in FORMATS if name != UNSEEN_FORMAT)

PAD, BOS = 0, 1  # token ids; the characters follow
ISO_LENGTH = 10  # "YYYY-MM-DD": the decoder always writes ten characters
MAX_LEN = 32  # the longest input the model takes ("Wednesday, 30 September 2026" is 28)


def chinese_number(n: int) -> str:
    """1..31 in Chinese numerals: 一, 十, 十二, 二十, 三十一."""
    tens, ones = divmod(n, 10)
    return ((CHINESE_DIGITS[tens] if tens > 1 else "") + ("十" if tens else "")
            + (CHINESE_DIGITS[ones] if ones else ""))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _fields(day: datetime.date) -> dict[str, str]:
    return {"weekday": WEEKDAYS[day.weekday()], "wd": WEEKDAYS_ABBR[day.weekday()],
            "day": str(day.day), "dd": f"{day.day:02d}", "dth": _ordinal(day.day),
            "month": MONTHS[day.month - 1], "mon": MONTHS_ABBR[day.month - 1],
            "m": str(day.month), "mm": f"{day.month:02d}",
            "yyyy": str(day.year), "yy": f"{day.year % 100:02d}",
            "cyear": "".join(CHINESE_DIGITS[int(c)] for c in str(day.year)),
            "cmonth": chinese_number(day.month), "cday": chinese_number(day.day)}


def _check_date(day: object) -> datetime.date:
    if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    if not FIRST <= day <= LAST:
        raise ValueError(f"day must lie in {FIRST} .. {LAST}, got {day}")
    return day


def render(day: datetime.date, fmt: str) -> str:
    """``day`` written in format ``fmt`` (a key of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {list(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt].format(**_fields(_check_date(day)))


_PARTS = {"yyyy": "year", "yy": "year", "cyear": "year", "month": "month", "mon": "month",
          "m": "month", "mm": "month", "cmonth": "month", "day": "day", "dd": "day", "dth": "day",
          "cday": "day"}
ISO_PARTS = {"year": range(0, 4), "month": range(5, 7), "day": range(8, 10)}  # in "YYYY-MM-DD"


def spans(day: datetime.date, fmt: str) -> dict[str, range]:
    """Where ``render(day, fmt)`` writes the year, the month and the day: character ranges
    (``"1st"`` counts its suffix, ``"十二"`` both characters; a weekday is none of them)."""
    fields, where, start = _fields(_check_date(day)), {}, 0
    for piece in re.split(r"(\{\w+\})", FORMATS[fmt]):
        text = fields[piece[1:-1]] if piece.startswith("{") else piece
        if piece[1:-1] in _PARTS:
            where[_PARTS[piece[1:-1]]] = range(start, start + len(text))
        start += len(text)
    return where


def iso(day: datetime.date) -> str:
    """The target: ``day`` as ``YYYY-MM-DD``."""
    return _check_date(day).isoformat()


# -- reading a typed date back ------------------------------------------------------------

_FIELDS = {"weekday": "|".join(WEEKDAYS), "wd": "|".join(WEEKDAYS_ABBR),
           "day": r"\d{1,2}", "dd": r"\d{2}", "dth": r"\d{1,2}(?:st|nd|rd|th)",
           "month": "|".join(MONTHS), "mon": "|".join(MONTHS_ABBR),
           "m": r"\d{1,2}", "mm": r"\d{2}", "yyyy": r"\d{4}", "yy": r"\d{2}",
           "cyear": f"[{CHINESE_DIGITS}]{{4}}", "cmonth": "[一二三四五六七八九十]{1,3}",
           "cday": "[一二三四五六七八九十]{1,3}"}
_PATTERNS = {name: re.compile(re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m[1]}>{_FIELDS[m[1]]})",
                                     re.escape(template)))
             for name, template in FORMATS.items()}


def _from_chinese(text: str) -> int:
    if len(text) == 4 and all(c in CHINESE_DIGITS for c in text):  # a year, digit by digit
        return int("".join(str(CHINESE_DIGITS.index(c)) for c in text))
    return next((n for n in range(1, 32) if chinese_number(n) == text), 0)


def _date_of(groups: dict[str, str]) -> datetime.date | None:
    if "yyyy" in groups or "cyear" in groups:
        year = int(groups["yyyy"]) if "yyyy" in groups else _from_chinese(groups["cyear"])
    else:
        year = int(groups["yy"]) + (1900 if int(groups["yy"]) >= 50 else 2000)
    if "month" in groups or "mon" in groups:
        month = (MONTHS.index(groups["month"]) if "month" in groups
                 else MONTHS_ABBR.index(groups["mon"])) + 1
    else:
        month = int(groups.get("m") or groups.get("mm") or _from_chinese(groups["cmonth"]))
    day = groups.get("day") or groups.get("dd") or groups.get("dth", "")[:-2]
    day = int(day) if day else _from_chinese(groups["cday"])
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def parse(text: object) -> tuple[datetime.date, str]:
    """The date ``text`` writes and the name of its format.

    Refuses, with a ``ValueError`` that says what was expected, a text in no
    supported format, a day that does not exist (``31 February 2026``), a wrong
    weekday, or a year outside 1950-2049.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    for name, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        day = _date_of(match.groupdict())
        if day is None or not FIRST <= day <= LAST:
            raise ValueError(f"text must be a real date in {FIRST.year}-{LAST.year}, got "
                             f"{text!r}")
        if render(day, name) != text:  # a wrong weekday, 2th, 01 where 1 is written, ...
            raise ValueError(f"text reads as format {name!r} but that format writes this date "
                             f"as {render(day, name)!r}, got {text!r}")
        return day, name
    raise ValueError(f"text must be a date in a supported format, e.g. "
                     f"{render(datetime.date(2026, 12, 1), 'weekday_day_month_year')!r} or "
                     f"{render(datetime.date(2026, 12, 1), 'chinese_numerals')!r}, got {text!r}")


# -- characters and tokens ----------------------------------------------------------------


def _vocabulary() -> str:
    """Every character any format writes, and the ISO target's, sorted."""
    chars = set("0123456789-")
    for template in FORMATS.values():  # the separators; the fields' characters follow
        chars |= set(re.sub(r"\{\w+\}", "", template))
    for name in (*MONTHS, *MONTHS_ABBR, *WEEKDAYS, *WEEKDAYS_ABBR, "stndrdth", "十"):
        chars |= set(name)
    return "".join(sorted(chars | set(CHINESE_DIGITS)))


VOCAB = _vocabulary()  # the characters; token id of VOCAB[i] is i + 2 (after PAD and BOS)
VOCAB_SIZE = len(VOCAB) + 2
_IDS = {char: i + 2 for i, char in enumerate(VOCAB)}


def check_text(text: object, name: str = "text") -> str:
    """``text`` if the model can read it: a non-empty str of at most :data:`MAX_LEN` characters
    of :data:`VOCAB`; else a ``TypeError``/``ValueError`` naming ``name``."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if not 1 <= len(text) <= MAX_LEN:
        raise ValueError(f"{name} must have 1 .. {MAX_LEN} characters, got {len(text)}: "
                         f"{text!r}")
    unknown = sorted(set(text) - set(VOCAB))
    if unknown:
        raise ValueError(f"{name} may only use the vocabulary's {len(VOCAB)} characters (English "
                         f"month and weekday names, digits, ' ,./', 年月日 and 〇一..十), got "
                         f"{''.join(unknown)!r} in {text!r}")
    return text


def encode(texts: Sequence[str], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(B, T)`` (padded with :data:`PAD` to ``length``, default the longest text)
    and the valid lengths ``(B,)``."""
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise TypeError(f"texts must be a non-empty list of str, got {type(texts).__name__}")
    texts = [check_text(text, f"texts[{i}]") for i, text in enumerate(texts)]
    longest = max(map(len, texts))
    length = longest if length is None else length
    if not longest <= length <= MAX_LEN:
        raise ValueError(f"length must be {longest} .. {MAX_LEN} (the longest text .. MAX_LEN), "
                         f"got {length}")
    ids = torch.full((len(texts), length), PAD, dtype=torch.long)  # (B, T)
    for row, text in enumerate(texts):
        ids[row, :len(text)] = torch.tensor([_IDS[c] for c in text])
    return ids, torch.tensor([len(text) for text in texts])


def decode(ids: Sequence[int] | torch.Tensor) -> str:
    """The characters of token ids (PAD and BOS are dropped)."""
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    return "".join(VOCAB[i - 2] for i in ids if i >= 2)


# -- the data set -------------------------------------------------------------------------


def split_dates(test_fraction: float = 0.1, seed: int = 0,
                ) -> tuple[list[datetime.date], list[datetime.date]]:
    """Every day in :data:`FIRST` .. :data:`LAST` shuffled with ``seed`` and cut in two:
    ``(train_dates, test_dates)``, disjoint, each sorted."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    days = [FIRST + datetime.timedelta(n) for n in range((LAST - FIRST).days + 1)]
    random.Random(seed).shuffle(days)
    cut = round(len(days) * test_fraction)
    return sorted(days[cut:]), sorted(days[:cut])


def examples(dates: Sequence[datetime.date], num_examples: int, seed: int,
             formats: Sequence[str] = TRAIN_FORMATS) -> list[tuple[str, str]]:
    """``num_examples`` pairs ``(text, iso)``: a date of ``dates`` in one of ``formats``, both
    drawn with ``seed``."""
    if not dates or not formats:
        raise ValueError("dates and formats must be non-empty")
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"formats must be keys of FORMATS, got {unknown}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(num_examples):
        day = dates[rng.randrange(len(dates))]
        pairs.append((render(day, formats[rng.randrange(len(formats))]), iso(day)))
    return pairs


def batch(pairs: Sequence[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(src (B, T), src_valid_lens (B,), tgt (B, 10))`` for pairs ``(text, iso)``."""
    src, valid_lens = encode([text for text, _ in pairs])
    tgt, _ = encode([target for _, target in pairs], ISO_LENGTH)
    return src, valid_lens, tgt
