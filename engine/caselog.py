"""The case log: a tamper-evident, append-only record of everything done to the evidence.

One JSON object per line (JSON Lines, UTF-8), one line per action: a still opened, a face
enhanced, a result exported, a batch run, an AI label removed... Each entry names the examiner,
the time (UTC), the input file and its SHA-256, the model and its weights' SHA-256, the scale and
parameters, the device, the software version and every output file with its SHA-256.

Why it can be trusted, and how far:

* Every line is the entry's *canonical* JSON (sorted keys, no whitespace, UTF-8). Its ``hash``
  is the SHA-256 of the canonical JSON of the entry without the ``hash`` field, and its ``prev``
  is the SHA-256 of the previous line's bytes (64 zeros for the first entry). ``seq`` numbers
  the entries 1, 2, 3... So changing any character of any line, removing a line, or swapping
  lines breaks the chain at a place :meth:`CaseLog.verify` names.
* Removing the *last* entries leaves a valid shorter chain; a small ``.head`` file beside the log
  (entry count and the last line's SHA-256, rewritten after each append while the lock is still
  held) catches that; a head file that cannot be read is itself reported, not ignored.
* A hash chain without a secret only detects changes made by someone who does not recompute all
  later hashes. Against a deliberate forger the defence is to write the chain's head hash
  (:attr:`VerifyReport.head_sha256`, printed in every case report) somewhere outside the log.
* Appends are atomic for readers that come later: the line is written with one ``write`` on a
  file opened in append mode and ``fsync``'ed; a process-wide lock per file (plus ``flock`` where
  the OS has it) keeps two threads or processes from interleaving. If the program dies in the
  middle of a write, the half-written last line is reported by :meth:`CaseLog.verify` as
  "truncated"; :meth:`CaseLog.append` then refuses to write until :meth:`CaseLog.repair` has
  moved the fragment aside and logged that it did.

Reproducing an enhancement (:func:`reproduce`) compares :func:`pixels_sha256` -- the SHA-256 of
the output's raw RGB bytes -- rather than the PNG file's SHA-256, because the PNG embeds the
provenance record and its timestamp: the file hash changes on every export, the pixels do not.
Both are logged.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.io import display_path, fsync_folder, sha256_file, write_bytes_atomic
from engine.provenance import SOFTWARE, canonical_bytes, utc_now

try:  # advisory lock between processes (POSIX); threads are serialised by _file_lock anyway
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOG_NAME = "case_log.jsonl"
HEAD_SUFFIX = ".head"
ZERO_HASH = "0" * 64

#: Actions the app writes. Others are accepted (lower-case words and underscores).
ACTIONS = (
    "open",
    "enhance",
    "export",
    "batch",
    "label_removed",
    "reproduce",
    "note",
    "repaired",
)

#: Fields a caller may give to :meth:`CaseLog.append`; ``seq``, ``time_utc``, ``software``,
#: ``prev`` and ``hash`` are always set by the log itself.
FIELDS = (
    "examiner",
    "input_path",
    "input_sha256",
    "model_id",
    "weights_sha256",
    "scale",
    "parameters",
    "device",
    "outputs",
    "details",
)
_REQUIRED = ("seq", "time_utc", "examiner", "action", "software", "prev", "hash")


def touches(entry: Mapping[str, Any], sha256: str) -> bool:
    """True if the entry has the file as its input or among its outputs (file or pixel hash)."""
    sha = sha256.lower()
    if entry.get("input_sha256") == sha:
        return True
    return any(
        sha in (o.get("sha256"), o.get("pixels_sha256"))
        for o in entry.get("outputs") or []
        if isinstance(o, Mapping)
    )


class CaseLogError(RuntimeError):
    """The case log cannot be read or written; the message says why."""


class CaseLogDamaged(CaseLogError):
    """The log ends in a half-written line; call :meth:`CaseLog.repair` before appending."""


# --------------------------------------------------------------------------- hashing


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON without its ``hash`` field."""
    return hashlib.sha256(
        canonical_bytes({k: v for k, v in entry.items() if k != "hash"})
    ).hexdigest()


def line_sha256(line: bytes) -> str:
    """SHA-256 of one stored line (without its newline): the next entry's ``prev``."""
    return hashlib.sha256(line).hexdigest()


def pixels_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of an image's raw pixel bytes ((H, W, 3) uint8, C order).

    Unlike the PNG file's hash it does not change with embedded text chunks (timestamps), so it
    is what a re-run is compared against. Same definition as :func:`engine.io.still_from_array`.
    """
    array = np.ascontiguousarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {array.shape} {array.dtype}")
    return hashlib.sha256(array.tobytes()).hexdigest()


def _jsonable(value: Any) -> Any:
    """Numpy scalars/arrays, tuples and paths -> plain JSON types (refuses NaN/inf at dump)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot record a {type(value).__name__} in the case log")


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so the returned entry equals what a reader will parse."""
    try:
        text = json.dumps(obj, default=_jsonable, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        raise ValueError(f"case-log entries cannot hold NaN or infinity ({exc})") from None
    return json.loads(text)


def default_path(folder: str | os.PathLike[str]) -> Path:
    """Where a case log lives: ``case_log.jsonl`` in the folder the caller chose."""
    return Path(folder) / LOG_NAME


#: The environment variable that overrides the case-log folder (GUI and command line alike).
CASE_DIR_ENV = "FFE_CASE_DIR"
_ORGANISATION = "ForensicFaceEnhancer"  # as app.main_window names the app to Qt
_APPLICATION = "Forensic Face Enhancer"


def default_case_dir() -> Path:
    """The case-log folder the GUI uses, found without Qt (for the command line).

    ``$FFE_CASE_DIR``, else the folder set in File > Settings (``caseDir`` in the GUI's INI
    settings file), else Qt's per-user application data folder for the app
    (``QStandardPaths.AppDataLocation``), computed as Qt does on each system.
    """
    env = os.environ.get(CASE_DIR_ENV)
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform == "win32":
        config = data = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        config = home / "Library" / "Preferences"
        data = home / "Library" / "Application Support"
    else:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    saved = _ini_value(config / _ORGANISATION / f"{_APPLICATION}.ini", "caseDir")
    if saved:
        return Path(saved)
    return data / _ORGANISATION / _APPLICATION


def _ini_value(path: Path, key: str) -> str | None:
    """One value of the [General] section of a QSettings INI file; None when absent."""
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    value = parser.get("General", key, fallback=None)
    if value is None:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value or None


def cli_log_path(given: str | os.PathLike[str] | None) -> Path:
    """The case log a command-line run appends to: ``given`` (a log file, or a folder that
    holds ``case_log.jsonl``), else the GUI's (:func:`default_case_dir`)."""
    if given is None:
        return default_path(default_case_dir())
    path = Path(given).expanduser()
    return default_path(path) if path.is_dir() or not path.suffix else path


# --------------------------------------------------------------------------- locking

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _file_lock(path: Path) -> threading.Lock:
    """One lock per log file for the whole process, shared by every CaseLog on that file."""
    key = os.path.normcase(os.path.abspath(path))
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _flock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _funlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Problem:
    """One broken place in the log. ``line`` is 1-based; ``kind`` is one of edited, removed,
    reordered, truncated, not JSON, not an entry, head damaged."""

    line: int
    kind: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """Result of :meth:`CaseLog.verify`."""

    path: str
    ok: bool
    entries: int  # lines that parse as entries (damaged ones included when readable)
    problems: tuple[Problem, ...] = ()
    head_sha256: str = ZERO_HASH  # SHA-256 of the last complete line: note it outside the log
    notes: tuple[str, ...] = ()  # remarks that do not break the chain (e.g. head file behind)

    @property
    def first_bad_line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def reason(self) -> str | None:
        """Kind of the first problem (edited / removed / reordered / truncated / not JSON...)."""
        return self.problems[0].kind if self.problems else None

    def summary(self) -> str:
        """One or two sentences for a person."""
        if self.ok:
            text = (
                f"Case log intact: {self.entries} entr{'y' if self.entries == 1 else 'ies'}, "
                "hash chain verified "
                f"(head {self.head_sha256})."
            )
        else:
            first = self.problems[0]
            more = len(self.problems) - 1
            text = f"Case log NOT intact: line {first.line}: {first.message}"
            if more:
                text += f" ({more} further problem{'s' if more > 1 else ''})"
        return " ".join([text, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_bad_line"] = self.first_bad_line
        out["reason"] = self.reason
        out["summary"] = self.summary()
        return out


def _verify_bytes(path: Path, data: bytes, head: dict[str, Any] | None) -> VerifyReport:
    """Check the chain of ``data`` (the whole log file); see the module docstring."""
    problems: list[Problem] = []
    notes: list[str] = []
    if not data:
        lines: list[bytes] = []
        partial = None
    else:
        *lines, tail = data.split(b"\n")
        partial = tail if tail else None  # a last line without its newline: half-written

    parsed = [_parse_line(raw) for raw in lines]
    all_seqs = {e["seq"] for e in parsed if e is not None and type(e.get("seq")) is int}

    prev_line: bytes | None = None
    expected_seq = 1
    count = 0
    for number, (raw, entry) in enumerate(zip(lines, parsed, strict=True), start=1):
        if entry is None:
            kind = "not JSON"
            why = "the line is empty" if not raw else "the line is not a JSON object"
            problems.append(Problem(number, kind, f"{why} (the file was edited or damaged)"))
        elif missing := [k for k in _REQUIRED if k not in entry]:
            problems.append(
                Problem(number, "not an entry", f"fields missing: {', '.join(missing)}")
            )
        else:
            count += 1
            seq = entry["seq"]
            expected_prev = line_sha256(prev_line) if prev_line is not None else ZERO_HASH
            if entry_hash(entry) != entry["hash"]:
                problems.append(
                    Problem(number, "edited", f"entry {seq}'s content does not match its hash")
                )
            elif canonical_bytes(entry) != raw:
                problems.append(
                    Problem(number, "edited", f"entry {seq} was rewritten (not its stored form)")
                )
            elif not isinstance(seq, int) or seq != expected_seq:
                if isinstance(seq, int) and seq > expected_seq:
                    # Entries expected_seq .. seq-1 should come first; if some appear nowhere in
                    # the file they were removed, otherwise the lines were moved.
                    present = sum(1 for s in all_seqs if expected_seq <= s < seq)
                    if present < seq - expected_seq:
                        span = (
                            f"entry {expected_seq} is"
                            if seq - expected_seq == 1
                            else f"entries {expected_seq}-{seq - 1} are"
                        )
                        problems.append(
                            Problem(number, "removed", f"{span} missing before entry {seq}")
                        )
                    else:
                        problems.append(
                            Problem(
                                number,
                                "reordered",
                                f"entry {seq} stands where {expected_seq} should",
                            )
                        )
                else:
                    problems.append(
                        Problem(
                            number, "reordered", f"entry {seq} stands where {expected_seq} should"
                        )
                    )
            elif entry["prev"] != expected_prev:
                # Its own hash is right, so the line before it changed after it was written
                # (and that line's own hash was recomputed to hide it).
                where = max(1, number - 1)
                problems.append(
                    Problem(where, "edited", f"line {where} changed after entry {seq} was written")
                )
            if isinstance(seq, int):
                expected_seq = seq + 1
        prev_line = raw

    if partial is not None:
        problems.append(
            Problem(
                len(lines) + 1,
                "truncated",
                f"the last line is incomplete ({len(partial)} bytes without an end): the program "
                "stopped while writing, or the file was cut",
            )
        )
    head_sha = line_sha256(lines[-1]) if lines else ZERO_HASH

    if head is not None:
        recorded = head.get("entries")
        last_sha = head.get("last_line_sha256")
        if type(recorded) is not int or recorded < 0 or not isinstance(last_sha, str):
            problems.append(
                Problem(
                    len(lines) + 1,
                    "head damaged",
                    "the head file beside the log is unreadable or was edited: removal of the "
                    "last entries cannot be checked",
                )
            )
        else:
            if len(lines) < recorded:
                tail_kept = bool(lines) and line_sha256(lines[-1]) == last_sha
                if tail_kept:
                    # The last entry written is still last: the lines went missing earlier in
                    # the file (the chain above names where), not at the end.
                    if not any(p.kind == "removed" for p in problems):
                        problems.append(
                            Problem(
                                len(lines) + 1,
                                "removed",
                                f"the log has {len(lines)} complete lines but {recorded} were "
                                "written: entries are missing before the last one",
                            )
                        )
                else:
                    last_seq = max(all_seqs, default=0)
                    missing = recorded - last_seq if 0 < last_seq < recorded else None
                    what = (
                        "the last entries were removed"
                        if missing is None
                        else f"the last {missing} entr{'y was' if missing == 1 else 'ies were'} "
                        "removed"
                    )
                    problems.append(
                        Problem(
                            len(lines) + 1,
                            "removed",
                            f"the log has {len(lines)} complete lines but {recorded} were "
                            f"written: {what}",
                        )
                    )
            elif recorded > 0 and line_sha256(lines[recorded - 1]) != last_sha:
                problems.append(
                    Problem(recorded, "edited", f"line {recorded} differs from the one written")
                )
            elif len(lines) > recorded:
                notes.append(
                    f"The head file lists {recorded} entries and the log has {len(lines)} "
                    "(the program may have stopped right after writing)."
                )
    elif lines:
        notes.append("No head file: removal of the last entries cannot be ruled out.")

    problems.sort(key=lambda p: p.line)
    return VerifyReport(
        path=str(path),
        ok=not problems,
        entries=count,
        problems=tuple(problems),
        head_sha256=head_sha,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- the log


class CaseLog:
    """An append-only, hash-chained case log in one JSON-lines file.

    ``examiner`` defaults to the operating-system user name and can be given per entry. Safe to
    share between threads; several instances on one file share one lock.
    """

    def __init__(self, path: str | os.PathLike[str], examiner: str | None = None) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + HEAD_SUFFIX)
        self.examiner = examiner or _user_name()
        self._lock = _file_lock(self.path)

    # ------------------------------------------------------------------- writing

    def check_writable(self) -> None:
        """Raise :class:`CaseLogError` (or :class:`CaseLogDamaged`) now if :meth:`append` would
        fail, so a long run does not end with work the log cannot record. Creates the folder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseLogError(
                f"cannot create the case-log folder {self.path.parent}: {exc.strerror or exc}"
            ) from exc
        if not self.path.exists():
            if not os.access(self.path.parent, os.W_OK):
                raise CaseLogError(f"the case-log folder {self.path.parent} is not writable")
            return
        with self._lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0))
            except OSError as exc:
                raise CaseLogError(
                    f"cannot open the case log {self.path}: {exc.strerror or exc}"
                ) from exc
            try:
                _last_line(fd)
            finally:
                os.close(fd)

    def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Write one entry and return it (as a reader will parse it, ``hash`` included).

        ``fields`` are among :data:`FIELDS`; ``outputs`` is a list of dicts with at least
        ``path`` and ``sha256`` (see :func:`output_record`). Raises TypeError for an unknown
        field, :class:`CaseLogDamaged` if the log ends in a half-written line, and
        :class:`CaseLogError` if the file cannot be written.
        """
        if not isinstance(action, str) or not action or not action.replace("_", "a").isalnum():
            raise ValueError(f"action must be a word like 'enhance', got {action!r}")
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise TypeError(f"unknown case-log field(s) {unknown}; known: {', '.join(FIELDS)}")
        outputs = [dict(o) for o in fields.get("outputs") or []]
        for out in outputs:
            if "path" not in out or "sha256" not in out:
                raise ValueError(f"each output needs 'path' and 'sha256', got {sorted(out)}")
        body = {
            "action": action,
            "examiner": fields.get("examiner") or self.examiner,
            "input_path": fields.get("input_path"),
            "input_sha256": fields.get("input_sha256"),
            "model_id": fields.get("model_id"),
            "weights_sha256": fields.get("weights_sha256"),
            "scale": fields.get("scale"),
            "parameters": dict(fields.get("parameters") or {}),
            "device": fields.get("device"),
            "outputs": outputs,
            "details": dict(fields.get("details") or {}),
            "software": f"{SOFTWARE} {__version__}",
        }
        body = _normalise(body)  # fail on bad values before touching the file
        with self._lock:
            return self._append_locked(body)

    def _append_locked(self, body: dict[str, Any]) -> dict[str, Any]:
        created = not self.path.exists()
        try:
            fd = os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666
            )
        except OSError as exc:
            raise CaseLogError(
                f"cannot open the case log {self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            _flock(fd)
            last = _last_line(fd)
            if last is None:
                seq, prev = 1, ZERO_HASH
            else:
                try:
                    previous = json.loads(last.decode("utf-8"))
                    seq = int(previous["seq"]) + 1
                except (ValueError, KeyError, TypeError) as exc:
                    raise CaseLogError(
                        f"the last entry of {self.path.name} is unreadable; verify the log"
                    ) from exc
                prev = line_sha256(last)
            entry = {"seq": seq, "time_utc": utc_now("milliseconds"), **body, "prev": prev}
            entry["hash"] = entry_hash(entry)
            line = canonical_bytes(entry)
            _write_all(fd, line + b"\n")
            os.fsync(fd)
            if created:
                fsync_folder(self.path.parent)
            # Still holding the lock: another writer cannot slip in between the entry and its
            # head, so the head never ends behind the log it describes.
            self._write_head(seq, line_sha256(line))
        except OSError as exc:
            raise CaseLogError(
                f"cannot write the case log {self.path}: {exc.strerror or exc}"
            ) from exc
        finally:
            try:
                _funlock(fd)
            finally:
                os.close(fd)
        return entry

    def _write_head(self, entries: int, last_line_sha256: str) -> None:
        """Record the entry count and last line hash beside the log (atomic replace)."""
        data = canonical_bytes(
            {
                "entries": entries,
                "last_line_sha256": last_line_sha256,
                "time_utc": utc_now("milliseconds"),
            }
        )
        try:
            write_bytes_atomic(self.head_path, data + b"\n")
        except OSError as exc:  # engine.io.OutputError is one
            # The entry itself is safely written; only the extra check is lost.
            log.warning("could not update %s: %s", self.head_path, exc)

    def repair(self) -> dict[str, Any] | None:
        """Move a half-written last line aside and log that; returns the "repaired" entry.

        Only an incomplete final line (no newline: the program stopped while writing) is
        touched. Its bytes are kept in ``<log>.damaged-<time>`` and their SHA-256 is logged.
        Returns None when there is nothing to repair.
        """
        with self._lock:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if not data or data.endswith(b"\n"):
                return None
            cut = data.rfind(b"\n") + 1
            fragment = data[cut:]
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            saved = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            write_bytes_atomic(saved, fragment)
            with open(self.path, "r+b") as f:
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
            body = _normalise(
                {
                    "action": "repaired",
                    "examiner": self.examiner,
                    "input_path": None,
                    "input_sha256": None,
                    "model_id": None,
                    "weights_sha256": None,
                    "scale": None,
                    "parameters": {},
                    "device": None,
                    "outputs": [],
                    "details": {
                        "reason": "half-written last line removed",
                        "removed_bytes": len(fragment),
                        "removed_sha256": hashlib.sha256(fragment).hexdigest(),
                        "saved_to": str(saved),
                    },
                    "software": f"{SOFTWARE} {__version__}",
                }
            )
            return self._append_locked(body)

    # ------------------------------------------------------------------- reading

    def entries(self) -> list[dict[str, Any]]:
        """Every readable entry in file order. Unreadable lines are skipped with a warning:
        use :meth:`verify` to judge integrity."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw:
                continue
            try:
                entry = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                log.warning("%s line %d is not a readable entry", self.path.name, number)
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def history(self, sha256: str) -> list[dict[str, Any]]:
        """Entries touching one file: as the input, or as an output (file or pixel hash)."""
        return [e for e in self.entries() if touches(e, sha256)]

    def verify(self) -> VerifyReport:
        """Check the whole chain; a missing file is reported as not ok."""
        with self._lock:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return VerifyReport(
                    path=str(self.path),
                    ok=False,
                    entries=0,
                    problems=(Problem(0, "missing", "the case log file does not exist"),),
                )
            head = self._read_head()
        return _verify_bytes(self.path, data, head)

    def _read_head(self) -> dict[str, Any] | None:
        try:
            head = json.loads(self.head_path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"entries": None}
        return head if isinstance(head, dict) else {"entries": None}


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """One stored line as a dict, None if it is not a JSON object (NaN/Infinity refused)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid in a case log")

    try:
        entry = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user database entry (containers)
        return "unknown"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _last_line(fd: int) -> bytes | None:
    """The last complete line of the open log (without newline), None for an empty file.

    Raises :class:`CaseLogDamaged` when the file does not end with a newline.
    """
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    block = 4096
    end = size
    chunk = b""
    while True:
        start = max(0, end - block)
        os.lseek(fd, start, os.SEEK_SET)
        chunk = os.read(fd, end - start) + chunk
        end = start
        if not chunk.endswith(b"\n"):
            raise CaseLogDamaged(
                "the case log ends with a half-written entry (the program stopped while "
                "writing); repair it before adding entries"
            )
        cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
        if cut >= 0 or start == 0:
            return chunk[cut + 1 : -1]


# --------------------------------------------------------------------------- helpers for callers


def output_record(
    path: str | os.PathLike[str],
    sha256: str,
    rgb: np.ndarray | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """An ``outputs`` item: the file, its SHA-256, and (given the pixels) their hash and shape."""
    out: dict[str, Any] = {"path": display_path(path), "sha256": sha256}
    if role is not None:
        out["role"] = role
    if rgb is not None:
        out["pixels_sha256"] = pixels_sha256(rgb)
        out["shape"] = list(np.asarray(rgb).shape)
    return out


def enhance_fields(
    still: Any,
    face: Any,
    result: Any,
    outputs: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The :meth:`CaseLog.append` fields for an "enhance" entry, from the engine's objects.

    ``still`` is an :class:`engine.io.Still`, ``face`` the :class:`engine.faces.Face` that was
    enhanced, ``result`` the :class:`engine.enhance.Result`. The face's box *and* 68 landmarks
    are logged because the alignment -- hence the output -- depends on the landmarks, and
    :func:`reproduce` needs them to re-run the same crop.
    """
    record = getattr(result, "provenance", None) or {}
    model = record.get("model", {})
    score = float(face.score)
    details: dict[str, Any] = {
        "pixels_sha256": pixels_sha256(result.sr),
        "sr_shape": list(result.sr.shape),
    }
    if getattr(result, "pasted", None) is not None:
        details["pasted_pixels_sha256"] = pixels_sha256(result.pasted)
        details["pasted_shape"] = list(result.pasted.shape)
    return {
        "input_path": display_path(still.path) if still.path is not None else None,
        "input_sha256": still.sha256,
        "model_id": result.model_id,
        "weights_sha256": model.get("weights_sha256"),
        "scale": int(result.scale),
        "device": record.get("device"),
        "parameters": {
            **dict(record.get("parameters") or {}),
            "face_index": int(result.face_index),
            "face": {
                "box": [float(v) for v in face.box],
                "landmarks": np.asarray(face.landmarks, dtype=np.float64).tolist(),
                "manual": bool(face.manual),
                "score": score if np.isfinite(score) else None,
            },
        },
        "outputs": [dict(o) for o in outputs],
        "details": details,
    }


def open_fields(still: Any, faces: Sequence[Any], detector: str = "hog") -> dict[str, Any]:
    """The :meth:`CaseLog.append` fields for an "open" entry: the still and the faces found."""
    return {
        "input_path": display_path(still.path) if still.path is not None else None,
        "input_sha256": still.sha256,
        "parameters": {"detector": detector},
        "details": {
            "format": still.format,
            "original_mode": still.original_mode,
            "bits_per_sample": getattr(still, "bits_per_sample", 8),
            "width": still.width,
            "height": still.height,
            "faces_found": len(faces),
            "face_boxes": [[round(float(v), 2) for v in f.box] for f in faces],
            **_video_details(still),
        },
    }


def _video_details(still: Any) -> dict[str, Any]:
    """For a video frame (``engine.video.FrameStill``): the clip's SHA-256 and the frame's
    index, time, type and pixel hash (the still's own ``sha256`` is the pixel hash)."""
    video = getattr(still, "video", None) or {}
    if not video:
        return {}
    clip = video.get("clip") or {}
    return {
        "clip": {k: clip.get(k) for k in ("name", "sha256", "codec", "frame_count", "damage")},
        "frame": dict(video.get("frame") or {}),
    }


def track_fields(enhancement: Any, model_id: str, scale: int) -> dict[str, Any]:
    """The :meth:`CaseLog.append` fields for a "track_fuse" entry, from an
    ``engine.video_enhance.TrackEnhancement``: the clip and reference frame, the track and its
    ranking, every frame fused or rejected, and the pixel hashes of both model outputs."""
    record = enhancement.record_fused
    params = dict(record.get("parameters") or {})
    fused = enhancement.fused
    still = enhancement.still
    return {
        "input_path": str(still.path) if still.path is not None else None,
        "input_sha256": still.sha256,
        "model_id": model_id,
        "weights_sha256": record.get("model", {}).get("weights_sha256"),
        "scale": int(scale),
        "device": record.get("device"),
        "parameters": params,
        "details": {
            **_video_details(still),
            "reference_frame": int(enhancement.reference),
            "frames_fused": len(fused.used),
            "frames_used": [
                {k: f.get(k) for k in ("index", "time_s", "pixels_sha256")}
                | {"residual_rms": (f.get("registration") or {}).get("residual_rms")}
                for f in fused.record.get("frames") or []
                if (f.get("registration") or {}).get("used")
            ],
            "fused_face_sha256": fused.record.get("fused_sha256"),
            "pixels_sha256": _maybe_hash(enhancement.sr_fused),
            "single_frame_pixels_sha256": _maybe_hash(enhancement.sr_single),
            "resolution": record.get("resolution"),
            "what_happened": getattr(enhancement, "what_happened", None),
            "notes": list(enhancement.notes),
        },
    }


def _maybe_hash(rgb: Any) -> str | None:
    """The pixel hash of a model output, or None where no model ran (a face of 128 px+)."""
    return None if rgb is None else pixels_sha256(rgb)


def batch_fields(summary: Any, recursive: bool | None) -> dict[str, Any]:
    """The fields of a "batch" entry, from an ``engine.batch.BatchSummary``; its summary.csv
    (which lists every output) is the entry's output, with its SHA-256."""
    outputs = []
    if summary.summary_path is not None and Path(summary.summary_path).is_file():
        path = Path(summary.summary_path)
        outputs.append(output_record(path, sha256_file(path), role="summary"))
    return {
        "input_path": display_path(summary.in_dir),
        "scale": summary.scale,
        "parameters": {"models": list(summary.models), "recursive": recursive},
        "outputs": outputs,
        "details": {
            "out_dir": display_path(summary.out_dir),
            "files_total": summary.files_total,
            "files_done": summary.files_done,
            "ok": summary.ok,
            "no_face": summary.no_face,
            "errors": summary.errors,
            "skipped": summary.skipped,
            "faces": summary.faces,
            "cancelled": summary.cancelled,
            "note": "summary.csv lists every output; each image's *_provenance.json holds "
            "their SHA-256",
        },
    }


def report_fields(
    still: Any, written: Sequence[tuple[Path, str]], enhancements: int, verification: Any
) -> dict[str, Any]:
    """The fields of a "report" entry: the HTML and PDF files written (``(path, sha256)``) and
    the case log's verdict they carry (a :class:`VerifyReport`, or None without a log)."""
    return {
        "input_path": display_path(still.path) if still.path is not None else None,
        "input_sha256": still.sha256,
        "outputs": [output_record(p, sha, role=p.suffix[1:]) for p, sha in written],
        "details": {
            "enhancements": enhancements,
            "log_verified_ok": None if verification is None else verification.ok,
            "log_head_sha256": None if verification is None else verification.head_sha256,
        },
    }


# --------------------------------------------------------------------------- reproduce


@dataclass
class ReproduceReport:
    """Outcome of :func:`reproduce`. ``ok`` only when input, weights and pixels all match."""

    ok: bool
    input_ok: bool | None = None
    weights_ok: bool | None = None
    pixels_ok: bool | None = None
    files_ok: bool | None = None  # logged output files present with their logged SHA-256
    logged_pixels_sha256: str | None = None
    reproduced_pixels_sha256: str | None = None
    max_abs_difference: int | None = None  # vs the logged output file's pixels, when readable
    device_logged: str | None = None
    device_now: str | None = None
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reproduce(
    entry: Mapping[str, Any],
    enhancer: Any,
    load_still: Callable[[str], Any],
) -> ReproduceReport:
    """Re-run a logged "enhance" entry and check the result is bit-identical.

    The input file is loaded with ``load_still`` (normally :func:`engine.io.load`) and its SHA-256
    must equal the logged one before anything runs. The face is rebuilt from the logged box and
    landmarks, the model run at the logged scale with ``enhancer`` (an
    :class:`engine.enhance.Enhancer`), and the SHA-256 of the output pixels compared with the
    logged ``pixels_sha256``. Output files named in the entry are checked too (file SHA-256, and
    the largest pixel difference when the pixels differ, which tells a different device's
    rounding from a different result).
    """
    from engine.faces import Face

    report = ReproduceReport(ok=False, device_logged=entry.get("device"))
    msgs = report.messages
    if entry.get("action") != "enhance":
        msgs.append(f"only 'enhance' entries can be reproduced, not {entry.get('action')!r}")
        return report
    path = entry.get("input_path")
    if not path:
        msgs.append("the entry names no input file (it was not loaded from disk)")
        return report
    try:
        still = load_still(path)
    except Exception as exc:  # noqa: BLE001 - any loading failure is the report's answer
        msgs.append(f"the input could not be loaded: {exc}")
        return report
    report.input_ok = still.sha256 == entry.get("input_sha256")
    if not report.input_ok:
        msgs.append(
            f"the input file's SHA-256 is {still.sha256}, the log says {entry.get('input_sha256')}:"
            " it is not the same file"
        )
        return report

    params = entry.get("parameters") or {}
    logged_face = params.get("face")
    if not logged_face or "landmarks" not in logged_face:
        msgs.append("the entry does not record the face's landmarks; it cannot be re-run")
        return report
    score = logged_face.get("score")
    face = Face(
        box=tuple(float(v) for v in logged_face["box"]),
        score=float("nan") if score is None else float(score),
        landmarks=np.asarray(logged_face["landmarks"], dtype=np.float32),
        manual=bool(logged_face.get("manual", False)),
    )
    try:
        # The same request as logged: "auto" is re-planned from the same face (the same plan
        # while the same weights are installed); a logged shrink was allowed then, so it is now.
        requested = params.get("requested_scale")
        shrink = params.get("evidence_shrink")
        result = enhancer.enhance(
            still,
            face,
            entry["model_id"],
            "auto" if requested == "auto" else int(entry["scale"]),
            face_index=int(params.get("face_index", 0)),
            allow_shrink=shrink is None or float(shrink) > 1.0,
        )
    except Exception as exc:  # noqa: BLE001 - missing weights, unknown model...: say so
        msgs.append(f"the re-run failed: {exc}")
        return report
    record = getattr(result, "provenance", None) or {}
    report.device_now = record.get("device")
    weights_now = record.get("model", {}).get("weights_sha256")
    report.weights_ok = weights_now == entry.get("weights_sha256")
    if not report.weights_ok:
        msgs.append(
            f"the installed weights' SHA-256 is {weights_now}, the log says "
            f"{entry.get('weights_sha256')}: a different weights file"
        )

    details = entry.get("details") or {}
    report.logged_pixels_sha256 = details.get("pixels_sha256")
    report.reproduced_pixels_sha256 = pixels_sha256(result.sr)
    if report.logged_pixels_sha256 is None:
        msgs.append("the entry records no pixels_sha256 to compare with")
    else:
        report.pixels_ok = report.reproduced_pixels_sha256 == report.logged_pixels_sha256
        if report.pixels_ok:
            msgs.append("the re-run produced bit-identical output pixels")
        else:
            msgs.append("the re-run's output pixels differ from the logged ones")
        if details.get("pasted_pixels_sha256") and getattr(result, "pasted", None) is not None:
            if pixels_sha256(result.pasted) != details["pasted_pixels_sha256"]:
                report.pixels_ok = False
                msgs.append("the re-run's full (pasted) image differs from the logged one")

    report.files_ok = _check_output_files(entry, result, report)
    report.ok = bool(report.input_ok and report.weights_ok and report.pixels_ok)
    if report.ok and report.device_now != report.device_logged:
        msgs.append(f"computed on {report.device_now}; logged on {report.device_logged}")
    return report


def reproduce_fields(entry: Mapping[str, Any], report: ReproduceReport) -> dict[str, Any]:
    """The fields of a "reproduce" entry: which entry was re-run, and the verdict."""
    return {
        "input_path": entry.get("input_path"),
        "input_sha256": entry.get("input_sha256"),
        "model_id": entry.get("model_id"),
        "weights_sha256": entry.get("weights_sha256"),
        "scale": entry.get("scale"),
        "device": report.device_now,
        "details": {
            "entry_seq": entry.get("seq"),
            "entry_hash": entry.get("hash"),
            "ok": report.ok,
            "input_ok": report.input_ok,
            "weights_ok": report.weights_ok,
            "pixels_ok": report.pixels_ok,
            "files_ok": report.files_ok,
            "reproduced_pixels_sha256": report.reproduced_pixels_sha256,
            "messages": list(report.messages),
        },
    }


def _check_output_files(
    entry: Mapping[str, Any], result: Any, report: ReproduceReport
) -> bool | None:
    """Compare logged output files with their logged hashes (and the re-run's pixels)."""
    outputs = [o for o in entry.get("outputs") or [] if isinstance(o, dict)]
    if not outputs:
        return None
    from engine.io import sha256_file

    ok = True
    for out in outputs:
        path = Path(out["path"])
        if not path.is_file():
            report.messages.append(f"output {path.name} is no longer at {path}")
            ok = False
            continue
        if sha256_file(path) != out["sha256"]:
            report.messages.append(f"output {path.name} was changed since it was written")
            ok = False
        if out.get("pixels_sha256") and out.get("pixels_sha256") == report.logged_pixels_sha256:
            report.max_abs_difference = _max_difference(path, result.sr, report)
    return ok


def _max_difference(path: Path, rgb: np.ndarray, report: ReproduceReport) -> int | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            stored = np.asarray(image.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, not fatal
        report.messages.append(f"output {path.name} cannot be read as an image ({exc})")
        return None
    if stored.shape != rgb.shape:
        return None
    return int(np.abs(stored.astype(np.int16) - rgb.astype(np.int16)).max())


# --------------------------------------------------------------------------- CLI hook


def verify_main(path: str | os.PathLike[str]) -> int:
    """``python -m engine verify-log PATH``: print the verdict.

    Returns the exit status: 0 intact, 1 broken, 2 no such log.
    """
    report = CaseLog(path).verify()
    out = sys.stdout
    out.write(report.summary() + "\n")
    for problem in report.problems[:20]:
        out.write(f"  line {problem.line}: {problem.kind}: {problem.message}\n")
    if len(report.problems) > 20:
        out.write(f"  ... and {len(report.problems) - 20} more\n")
    if report.ok:
        return 0
    return 2 if report.reason == "missing" else 1
