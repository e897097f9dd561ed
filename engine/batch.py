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
* **One run per output folder, nothing replaced.** ``run.json`` (:data:`MANIFEST_NAME`) names
  the run: input folder, models and weights, scale, detector, settings, software version. The
  same run resumes; another run into that folder is refused before anything is written unless
  ``overwrite`` (which removes the files the old summary listed). A file the run did not write
  for that input is never replaced: the row says so.
* **Resume.** A file is skipped when the previous summary has, for every chosen model, an
  ok/no_face/skipped_done row with the same input SHA-256, scale and weights SHA-256 whose
  output files all still have the SHA-256 recorded when they were written
  (``outputs_sha256``). A truncated, replaced or missing output makes the file be redone.
* **Any file name.** Names that are not valid UTF-8 are written with ``\\xNN`` escapes in the
  summary, the JSON and the PNG text, and their outputs use the same escaped stem
  (:func:`engine.io.display_path`). Symbolic links that lead out of the input folder are not
  read unless ``follow_links``.
* **Pause and cancel** go through the token (:class:`PausableToken` adds pause), checked
  between forward passes and between faces; a cancelled run still leaves a valid summary.

**Native resolution** (:mod:`engine.resolution`): with ``--scale auto`` each face gets the
largest factor that does not shrink it (a face between the model frames runs at its native
size, named ``native<px>``; a face of 128 px or more is not enlarged). A fixed factor that
would shrink a face skips that face unless ``allow_shrink``; either way the row says so, and
``summary.csv`` gives every face's native frame, inter-ocular distance, the scale used and the
shrink factor (``;``-separated, face by face).

**x1 restore** (scale 1, :data:`engine.registry.RESTORE_SCALE`): chosen only by hand, with
restoration models only (:attr:`engine.registry.ModelEntry.restores`; Auto never picks it, and
a restoration model at another scale or mixed with enlarging models is refused before anything
is written). Each face goes through the still path's own :func:`engine.enhance.restore_face`:
the axis-aligned crop of the recorded pixels around the face, no warp, no resampling; the face
output is the restored crop, the full image is the photo at its own size with exactly the crop
boxes' pixels replaced, and the record has the "restore" section (crop box, margin).

Outputs mirror the input's sub-folders. For an input ``sub/img.jpg`` (relative stem
``sub/img``), face K (0 = leftmost) and model M at scale N (or "auto"):
``sub/img_faceK_M_xN.png`` (the 128x128 SR face; for an x1 restore the restored crop),
``sub/img_M_xN_full.png`` (the whole image enlarged by N with every SR face pasted in) and
``sub/img_M_xN_provenance.json`` (models joined by ``+``; every record and every output's
SHA-256). The PNGs carry their provenance in PNG text chunks. When two inputs of one folder
share a stem (``a.png``, ``a.jpg``) their full names are used as stems instead.

**Tasks and the driver.** Each photo is one pure task (:mod:`engine.batch_task`: the input's
path and SHA-256, the models and their weights' SHA-256, the settings -> its output files,
their hashes, the fidelity metrics and messages), run where ``dask`` says
(:mod:`engine.batch_exec`): a thread of this process by default, or the worker processes of a
Dask cluster (``local:N`` or ``tcp://HOST:PORT``). The tasks write their files into a staging
folder under the output folder; this module -- the driver -- checks every file against the
SHA-256 its task reported, moves it into place, and alone writes ``summary.csv``, ``run.json``
(and, in the CLI and the app, the case log), in input order.

**Determinism:** by default every face has its own forward pass (``batch_faces=1``), so a
face's pixels never depend on the other faces of the run: a resumed run gives the
uninterrupted run's pixels bit for bit, and a cluster run the in-process run's.
``batch_faces`` > 1 puts the faces of one photo into shared passes (faster on a GPU; batched
convolutions may then round differently by one level, recorded as ``faces_per_forward_pass``).
Every record carries the time it was written, unless ``time_utc`` fixes it: then two runs give
identical files.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from engine import __version__, io, provenance, registry, resolution
from engine import faces as facelib
from engine.batch_exec import ClusterError, ClusterSpec, Executor, open_executor, parse_spec
from engine.batch_task import (  # SummaryRow and the statuses are re-exported
    ERROR,
    NO_FACE,
    OK,
    SKIPPED_DONE,
    SUMMARY_FIELDS,
    ModelSpec,
    PhotoResult,
    PhotoTask,
    SummaryRow,
    fault_words,
    os_reason,
)
from engine.enhance import Enhancer
from engine.progress import Cancelled, CancelToken
from engine.progress import PausableToken as PausableToken  # re-exported for callers

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.csv"
#: The run manifest: which run the output folder belongs to (see :func:`check_manifest`).
MANIFEST_NAME = "run.json"
COMPLETED = frozenset({OK, NO_FACE, SKIPPED_DONE})

#: Faces in one forward pass. One by default: a face's output bytes then cannot depend on which
#: other faces shared its pass (batched convolutions may round differently with the batch
#: size), so a resumed run gives exactly the uninterrupted run's pixels. More is faster on a
#: GPU but only reproducible to +-1 level; the provenance records how many shared a pass.
DEFAULT_BATCH_FACES = 1
#: The folder under the output folder where tasks write before the driver moves their files
#: into place (engine.batch_task); removed when a run ends and when one starts.
STAGING_NAME = ".ffe-staging"

# Temporary names used by engine.io.save_png and by this module: ".<name>.<12 hex>.tmp".
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


class BatchError(ValueError):
    """The run cannot start (bad folders, unknown model or scale, missing or invalid weights)."""


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
    scale: int | str
    files_total: int
    files_done: int = 0
    ok: int = 0
    no_face: int = 0
    errors: int = 0
    skipped: int = 0
    faces: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    #: Seconds spent per stage, summed over the tasks (on a cluster: over the workers): "load",
    #: "detect", "model", "write", "fidelity"; the driver adds its own hashing to "load", its
    #: moving of files to "write", and "wait" (idle, waiting for the next photo's task).
    timings: dict[str, float] = field(default_factory=dict)
    #: Forward passes per model (faces / passes = faces per pass; baselines count one per face).
    forward_passes: dict[str, int] = field(default_factory=dict)
    rows: list[SummaryRow] = field(default_factory=list)
    summary_path: Path | None = None
    #: Where the photos were processed ("in-process", "local:2 (...)", "Dask scheduler ...")
    #: and how many tasks ran at once.
    executor: str = "in-process"
    workers: int = 1


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
    # A run that was killed may have left its staging folder (engine.batch_task): it is not
    # part of any result. The tasks of this run write under a new one.
    staging = out_root / STAGING_NAME
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
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
    followed (they could loop); links to files are listed like files (a run reads a link that
    leads out of the input folder only when asked). Relative paths are text that any UTF-8
    writer accepts (:func:`engine.io.display_path`).
    """
    found: list[tuple[Path, str]] = []
    for folder, dirnames, filenames in os.walk(in_root):
        if not recursive:
            dirnames[:] = []
        here = Path(folder)
        for name in filenames:
            path = here / name
            found.append((path, io.display_path(path.relative_to(in_root).as_posix())))
    found.sort(key=lambda item: PurePosixPath(item[1]).parts)
    return found


def _links_outside(path: Path, in_root: Path) -> bool:
    """True when ``path`` is a symbolic link whose target lies outside ``in_root`` (resolved)."""
    if not path.is_symlink():
        return False
    target = path.resolve()
    return in_root != target and in_root not in target.parents


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


# --------------------------------------------------------------------------- run manifest


def run_identity(
    in_root: Path,
    fingerprints: dict[str, str],
    scale: int | str,
    *,
    detector: str,
    allow_shrink: bool,
    recursive: bool,
    follow_links: bool,
    batch_faces: int,
    full: bool = True,
) -> dict[str, Any]:
    """What makes two runs the same run: resuming is allowed only between equal identities."""
    return {
        "input_folder": io.display_path(in_root),
        "models": [{"id": m, "weights_sha256": fp} for m, fp in fingerprints.items()],
        "scale": scale,
        "detector": detector,
        "allow_shrink": allow_shrink,
        "recursive": recursive,
        "follow_links": follow_links,
        "faces_per_forward_pass": batch_faces,
        "full_images": full,
        "software": {"name": provenance.SOFTWARE, "version": __version__},
    }


def read_manifest(out_root: Path) -> dict[str, Any] | None:
    """The output folder's run manifest; None when there is none, {} when it is unreadable."""
    if not out_root.is_dir():
        return None  # not created yet (or not a folder: _prepare_output says so)
    try:
        document = json.loads((out_root / MANIFEST_NAME).read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def check_manifest(out_root: Path, identity: dict[str, Any], overwrite: bool) -> bool:
    """May this run write into ``out_root``? True when it continues the same run (resume).

    An output folder belongs to one run: the same input folder, models and weights, scale,
    detector and settings, software version. Resuming that run is allowed; another run into the
    same folder (another input folder with an ``a.jpg``, another model or scale) would replace
    its results and make summary.csv disagree with the disk, so it is refused with
    :class:`BatchError` unless ``overwrite``. A folder that already holds files but no manifest
    is refused the same way. Returns False when the run starts afresh.
    """
    previous = read_manifest(out_root)
    if previous is not None and previous.get("identity") == identity:
        return True
    if overwrite:
        return False
    if previous is None:
        if not (out_root / SUMMARY_NAME).exists():
            return False  # other files are never replaced either: see _Run._check_new
        raise BatchError(
            f"the output folder {io.display_path(out_root)} holds the results of a run without "
            f"a run manifest ({SUMMARY_NAME} but no {MANIFEST_NAME}); choose another folder, "
            "or pass --overwrite to replace them"
        )
    old = previous.get("identity")
    if isinstance(old, dict):
        differs = sorted(k for k in identity if old.get(k) != identity[k])
        why = f"different {', '.join(differs)}" if differs else "a different run"
    else:
        why = f"its {MANIFEST_NAME} is unreadable"
    raise BatchError(
        f"the output folder {io.display_path(out_root)} holds the results of another run "
        f"({why}); choose another folder, or pass --overwrite to replace them"
    )


def write_manifest(out_root: Path, identity: dict[str, Any]) -> None:
    """Record which run the folder belongs to (kept when the same run resumes)."""
    previous = read_manifest(out_root)
    if previous and previous.get("identity") == identity:
        return
    document = {"identity": identity, "created_utc": provenance.utc_now()}
    io.write_bytes_atomic(out_root / MANIFEST_NAME, provenance.to_json(document).encode("utf-8"))


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


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the partial result %s: %s", path, exc)


# --------------------------------------------------------------------------- the run


@dataclass
class _Slot:
    """One input file on its way through the run: answered locally (``rows``) or by a task."""

    index: int
    path: Path
    rel: str
    rows: list[SummaryRow] | None = None  # already known: skipped, or not to be read
    skipped: bool = False
    future: Any = None
    submitted: float = 0.0


class _Run:
    """One run's driver: lists, checks for resume, submits one task per photo to the executor,
    and -- alone -- moves outputs into place, keeps summary.csv and reports events, in input
    order. :meth:`execute` is the whole run, in the caller's thread."""

    def __init__(
        self,
        in_root: Path,
        out_root: Path,
        files: list[tuple[Path, str]],
        specs: dict[str, ModelSpec],
        scale: int | str,
        token: CancelToken,
        on_event: Callable[[BatchEvent], None] | None,
        settings: dict[str, Any],
        overwrite: bool = False,
    ) -> None:
        self.in_root, self.out_root, self.files = in_root, out_root, files
        self.specs, self.scale, self.token, self.on_event = specs, scale, token, on_event
        self.settings, self.overwrite = settings, overwrite
        self.follow_links = settings["follow_links"]
        self.fingerprint = {m: spec.fingerprint for m, spec in specs.items()}
        self.summary_path = out_root / SUMMARY_NAME
        self.staging = out_root / STAGING_NAME
        self.stems = output_stems([rel for _, rel in files])
        self.order = {rel: i for i, (_, rel) in enumerate(files)}
        self.model_order = {m: i for i, m in enumerate(specs)}
        self.timings = dict.fromkeys(("load", "detect", "model", "write", "fidelity", "wait"), 0.0)
        self.result = BatchSummary(
            in_dir=in_root,
            out_dir=out_root,
            models=list(specs),
            scale=scale,
            files_total=len(files),
            summary_path=self.summary_path,
            forward_passes=dict.fromkeys(specs, 0),
        )
        self.processed = 0  # files done this run that were not skipped (for the ETA)
        self.start = time.perf_counter()
        # Previous rows: what resume compares against, and what the summary keeps for files
        # this run has not reached yet (so a run killed early does not forget earlier work).
        wanted = {(rel, m) for _, rel in files for m in specs}
        self.previous: dict[tuple[str, str], SummaryRow] = {
            (r.file, r.model): r
            for r in read_summary(self.summary_path)
            if (r.file, r.model) in wanted and r.scale == scale
        }
        self.rows: dict[tuple[str, str], SummaryRow] = dict(self.previous)

    def start_afresh(self) -> None:
        """Another run's results are being replaced (``overwrite``): forget its rows and remove
        the files its summary listed, so summary.csv matches the disk again."""
        old = {p for row in read_summary(self.summary_path) for p in row.outputs}
        self.previous, self.rows = {}, {}
        for rel in sorted(old):
            path = (self.out_root / rel).resolve()
            if self.out_root in path.parents and path.name not in (SUMMARY_NAME, MANIFEST_NAME):
                _remove([path])

    # ------------------------------------------------------------------ events

    def _emit(
        self, kind: str, rel: str | None = None, status: str | None = None, message: str = ""
    ) -> None:
        r = self.result
        if kind == "file" and rel is not None:  # the token's own progress hook (e.g. the GUI's)
            self.token.set_progress(r.files_done, r.files_total, f"{rel}: {status}")
        if self.on_event is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = None
        if self.processed:
            eta = elapsed / self.processed * (r.files_total - r.files_done)
        self.on_event(
            BatchEvent(
                kind=kind,
                files_done=r.files_done,
                files_total=r.files_total,
                faces_done=r.faces,
                elapsed_s=elapsed,
                eta_s=eta,
                file=rel,
                status=status,
                message=message,
            )
        )

    # ------------------------------------------------------------------ submitting

    def _slot(self, index: int, path: Path, rel: str, executor: Executor) -> _Slot:
        """The file's slot: answered here (a link out of the folder, or already done) or a
        task submitted. The driver reads each file once, to hash it."""
        slot = _Slot(index, path, rel)
        if not self.follow_links and _links_outside(path, self.in_root):
            error = (
                "a symbolic link to a file outside the input folder: not followed "
                "(pass --follow-links to include such files)"
            )
            slot.rows = [self._error_row(rel, "", m, error) for m in self.specs]
            return slot
        t = time.perf_counter()
        sha = _hash_regular_file(path)
        self.timings["load"] += time.perf_counter() - t
        previous = [self.previous.get((rel, m)) for m in self.specs]
        if sha and all(r is not None and r.status in COMPLETED for r in previous):
            if self._still_done(sha, previous):  # type: ignore[arg-type]
                slot.rows = [replace(row, status=SKIPPED_DONE) for row in previous]
                slot.skipped = True
                return slot
        task = PhotoTask(
            index=index,
            path=path,
            rel=rel,
            stem=self.stems[rel],
            sha256=sha,
            models=tuple(self.specs.values()),
            scale=self.scale,
            detector=self.settings["detector"],
            allow_shrink=self.settings["allow_shrink"],
            full=self.settings["full"],
            batch_faces=self.settings["batch_faces"],
            staging=self.staging,
            device=self.settings["device"],
            time_utc=self.settings["time_utc"],
        )
        slot.future = executor.submit(task)
        slot.submitted = time.perf_counter()
        return slot

    def _error_row(self, rel: str, sha: str, model_id: str, error: str) -> SummaryRow:
        return SummaryRow(
            file=rel,
            sha256=sha,
            faces=None,
            model=model_id,
            scale=self.scale,
            weights_sha256=self.fingerprint[model_id],
            status=ERROR,
            error=error,
        )

    def _still_done(self, sha256: str, previous: list[SummaryRow]) -> bool:
        for model_id, row in zip(self.specs, previous, strict=True):
            current = self.fingerprint[model_id]
            if row.sha256 != sha256 or row.weights_sha256 != current or not row.outputs:
                return False
            if len(row.outputs_sha256) != len(row.outputs):
                return False
            for rel, recorded in zip(row.outputs, row.outputs_sha256, strict=True):
                # A truncated, replaced or missing output is redone, not accepted.
                if _hash_regular_file(self.out_root / rel) != recorded:
                    return False
        return True

    def _answer(self, slot: _Slot) -> PhotoResult | None:
        """The task's result (waiting for it, cancel checked); None when the task itself
        failed on the cluster (the slot then gets error rows)."""
        t = time.perf_counter()
        try:
            while True:
                if self.token.cancelled:
                    raise Cancelled()
                try:
                    return slot.future.result(timeout=0.1)
                except TimeoutError:
                    continue
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a lost worker, a task that could not run
            log.error("the task for %s failed: %r", slot.rel, exc)
            error = f"the task failed ({type(exc).__name__}: {exc}); run again to redo it"
            slot.rows = [
                self._error_row(slot.rel, _hash_regular_file(slot.path), m, error)
                for m in self.specs
            ]
            return None
        finally:
            self.timings["wait"] += time.perf_counter() - t

    # ------------------------------------------------------------------ publishing

    def _publish(self, res: PhotoResult) -> list[SummaryRow]:
        """Move a task's outputs into place after checking each against the SHA-256 it
        reported; nothing is replaced that this run did not write for this input (unless
        ``overwrite``). On any failure nothing of the photo stays and its rows say why."""
        outputs = res.outputs
        if not outputs:
            return res.rows
        source = self.staging / res.folder
        moved: list[Path] = []
        try:
            for rel, sha in outputs:
                if _hash_regular_file(source / rel) != sha:
                    raise io.OutputError(
                        self.out_root / rel,
                        f"the file the worker ({res.worker}) wrote does not have the SHA-256 "
                        "it reported",
                    )
                self._check_new(rel, res.rel)
            t = time.perf_counter()
            for rel, _ in outputs:
                target = self.out_root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source / rel, target)
                moved.append(target)
            self.timings["write"] += time.perf_counter() - t
        except OSError as exc:
            _remove(moved)
            message = f"results not written: {fault_words(exc)}"
            return [
                replace(row, status=ERROR, error=message, outputs=[], outputs_sha256=[])
                for row in res.rows
            ]
        finally:
            shutil.rmtree(source, ignore_errors=True)
        return res.rows

    def _check_new(self, rel: str, input_rel: str) -> None:
        """Refuse to replace a file this run did not write for this input (another input's
        result, or a file that was there before) unless ``overwrite``."""
        path = self.out_root / rel
        if self.overwrite or not os.path.lexists(path):
            return
        mine = {
            p for m in self.specs if (r := self.previous.get((input_rel, m))) for p in r.outputs
        }
        if rel not in mine:
            raise io.OutputError(
                path,
                "a file of that name already exists and was not written by this run "
                "(pass --overwrite to replace it)",
            )

    # ------------------------------------------------------------------ bookkeeping

    def _finish(self, slot: _Slot, rows: list[SummaryRow], res: PhotoResult | None) -> None:
        """Record one finished file: rows, counters, summary file, events."""
        if not slot.skipped:
            self._remove_stale(slot.rel, rows)
        for row in rows:
            self.rows[(row.file, row.model)] = row
        r = self.result
        r.files_done += 1
        statuses = {row.status for row in rows}
        if res is not None:
            for stage, seconds in res.timings.items():
                self.timings[stage] = self.timings.get(stage, 0.0) + seconds
            for model_id, passes in res.forward_passes.items():
                r.forward_passes[model_id] += passes
            for message in res.messages:
                log.warning("%s: %s", slot.rel, message)
        if slot.skipped:
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
                r.faces += res.faces if res is not None else 0
                status = OK
            self._save_summary()  # a skipped file changes nothing the summary did not say
        self._emit("file", slot.rel, status)
        if status in (ERROR, NO_FACE):
            message = next((row.error for row in rows if row.error), "no face found")
            self._emit("fault", slot.rel, status, message)

    def _remove_stale(self, rel: str, rows: list[SummaryRow]) -> None:
        """Delete outputs an earlier run listed for this file that this run did not write again
        (e.g. a face no longer found in a changed input), so the summary matches the disk.
        Only paths inside the output folder are touched."""
        new = {p for row in rows for p in row.outputs}
        old = {p for m in self.specs if (row := self.previous.get((rel, m))) for p in row.outputs}
        for name in sorted(old - new):
            path = (self.out_root / name).resolve()
            if self.out_root in path.parents and path.name != SUMMARY_NAME:
                _remove([path])

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
            self._emit("fault", None, ERROR, f"summary.csv not updated: {os_reason(exc)}")
            return False
        return True

    # ------------------------------------------------------------------ the loop

    def execute(self, executor: Executor) -> BatchSummary:
        r = self.result
        r.executor, r.workers = executor.description, executor.workers
        self._emit("start")
        window: deque[_Slot] = deque()
        pending = iter(enumerate(self.files))
        depth = 2 * executor.workers  # tasks submitted ahead: every worker has a next photo

        def fill() -> None:
            while len(window) < depth and not getattr(self.token, "paused", False):
                if self.token.cancelled:
                    return
                nxt = next(pending, None)
                if nxt is None:
                    return
                index, (path, rel) = nxt
                window.append(self._slot(index, path, rel, executor))

        try:
            fill()
            while window:
                self.token.check()  # pause waits here (nothing new is submitted meanwhile)
                slot = window[0]
                res = self._answer(slot) if slot.future is not None else None
                window.popleft()
                if res is not None:
                    rows = self._publish(res)
                else:
                    rows = slot.rows or []
                self._finish(slot, rows, res)
                fill()
        except Cancelled:
            r.cancelled = True
            log.info("batch cancelled after %d of %d files", r.files_done, r.files_total)
        finally:
            for slot in window:  # not started: dropped; running: their files are discarded
                if slot.future is not None:
                    slot.future.cancel()
            r.elapsed_s = time.perf_counter() - self.start
            r.timings = {k: round(v, 3) for k, v in self.timings.items()}
            r.rows = self._ordered_rows()
            saved = self._save_summary()  # also when interrupted by an unexpected error
        if not saved:
            raise io.OutputError(self.summary_path, "the summary could not be written")
        self._emit("cancelled" if r.cancelled else "done")
        return r


def _model_specs(ids: list[str], scale: int | str, enhancer: Enhancer) -> dict[str, ModelSpec]:
    """Each model as verified here: the SHA-256 of its weights at every scale it may run
    (the fixed scale, or at Auto every installed one). Raises BatchError."""
    specs = {}
    for model_id in ids:
        entry = registry.get(model_id)
        scales = enhancer.installed_scales(model_id) if scale == resolution.AUTO else [scale]
        if not scales:
            raise BatchError(f"no installed weights at any scale: {entry.label}")
        hashes = tuple((s, enhancer.model(model_id, s).weights_sha256 or "") for s in scales)
        if scale != resolution.AUTO:
            fingerprint = hashes[0][1]
        elif entry.is_baseline:
            fingerprint = ""
        else:  # what resume compares at Auto: the weights of every installed scale
            parts: list[str] = []
            for s, sha in hashes:
                if f"x{s}={sha}" not in parts:
                    parts.append(f"x{s}={sha}")
            fingerprint = ";".join(parts)
        weights_dir = enhancer.weights_dir
        specs[model_id] = ModelSpec(
            model_id,
            hashes,
            fingerprint,
            None if weights_dir is None else os.fspath(weights_dir),
        )
    return specs


def _check_restore(entries: list[registry.ModelEntry], scale: int | str) -> None:
    """x1 restore is only ever chosen explicitly, as for a still: scale 1 with restoration
    models alone. Any other mix is refused (BatchError) before anything is written."""
    restoring = [e.label for e in entries if e.restores]
    enlarging = [e.label for e in entries if not e.restores]
    if restoring and enlarging:
        raise BatchError(
            f"{', '.join(restoring)} (x1 restore) and {', '.join(enlarging)} (enlargement) "
            "cannot share a run: an x1 restore keeps the photo's size, an enlargement does "
            "not; run them separately"
        )
    asked = scale if scale == resolution.AUTO else f"x{scale}"
    if restoring and scale != registry.RESTORE_SCALE:
        raise BatchError(
            f"{', '.join(restoring)}: x1 restore runs only when chosen, at scale 1 "
            f"(--scale 1; Auto never picks it), not {asked}"
        )
    if enlarging and scale == registry.RESTORE_SCALE:
        models = ", ".join(e.label for e in registry.restoration_models())
        raise BatchError(
            f"scale 1 is x1 restore, which only the restoration models run ({models}); "
            f"{', '.join(enlarging)} enlarge: choose another scale"
        )


def run_batch(
    in_dir: Path | str,
    out_dir: Path | str,
    model_ids: Sequence[str],
    scale: int | str,
    *,
    recursive: bool = True,
    token: CancelToken | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    detector: str = "hog",
    enhancer: Enhancer | None = None,
    batch_faces: int = DEFAULT_BATCH_FACES,
    allow_shrink: bool = False,
    follow_links: bool = False,
    overwrite: bool = False,
    full: bool = True,
    dask: str | ClusterSpec | None = None,
    device: str | None = None,
    time_utc: str | None = None,
) -> BatchSummary:
    """Enhance every face of every image under ``in_dir`` with every model in ``model_ids``.

    Results go to ``out_dir`` (created if needed) as described in the module docstring, with
    ``summary.csv`` rewritten after each image. ``on_event`` receives :class:`BatchEvent` s in the
    caller's thread. ``scale`` is a factor, "auto" (per face, see :mod:`engine.resolution`) or 1
    for x1 restore (restoration models only, see the module docstring); a fixed factor that
    would shrink a face skips that face unless ``allow_shrink``. A symbolic
    link to a file outside ``in_dir`` gets an error row instead of being read, unless
    ``follow_links``. ``full=False`` writes the faces and provenance only (the command line's
    default). ``dask`` chooses where the photos are processed (:mod:`engine.batch_exec`):
    None in this process, ``"local:N"`` or ``"tcp://HOST:PORT"`` on a Dask cluster; the outputs
    are the same bytes either way. ``device`` is where a cluster's workers run the models
    (default: each worker's own choice, :func:`engine.device.resolve`); in this process the
    ``enhancer``'s device is used. ``time_utc`` stamps every provenance record with that time
    instead of the time of writing (two runs with the same value give identical files).

    Raises :class:`BatchError` before writing anything when the run cannot start; per-file
    problems never raise, they become summary rows. A cancelled run returns normally with
    ``cancelled=True``.
    """
    ids = list(dict.fromkeys(model_ids))
    if not ids:
        raise BatchError("no model chosen")
    if detector not in facelib.DETECTORS:
        raise BatchError(f"unknown detector {detector!r}; use {', '.join(facelib.DETECTORS)}")
    if batch_faces < 1:
        raise BatchError(f"batch_faces must be at least 1, got {batch_faces}")
    try:
        spec = dask if isinstance(dask, ClusterSpec) else parse_spec(dask)
        entries = [registry.get(m) for m in ids]
        _check_restore(entries, scale)
        if scale != resolution.AUTO:
            scale = registry.check_scale(entries[0], scale)
            for entry in entries[1:]:
                registry.check_scale(entry, scale)
    except KeyError as exc:
        raise BatchError(exc.args[0]) from None
    except ValueError as exc:  # also ClusterError
        raise BatchError(str(exc)) from None
    in_root, out_root = _check_folders(in_dir, out_dir)
    try:
        enhancer = enhancer or Enhancer()
        specs = _model_specs(ids, scale, enhancer)
    except (ValueError, OSError) as exc:  # WeightsError/MissingWeightsError, bad device
        raise BatchError(str(exc)) from None
    files = list_inputs(in_root, recursive)
    log.info(
        "batch: %d file(s) from %s to %s, models %s, scale %s, %s",
        len(files),
        in_root,
        out_root,
        ", ".join(ids),
        scale,
        spec.describe(),
    )
    settings = {
        "detector": detector,
        "allow_shrink": allow_shrink,
        "follow_links": follow_links,
        "full": full,
        "batch_faces": batch_faces,
        # In this process the Enhancer's device; on a cluster the one the run was given, or
        # each worker's own choice (engine.device.resolve: CUDA if it has one).
        "device": None if spec.kind == "in-process" else device,
        "time_utc": time_utc,
    }
    token = token or CancelToken()
    run = _Run(in_root, out_root, files, specs, scale, token, on_event, settings, overwrite)
    identity = run_identity(
        in_root,
        run.fingerprint,
        scale,
        detector=detector,
        allow_shrink=allow_shrink,
        recursive=recursive,
        follow_links=follow_links,
        batch_faces=batch_faces,
        full=full,
    )
    fresh = not check_manifest(out_root, identity, overwrite)  # refuses another run's folder
    try:
        with open_executor(spec, enhancer, token) as executor:
            if fresh:
                run.start_afresh()
            _prepare_output(out_root)
            try:
                write_manifest(out_root, identity)
            except OSError as exc:
                raise BatchError(f"the run manifest cannot be written ({exc})") from None
            return run.execute(executor)
    except ClusterError as exc:
        raise BatchError(str(exc)) from None
    finally:
        if out_root.is_dir():
            shutil.rmtree(out_root / STAGING_NAME, ignore_errors=True)
