"""Read one CSV/TSV/TXT file or one workbook into tables of text cells ("blocks").

Readers only split rows; everything a reader cannot split (wrong field count, blank rows) is
reported as a row problem with its physical location, never as an exception. File-level
problems raise InputFileError naming the file.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import threading
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path
from itertools import islice
from typing import Any, Iterable, Iterator

import numpy as np

from .. import progress
from ..errors import InputFileError

DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
SNIFF_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_LINES = 50
_SEP_HINT = re.compile(r"sep=(.)\r?\n")
DEFAULT_MAX_LINE_CHARS = 1_000_000
#: lines of a text file split, checked and transposed at a time (rules/sources.yaml chunk_rows)
CHUNK_ROWS = 50_000
csv.field_size_limit(2**31 - 1)  # long values are quarantined by rule, not rejected by csv


@dataclass
class RowProblem:
    """A row that was read but could not become a record."""

    position: int  # physical line (CSV) or sheet row (Excel), 1-based
    code: str  # column_count | blank_row | encoding_error | unbalanced_quote | line_too_long | no_header
    detail: str  # sentence tail, e.g. "has 9 fields, the header has 8"
    raw: str  # JSON object or the raw line text


@dataclass
class Block:
    """One table (a CSV file or one sheet): unique headers, cells by column, and locations."""

    file: str
    sheet: str | None
    headers: list[str]
    columns: list[list[str]]  # text cells, column-major, one list per header
    positions: list[int]  # line / row number of every accepted row
    raw_columns: list[list[Any]] | None = None  # original Excel values (JSON-ready); None = same as text
    problems: list[RowProblem] = field(default_factory=list)
    rows_read: int = 0
    has_nul: bool | None = None  # False when the reader saw no NUL byte anywhere (skips a check)

    def where(self, position: int) -> str:
        """Human location: "crm_a.csv line 17" / "crm_sales.xlsx sheet 'East' row 7"."""
        if self.sheet is None:
            return f"{self.file} line {position}"
        return f"{self.file} sheet '{self.sheet}' row {position}"

    @property
    def id_prefix(self) -> str:
        """Row locator without the file name and number: "@line:" or "@<sheet>!"."""
        return "@line:" if self.sheet is None else f"@{self.sheet}!"

    def locator(self, position: int) -> str:
        return f"{self.file}{self.id_prefix}{position}"

    def local_id(self, position: int) -> str:
        return f"{self.id_prefix}{position}"


def unique_headers(cells: list[str]) -> list[str]:
    """Header names usable as JSON keys: blank → column_<n>, repeats → name.1, name.2 (as pandas).

    Each name remembers its last suffix, so a header of a million equal cells stays linear."""
    out: list[str] = []
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    for i, cell in enumerate(cells, start=1):
        name = str(cell).replace("\x00", "").strip() or f"column_{i}"
        candidate, n = name, next_suffix.get(name, 0)
        if candidate in seen:
            n += 1
            candidate = f"{name}.{n}"
            while candidate in seen:
                n += 1
                candidate = f"{name}.{n}"
            next_suffix[name] = n
        seen.add(candidate)
        out.append(candidate)
    return out


# ---------------------------------------------------------------------------------------------
# Text files


# Western text read as GB18030 by mistake: an accented letter and the letter after it fuse into
# one CJK character inside a Latin word ("Müller" → "M黮ler"). Real Chinese data has few of these
# compared with its CJK characters.
_FUSED_IN_WORD = re.compile(r"[A-Za-z][^\x00-\x7f][a-z]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_WESTERN_SINGLE_BYTE = re.compile(r"^(cp125\d|cp437|cp8\d\d|latin_\d+|iso8859_\d+|mac_\w+)$")


def decode_bytes(path: Path, data: bytes, encoding: str | None = None) -> str:
    """The text of a file (see `decode_text`); damaged UTF-8 lines hold U+FFFD."""
    return decode_text(path, data, encoding)[0]


def decode_text(path: Path, data: bytes, encoding: str | None = None) -> tuple[str, dict[int, str]]:
    """(text, {physical line: what was damaged}) by deterministic decoding: UTF-8 (BOM
    optional) → UTF-8 with a few damaged bytes → UTF-16 by BOM → GB18030 → best guess.

    A file that is UTF-8 but for a few bytes stays UTF-8 (re-decoding it all as GB18030 would
    garble every Chinese character); its damaged lines are returned so the rows on them are
    quarantined. GB18030 accepts many byte strings, so its result is kept only when it looks
    like Chinese text; otherwise charset-normalizer decides, and for a Western single-byte guess
    we use cp1252 (what Windows Excel writes; the guessers' choice among cp1250/cp852/... is noise)."""
    if encoding:
        try:
            return data.decode(encoding), {}
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputFileError(path, f"cannot decode as {encoding} (set in rules/sources.yaml): {exc}") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), {}
        except UnicodeDecodeError as exc:
            raise InputFileError(
                path, f"has a UTF-16 byte-order mark but cannot be decoded as UTF-16 ({exc})"
            ) from None
    errors = []
    try:
        return data.decode("utf-8-sig"), {}
    except UnicodeDecodeError as exc:
        errors.append(f"UTF-8: {exc.reason} at byte {exc.start}, line {_line_of(data, exc.start)}")
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly
    gb_text = None
    try:
        gb_text = data.decode("gb18030")
        if _looks_chinese(gb_text):
            return gb_text, {}
    except UnicodeDecodeError as exc:
        errors.append(f"GB18030: {exc.reason} at byte {exc.start}, line {_line_of(data, exc.start)}")
    guess = _best_guess(data)
    if guess is not None:
        return guess, {}
    if gb_text is not None:
        return gb_text, {}
    raise InputFileError(path, f"cannot decode as UTF-8, UTF-16 or GB18030 ({'; '.join(errors)})")


_DAMAGE = threading.local()


def _record_damage(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: remember where a bad byte was, replace it, give up when too many."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _DAMAGE.offsets.append((exc.start, exc.object[exc.start]))
    if len(_DAMAGE.offsets) > _DAMAGE.limit:
        raise exc
    return "\ufffd", exc.end


codecs.register_error("crmclean-record-damage", _record_damage)


def _mostly_utf8(data: bytes) -> tuple[str, dict[int, str]] | None:
    """UTF-8 text and its damaged lines, if the file is UTF-8 but for a few bytes: valid
    multi-byte characters outnumber the bad bytes 4 to 1 and at most 1 line in 50 (or 5) is hit.
    A GBK or cp1252 file fails this (its non-ASCII bytes are almost never valid UTF-8)."""
    lines = data.count(b"\n") + 1
    _DAMAGE.offsets, _DAMAGE.limit = [], min(max(16, len(data) // 200), 10_000)
    try:
        text = data.decode("utf-8", errors="crmclean-record-damage").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    finally:
        offsets, _DAMAGE.offsets = _DAMAGE.offsets, []
    valid_non_ascii = len(text) - len(text.encode("ascii", "ignore")) - len(offsets)
    damaged: dict[int, str] = {}
    line, previous = 1, 0
    for offset, byte in offsets:  # offsets ascend; a bad byte is never a line terminator
        line += (
            data.count(b"\n", previous, offset)
            + data.count(b"\r", previous, offset)
            - data.count(b"\r\n", previous, offset)
        )
        previous = offset
        damaged.setdefault(line, f"byte 0x{byte:02X}")
    if valid_non_ascii < 4 * len(offsets) or len(damaged) > max(5, lines // 50):
        return None
    return text, damaged


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _looks_chinese(text: str) -> bool:
    sample = text[: 1 << 20]
    fused = len(_FUSED_IN_WORD.findall(sample))
    return fused == 0 or fused * 5 < len(_NON_ASCII.findall(sample))


def _best_guess(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or not best.encoding:
        return None
    for codec in (["cp1252"] if _WESTERN_SINGLE_BYTE.match(best.encoding) else []) + [best.encoding]:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the most consistent, widest rows."""
    sample = io.StringIO(text[: 1 << 20], newline="")
    head = []
    for line in sample:
        if line.strip():
            head.append(line)
        if len(head) >= _SNIFF_LINES:
            break
    if not head:
        return ","
    best, best_score = ",", (0.0, 1)
    for delim in SNIFF_DELIMITERS:
        try:
            rows = [r for r in csv.reader(head, delimiter=delim) if r]
        except csv.Error:
            continue
        width = len(rows[0]) if rows else 0
        if width < 2:
            continue
        body = rows[1:-1] if len(rows) > 2 else rows[1:]  # the last sampled line may be cut mid-record
        consistency = sum(len(r) == width for r in body) / len(body) if body else 1.0
        score = (consistency, width)
        if score > best_score:
            best, best_score = delim, score
    return best


def _physical_lines(text: str) -> int:
    """Line count as io.StringIO(newline="") splits it: at \\n, \\r\\n and a lone \\r."""
    if not text:
        return 0
    terminators = text.count("\n") + text.count("\r") - text.count("\r\n")
    return terminators + (0 if text.endswith(("\n", "\r")) else 1)


def _split_records(
    path: Path, text: str, delimiter: str, offset: int = 0
) -> tuple[list[list[str]], list[int], list[int]]:
    """All records, the physical line where each starts and where each ends (counted in `text`;
    `offset` lines come before it in the file, for the message of a record that cannot be split).

    Fast path: parse everything in C; when there are as many records as lines, record i is
    line i + 1. Only files with quoted line breaks pay for the line-tracking loop."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
        if len(rows) == _physical_lines(text):
            lines = list(range(1, len(rows) + 1))
            return rows, lines, lines
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        starts, ends, rows = [], [], []
        previous = 0
        for row in reader:
            rows.append(row)
            starts.append(previous + 1)
            previous = reader.line_num
            ends.append(previous)
        return rows, starts, ends
    except csv.Error as exc:
        raise InputFileError(
            path, f"line {reader.line_num + offset}: cannot be split as delimited text ({exc})"
        ) from None


def read_delimited(
    path: Path,
    encoding: str | None,
    delimiter: str | None,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
    chunk_rows: int = CHUNK_ROWS,
) -> Block:
    """Split a text file with the csv module, keeping the physical line where each row starts.

    Hostile input is contained and never silent: an over-long line is blanked before splitting,
    a quote that runs past its line is cut at its line, a line with damaged UTF-8 keeps its row
    out — each a row problem naming the line. Only a header whose quote never closes stops the
    file (no row of it could be mapped). A file one codec decodes whole is read `chunk_rows`
    lines at a time (`_read_chunked`); the others (damaged UTF-8, guessed encodings) whole."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    codec = _stream_codec(data, encoding)
    if codec is not None:
        block = _read_chunked(path, data, codec, delimiter, max_line_chars, chunk_rows)
        if block is not None:
            return block
    text, damaged = decode_text(path, data, encoding)
    text, too_long = _blank_long_lines(text.removeprefix("\ufeff"), max_line_chars)
    hint = _SEP_HINT.match(text)  # Excel's "sep=;" first line names the delimiter
    if delimiter is None:
        if hint:
            delimiter = hint.group(1)
        else:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
    rows, starts, ends = _split_records(path, text, delimiter)

    first = next((i for i, row in enumerate(rows) if not _is_blank(row) and not (i == 0 and hint)), None)
    if first is None or any(line < starts[first] for line in too_long):
        if not too_long:
            raise InputFileError(path, "has no header row (the file is empty)")
        return _headerless_block(path, text, rows, starts, ends, too_long, max_line_chars)
    header = _header_row(path, text, rows, starts, ends, first, delimiter)
    width = len(header)
    rows, starts, ends, problems = _recover_runaway_quotes(
        path, text, delimiter, (rows, starts, ends), first, width, max_line_chars
    )
    last = len(rows)
    while last > first + 1 and _is_blank(rows[last - 1]):  # trailing empty lines are not rows
        last -= 1

    block = Block(
        file=path.name, sheet=None, headers=unique_headers(header), columns=[], positions=[], has_nul="\x00" in text
    )
    block.problems = problems + _line_problems(too_long, max_line_chars, starts[first])
    data_rows, positions = _checked_rows(
        block,
        text,
        delimiter,
        width,
        rows[first + 1 : last],
        starts[first + 1 : last],
        ends[first + 1 : last],
        damaged,
        too_long,
    )
    block.problems.sort(key=lambda p: p.position)
    block.columns = _transpose(data_rows, width)
    block.positions = positions
    block.rows_read = len(data_rows) + len(block.problems)
    return block


# ---------------------------------------------------------------------------------------------
# Text files in chunks (issue 14: bounded memory)

_DECODE_STEP = 1 << 20
_SNIFF_CHARS = 1 << 20  # sniff_delimiter reads this much of the text


def _decodes(data: bytes, codec: str) -> bool:
    """Whether `codec` decodes all of `data`, checked a megabyte at a time (no whole text)."""
    try:
        decoder = codecs.getincrementaldecoder(codec)()
        view = memoryview(data)
        for start in range(0, len(data), _DECODE_STEP):
            decoder.decode(view[start : start + _DECODE_STEP])
        decoder.decode(b"", final=True)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _stream_codec(data: bytes, encoding: str | None) -> str | None:
    """The codec `decode_text` would decode the whole file with, when that codec decodes every
    byte (so the file can be decoded chunk by chunk); None when decode_text must see it whole:
    a wrong `encoding` (its error), UTF-8 with damaged bytes (their lines), guessed encodings."""
    if encoding:
        return encoding if _decodes(data, encoding) else None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16" if _decodes(data, "utf-16") else None
    if _decodes(data, "utf-8-sig"):
        return "utf-8-sig"
    if _mostly_utf8(data) is not None or not _decodes(data, "gb18030"):
        return None
    head = codecs.getincrementaldecoder("gb18030")().decode(data[: 4 * _SNIFF_CHARS])
    return "gb18030" if _looks_chinese(head) else None


def _text_lines(data: bytes, codec: str) -> Iterator[str]:
    """The physical lines of the file, line ends kept (as io.StringIO(newline="") splits them)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")


def _sniff_sample(data: bytes, codec: str, limit: int) -> str:
    """The text the whole-file reader sniffs the delimiter from: the first megabyte of the text
    with its over-long lines emptied (read on its own, so chunks can be any size)."""
    sample: list[str] = []
    size = 0
    for line in _text_lines(data, codec):
        line = line if sample else line.removeprefix("\ufeff")
        body = line.rstrip("\r\n")
        line = line[len(body) :] if len(body) > limit else line
        sample.append(line)
        size += len(line)
        if size >= _SNIFF_CHARS:
            break
    return "".join(sample)


@dataclass
class _Chunked:
    """What reading the chunks so far established: the header and its width, the delimiter."""

    block: Block
    delimiter: str
    width: int
    hint: bool
    header_read: bool = False  # the header's chunk is done: later chunks start with a record


def _read_chunked(
    path: Path, data: bytes, codec: str, delimiter: str | None, limit: int, chunk_rows: int
) -> Block | None:
    """The file read `chunk_rows` lines at a time, with the same rows and problems (and line
    numbers) as reading it whole: each chunk's last record (with the blank records before it)
    is carried into the next chunk, because a prefix of the text splits into the same records as
    the whole text except for its last. None: the whole-file reader must decide (no header in
    the first chunk, a header line too long to read)."""
    lines = _text_lines(data, codec)
    chunk, offset, state = list(islice(lines, chunk_rows)), 0, None
    if chunk:
        chunk[0] = chunk[0].removeprefix("\ufeff")
    while True:
        more = list(islice(lines, chunk_rows))
        last = not more
        text, too_long = _blank_long_lines("".join(chunk), limit)
        if state is None:
            state = _chunk_header(path, text, too_long, delimiter, _sniff_sample(data, codec, limit))
            if state is None:
                return None
        consumed = _chunk_body(path, state, text, too_long, offset, last, limit)
        if last:
            break
        if consumed is None:  # the first chunk ends inside the header
            return None
        offset += consumed
        chunk = [*chunk[consumed:], *more]  # the original lines: a blanked line is blanked again
    block = state.block
    block.problems.sort(key=lambda p: p.position)
    block.rows_read = len(block.positions) + len(block.problems)
    return block


def _header_row(path: Path, text: str, rows, starts, ends, first: int, delimiter: str) -> list[str]:
    """The header record, refused when it opens a quote it never closes (read whole or in
    chunks alike); a trailing delimiter on it adds no column."""
    if ends[first] > starts[first] and _badly_quoted(
        io.StringIO(text, newline="").readlines()[starts[first] - 1 : ends[first]], delimiter
    ):
        raise InputFileError(
            path,
            f"line {starts[first]}: the header opens a quote that is never closed "
            f"(it runs on to line {ends[first]}); fix the header line",
        )
    header = rows[first]
    while header and not header[-1].strip():
        header.pop()
    return header


def _chunk_header(
    path: Path, text: str, too_long: dict[int, tuple[int, str]], delimiter: str | None, sample: str
) -> _Chunked | None:
    """The header and width from the first chunk, the delimiter from the sniff sample (as the
    whole-file reader decides them)."""
    hint = _SEP_HINT.match(sample)
    if delimiter is None:
        delimiter = hint.group(1) if hint else "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(sample)
    rows, starts, ends = _split_records(path, text, delimiter)
    first = next((i for i, row in enumerate(rows) if not _is_blank(row) and not (i == 0 and hint)), None)
    if first is None or first == len(rows) - 1 or any(line < starts[first] for line in too_long):
        return None  # an empty head, a header the chunk may cut, or one too long to read
    header = _header_row(path, text, rows, starts, ends, first, delimiter)
    block = Block(
        file=path.name, sheet=None, headers=unique_headers(header), columns=[[] for _ in header], positions=[]
    )
    block.has_nul = False
    return _Chunked(block=block, delimiter=delimiter, width=len(header), hint=bool(hint))


def _chunk_body(
    path: Path, state: _Chunked, text: str, too_long: dict[int, tuple[int, str]], offset: int, last: bool, limit: int
) -> int | None:
    """Add the rows of one chunk to the block; → how many of its lines were used (the rest is
    carried into the next chunk), None when the first chunk ends inside the header."""
    rows, starts, ends = _split_records(path, text, state.delimiter, offset)
    first = -1  # the index of the header in this chunk: before the first record after the first chunk
    if not state.header_read:
        first = next(i for i, row in enumerate(rows) if not _is_blank(row) and not (i == 0 and state.hint))
    cut = len(rows)
    if not last:  # carry the last record and the blank records before it
        cut -= 1
        while cut > first + 1 and _is_blank(rows[cut - 1]):
            cut -= 1
        if cut <= first:
            return None
    # the first line carried on (a last line blanked for its length may have no line left)
    end_line = starts[cut] if cut < len(rows) else max(_physical_lines(text), *too_long, 0) + 1
    rows, starts, ends, problems = _recover_runaway_quotes(
        path, text, state.delimiter, (rows[:cut], starts[:cut], ends[:cut]), first, state.width, limit, offset
    )
    keep = len(rows)
    while last and keep > first + 1 and _is_blank(rows[keep - 1]):  # trailing empty lines are not rows
        keep -= 1
    chunk_long = {line: what for line, what in too_long.items() if line < end_line}
    scratch = Block(file=path.name, sheet=None, headers=[], columns=[], positions=[])
    scratch.problems = problems + _line_problems(chunk_long, limit, starts[first] if first >= 0 else 0)
    body = slice(first + 1, keep)
    data_rows, positions = _checked_rows(
        scratch, text, state.delimiter, state.width, rows[body], starts[body], ends[body], {}, chunk_long
    )
    block = state.block
    for column, values in zip(block.columns, _transpose(data_rows, state.width)):
        column.extend(values)
    block.positions.extend(p + offset for p in positions)
    for problem in scratch.problems:
        problem.position += offset
    block.problems.extend(scratch.problems)
    block.has_nul = bool(block.has_nul) or "\x00" in text
    progress.advance(len(data_rows) + len(scratch.problems))
    state.header_read = True
    return end_line - 1


def _is_blank(row: list[str]) -> bool:
    return not row or not "".join(row).strip()


def _checked_rows(
    block: Block,
    text: str,
    delimiter: str,
    width: int,
    data_rows: list[list[str]],
    positions: list[int],
    ends: list[int],
    damaged: dict[int, str],
    too_long: dict[int, tuple[int, str]],
) -> tuple[list[list[str]], list[int]]:
    """Rows of the header's width; every other row becomes a problem on `block` or is dropped
    because a line problem already accounts for it (a blanked over-long line, damaged bytes)."""
    dropped = {i for i, p in enumerate(positions) if p in too_long}
    physical: list[str] | None = None
    for line, what in sorted(damaged.items()):  # the record holding a damaged line is kept out
        i = bisect.bisect_right(positions, line) - 1
        if i < 0 or i in dropped or not positions[i] <= line <= ends[i]:
            continue  # the header, or a line another problem already accounts for
        physical = physical or io.StringIO(text, newline="").readlines()
        block.problems.append(
            RowProblem(
                positions[i],
                "encoding_error",
                f"is not valid UTF-8 ({what} on line {line}) in a file that otherwise is; the row is kept out "
                "rather than guessed (raw shows the damage as \ufffd)",
                "".join(physical[positions[i] - 1 : ends[i]]).rstrip("\r\n"),
            )
        )
        dropped.add(i)
    # Only rows with a different width or an empty first cell need a closer look.
    suspects = [i for i, row in enumerate(data_rows) if i not in dropped and (len(row) != width or not row[0].strip())]
    for i in suspects:
        row, n = data_rows[i], len(data_rows[i])
        if _is_blank(row):
            block.problems.append(RowProblem(positions[i], "blank_row", "is blank", delimiter.join(row)))
            dropped.add(i)
        elif n > width and not "".join(row[width:]).strip():
            data_rows[i] = row[:width]  # trailing delimiters are not real fields
        elif n != width:
            physical = physical or io.StringIO(text, newline="").readlines()
            raw = "".join(physical[positions[i] - 1 : ends[i]]).rstrip("\r\n")
            block.problems.append(
                RowProblem(positions[i], "column_count", f"has {n} fields, the header has {width}", raw)
            )
            dropped.add(i)
    if dropped:
        data_rows = [row for i, row in enumerate(data_rows) if i not in dropped]
        positions = [p for i, p in enumerate(positions) if i not in dropped]
    return data_rows, positions


def _line_problems(too_long: dict[int, tuple[int, str]], limit: int, header_line: int) -> list[RowProblem]:
    """Problems of the physical lines after the header that were too long to split."""
    return [
        RowProblem(line, "line_too_long", _too_long_detail(length, limit), preview)
        for line, (length, preview) in too_long.items()
        if line > header_line
    ]


def _too_long_detail(length: int, limit: int) -> str:
    return (
        f"is {length:,} characters long (limit max_line_chars {limit:,} in rules/sources.yaml); "
        "it was not split into fields"
    )


def _headerless_block(
    path: Path,
    text: str,
    rows: list[list[str]],
    starts: list[int],
    ends: list[int],
    too_long: dict[int, tuple[int, str]],
    limit: int,
) -> Block:
    """A file whose header line is too long to read: every line is quarantined, none is read."""
    block = Block(file=path.name, sheet=None, headers=[], columns=[], positions=[], has_nul=False)
    block.problems = [
        RowProblem(line, "line_too_long", _too_long_detail(length, limit), preview)
        for line, (length, preview) in too_long.items()
    ]
    first_long = min(too_long)
    physical = io.StringIO(text, newline="").readlines()
    for row, start, end in zip(rows, starts, ends):
        if start not in too_long and not _is_blank(row):
            raw = "".join(physical[start - 1 : end]).rstrip("\r\n")
            block.problems.append(
                RowProblem(
                    start, "no_header", f"cannot be read: the header (line {first_long}) is too long to read", raw
                )
            )
    block.problems.sort(key=lambda p: p.position)
    block.rows_read = len(block.problems)
    return block


_PREVIEW_CHARS = 200


def _blank_long_lines(text: str, limit: int) -> tuple[str, dict[int, tuple[int, str]]]:
    """Text with every physical line longer than `limit` emptied (its line break kept, so line
    numbers stay), and {line: (length, first characters)} of those lines.

    Splitting a 50 MB line would create millions of cells; emptying it costs one pass."""
    if len(text) <= limit or max(map(len, text.split("\n"))) <= limit + 1:
        return text, {}
    lines = io.StringIO(text, newline="").readlines()
    too_long: dict[int, tuple[int, str]] = {}
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if len(body) > limit:
            too_long[i + 1] = (len(body), body[:_PREVIEW_CHARS] + "…")
            lines[i] = line[len(body) :]
    return ("".join(lines), too_long) if too_long else (text, {})


def _recover_runaway_quotes(
    path: Path,
    text: str,
    delimiter: str,
    split: tuple[list[list[str]], list[int], list[int]],
    first: int,
    width: int,
    limit: int,
    offset: int = 0,
) -> tuple[list[list[str]], list[int], list[int], list[RowProblem]]:
    """Records with every runaway quote cut at its line: (rows, starts, ends, problems); the
    line numbers in the problems' sentences are the file's (`offset` lines before `text`).

    A record spanning several lines is a runaway by `_is_runaway`. Its first line
    becomes an `unbalanced_quote` problem and the lines it swallowed are split again on their
    own (and checked the same way), so every physical line is accounted for. Lines after the
    runaway were parsed from a record start, so they need no second pass: linear overall."""
    rows, starts, ends = split
    if starts == ends:  # no record spans lines: nothing to check
        return rows, starts, ends, []
    physical = io.StringIO(text, newline="").readlines()
    kept: list[tuple[int, int, list[str]]] = []
    problems: list[RowProblem] = []
    pending = [(rows[first + 1 :], starts[first + 1 :], ends[first + 1 :])]
    while pending:
        for row, start, end in zip(*pending.pop()):
            if end > start and _is_runaway(row, physical[start - 1 : end], width, delimiter, limit):
                problems.append(
                    RowProblem(
                        start,
                        "unbalanced_quote",
                        f"opens a quote that is not closed on its line (it ran on to line {end + offset}); this "
                        f"line is kept out and lines {start + 1 + offset}–{end + offset} were read as rows of their own",
                        physical[start - 1].rstrip("\r\n")[:limit],
                    )
                )
                sub_rows, sub_starts, sub_ends = _split_records(
                    path, "".join(physical[start:end]), delimiter, start + offset
                )
                pending.append((sub_rows, [s + start for s in sub_starts], [e + start for e in sub_ends]))
            else:
                kept.append((start, end, row))
    kept.sort(key=lambda k: k[0])
    return (
        rows[: first + 1] + [k[2] for k in kept],
        starts[: first + 1] + [k[0] for k in kept],
        ends[: first + 1] + [k[1] for k in kept],
        problems,
    )


def _badly_quoted(lines: list[str], delimiter: str) -> bool:
    """Whether a record's lines break the quoting rules: a quote still open at its end, or a
    closing quote followed by text (what two unclosed quotes paired with each other look like)."""
    try:
        list(csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        return True
    return False


def _is_runaway(row: list[str], lines: list[str], width: int, delimiter: str, limit: int) -> bool:
    """Whether a multi-line record is a quote that ran past its field: it has the wrong number
    of fields, is longer than `limit`, or breaks the quoting rules (a real quoted field with
    line breaks closes its quote right before a delimiter or the end of the record)."""
    return len(row) != width or sum(map(len, lines)) > limit or _badly_quoted(lines, delimiter)


def _transpose(rows: list[list[Any]], width: int) -> list[list[Any]]:
    """Rows of equal width → one list per column (numpy does it ~6x faster than zip(*rows))."""
    if not rows:
        return [[] for _ in range(width)]
    grid = np.empty((len(rows), width), dtype=object)
    grid[:] = rows
    return [grid[:, j].tolist() for j in range(width)]


# ---------------------------------------------------------------------------------------------
# Workbooks


_EXACT_FLOAT_INT = 2**53  # beyond this a float no longer holds every integer digit


def excel_text(value: Any) -> str:
    """A cell as text, converted deliberately: 13800138000.0 → "13800138000", dates → ISO.

    Integral floats become integer text (phones stored as numbers must not turn into
    1.38e10); beyond 2**53 only Excel's 15 significant digits are real, so those are kept and
    the rest written as zeros, as Excel shows them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return repr(value)
        if abs(value) < _EXACT_FLOAT_INT:
            return str(int(value))
        return str(int(Decimal(f"{value:.15g}")))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return "" if value is None else str(value)


def excel_raw(value: Any) -> Any:
    """The original cell value in JSON-ready form (numbers stay numbers, dates become ISO text)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return excel_text(value)


_JSON_READY = {str, bool, int}


def _excel_columns(columns: list[list[Any]]) -> tuple[list[list[str]], list[list[Any]]]:
    """(text columns, raw columns): a column is converted only if it holds anything but text,
    and once per distinct value type mix, not once per cell."""
    text_columns, raw_columns = [], []
    for column in columns:
        types = set(map(type, column))
        text_columns.append(column if types == {str} else list(map(excel_text, column)))
        if types <= _JSON_READY or (
            types <= _JSON_READY | {float} and all(map(math.isfinite, (v for v in column if type(v) is float)))
        ):
            raw_columns.append(column)
        else:
            raw_columns.append(list(map(excel_raw, column)))
    return text_columns, raw_columns


def _blank_cell(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _blank_row(row: list[Any]) -> bool:
    if row.count("") == len(row):  # the common blank row, checked in C
        return True
    return (not row or _blank_cell(row[0])) and all(map(_blank_cell, row))


def read_workbook(path: Path, chunk_rows: int = CHUNK_ROWS) -> list[Block]:
    """Every sheet as a block; the first non-blank row of a sheet is its header. A sheet's rows
    come one at a time from the parsed workbook and are converted `chunk_rows` at a time, so the
    whole sheet never exists as Python rows beside its columns."""
    try:
        from python_calamine import CalamineWorkbook

        workbook = CalamineWorkbook.from_path(str(path))
        sheets = [(name, workbook.get_sheet_by_name(name)) for name in workbook.sheet_names]
    except Exception as exc:  # calamine raises several types for zip/xml/password problems
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(path, f"is not a readable Excel workbook ({detail})") from None
    blocks = []
    for name, sheet in sheets:
        blocks.append(_sheet_block(path.name, name, _sheet_rows(sheet), chunk_rows))
        progress.advance(blocks[-1].rows_read)
    if all(not b.headers for b in blocks):
        raise InputFileError(path, "has no header row in any sheet (the workbook is empty)")
    return blocks


def _sheet_rows(sheet: Any) -> Iterator[list[Any]]:
    """The sheet's rows from row 1 and column A (calamine starts its rows at the first used
    column: the columns before it are put back, so header positions stay those of the sheet)."""
    pad = [""] * (sheet.start[1] if sheet.start else 0)
    for row in sheet.iter_rows():
        yield pad + row if pad else row


def _sheet_block(file_name: str, sheet: str, cells: Iterable[list[Any]], chunk_rows: int = CHUNK_ROWS) -> Block:
    """Rows of one sheet (from row 1, column A) → a block; the first non-blank row is the header.
    Blank rows become problems only once a later row has data (trailing blank rows are not rows)."""
    block = Block(file=file_name, sheet=sheet, headers=[], columns=[], positions=[])
    rows_in = enumerate(cells)
    header = next((row for _, row in rows_in if not _blank_row(row)), None)
    if header is None:  # an empty sheet is fine: no header, no rows
        return block
    header = [excel_text(v) for v in header]
    while header and not header[-1].strip():
        header.pop()
    width = len(header)
    block.headers = unique_headers(header)
    block.columns, block.raw_columns = [[] for _ in range(width)], [[] for _ in range(width)]
    blank: list[int] = []  # blank rows not yet followed by data
    chunk: list[list[Any]] = []
    for i, row in rows_in:
        position = i + 1
        if _blank_row(row):
            blank.append(position)
            continue
        block.problems.extend(RowProblem(b, "blank_row", "is blank", "{}") for b in blank)
        blank.clear()
        if len(row) > width and row[width:].count("") != len(row) - width:
            block.problems.append(_outside_header(block, row, width, position))
            continue
        chunk.append(row[:width] if len(row) >= width else row + [""] * (width - len(row)))
        block.positions.append(position)
        if len(chunk) >= chunk_rows:
            _add_sheet_rows(block, chunk, width)
            chunk = []
    _add_sheet_rows(block, chunk, width)
    block.rows_read = len(block.positions) + len(block.problems)
    return block


def _outside_header(block: Block, row: list[Any], width: int, position: int) -> RowProblem:
    outside = next(j for j in range(width, len(row)) if not _blank_cell(row[j]))
    keys = block.headers + [f"column_{j + 1}" for j in range(width, len(row))]
    raw = {key: excel_raw(v) for key, v in zip(keys, row) if not _blank_cell(v)}
    return RowProblem(
        position,
        "column_count",
        f"has a value in column {_column_letter(outside)}, outside the header's {width} columns",
        json.dumps(raw, ensure_ascii=False),
    )


def _add_sheet_rows(block: Block, rows: list[list[Any]], width: int) -> None:
    """Rows of the header's width → text and raw cells appended to the block's columns."""
    if not rows:
        return
    text, raw = _excel_columns(_transpose(rows, width))
    assert block.raw_columns is not None
    for columns, new in ((block.columns, text), (block.raw_columns, raw)):
        for column, values in zip(columns, new):
            column.extend(values)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
