"""Ingest: CRM exports (CSV/TSV/TXT, XLSX/XLSM) → one records frame + a quarantine frame.

Zero configuration by default: encodings, delimiters and English/Chinese headers are detected;
rules/sources.yaml and rules/columns.yaml only correct what detection gets wrong. Every value
stays text so nothing is lost before standardize (leading zeros, "NA", long phone numbers).
A file that cannot be read at all raises InputFileError; a row that cannot be used goes to
quarantine with a sentence naming file, line and column, and the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import progress
from ..errors import CrmcleanError, InputFileError
from ..frames import shared_texts, stacked
from ..memory import collector_paused
from ..schema import CANONICAL_FIELDS, IDENTITY_COLUMNS, QUARANTINE_COLUMNS, record_key
from ..settings import Rules, load_rules
from .columns import EXTRA_FIELDS, HeaderMapper, normalize_header
from .combine import combine_address, combine_birth_date
from .config import SourceConfig, load_source_rules, source_settings
from .readers import (
    DELIMITED_SUFFIXES,
    EXCEL_SUFFIXES,
    Block,
    decode_bytes,
    read_delimited,
    read_workbook,
    sniff_delimiter,
)

__all__ = ["IngestResult", "ingest", "discover_inputs", "find_inputs", "source_settings", "RECORD_COLUMNS"]

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = DELIMITED_SUFFIXES + EXCEL_SUFFIXES
SOURCE_COLUMNS = ("source_default_region", "source_day_first")
RECORD_COLUMNS: tuple[str, ...] = IDENTITY_COLUMNS + CANONICAL_FIELDS + ("extra", "raw") + SOURCE_COLUMNS
#: the fields whose repeated texts are held as one object (`frames.shared_texts`): every
#: canonical field but the record id (one a row)
SHARED_FIELDS = tuple(f for f in CANONICAL_FIELDS if f != "record_id")
#: how a NUL byte of the input is kept in every text the run writes: U+2400 SYMBOL FOR NULL
#: (PostgreSQL cannot store NUL; standardize drops the symbol from standardized values)
NUL_ESCAPE = "\u2400"
#: record column flagging a row whose cells held a NUL byte (stored in other_columns)
INGEST_FLAG = "ingest_flag"


@dataclass
class IngestResult:
    records: pd.DataFrame  # records frame (docs/ARCHITECTURE.md)
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS, stage="ingest"
    mapping: dict  # {source: {"files": {file: {sheet or "": {header: field|None}}}, "id_column": str|None}}
    rows_read: int  # every data row of every file/sheet, blank and junk rows included
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) of folder files that are not tables


def _skipped(path: Path) -> bool:
    return path.name.startswith((".", "~$"))


def discover_inputs(paths: list[Path], rules: Rules | None = None) -> list[Path]:
    """Files to ingest (see `find_inputs`); skipped files are logged as warnings."""
    files, skipped = find_inputs(paths, rules)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    return files


def find_inputs(paths: list[Path], rules: Rules | None = None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to ingest in argument order, [(skipped file, why)]). A folder contributes its
    supported files (not its sub-folders) sorted by name; hidden files, Excel lock files (~$x.xlsx)
    and .txt files that are not tables (a README) are skipped. A file named explicitly is never
    skipped: if it is not a table it is an InputFileError naming it."""
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not _skipped(p)
                ),
                key=lambda p: p.name,
            )
            if not inside:
                raise InputFileError(path, "folder has no CSV, TSV or Excel files (.csv .tsv .txt .xlsx .xlsm)")
            for p in inside:
                reason = _not_a_table(p, rules)
                if reason:
                    skipped.append((p, reason))
                else:
                    found.append(p)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise InputFileError(path, "not a CSV, TSV or Excel file (.csv .tsv .txt .xlsx .xlsm)")
            reason = _not_a_table(path, rules)
            if reason:
                raise InputFileError(path, reason)
            if not path.name.startswith("~$"):
                found.append(path)
        elif path.exists():
            raise InputFileError(path, "is not a regular file")
        else:
            raise InputFileError(path, "file not found")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), skipped


_TABLE_SAMPLE_BYTES = 1 << 16


def _not_a_table(path: Path, rules: Rules | None) -> str | None:
    """Why a .txt file is not a table (prose, notes), or None. Only .txt is judged: .csv and .tsv
    say they are tables, and a file that cannot be read fails later with its own message.
    A table has a header naming a known field, or 2+ columns that most lines repeat."""
    if path.suffix.lower() != ".txt":
        return None
    try:
        with path.open("rb") as handle:
            sample = handle.read(_TABLE_SAMPLE_BYTES)
        text = decode_bytes(path, sample).removeprefix("\ufeff")
    except (OSError, CrmcleanError):
        return None
    records = [
        r for r in csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text)) if "".join(r).strip()
    ]
    if len(sample) == _TABLE_SAMPLE_BYTES:
        records = records[:-1]  # the last record may be cut by the sample
    if not records:
        return None
    header = records[0]
    while header and not header[-1].strip():
        header.pop()
    mapper = HeaderMapper(rules or load_rules())
    if any(mapper.guess(cell) for cell in header):
        return None
    if len(header) < 2:
        first = (header[0] if header else "").strip()
        return f"is not a table: its first line ({first[:40]!r}) is one column naming no known field"
    body = records[1:51]
    if body and sum(len(r) == len(header) for r in body) < len(body) / 2:
        return (
            f"is not a table: most of its lines do not have the {len(header)} fields of its first line "
            f"({', '.join(repr(c[:20]) for c in header[:3])} …)"
        )
    return None


def ingest(inputs: list[Path], rules: Rules) -> IngestResult:
    """Read every input into the records frame; see the module docstring for the guarantees."""
    files, skipped = find_inputs(inputs, rules)
    for path, reason in skipped:
        log.warning("skipped %s: %s", path, reason)
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name:
            raise InputFileError(path, f"has the same file name as {by_name[path.name]}; locators would be ambiguous")
        by_name[path.name] = path
    source_rules = load_source_rules(rules)
    mapper = HeaderMapper(rules)

    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(source_rules.source_for(path.name), []).append(path)

    frames, quarantines, mapping, rows_read = [], [], {}, 0
    meter = _RowMeter(files)
    with collector_paused():
        for source, paths in groups.items():
            config = source_rules.config(source)
            blocks = [b for p in paths for b in meter.counted(p, _read(p, config))]
            rows_read += sum(b.rows_read for b in blocks)
            records, quarantine, source_mapping = _source_frames(
                source, config, blocks, mapper, multi_file=len(paths) > 1
            )
            frames.append(records)
            quarantines.append(quarantine)
            mapping[source] = source_mapping
        records = stacked(frames) if frames else _empty(RECORD_COLUMNS)
        quarantine = pd.concat(quarantines, ignore_index=True) if quarantines else _empty(QUARANTINE_COLUMNS)
    return IngestResult(
        records=records,
        quarantine=quarantine,
        mapping=mapping,
        rows_read=rows_read,
        skipped=[(str(p), reason) for p, reason in skipped],
    )


class _RowMeter:
    """The total of the ingest bar (the readers count the rows as they read them): estimated
    from the bytes still to read at the rows per byte read so far, known after the first file."""

    def __init__(self, files: list[Path]):
        self.sizes = {path: _size(path) for path in files}
        self.bytes_total, self.bytes_done, self.rows = sum(self.sizes.values()), 0, 0
        progress.unit("rows")

    def counted(self, path: Path, blocks: list[Block]) -> list[Block]:
        rows = sum(b.rows_read for b in blocks)
        self.rows += rows
        self.bytes_done += self.sizes.get(path, 0)
        if self.bytes_done:
            progress.total(round(self.rows * self.bytes_total / self.bytes_done), "rows")
        return blocks


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read(path: Path, config: SourceConfig) -> list[Block]:
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return read_workbook(path, config.chunk_rows)
    return [read_delimited(path, config.encoding, config.delimiter, config.max_line_chars, config.chunk_rows)]


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


# ---------------------------------------------------------------------------------------------
# Blocks → frames


_NUMERIC_JSON = {int, float, bool, type(None)}


def _json_literals(values: list[Any]) -> tuple[list[str], bool]:
    """JSON of every value, and whether the quotes were left off (all-text columns).

    All-text columns (the common case) are encoded by one json.dumps call and split at the
    element boundaries — several times faster than one call per value. A boundary is '", "'
    with an unescaped quote; only a backslash before '", ' can fake one (a value ending in
    '", ' encodes as '\\", '), so a column whose text holds '\\", ' anywhere is encoded value by
    value instead. The caller adds the quotes as part of the constant separators, which saves
    touching every value again."""
    if not values:
        return [], True
    types = set(map(type, values))
    if types == {str}:
        encoded = json.dumps(values, ensure_ascii=False)[2:-2]
        if '\\", ' not in encoded:
            return encoded.split('", "'), True
        return [json.dumps(v, ensure_ascii=False)[1:-1] for v in values], True
    if types <= _NUMERIC_JSON:  # no strings inside: ", " only separates elements
        return json.dumps(values)[1:-1].split(", "), False
    return [json.dumps(v, ensure_ascii=False) for v in values], False


def _json_objects(headers: list[str], literals: list[tuple[list[str], bool]], n_rows: int) -> list[str]:
    """One JSON object per row, {header: value} in header order, from `_json_literals` output."""
    if not headers:
        return ["{}"] * n_rows
    pieces: list[Any] = []
    close = ""
    for i, (header, (column, bare)) in enumerate(zip(headers, literals)):
        opening = close + ("{" if i == 0 else ", ") + json.dumps(header, ensure_ascii=False) + ": "
        pieces.append(repeat(opening + '"' if bare else opening))
        pieces.append(column)
        close = '"' if bare else ""
    pieces.append(repeat(close + "}"))
    return list(map("".join, zip(*pieces)))


def escape_nul(text: Any) -> Any:
    """A NUL byte kept visibly (NUL_ESCAPE), so PostgreSQL can store the text."""
    return text.replace("\x00", NUL_ESCAPE) if isinstance(text, str) and "\x00" in text else text


def _escape_nul_cells(block: Block) -> set[int]:
    """Row indexes whose cells held a NUL byte; those cells (text and Excel raw) are escaped
    in place, so one bad cell never blocks a publish. The reader knows if the file has one."""
    rows: set[int] = set()
    if block.has_nul is False:
        return rows
    for columns in (block.columns, block.raw_columns or []):
        for column in columns:
            if not any(isinstance(v, str) and "\x00" in v for v in column):
                continue
            for i, value in enumerate(column):
                if isinstance(value, str) and "\x00" in value:
                    column[i] = escape_nul(value)
                    rows.add(i)
    return rows


def _cell_problems(block: Block, limit: int, raw: list[str]) -> dict[int, tuple[str, str]]:
    """{row index: (reason_code, detail)} for over-long values (first column wins).

    Cheap screen first: a row's raw JSON is longer than any of its values."""
    found: dict[int, tuple[str, str]] = {}
    if not raw or max(map(len, raw)) <= limit:
        return found
    for header, column in zip(block.headers, block.columns):
        if column and max(map(len, column)) > limit:
            for i, value in enumerate(column):
                if len(value) > limit and i not in found:
                    found[i] = ("value_too_long", f"column '{header}' is {len(value)} characters long (limit {limit})")
    return found


def _source_frames(
    source: str, config: SourceConfig, blocks: list[Block], mapper: HeaderMapper, multi_file: bool
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Records and quarantine of one source (all its files and sheets)."""
    files_mapping: dict[str, dict[str, dict[str, str | None]]] = {}
    id_column: str | None = None
    parts: list[dict[str, list]] = []
    quarantine: list[dict[str, Any]] = []

    for block_no, block in enumerate(blocks):
        sheet_key = block.sheet if block.sheet is not None else ""
        header_map = (
            mapper.map_headers(block.headers, config.columns, config.id_column, block.columns) if block.headers else {}
        )
        files_mapping.setdefault(block.file, {})[sheet_key] = header_map
        if config.id_column is not None and block.headers:
            wanted = normalize_header(config.id_column)
            if not any(normalize_header(h) == wanted for h in block.headers):
                where = block.file if block.sheet is None else f"{block.file} sheet '{block.sheet}'"
                raise InputFileError(
                    where,
                    f"has no column '{config.id_column}' (the id_column of source '{source}' in rules/sources.yaml); "
                    f"its columns are: {', '.join(block.headers)}",
                )
        local_id = block.locator if multi_file else block.local_id

        for problem in block.problems:
            quarantine.append(
                _quarantine_row(
                    source,
                    local_id(problem.position),
                    block.locator(problem.position),
                    problem.code,
                    f"{block.where(problem.position)} {problem.detail}",
                    problem.raw,
                )
            )
        n = len(block.positions)
        if not block.headers or n == 0:
            continue

        nul_rows = _escape_nul_cells(block)
        part, extra_idx = _mapped_columns(header_map, block.columns, n)
        if nul_rows:
            part[INGEST_FLAG] = ["nul_escaped" if i in nul_rows else None for i in range(n)]
        text_json = [_json_literals(column) for column in block.columns]
        raw_json = [_json_literals(column) for column in block.raw_columns] if block.raw_columns else text_json
        raw = _json_objects(block.headers, raw_json, n)
        extra = _json_objects([block.headers[i] for i in extra_idx], [text_json[i] for i in extra_idx], n)
        if id_column is None and "record_id" in header_map.values():
            id_column = next(h for h, f in header_map.items() if f == "record_id")
        ids = part["record_id"]
        locators = [block.file + block.id_prefix + str(p) for p in block.positions]
        local_ids = locators if multi_file else [loc[len(block.file) :] for loc in locators]
        part["source_record_id"] = [v if v is not None else local for v, local in zip(ids, local_ids)]
        part["locator"] = locators
        part["extra"] = extra
        part["raw"] = raw
        part["ingest_block"] = [block_no] * n
        part["ingest_pos"] = block.positions

        bad = _cell_problems(block, config.max_value_chars, raw)
        for i, (code, detail) in sorted(bad.items()):
            quarantine.append(
                _quarantine_row(
                    source,
                    part["source_record_id"][i],
                    part["locator"][i],
                    code,
                    f"{block.where(block.positions[i])}, {detail}",
                    raw[i],
                )
            )
        if bad:
            keep = [i for i in range(n) if i not in bad]
            part = {k: [v[i] for i in keep] for k, v in part.items()}
        part["file"] = [block.file] * len(part["locator"])
        parts.append(part)
        block.columns, block.raw_columns = [], None  # cells now live in `part`: halve peak memory

    if not parts:
        frame = _empty(RECORD_COLUMNS)
    else:
        keys = list(dict.fromkeys(k for p in parts for k in p))
        columns = {
            k: _object_array(
                [v for p in parts for v in p.get(k) or [None] * len(p["locator"])] if len(parts) > 1 else parts[0][k]
            )
            for k in keys
        }
        # The same ID twice in one source: the first is kept, every later one quarantined.
        dup = pd.Series(columns["source_record_id"], copy=False).duplicated(keep="first").to_numpy()
        if dup.any():
            first_at: dict[Any, int] = {}
            for i, rid in enumerate(columns["source_record_id"]):
                first_at.setdefault(rid, i)
            for i in np.flatnonzero(dup).tolist():
                rid, j = columns["source_record_id"][i], first_at[columns["source_record_id"][i]]
                quarantine.append(
                    _quarantine_row(
                        source,
                        rid,
                        columns["locator"][i],
                        "duplicate_id",
                        f"{blocks[columns['ingest_block'][i]].where(columns['ingest_pos'][i])} repeats ID '{rid}' of "
                        f"{blocks[columns['ingest_block'][j]].where(columns['ingest_pos'][j])} (source '{source}'); "
                        "the first is kept",
                        columns["raw"][i],
                    )
                )
            columns = {k: v[~dup] for k, v in columns.items()}
        n = len(columns["locator"])
        columns["source"] = _object_array([source] * n)
        columns["record_key"] = _object_array([record_key(source, rid) for rid in columns["source_record_id"]])
        columns["source_default_region"] = _object_array([config.default_region] * n)
        columns["source_day_first"] = _object_array([config.day_first] * n)
        added = sorted(k for k in columns if k.startswith("attr_") or k in (*EXTRA_FIELDS, INGEST_FLAG))
        for k in (*SHARED_FIELDS, *added):  # what standardize reads: each repeated text one object
            columns[k] = shared_texts(columns[k])
        frame = pd.DataFrame({c: columns[c] for c in (*RECORD_COLUMNS, *added)}, copy=False)
    quarantine_frame = (
        pd.DataFrame(quarantine, columns=list(QUARANTINE_COLUMNS)) if quarantine else _empty(QUARANTINE_COLUMNS)
    )
    return frame, quarantine_frame, {"files": files_mapping, "id_column": config.id_column or id_column}


def _mapped_columns(header_map: dict, columns: list[list[str]], n: int) -> tuple[dict[str, list], list[int]]:
    """Record columns of one block from its mapping, and the indexes of the headers kept in
    `extra` (every header not copied verbatim into a canonical field)."""
    col_of = {f: i for i, f in enumerate(header_map.values()) if f is not None}

    def values(target: str) -> list:
        if target not in col_of:
            return [None] * n
        return [v.strip() or None for v in columns[col_of[target]]]

    part: dict[str, list] = {}
    for fld in CANONICAL_FIELDS:
        part[fld] = values(fld)
    if "birth_date.year" in col_of:
        part["birth_date"] = list(
            map(combine_birth_date, *(values(f"birth_date.{p}") for p in ("year", "month", "day")))
        )
    if "address.line1" in col_of:
        part["address"] = list(map(combine_address, *(values(f"address.{p}") for p in ("number", "line1", "line2"))))
    for target in col_of:
        if target in EXTRA_FIELDS or target.startswith("attr_"):
            part[target] = values(target)
    extra_idx = [i for i, f in enumerate(header_map.values()) if f not in CANONICAL_FIELDS]
    return part, extra_idx


def _object_array(values) -> np.ndarray:
    """1-D object array without pandas' per-value type inference (a large share of the time)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _quarantine_row(source, source_record_id, locator, code, reason, raw) -> dict[str, Any]:
    return {
        "source": source,
        "source_record_id": source_record_id,
        "locator": locator,
        "stage": "ingest",
        "reason_code": code,
        "reason": escape_nul(reason),
        "raw": escape_nul(raw),
    }
