"""Shortcuts in the standardizers (issue 14) give exactly what the full path gives."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmclean.standardize.emails import _is_plain, _validated
from crmclean.standardize.phones import _split_all, split_numbers
from crmclean.standardize.regions import _fast_explicit_region, _parsed_region, explicit_region
from crmclean.standardize.text import _junk_text, _junk_text_full, junk_kind, payload_kind

PROPS = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Phone cells as CRMs write them: digits, punctuation, every separator split_numbers knows,
# the words "or"/"或" and the spaces around them.
PHONE_CHARS = st.sampled_from(list("0123456789 +-().,;/|\\\n\t、，；或ox#") + [" or ", " 或 ", "ext", "  "])
PHONE_CELLS = st.lists(PHONE_CHARS, max_size=30).map("".join)


@PROPS
@given(PHONE_CELLS)
@example("138 0013 8000 / 010-6552 9988")
@example("773/256-6035")
@example("1,234,567")
@example("555-1234 or 555-9876")
@example("  ")
def test_split_numbers_shortcut_equals_the_full_split(cell):
    assert split_numbers(cell) == _split_all(cell)


# ------------------------------------------------------------------ explicit phone regions
SEPARATORS = st.sampled_from(["", "", "", " ", "-", ".", "  ", "--", " - ", "..", "-."])


@st.composite
def explicit_numbers(draw) -> str:
    """+CC numbers as CRMs write them: mostly a +86 mobile or a +1 NANP number, some other
    country codes and lengths, digits grouped by any run of spaces, hyphens and dots."""
    kind = draw(st.sampled_from(["cn", "nanp", "nanp", "other"]))
    if kind == "cn":
        digits = "86" + "1" + draw(st.sampled_from("0123456789")) + draw(st.text("0123456789", min_size=9, max_size=9))
    elif kind == "nanp":
        digits = "1" + draw(st.text("0123456789", min_size=10, max_size=10))
    else:
        digits = draw(st.text("0123456789", min_size=1, max_size=16))
    out = "+"
    for i, d in enumerate(digits):
        out += (draw(SEPARATORS) if i else "") + d
    return out + draw(st.sampled_from(["", "", " ", "-", "."]))


@PROPS
@given(explicit_numbers())
@example("+86-133-7822-0900")
@example("+1 646 303 2517")
@example("+1.242.555.0100")
@example("+8613378220900")
def test_explicit_region_shortcut_equals_libphonenumber(number):
    fast = _fast_explicit_region(number)
    if fast is not None:
        assert fast == _parsed_region(number)


def test_explicit_region_shortcut_takes_the_common_shapes():
    assert _fast_explicit_region("+86 138 0013 8000") == "CN"
    assert _fast_explicit_region("+1-646-303-2517") == "US"
    assert _fast_explicit_region("+44 20 7946 0958") is None  # left to libphonenumber
    assert explicit_region("0086 138 0013 8000") == "CN"


# ------------------------------------------------------------------ plain e-mail addresses
LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._%+-"
LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


@st.composite
def plain_addresses(draw) -> str:
    """Lower-case ASCII addresses of the shapes the shortcut accepts and just outside them:
    dots, hyphens and plus tags anywhere, long local parts and domains, special-use TLDs."""
    local = draw(st.text(LOCAL_CHARS, min_size=1, max_size=70))
    labels = draw(st.lists(st.text(LABEL_CHARS, min_size=1, max_size=70), min_size=1, max_size=9))
    tld = draw(
        st.one_of(
            st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=25),
            st.sampled_from(["com", "cn", "test", "local", "onion", "arpa", "invalid", "localhost", "example"]),
        )
    )
    return f"{local}@{'.'.join(labels)}.{tld}"


@PROPS
@given(plain_addresses())
@example("john.smith@gmail.com")
@example("a-@b.co")
@example("ab--cd@ab--cd.com")
@example("xn--ab@gmail.com")
@example("x@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com")
def test_plain_email_shortcut_equals_email_validator(address):
    if _is_plain(address):
        assert _validated(address) == address


# ------------------------------------------------------------------ junk tests on ASCII text
@PROPS
@given(st.one_of(st.text(), st.text(st.characters(max_codepoint=127))))
@example("  =SUM(A1)  ")
@example("\x00abc")
@example("a\u200bb")
def test_junk_text_shortcut_equals_the_full_normalization(text):
    assert _junk_text(text) == _junk_text_full(text)


@PROPS
@given(st.text(st.characters(max_codepoint=127)))
@example("=cmd|' /c calc'!A1")
@example("<b>x</b>")
@example("N/A")
def test_payload_kind_is_junk_kind_without_placeholders(text):
    kind = junk_kind(text)
    assert payload_kind(text) == (kind if kind in ("formula", "markup") else None)


# ------------------------------------------------------------------ Chinese numbers with trunk 0
CN_AREA_CODES = ["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "371", "411", "512", "532"]
CN_AREA_CODES += ["571", "591", "592", "731", "755", "756", "769", "851", "871", "898", "991", "351", "1"]


@st.composite
def cn_trunk_numbers(draw) -> str:
    """0 + area code (real ones, and any digits) + a local number of 5-10 digits."""
    area = draw(st.one_of(st.sampled_from(CN_AREA_CODES), st.text("0123456789", min_size=1, max_size=4)))
    return "0" + area + draw(st.text("0123456789", min_size=5, max_size=10))


@PROPS
@given(cn_trunk_numbers())
@example("02835094040")
@example("073182714590")
@example("01054085285")
@example("059280372820")
def test_cn_trunk_shortcut_equals_the_full_parse(number):
    import re
    from unittest import mock

    from crmclean.standardize import phones

    fast = phones.parse_one.__wrapped__(number, "CN", "US")
    with mock.patch.object(phones, "_CN_TRUNK_RE", re.compile(r"(?!)")):  # the shortcut never applies
        full = phones.parse_one.__wrapped__(number, "CN", "US")
    assert fast == full


# ------------------------------------------------------------------ clean_text, flag_for (speed14d)
# Printable ASCII with the characters that send clean_text down its slow path (<, &, =, tabs,
# double spaces, entities, tags, formulas) and the empty markers.
ASCII_CELLS = st.one_of(
    st.text(st.characters(max_codepoint=127)),
    st.lists(st.sampled_from(["a", "B", "7", " ", "  ", "<", ">", "&", "amp;", "=", "\t", "n/a", "<b>", "none"])).map(
        "".join
    ),
)


@PROPS
@given(ASCII_CELLS)
@example("Tom &amp; Jerry")
@example("a <b>bold</b> name")
@example("x = 1 + 2")
@example('=HYPERLINK("u","Ann")')
@example("  Unknown  ")
@example("a\tb c")
def test_clean_text_shortcut_equals_the_full_cleaning(text):
    from crmclean.standardize.text import _clean_text_full, clean_text

    assert clean_text(text) == _clean_text_full(text)


@PROPS
@given(
    st.one_of(st.none(), st.text(max_size=8), st.floats(allow_nan=True), st.integers()),
    st.one_of(st.none(), st.text(max_size=8)),
    st.sampled_from([(), [], None, ("changed",), ["placeholder"], ("invalid", "multiple")]),
)
@example(" Ann ", "Ann", ())
@example("  ", None, ())
@example("x", None, [])
def test_flag_for_shortcut_equals_joining_the_codes(raw, std, codes):
    from crmclean.standardize.text import _flag_for_full, flag_for

    assert flag_for(raw, std, codes) == _flag_for_full(raw, std, codes)


@PROPS
@given(st.one_of(PHONE_CELLS, ASCII_CELLS, explicit_numbers(), st.text()))
@example("  +44 20 7946 0958")
@example("00 44 20 7946 0958")
@example("+\u00a044 20 7946 0958")
@example("＋86 138 0013 8000")
@example('="+44 20 7946 0958"')
@example("<b>+1 646 303 2517</b>")
@example("&#43;44 20 7946 0958")
def test_explicit_region_plain_cell_shortcut_equals_cleaning_first(cell):
    from crmclean.standardize.regions import _explicit_region_full

    assert explicit_region.__wrapped__(cell) == _explicit_region_full(cell)


# ------------------------------------------------------------------ the stage's own bookkeeping
def test_present_rows_is_per_row_not_none():
    import math

    import pandas as pd

    from crmclean.standardize.parallel import FieldJob

    def echo(value):
        return (value,)

    raw = pd.Series(["a", None, "b", "a", float("nan"), "", "c", None], dtype=object)
    job = FieldJob(echo, [raw], (), ("out",)).submit(None)
    job.result()
    job.distinct["out"][0] = math.nan  # a NaN output counts as missing, as factorizing treats it
    assert (job.present_rows("out") == job.per_row("out", lambda v: v is not None)).all()


def test_collector_paused_restores_the_collector():
    import gc

    from crmclean.memory import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


# ------------------------------------------------------------------ literal pre-checks (speed14g)
# Text with the pieces the formula, DDE and markup patterns look for, in any case, and the
# characters re.I folds into ASCII letters (ſ → s, K Kelvin → k).
PAYLOAD_PIECES = ["=", "+", "-", "@", " ", "\t", "|", "'", "/c", "cmd", "CMD", "PowerShell", "mshta", "ddeAuto"]
PAYLOAD_PIECES += ["<", ">", "<b>", "</a>", "<!--", "javascript:", "JavaScript", "onload=", '"', "SUM(", "A1", "7"]
PAYLOAD_PIECES += ["Main St", "\u017f", "\u212a", "powerſhell", "é"]
PAYLOAD_CELLS = st.one_of(st.text(), st.lists(st.sampled_from(PAYLOAD_PIECES), max_size=8).map("".join))


@PROPS
@given(PAYLOAD_CELLS)
@example("=cmd|' /c calc'!A1")
@example(" +SUM(A1)")
@example("x | powershell -c x")
@example("<b>x</b>")
@example("javascript:alert(1)")
@example("12 Main St")
def test_payload_kind_shortcut_equals_the_patterns(text):
    from crmclean.standardize.text import _payload_kind, _payload_kind_full

    assert _payload_kind(text) == _payload_kind_full(text)


def test_payload_kind_shortcut_still_finds_payloads():
    from crmclean.standardize.text import _payload_kind

    assert _payload_kind("=cmd|' /c calc'!A1") == "formula"
    assert _payload_kind("run POWERSHELL now") == "formula"
    assert _payload_kind("<script>x</script>") == "markup"
    assert _payload_kind("12 Main St") is None


# Phone cells with extensions in every spelling, Excel's number forms and non-ASCII digits.
PHONE_TEXT_PIECES = ["1", "3", "8", "0", "5", "+", "-", " ", ".", "0", "e", "E", "+1", "x", "X", "ext", "Ext.", "#"]
PHONE_TEXT_PIECES += ["extension", "转", "分机", "١", "٣", "²", "(", ")", "/", "00", "86"]
PHONE_TEXTS = st.one_of(PHONE_CELLS, st.lists(st.sampled_from(PHONE_TEXT_PIECES), max_size=20).map("".join))


@PROPS
@given(PHONE_TEXTS)
@example("13800138000.0")
@example("1.38001E+10")
@example("(212) 555-0100 ext. 12")
@example("010-6552 9988 转 801")
def test_phone_pre_checks_equal_the_patterns(text):
    from crmclean.standardize.phones import _EXT_RE, _may_have_extension, _unpack_excel_full, _unpack_excel_number

    assert _unpack_excel_number(text) == _unpack_excel_full(text)
    assert _may_have_extension(text) or _EXT_RE.search(text) is None


@PROPS
@given(PHONE_TEXTS, st.sampled_from([None, "US", "CN", "GB"]))
@example("+８６ 138 0013 8000", "CN")
@example("+١٢١٢٥٥٥٠١٠٠", "US")
def test_parse_one_with_its_pre_checks_equals_the_patterns(text, region):
    from unittest import mock

    from crmclean.standardize import phones

    fast = phones.parse_one.__wrapped__(text, region, "US")
    with (
        mock.patch.object(phones, "_may_have_extension", lambda t: True),
        mock.patch.object(phones, "_unpack_excel_number", phones._unpack_excel_full),
    ):
        full = phones.parse_one.__wrapped__(text, region, "US")
    assert fast == full
    bare = text.lstrip("+")  # parse_one's digits without the pattern: what the pattern finds
    if bare.isdecimal():
        assert "".join(phones._DIGITS_RE.findall(text)) == bare
