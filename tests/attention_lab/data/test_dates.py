"""attention_lab.data.dates: dates in many formats, their ISO form, a split by date."""

import datetime

import pytest
import torch

from attention_lab.data import dates as D

DAY = datetime.date(2026, 12, 1)


@pytest.mark.parametrize(("fmt", "text"), [
    ("weekday_day_month_year", "Tuesday, 1 December 2026"),
    ("abbr_ordinal_yy", "Dec 1st 26"),
    ("slash", "1/12/2026"),
    ("dots", "01.12.2026"),
    ("month_day_year", "December 1, 2026"),
    ("chinese_arabic", "2026年12月1日"),
    ("chinese_numerals", "二〇二六年十二月一日"),
])
def test_render_writes_the_formats_of_the_issue(fmt, text):
    assert D.render(DAY, fmt) == text
    assert D.parse(text) == (DAY, fmt)
    assert D.iso(DAY) == "2026-12-01"


def test_chinese_numbers_and_ordinals():
    assert [D.chinese_number(n) for n in (1, 10, 12, 20, 31)] == ["一", "十", "十二", "二十",
                                                                  "三十一"]
    assert D.render(datetime.date(1987, 3, 22), "month_ordinal_year") == "March 22nd, 1987"
    assert D.render(datetime.date(1987, 3, 13), "abbr_ordinal_yy") == "Mar 13th 87"
    assert D.render(datetime.date(2000, 10, 30), "chinese_numerals") == "二〇〇〇年十月三十日"


def test_every_format_of_every_tenth_day_reads_back():
    for n in range(0, (D.LAST - D.FIRST).days + 1, 97):
        day = D.FIRST + datetime.timedelta(n)
        for fmt in D.FORMATS:
            text = D.render(day, fmt)
            parsed, name = D.parse(text)  # "May" is both a name and its abbreviation
            assert parsed == day and D.render(day, name) == text
            assert len(text) <= D.MAX_LEN and set(text) <= set(D.VOCAB)


@pytest.mark.parametrize(("text", "match"), [
    ("hello", "text must be a date in a supported format, e.g. 'Tuesday, 1 December 2026'"),
    ("31 February 2026", "text must be a real date in 1950-2049, got '31 February 2026'"),
    ("1 December 2050", "real date in 1950-2049"),
    ("Monday, 1 December 2026", "writes this date as 'Tuesday, 1 December 2026'"),
    ("2th December 2026", "writes this date as '2nd December 2026'"),
])
def test_parse_refuses_what_is_not_a_supported_date(text, match):
    with pytest.raises(ValueError, match=match):
        D.parse(text)
    with pytest.raises(TypeError, match="text must be a str, got int"):
        D.parse(20261201)


def test_two_digit_years_are_1950_to_2049():
    assert D.parse("01/12/26")[0].year == 2026 and D.parse("01/12/87")[0].year == 1987


def test_encode_decode_round_trip_and_padding():
    ids, valid_lens = D.encode(["1/12/2026", "二〇二六年十二月一日"])
    assert ids.shape == (2, 10) and valid_lens.tolist() == [9, 10]
    assert ids[0, 9] == D.PAD and D.decode(ids[1]) == "二〇二六年十二月一日"
    assert D.encode(["1/12/2026"], 32)[0].shape == (1, 32)


@pytest.mark.parametrize(("texts", "error", "match"), [
    (["Dec 1st 26!"], ValueError, r"texts\[0\] may only use the vocabulary's .* got '!'"),
    (["x" * 40], ValueError, r"texts\[0\] must have 1 \.\. 32 characters, got 40"),
    ([""], ValueError, r"texts\[0\] must have 1 \.\. 32 characters, got 0"),
    (["Dec", 3], TypeError, r"texts\[1\] must be a str, got int"),
    ("1/12/2026", TypeError, "texts must be a non-empty list of str, got str"),
])
def test_encode_refuses_what_the_model_cannot_read(texts, error, match):
    with pytest.raises(error, match=match):
        D.encode(texts)


def test_split_holds_out_dates_and_is_seeded():
    train, test = D.split_dates(0.1, seed=0)
    assert not set(train) & set(test)
    assert len(train) + len(test) == (D.LAST - D.FIRST).days + 1
    assert abs(len(test) - 0.1 * (len(train) + len(test))) <= 1
    assert (train, test) == D.split_dates(0.1, seed=0) and test != D.split_dates(0.1, seed=1)[1]
    with pytest.raises(ValueError, match="test_fraction must be in"):
        D.split_dates(1.0)


def test_examples_and_batch():
    train, test = D.split_dates()
    pairs = D.examples(test, 50, seed=3)
    assert pairs == D.examples(test, 50, seed=3)
    assert {D.parse(text)[0].isoformat() for text, _ in pairs} == {iso for _, iso in pairs}
    assert {D.parse(text)[0] for text, _ in pairs} <= set(test)
    src, valid_lens, tgt = D.batch(pairs)
    assert src.shape[0] == 50 and tgt.shape == (50, 10) and tgt.dtype == torch.long
    assert all(D.decode(row) == iso for row, (_, iso) in zip(tgt, pairs, strict=True))
    assert not any(D.parse(t)[1] == D.UNSEEN_FORMAT for t, _ in D.examples(train, 300, seed=0))
    with pytest.raises(ValueError, match="formats must be keys of FORMATS"):
        D.examples(test, 2, seed=0, formats=["nope"])


def test_spans_locate_year_month_and_day():
    text = D.render(DAY, "weekday_day_month_year")  # Tuesday, 1 December 2026
    where = D.spans(DAY, "weekday_day_month_year")
    assert [text[i] for i in where["day"]] == ["1"]
    assert "".join(text[i] for i in where["month"]) == "December"
    assert "".join(text[i] for i in where["year"]) == "2026"
    chinese = D.spans(DAY, "chinese_numerals")  # 二〇二六年十二月一日
    assert (chinese["year"], chinese["month"], chinese["day"]) == (range(4), range(5, 7),
                                                                  range(8, 9))
    assert "".join("2026-12-01"[i] for i in D.ISO_PARTS["month"]) == "12"


def test_names_are_english_whatever_the_locale():
    assert D.MONTHS[11] == "December" and D.WEEKDAYS_ABBR[1] == "Tue"
    assert D.VOCAB_SIZE == 60  # the stored chapter-08 model's vocabulary
