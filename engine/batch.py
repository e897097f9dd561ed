"""Folder runs: every face of every image in a folder, with chosen models, into another folder.

What a run guarantees, because the input is evidence and runs are long:

* **Inputs are never touched.** Files are only opened read-only (:func:`engine.io.load`,
  :func:`engine.io.sha256_file`); an output folder that is the input folder or lies inside it is
  refused before anything is written.
* **Every input gets an answer** in ``summary.csv``: one row per (file, model) with the input's
  SHA-256, faces found, the weights' SHA-256, a status (``ok``, ``no_face``, ``error``,
  ``skipped_done``), the error in words and the files written. A damaged file, a non-image, a
  face-less image, a full disk or an unwritable sub-folder become rows; the run goes on.
* **Nothing half-written.** Every output is written to a temporary name and renamed
  (:func:`engine.io.save_png`); the summary is rewritten the same way after each image, so a
  killed run leaves a valid summary; leftover temporary files are removed when a run starts; an
  image whose outputs could not all be written (or that was cancelled mid-way) has what was
  written of it removed again.
* **Resume.** A file is skipped when the previous summary has, for every chosen model, an
  ok/no_face/skipped_done row with the same input SHA-256, scale and weights SHA-256 whose
  output files all still exist. Anything else is redone.
* **Pause and cancel** go through the token (:class:`PausableToken` adds pause), checked
  between forward passes and between faces; a cancelled run still leaves a valid summary.

Outputs mirror the input's sub-folders. For an input ``sub/img.jpg`` (relative stem
``sub/img``), face K (0 = leftmost) and model M at scale N:
``sub/img_faceK_M_xN.png`` (the 128x128 SR face), ``sub/img_M_xN_full.png`` (the whole image
enlarged by N with every SR face pasted in) and ``sub/img_provenance.json`` (every record and
every output's SHA-256). The PNGs carry their provenance in PNG text chunks. When two inputs of
one folder share a stem (``a.png``, ``a.jpg``) their full names are used as stems instead.

Throughput: a producer thread reads, hashes, detects and aligns the next images while the
caller's thread runs the networks and writes results (dlib, Pillow and torch release the GIL
in their heavy parts). Faces are batched into one forward pass per model: the faces of every
image already prepared (at most ``batch_faces`` per pass, at most ``GROUP_IMAGES`` images), so
when the network is the bottleneck the queue fills and passes grow, and when detection is the
bottleneck no image waits for others.
"""

from __future__ import annotations

import argparse
import csv
import errno
import io as _stdio
import logging
import os
import queue
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import numpy as np

from engine import __version__, export, io, provenance, registry
from engine import device as devices
from engine import faces as facelib
from engine.enhance import Enhancer, pipeline_parameters
from engine.progress import Cancelled, CancelToken, PausableToken  # PausableToken re-exported
from engine.weights import LoadedModel

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.csv"
SUMMARY_FIELDS = (
    "file",
    "sha256",
    "faces",
    "model",
    "scale",
    "weights_sha256",
    "status",
    "error",
    "outputs",
)
OK, NO_FACE, ERROR, SKIPPED_DONE = "ok", "no_face", "error", "skipped_done"
COMPLETED = frozenset({OK, NO_FACE, SKIPPED_DONE})

#: Most faces in one forward pass (a 16-face batch of 32x32 inputs is small for any device).
DEFAULT_BATCH_FACES = 16
#: Most images whose faces share forward passes (also the producer's look-ahead).
GROUP_IMAGES = 8

# Temporary names used by engine.io.save_png and by this module: ".<name>.<12 hex>.tmp".
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


class BatchError(ValueError):
    """The run cannot start (bad folders, unknown model or scale, missing or invalid weights)."""


@dataclass
class SummaryRow:
    """One row of ``summary.csv``: one input file with one model. Paths are relative, POSIX."""

    file: str
    sha256: str
    faces: int | None  # None when the file could not be read far enough to detect
    model: str
    scale: int
    weights_sha256: str
    status: str
    error: str = ""
    outputs: list[str] = field(default_factory=list)

    def to_csv(self) -> dict[str, str]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "faces": "" if self.faces is None else str(self.faces),
            "model": self.model,
            "scale": str(self.scale),
            "weights_sha256": self.weights_sha256,
            "status": self.status,
            "error": self.error,
            "outputs": ";".join(self.outputs),
        }

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> SummaryRow:
        faces = row["faces"]
        return cls(
            file=row["file"],
            sha256=row["sha256"],
            faces=int(faces) if faces else None,
            model=row["model"],
            scale=int(row["scale"]),
            weights_sha256=row["weights_sha256"],
            status=row["status"],
            error=row["error"],
            outputs=[p for p in row["outputs"].split(";") if p],
        )


@dataclass(frozen=True)
class BatchEvent:
    """Progress and faults, sent to ``on_event`` from the caller's thread.

    ``kind``: "start", "file" (a file is finished; ``status`` says how), "fault" (a file or the
    summary had a problem; ``message`` says what), "cancelled", "done".
    """

    kind: str
    files_done: int
    files_total: int
    faces_done: int
    elapsed_s: float
    eta_s: float | None  # None until one file has been processed
    file: str | None = None
    status: str | None = None
    message: str = ""


@dataclass
class BatchSummary:
    """What a run did. ``rows`` are those of ``summary.csv``; times are seconds."""

    in_dir: Path
    out_dir: Path
    models: list[str]
    scale: int
    files_total: int
    files_done: int = 0
    ok: int = 0
    no_face: int = 0
    errors: int = 0
    skipped: int = 0
    faces: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    #: Seconds spent per stage: "load" and "detect" (producer thread, overlapping the rest),
    #: "model", "write" and "wait" (caller's thread; "wait" = idle, waiting for the producer).
    timings: dict[str, float] = field(default_factory=dict)
    #: Forward passes per model (faces / passes = faces per pass; baselines count one per face).
    forward_passes: dict[str, int] = field(default_factory=dict)
    rows: list[SummaryRow] = field(default_factory=list)
    summary_path: Path | None = None


# --------------------------------------------------------------------------- folders


def _check_folders(in_dir: Path | str, out_dir: Path | str) -> tuple[Path, Path]:
    """Resolved input and output folders; BatchError if the input is missing or the output
    would lie among the inputs. Writes nothing."""
    in_root = Path(in_dir).expanduser()
    if not in_root.exists():
        raise BatchError(f"the input folder {in_root} does not exist")
    if not in_root.is_dir():
        raise BatchError(f"the input {in_root} is not a folder")
    in_root = in_root.resolve()
    out_root = Path(out_dir).expanduser().resolve()
    if out_root == in_root:
        raise BatchError(
            f"the output folder {out_root} is the input folder; choose another folder so that "
            "results are never mixed with the evidence"
        )
    if in_root in out_root.parents:
        raise BatchError(
            f"the output folder {out_root} is inside the input folder {in_root}; choose a "
            "folder outside it so that results are never mixed with the evidence"
        )
    if out_root in in_root.parents:
        # Results mirror the input's sub-folders, so some could land inside the input folder.
        raise BatchError(
            f"the input folder {in_root} is inside the output folder {out_root}; choose an "
            "output folder outside it so that results are never mixed with the evidence"
        )
    return in_root, out_root


def _prepare_output(out_root: Path) -> int:
    """Create the output folder, prove it writable, remove leftover temporary files.

    Returns how many temporary files were removed. Raises BatchError if the folder cannot be
    created or written.
    """
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(
            f"the output folder {out_root} cannot be created ({exc.strerror or exc})"
        ) from None
    if not out_root.is_dir():
        raise BatchError(f"the output {out_root} is not a folder")
    probe = out_root / f".write-test.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BatchError(
            f"the output folder {out_root} is not writable ({exc.strerror or exc})"
        ) from None
    removed = 0
    for folder, _, filenames in os.walk(out_root):  # the input is not in here (checked)
        here = Path(folder)
        for name in filenames:
            if _TEMP_NAME.match(name):
                try:
                    os.unlink(here / name)
                    removed += 1
                except OSError as exc:
                    log.warning("could not remove leftover temporary file %s: %s", here / name, exc)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return removed


def list_inputs(in_root: Path, recursive: bool = True) -> list[tuple[Path, str]]:
    """Every file under ``in_root`` as (path, relative POSIX path), sorted by path components.

    Every file is listed, not only image extensions: a file that is not an image gets a row
    saying so, rather than being silently passed over. Symbolic links to folders are not
    followed (they could loop); links to files are listed like files.
    """
    found: list[tuple[Path, str]] = []
    for folder, dirnames, filenames in os.walk(in_root):
        if not recursive:
            dirnames[:] = []
        here = Path(folder)
        for name in filenames:
            path = here / name
            found.append((path, path.relative_to(in_root).as_posix()))
    found.sort(key=lambda item: PurePosixPath(item[1]).parts)
    return found


def output_stems(rel_paths: Sequence[str]) -> dict[str, str]:
    """Relative output stem per input: ``sub/img.jpg`` -> ``sub/img``.

    Inputs of one folder that share a stem (ignoring case, for Windows and macOS file systems)
    use their full names (``sub/img.jpg``, ``sub/img.png``) so their outputs cannot collide.
    """
    by_key: dict[tuple[str, str], list[str]] = {}
    for rel in rel_paths:
        p = PurePosixPath(rel)
        by_key.setdefault((str(p.parent), p.stem.lower()), []).append(rel)
    stems: dict[str, str] = {}
    for rels in by_key.values():
        for rel in rels:
            p = PurePosixPath(rel)
            stems[rel] = str(p) if len(rels) > 1 else str(p.with_suffix(""))
    taken: set[str] = set()
    for rel in rel_paths:  # a stem equal to another file's full name: number it (rare)
        stem, n = stems[rel], 1
        while stem.lower() in taken:
            n += 1
            stem = f"{stems[rel]}~{n}"
        stems[rel] = stem
        taken.add(stem.lower())
    return stems


# --------------------------------------------------------------------------- summary file


def read_summary(path: Path) -> list[SummaryRow]:
    """Rows of an existing ``summary.csv``; [] if there is none or it cannot be understood."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != SUMMARY_FIELDS:
                log.warning("%s has unexpected columns; starting afresh", path)
                return []
            return [SummaryRow.from_csv(row) for row in reader]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        log.warning("%s cannot be read (%s); starting afresh", path, exc)
        return []


def write_summary(path: Path, rows: Sequence[SummaryRow]) -> None:
    """Write ``rows`` as ``summary.csv`` atomically (readers see the old or the new file)."""
    text = _stdio.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.to_csv())
    io.write_bytes_atomic(path, text.getvalue().encode("utf-8"))


def _hash_regular_file(path: Path) -> str:
    """SHA-256 of ``path``, or "" when it is not a readable regular file (a FIFO would block)."""
    try:
        return io.sha256_file(path) if path.is_file() else ""
    except OSError:
        return ""


def _fault_words(exc: BaseException) -> str:
    """What went wrong, for the summary: the file named, a full disk called a full disk."""
    if isinstance(exc, io.OutputError):
        return f"{exc.path.name}: {_os_reason(exc)}"
    if isinstance(exc, OSError):
        name = Path(exc.filename).name if exc.filename else ""
        return f"{name}: {_os_reason(exc)}" if name else _os_reason(exc)
    return f"{type(exc).__name__}: {exc}"


def _os_reason(exc: BaseException) -> str:
    """Plain words for a failed write, naming a full disk as such."""
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, OSError) and chain.errno == errno.ENOSPC:
            return "the disk is full (no space left on device)"
        chain = chain.__cause__ or chain.__context__
    if isinstance(exc, io.OutputError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


# --------------------------------------------------------------------------- networks


# --------------------------------------------------------------------------- the run


@dataclass
class _Item:
    """One input file on its way through the run (prepared by the producer thread)."""

    index: int
    path: Path
    rel: str
    stem: str
    sha256: str = ""
    still: io.Still | None = None
    faces: list[facelib.Face] = field(default_factory=list)
    aligned: list[facelib.AlignedFace] = field(default_factory=list)
    error: str = ""
    skip_rows: list[SummaryRow] | None = None  # previous rows when already done
    sr: dict[str, list[np.ndarray]] = field(default_factory=dict)  # model id -> SR per face
    model_errors: dict[str, str] = field(default_factory=dict)
    batch_sizes: dict[str, int] = field(default_factory=dict)  # model id -> faces per pass


_END = object()


class _Run:
    """State of one run; :meth:`execute` is the whole run, in the caller's thread."""

    def __init__(
        self,
        in_root: Path,
        out_root: Path,
        files: list[tuple[Path, str]],
        models: dict[str, LoadedModel],
        scale: int,
        token: CancelToken,
        on_event: Callable[[BatchEvent], None] | None,
        detector: str,
        enhancer: Enhancer,
        batch_faces: int,
        lookahead: bool,
    ) -> None:
        self.in_root, self.out_root = in_root, out_root
        self.files, self.models, self.scale = files, models, scale
        self.token, self.on_event, self.detector = token, on_event, detector
        self.enhancer, self.batch_faces, self.lookahead = enhancer, batch_faces, lookahead
        self.summary_path = out_root / SUMMARY_NAME
        self.stems = output_stems([rel for _, rel in files])
        self.order = {rel: i for i, (_, rel) in enumerate(files)}
        self.model_order = {m: i for i, m in enumerate(models)}
        self.notes: dict[str, list[str]] = {m: [] for m in models}
        self.devices: dict[str, str] = {}
        self.timings = dict.fromkeys(("load", "detect", "model", "write", "wait"), 0.0)
        self.timing_lock = threading.Lock()
        self.result = BatchSummary(
            in_dir=in_root,
            out_dir=out_root,
            models=list(models),
            scale=scale,
            files_total=len(files),
            summary_path=self.summary_path,
            forward_passes=dict.fromkeys(models, 0),
        )
        self.processed = 0  # files done this run that were not skipped (for the ETA)
        self.start = time.perf_counter()
        # Previous rows: what resume compares against, and what the summary keeps for files
        # this run has not reached yet (so a run killed early does not forget earlier work).
        wanted = {(rel, m) for _, rel in files for m in models}
        self.previous: dict[tuple[str, str], SummaryRow] = {
            (r.file, r.model): r
            for r in read_summary(self.summary_path)
            if (r.file, r.model) in wanted and r.scale == scale
        }
        self.rows: dict[tuple[str, str], SummaryRow] = dict(self.previous)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=GROUP_IMAGES)
        self.stop = threading.Event()
        self.producer_error: BaseException | None = None

    # ------------------------------------------------------------------ events

    def _emit(
        self, kind: str, item: _Item | None = None, status: str | None = None, message: str = ""
    ) -> None:
        if kind == "file" and item is not None:  # the token's own progress hook (e.g. the GUI's)
            r = self.result
            self.token.set_progress(r.files_done, r.files_total, f"{item.rel}: {status}")
        if self.on_event is None:
            return
        elapsed = time.perf_counter() - self.start
        r = self.result
        eta = None
        if self.processed:
            remaining = r.files_total - r.files_done
            eta = elapsed / self.processed * remaining
        self.on_event(
            BatchEvent(
                kind=kind,
                files_done=r.files_done,
                files_total=r.files_total,
                faces_done=r.faces,
                elapsed_s=elapsed,
                eta_s=eta,
                file=item.rel if item else None,
                status=status,
                message=message,
            )
        )

    def _add_time(self, stage: str, start: float) -> None:
        with self.timing_lock:
            self.timings[stage] += time.perf_counter() - start

    # ------------------------------------------------------------------ producer

    def _prepare(self, index: int, path: Path, rel: str) -> _Item:
        """Hash, skip check, load, detect, align one file; every failure becomes ``error``."""
        item = _Item(index=index, path=path, rel=rel, stem=self.stems[rel])
        try:
            t = time.perf_counter()
            previous = [self.previous.get((rel, m)) for m in self.models]
            if all(r is not None and r.status in COMPLETED for r in previous):
                # Hash without decoding: a finished file costs one read.
                sha = _hash_regular_file(path)
                if sha and self._still_done(sha, previous):  # type: ignore[arg-type]
                    item.sha256 = sha
                    item.skip_rows = previous  # type: ignore[assignment]
                    self._add_time("load", t)
                    return item
            item.still = io.load(path)
            item.sha256 = item.still.sha256
            self._add_time("load", t)
            t = time.perf_counter()
            item.faces = facelib.detect(item.still.rgb, method=self.detector)
            lr_size = facelib.HR_SIZE // self.scale
            item.aligned = [facelib.align(item.still.rgb, f, size=lr_size) for f in item.faces]
            self._add_time("detect", t)
        except io.ImageLoadError as exc:
            item.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the run goes on
            log.exception("preparing %s failed", rel)
            item.error = f"{type(exc).__name__}: {exc}"
        if item.error:
            item.still, item.faces, item.aligned = None, [], []
            if not item.sha256:  # a damaged file still gets its hash on record, when readable
                item.sha256 = _hash_regular_file(path)
        return item

    def _still_done(self, sha256: str, previous: list[SummaryRow]) -> bool:
        for model_id, row in zip(self.models, previous, strict=True):
            current = self.models[model_id].weights_sha256 or ""
            if row.sha256 != sha256 or row.weights_sha256 != current or not row.outputs:
                return False
            if not all((self.out_root / p).is_file() for p in row.outputs):
                return False
        return True

    def _produce(self) -> None:
        """Producer thread: prepare files in order, hand them over through the queue."""
        try:
            for index, (path, rel) in enumerate(self.files):
                if self.stop.is_set():
                    return
                if not self._wait_while_paused():
                    return
                item = self._prepare(index, path, rel)
                while not self.stop.is_set():
                    try:
                        self.queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised
            self.producer_error = exc
        finally:
            while not self.stop.is_set():
                try:
                    self.queue.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _wait_while_paused(self) -> bool:
        """Producer side of pause: wait while paused; False when the run is ending."""
        while not self.stop.is_set() and not self.token.cancelled:
            if not isinstance(self.token, PausableToken) or self.token.wait_running(0.1):
                return True
        return False

    def _items(self):
        """Groups of prepared items, in file order: the next one (waiting for it), plus any
        others already prepared while faces fit in one batch."""
        if not self.lookahead:
            for index, (path, rel) in enumerate(self.files):
                self.token.check()
                yield [self._prepare(index, path, rel)]
            return
        producer = threading.Thread(target=self._produce, name="batch-prepare", daemon=True)
        producer.start()
        try:
            done = False
            while not done:
                self.token.check()
                t = time.perf_counter()
                first = self.queue.get()
                self._add_time("wait", t)
                if first is _END:
                    break
                group, n_faces = [first], len(first.faces)
                while len(group) < GROUP_IMAGES and n_faces < self.batch_faces:
                    try:
                        nxt = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _END:
                        done = True
                        break
                    group.append(nxt)
                    n_faces += len(nxt.faces)
                yield group
        finally:
            self.stop.set()
            producer.join()
        if self.producer_error is not None:
            raise self.producer_error

    # ------------------------------------------------------------------ compute

    def _compute(self, group: list[_Item]) -> None:
        """Run every model on every face of the group, batched; results land in ``item.sr``."""
        work = [item for item in group if item.aligned]
        for model_id in self.models:
            jobs = [(item, k) for item in work for k in range(len(item.aligned))]
            results: dict[tuple[int, int], np.ndarray] = {}
            start = 0
            step = self.batch_faces
            while start < len(jobs):
                self.token.check()  # between forward passes: pause waits here
                chunk = jobs[start : start + step]
                t = time.perf_counter()
                try:
                    srs = self.models[model_id].run_batch(
                        [item.aligned[k].pixels for item, k in chunk]
                    )
                except Exception as exc:  # noqa: BLE001 - see the branches
                    self._add_time("model", t)
                    if devices.is_cuda_out_of_memory(exc):
                        step = self._after_oom(model_id, step)
                        continue
                    if len(chunk) > 1:  # find the failing face(s): one at a time
                        step = 1
                        continue
                    item, k = chunk[0]
                    log.exception("%s on %s face %d failed", model_id, item.rel, k)
                    item.model_errors[model_id] = f"{model_id} failed on face {k}: {exc}"
                    start += 1
                    continue
                self._add_time("model", t)
                passes = 1 if self.models[model_id].module is not None else len(chunk)
                self.result.forward_passes[model_id] += passes
                for (item, k), sr in zip(chunk, srs, strict=True):
                    results[(item.index, k)] = sr
                    item.batch_sizes[model_id] = max(item.batch_sizes.get(model_id, 0), len(chunk))
                start += len(chunk)
            for item in work:
                if model_id not in item.model_errors:
                    item.sr[model_id] = [results[(item.index, k)] for k in range(len(item.aligned))]

    def _after_oom(self, model_id: str, step: int) -> int:
        """Out of GPU memory: halve the batch; at one face, move this model to the CPU."""
        import torch

        torch.cuda.empty_cache()
        if step > 1:
            log.warning("%s: out of GPU memory, batches of %d faces now", model_id, step // 2)
            return step // 2
        log.warning("%s: out of GPU memory with one face, continuing on the CPU", model_id)
        self.models[model_id] = self.enhancer.model(model_id, self.scale, device="cpu")
        self.devices.pop(model_id, None)
        self.notes[model_id].append("CUDA out of memory; from here on computed on the CPU")
        return self.batch_faces

    # ------------------------------------------------------------------ writing

    def _record(self, item: _Item, k: int, model_id: str) -> dict[str, Any]:
        model = self.models[model_id]
        if model_id not in self.devices:
            self.devices[model_id] = devices.describe(model.device)
        params = pipeline_parameters(model.entry, self.scale) | {
            "detector": self.detector,
            "batch": {
                "input_file": item.rel,
                "faces_per_forward_pass": item.batch_sizes.get(model_id, 1),
            },
        }
        return provenance.record(
            still=item.still,
            face=item.faces[k],
            face_index=k,
            entry=model.entry,
            scale=self.scale,
            weights_file=model.path.name if model.path is not None else None,
            weights_sha256=model.weights_sha256,
            weights_metadata=model.metadata,
            parameters=params,
            device=self.devices[model_id],
            notes=list(self.notes[model_id]),
        )

    def _write(self, item: _Item) -> list[SummaryRow]:
        """Write one image's outputs; returns its rows. On any failure what was written of this
        image is removed again and the rows say why."""
        assert item.still is not None
        written: list[Path] = []
        rows: list[SummaryRow] = []
        stem = PurePosixPath(item.stem)
        try:
            (self.out_root / stem.parent).mkdir(parents=True, exist_ok=True)
            records: list[dict[str, Any]] = []
            outputs: list[dict[str, str]] = []
            h, w = item.still.height, item.still.width
            too_large = h * w * self.scale * self.scale > facelib.MAX_PASTE_PIXELS
            for model_id, model in self.models.items():
                row = SummaryRow(
                    file=item.rel,
                    sha256=item.sha256,
                    faces=len(item.faces),
                    model=model_id,
                    scale=self.scale,
                    weights_sha256=model.weights_sha256 or "",
                    status=OK,
                )
                rows.append(row)
                if model_id in item.model_errors:
                    row.status, row.error = ERROR, item.model_errors[model_id]
                    continue
                model_records = []
                for k, sr in enumerate(item.sr[model_id]):
                    self.token.check()  # between faces
                    rec = self._record(item, k, model_id)
                    rel = export.output_name(stem, model_id, self.scale, "face", k)
                    sha = self._save(rel, sr, provenance.png_text(rec), written)
                    provenance.add_output(rec, "face", rel, sha)
                    outputs.append({"role": "face", "path": rel, "sha256": sha})
                    row.outputs.append(rel)
                    model_records.append(rec)
                if too_large:
                    row.error = (
                        f"full image not written: {w * self.scale}x{h * self.scale} pixels is "
                        "too large; the faces were written"
                    )
                else:
                    t = time.perf_counter()
                    full = facelib.paste_many(
                        item.still.rgb,
                        self.scale,
                        list(zip(item.aligned, item.sr[model_id], strict=True)),
                    )
                    self._add_time("write", t)  # "write" = paste-back, encoding and writing
                    rel = export.output_name(stem, model_id, self.scale, "full")
                    document = provenance.bundle(model_records)
                    sha = self._save(rel, full, provenance.png_text(document), written)
                    for rec in model_records:
                        provenance.add_output(rec, "full", rel, sha)
                    outputs.append({"role": "full", "path": rel, "sha256": sha})
                    row.outputs.append(rel)
                records.extend(model_records)
            rel = f"{stem}_provenance.json"
            self._save_json(rel, self._document(item, records, outputs), written)
            for row in rows:
                row.outputs.append(rel)
        except BaseException as exc:
            self._remove(written)
            if not isinstance(exc, Exception) or isinstance(exc, Cancelled):
                raise
            if not isinstance(exc, OSError):
                log.exception("writing the results of %s failed", item.rel)
            message = f"results not written: {_fault_words(exc)}"
            for row in rows:
                row.status, row.error, row.outputs = ERROR, message, []
            done = {row.model for row in rows}
            rows += [
                SummaryRow(
                    item.rel,
                    item.sha256,
                    len(item.faces),
                    m,
                    self.scale,
                    self.models[m].weights_sha256 or "",
                    ERROR,
                    message,
                )
                for m in self.models
                if m not in done
            ]
        return rows

    def _document(
        self, item: _Item, records: list[dict[str, Any]], outputs: list[dict[str, str]]
    ) -> dict[str, Any]:
        """The per-image provenance JSON: every face record, the run's settings, every output."""
        if records:
            document = provenance.bundle(records)
        else:  # no face found (or every model failed): still say what was examined and how
            still = item.still
            assert still is not None
            document = {
                "record_version": provenance.RECORD_VERSION,
                "label": provenance.AI_LABEL,
                "software": {"name": provenance.SOFTWARE, "version": __version__},
                "time_utc": provenance.utc_now(),
                "input": {
                    "path": str(still.path),
                    "name": still.name,
                    "sha256": still.sha256,
                    "original_mode": still.original_mode,
                    "format": still.format,
                    "width": still.width,
                    "height": still.height,
                },
                "faces": [],
                "outputs": [],
            }
        document["batch"] = {
            "input_file": item.rel,
            "models": list(self.models),
            "scale": self.scale,
            "detector": self.detector,
            "faces_found": len(item.faces),
        }
        document["outputs"] = outputs
        return document

    def _save(self, rel: str, rgb: np.ndarray, text: dict[str, str], written: list[Path]) -> str:
        t = time.perf_counter()
        path = self.out_root / rel
        sha = io.save_png(path, rgb, text)
        written.append(path)
        self._add_time("write", t)
        return sha

    def _save_json(self, rel: str, document: dict[str, Any], written: list[Path]) -> None:
        t = time.perf_counter()
        path = self.out_root / rel
        io.write_bytes_atomic(path, provenance.to_json(document).encode("utf-8"))
        written.append(path)
        self._add_time("write", t)

    def _remove(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove the partial result %s: %s", path, exc)

    # ------------------------------------------------------------------ bookkeeping

    def _finish(self, item: _Item, rows: list[SummaryRow], skipped: bool = False) -> None:
        """Record one finished file: rows, counters, summary file, events."""
        if not skipped:
            self._remove_stale(item, rows)
        for row in rows:
            self.rows[(row.file, row.model)] = row
        r = self.result
        r.files_done += 1
        statuses = {row.status for row in rows}
        if skipped:
            r.skipped += 1
            status = SKIPPED_DONE
        else:
            self.processed += 1
            if ERROR in statuses:
                r.errors += 1
                status = ERROR
            elif NO_FACE in statuses:
                r.no_face += 1
                status = NO_FACE
            else:
                r.ok += 1
                r.faces += len(item.faces)
                status = OK
        if not skipped:  # a skipped file changes nothing the previous summary did not say
            self._save_summary()
        self._emit("file", item, status)
        if status in (ERROR, NO_FACE):
            message = next((row.error for row in rows if row.error), "no face found")
            self._emit("fault", item, status, message)

    def _remove_stale(self, item: _Item, rows: list[SummaryRow]) -> None:
        """Delete outputs an earlier run listed for this file that this run did not write again
        (e.g. a face no longer found in a changed input), so the summary matches the disk.
        Only paths inside the output folder are touched."""
        new = {p for row in rows for p in row.outputs}
        old = {
            p for m in self.models if (row := self.previous.get((item.rel, m))) for p in row.outputs
        }
        for rel in sorted(old - new):
            path = (self.out_root / rel).resolve()
            if self.out_root in path.parents and path.name != SUMMARY_NAME:
                self._remove([path])

    def _ordered_rows(self) -> list[SummaryRow]:
        return sorted(
            self.rows.values(),
            key=lambda row: (self.order[row.file], self.model_order[row.model]),
        )

    def _save_summary(self) -> bool:
        try:
            write_summary(self.summary_path, self._ordered_rows())
        except OSError as exc:
            log.error("could not write %s: %s", self.summary_path, exc)
            self._emit("fault", None, ERROR, f"summary.csv not updated: {_os_reason(exc)}")
            return False
        return True

    def _handle(self, group: list[_Item]) -> None:
        """Finish the group's files that need no network, compute the rest, write them."""
        need_model = []
        for item in group:
            if item.skip_rows is not None:
                rows = [replace(row, status=SKIPPED_DONE) for row in item.skip_rows]
                self._finish(item, rows, skipped=True)
            elif item.error:
                rows = [
                    SummaryRow(
                        item.rel,
                        item.sha256,
                        None,
                        m,
                        self.scale,
                        self.models[m].weights_sha256 or "",
                        ERROR,
                        item.error,
                    )
                    for m in self.models
                ]
                self._finish(item, rows)
            elif not item.faces:
                written: list[Path] = []
                try:
                    rel = f"{item.stem}_provenance.json"
                    (self.out_root / PurePosixPath(rel).parent).mkdir(parents=True, exist_ok=True)
                    self._save_json(rel, self._document(item, [], []), written)
                    status, error, outs = NO_FACE, "no face found", [rel]
                except OSError as exc:
                    self._remove(written)
                    status, error, outs = ERROR, f"results not written: {_fault_words(exc)}", []
                rows = [
                    SummaryRow(
                        item.rel,
                        item.sha256,
                        0,
                        m,
                        self.scale,
                        self.models[m].weights_sha256 or "",
                        status,
                        error,
                        list(outs),
                    )
                    for m in self.models
                ]
                self._finish(item, rows)
            else:
                need_model.append(item)
        if not need_model:
            return
        self._compute(need_model)
        for item in need_model:
            self.token.check()
            rows = self._write(item)
            item.still, item.sr = None, {}  # free memory early
            self._finish(item, rows)

    def execute(self) -> BatchSummary:
        r = self.result
        self._emit("start")
        groups = self._items()
        try:
            for group in groups:
                self._handle(group)
        except Cancelled:
            r.cancelled = True
            log.info("batch cancelled after %d of %d files", r.files_done, r.files_total)
        finally:
            groups.close()  # stops and joins the look-ahead thread
            r.elapsed_s = time.perf_counter() - self.start
            r.timings = {k: round(v, 3) for k, v in self.timings.items()}
            r.rows = self._ordered_rows()
            saved = self._save_summary()  # also when interrupted by an unexpected error
        if not saved:
            raise io.OutputError(self.summary_path, "the summary could not be written")
        self._emit("cancelled" if r.cancelled else "done")
        return r


def run_batch(
    in_dir: Path | str,
    out_dir: Path | str,
    model_ids: Sequence[str],
    scale: int,
    *,
    recursive: bool = True,
    token: CancelToken | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    detector: str = "hog",
    enhancer: Enhancer | None = None,
    batch_faces: int = DEFAULT_BATCH_FACES,
    lookahead: bool = True,
) -> BatchSummary:
    """Enhance every face of every image under ``in_dir`` with every model in ``model_ids``.

    Results go to ``out_dir`` (created if needed) as described in the module docstring, with
    ``summary.csv`` rewritten after each image. ``on_event`` receives :class:`BatchEvent` s in the
    caller's thread. ``lookahead=False`` prepares images in the caller's thread (for measuring
    what the overlap gains). Raises :class:`BatchError` before writing anything when the run
    cannot start; per-file problems never raise, they become summary rows. A cancelled run
    returns normally with ``cancelled=True``.
    """
    ids = list(dict.fromkeys(model_ids))
    if not ids:
        raise BatchError("no model chosen")
    if detector not in facelib.DEFAULT_MIN_SCORE:
        raise BatchError(f"unknown detector {detector!r}; use 'hog' or 'cnn'")
    if batch_faces < 1:
        raise BatchError(f"batch_faces must be at least 1, got {batch_faces}")
    try:
        entries = [registry.get(m) for m in ids]
        scale = registry.check_scale(entries[0], scale)
        for entry in entries[1:]:
            registry.check_scale(entry, scale)
    except KeyError as exc:
        raise BatchError(exc.args[0]) from None
    except ValueError as exc:
        raise BatchError(str(exc)) from None
    in_root, out_root = _check_folders(in_dir, out_dir)
    try:
        enhancer = enhancer or Enhancer()
        models = {m: enhancer.model(m, scale) for m in ids}
    except (ValueError, OSError) as exc:  # WeightsError/MissingWeightsError, bad device
        raise BatchError(str(exc)) from None
    _prepare_output(out_root)
    files = list_inputs(in_root, recursive)
    log.info(
        "batch: %d file(s) from %s to %s, models %s x%d",
        len(files),
        in_root,
        out_root,
        ", ".join(ids),
        scale,
    )
    run = _Run(
        in_root,
        out_root,
        files,
        models,
        scale,
        token or CancelToken(),
        on_event,
        detector,
        enhancer,
        batch_faces,
        lookahead,
    )
    return run.execute()


# --------------------------------------------------------------------------- command line


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``batch IN_DIR OUT_DIR --model ID [--model ID ...] --scale N`` to ``subparsers``."""
    parser = subparsers.add_parser(
        "batch",
        help="enhance every face of every image in a folder",
        description=(
            "Enhance every face of every image in IN_DIR (and its sub-folders) with each chosen "
            "model; results, provenance and summary.csv go to OUT_DIR. A run that is stopped can "
            "be restarted with the same arguments: finished files are skipped. Exit status 0 "
            "when the run completed (bad files are listed in summary.csv), 2 when it could not "
            "run, 130 when cancelled (Ctrl-C)."
        ),
    )
    parser.add_argument("in_dir", metavar="IN_DIR", type=Path, help="input folder (read only)")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="output folder")
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        required=True,
        metavar="ID",
        help="model id (repeat for several; see `models`)",
    )
    parser.add_argument("--scale", type=int, required=True, help="enlargement factor, e.g. 4")
    parser.add_argument(
        "--no-recursive", dest="recursive", action="store_false", help="ignore sub-folders"
    )
    parser.add_argument("--detector", choices=("hog", "cnn"), default="hog")
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (default: automatic)")
    parser.add_argument(
        "--batch-faces",
        type=int,
        default=DEFAULT_BATCH_FACES,
        metavar="N",
        help=f"most faces per forward pass (default {DEFAULT_BATCH_FACES})",
    )
    parser.set_defaults(func=run_from_args)
    return parser


class ProgressBar:
    """Text progress on a stream: one redrawn line on a terminal, a line every few seconds
    otherwise; faults always get their own line. Redraws are throttled (latest value wins)."""

    def __init__(self, stream: TextIO, width: int = 24, interval_s: float = 0.25) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval_s = interval_s if self.tty else 5.0
        self.last = 0.0
        self.drawn = False

    def __call__(self, event: BatchEvent) -> None:
        if event.kind == "fault":
            self._clear()
            where = f"{event.file}: " if event.file else ""
            self.stream.write(f"{event.status or 'fault'}: {where}{event.message}\n")
            self.stream.flush()
            return
        now = time.monotonic()
        final = event.kind in ("done", "cancelled")
        if not final and now - self.last < self.interval_s and event.kind != "start":
            return
        self.last = now
        line = self.line(event)
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.drawn = not final
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def line(self, e: BatchEvent) -> str:
        total = max(e.files_total, 1)
        filled = round(self.width * e.files_done / total)
        bar = "#" * filled + "-" * (self.width - filled)
        eta = _clock(e.eta_s) if e.eta_s is not None else "--:--"
        return (
            f"[{bar}] {e.files_done}/{e.files_total} files, {e.faces_done} faces, "
            f"{_clock(e.elapsed_s)} elapsed, ETA {eta}"
        )

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\033[K")
            self.drawn = False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def run_from_args(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run ``batch`` from parsed arguments: 0 completed, 2 could not run, 1 summary unwritable,
    130 cancelled. The first Ctrl-C cancels cleanly (summary kept); a second one interrupts."""
    stream = stream or sys.stderr
    token = PausableToken()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: Any) -> None:
            stream.write("\ncancelling after the current image (Ctrl-C again to stop now)\n")
            token.cancel()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        enhancer = Enhancer(device=args.device) if getattr(args, "device", None) else None
    except ValueError as exc:  # a device torch does not know or cannot see
        stream.write(f"ffe batch: error: {exc}\n")
        return 2
    try:
        summary = run_batch(
            args.in_dir,
            args.out_dir,
            args.models,
            args.scale,
            recursive=args.recursive,
            token=token,
            on_event=ProgressBar(stream),
            detector=args.detector,
            enhancer=enhancer,
            batch_faces=getattr(args, "batch_faces", DEFAULT_BATCH_FACES),
        )
    except BatchError as exc:
        stream.write(f"ffe batch: error: {exc}\n")
        return 2
    except OSError as exc:
        stream.write(f"ffe batch: error: {exc}\n")
        return 1
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    stream.write(
        f"{summary.files_done}/{summary.files_total} files: {summary.ok} ok, "
        f"{summary.no_face} without a face, {summary.errors} with errors, "
        f"{summary.skipped} already done; {summary.faces} faces in {_clock(summary.elapsed_s)}\n"
        f"summary: {summary.summary_path}\n"
    )
    return 130 if summary.cancelled else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.batch ...``: the batch command on its own."""
    parser = argparse.ArgumentParser(prog="ffe")
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser(commands)
    args = parser.parse_args(["batch", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
