"""Which files a corpus holds, before any audio is read: folder mode (files under a root, labels from a
file-name pattern) or manifest mode (a CSV with a ``path`` column, label columns, ``split`` and ``segments``),
each file checked for existence and its manifest row for consistency. :mod:`vgim.data.corpus` loads them."""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vgim.audio import AUDIO_EXTENSIONS, AudioError, check_path, find_audio_files
from vgim.frames import SAMPLE_RATE

__all__ = ["SEGMENT_RATE", "CorpusEntry", "corpus_entries"]

log = logging.getLogger("vgim")

#: Sample rate (Hz) of the ``segments`` column in manifests: the models' rate, :data:`vgim.frames.SAMPLE_RATE`.
SEGMENT_RATE = SAMPLE_RATE

_RESERVED_COLUMNS = ("path", "split", "segments")


@dataclass
class CorpusEntry:
    """A candidate file before loading."""

    path: Path
    labels: dict[str, str]
    segments: list[tuple[int, int]] | None = None
    split: str = ""


def _compile_pattern(label_pattern: str) -> re.Pattern[str] | None:
    if not label_pattern:
        return None
    try:
        pattern = re.compile(label_pattern)
    except re.error as err:
        raise ValueError(f"invalid label_pattern {label_pattern!r}: {err}") from err
    if not pattern.groupindex:
        log.warning("label_pattern %r has no named groups (?P<name>...): no labels will be parsed", label_pattern)
    return pattern


def _pattern_labels(pattern: re.Pattern[str], stem: str) -> dict[str, str] | None:
    m = pattern.fullmatch(stem)
    if m is None:
        return None
    return {k: (v if v is not None else "") for k, v in m.groupdict().items()}


def _mismatch_reason(pattern: re.Pattern[str]) -> str:
    return f"file name does not match label pattern {pattern.pattern}"


def _parse_segments(text: str) -> list[tuple[int, int]]:
    """Parse ``"s0:e0;s1:e1;..."`` into ``[(s0, e0), ...]``; raises ValueError on malformed input."""
    out: list[tuple[int, int]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        start_text, sep, end_text = part.partition(":")
        if not sep:
            raise ValueError(f"{part!r} is not start:end")
        start, end = int(start_text), int(end_text)
        if start < 0 or end <= start:
            raise ValueError(f"{part!r} needs 0 <= start < end")
        out.append((start, end))
    if not out:
        raise ValueError("no segment")
    return out


def _scale_segments(segments: list[tuple[int, int]], sample_rate: int) -> list[tuple[int, int]]:
    if sample_rate == SEGMENT_RATE:
        return list(segments)
    r = sample_rate / SEGMENT_RATE
    return [(round(s * r), max(round(e * r), round(s * r) + 1)) for s, e in segments]


def _folder_entries(
    root: Path, pattern: re.Pattern[str] | None, skipped: list[tuple[str, str]]
) -> tuple[list[CorpusEntry], int]:
    if not root.is_dir():
        raise ValueError(
            f"corpus root {root} is a file, not a folder of audio (for a CSV manifest keep the folder as the "
            "root and give the CSV as the manifest: data.manifest or --manifest)"
        )
    broken: list[Path] = []
    files = find_audio_files(root, broken=broken)
    for link in broken:
        skipped.append((str(link), f"broken symbolic link (its target {os.readlink(link)} does not exist)"))
    entries: list[CorpusEntry] = []
    for f in files:
        labels: dict[str, str] = {}
        if pattern is not None:
            parsed = _pattern_labels(pattern, f.stem)
            if parsed is None:
                skipped.append((str(f), _mismatch_reason(pattern)))
                continue
            labels = parsed
        entries.append(CorpusEntry(path=f, labels=labels))
    return entries, len(files) + len(broken)


def _resolve_manifest(root: Path, manifest: str) -> Path:
    path = Path(manifest)
    if not path.is_absolute() and not path.exists():
        path = root / manifest
    if not path.is_file():
        raise FileNotFoundError(f"manifest {manifest} not found (also looked for {root / manifest})")
    return path


def _read_manifest(manifest_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The columns and ``(line, row)`` of every row of a CSV manifest.

    Raises ValueError naming the file: not UTF-8, no ``path`` column, a duplicate column, or a ragged row
    (more or fewer cells than the header: an unquoted comma in a path, a cell lost).
    """
    try:
        with manifest_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            columns = [c.strip() for c in header]
            raw = [(reader.line_num, cells) for cells in reader]
    except UnicodeDecodeError as err:
        raise ValueError(f"manifest {manifest_path} is not UTF-8 text ({err}); save it as UTF-8") from err
    except csv.Error as err:
        raise ValueError(f"manifest {manifest_path}: not a readable CSV file ({err})") from err
    if "path" not in columns:
        raise ValueError(f"manifest {manifest_path} has no 'path' column; columns found: {columns}")
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        raise ValueError(f"manifest {manifest_path}: duplicate column(s) {dupes}")
    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in raw:
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != len(columns):
            raise ValueError(
                f"manifest {manifest_path} line {line}: {len(cells)} cells but the header has {len(columns)} "
                f"({', '.join(columns)}); quote cells that contain commas"
            )
        rows.append((line, {k: v.strip() for k, v in zip(columns, cells, strict=True) if k}))
    return columns, rows


def _check_manifest_rows(manifest_path: Path, rows: list[tuple[int, dict[str, str]]]) -> None:
    """Refuse a file listed on several rows: with different labels the corpus would hold both, and in two
    splits the probe would be scored on its own training data."""
    base = manifest_path.parent
    seen: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        rel = row.get("path", "")
        if not rel:
            continue
        key = os.path.normpath(Path(rel) if Path(rel).is_absolute() else (base / rel).absolute())
        if key not in seen:
            seen[key] = (line, row)
            continue
        first_line, first = seen[key]
        if first.get("split", "") != row.get("split", ""):
            raise ValueError(
                f"manifest {manifest_path}: {rel} is in split {first.get('split', '')!r} (line {first_line}) and in "
                f"split {row.get('split', '')!r} (line {line}); a file in both the training and the test split "
                "makes a probe score on its own training data"
            )
        raise ValueError(
            f"manifest {manifest_path}: {rel} is listed twice (lines {first_line} and {line}); give each file one row"
        )


def _manifest_entries(
    manifest_path: Path,
    pattern: re.Pattern[str] | None,
    split: str,
    sample_rate: int,
    skipped: list[tuple[str, str]],
) -> tuple[list[CorpusEntry], int]:
    columns, rows = _read_manifest(manifest_path)
    _check_manifest_rows(manifest_path, rows)
    label_cols = [c for c in columns if c not in _RESERVED_COLUMNS and c]
    if split and "split" in columns:
        present = sorted({r.get("split", "") for _, r in rows})
        rows = [(line, r) for line, r in rows if r.get("split", "") == split]
        if not rows:
            raise ValueError(f"manifest {manifest_path} has no row with split {split!r}; splits found: {present}")
    base = manifest_path.parent
    entries: list[CorpusEntry] = []
    empty: dict[str, list[int]] = {}
    for line, row in rows:
        rel = row["path"]
        if not rel:
            skipped.append((f"{manifest_path} (line {line}: empty path)", "empty path"))
            continue
        path = Path(rel) if Path(rel).is_absolute() else base / rel
        labels: dict[str, str] = {}
        if pattern is not None:
            parsed = _pattern_labels(pattern, path.stem)
            if parsed is None:
                skipped.append((str(path), _mismatch_reason(pattern)))
                continue
            labels.update(parsed)
        for c in label_cols:
            if row.get(c, ""):
                labels[c] = row[c]
            else:  # an empty cell is no label, never a class named ""
                labels.pop(c, None)
                empty.setdefault(c, []).append(line)
        segments: list[tuple[int, int]] | None = None
        seg_text = row.get("segments", "")
        if seg_text:
            try:
                segments = _scale_segments(_parse_segments(seg_text), sample_rate)
            except ValueError as err:
                skipped.append((str(path), f"malformed segments {seg_text!r}: {err}"))
                continue
        try:
            check_path(path)
        except AudioError as err:
            skipped.append((str(path), err.reason))
            continue
        entries.append(CorpusEntry(path=path, labels=labels, segments=segments, split=row.get("split", "")))
    for c, lines in empty.items():
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        log.warning(
            "manifest %s: %d row(s) leave label column %r empty (line %s); those files have no %r label",
            manifest_path,
            len(lines),
            c,
            shown,
            c,
        )
    return entries, len(rows)


def corpus_entries(
    root: str | Path,
    manifest: str,
    label_pattern: str,
    split: str,
    sample_rate: int,
    skipped: list[tuple[str, str]],
) -> tuple[list[CorpusEntry], int, str]:
    """The candidate files of a corpus (folder or manifest mode), before any audio is read.

    Returns the entries, the number of files considered (including those already appended to ``skipped``)
    and a description of the source for log messages. Raises as :func:`load_corpus` does.
    """
    from vgim.config import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:  # once here, not once per file
        raise ValueError(f"sample_rate must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {sample_rate}")
    root_path = Path(root)
    if not root_path.exists():
        raise FileNotFoundError(f"corpus root {root_path} does not exist")
    pattern = _compile_pattern(label_pattern)
    if manifest:
        manifest_path = _resolve_manifest(root_path, manifest)
        entries, total = _manifest_entries(manifest_path, pattern, split, sample_rate, skipped)
        return entries, total, f"manifest {manifest_path}"
    entries, total = _folder_entries(root_path, pattern, skipped)
    if total == 0:
        raise ValueError(f"no audio files found under {root_path} (extensions: {', '.join(sorted(AUDIO_EXTENSIONS))})")
    return entries, total, str(root_path)
