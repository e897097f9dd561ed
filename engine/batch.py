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

Outputs mirror the input's sub-folders. For an input ``sub/img.jpg`` (relative stem
``sub/img``), face K (0 = leftmost) and model M at scale N (or "auto"):
``sub/img_faceK_M_xN.png`` (the 128x128 SR face), ``sub/img_M_xN_full.png`` (the whole image
enlarged by N with every SR face pasted in) and ``sub/img_M_xN_provenance.json`` (models
joined by ``+``; every record and every output's SHA-256). The PNGs carry their provenance in PNG text chunks. When two inputs of
one folder share a stem (``a.png``, ``a.jpg``) their full names are used as stems instead.

Throughput: a producer thread reads, hashes, detects and aligns the next images while the
caller's thread runs the networks and writes results (dlib, Pillow and torch release the GIL
in their heavy parts). **Determinism:** by default every face has its own forward pass
(``batch_faces=1``), so a face's pixels never depend on which other faces were prepared at the
same time: a resumed run gives the uninterrupted run's pixels bit for bit. ``batch_faces`` > 1
puts the faces of the images already prepared into shared passes (faster on a GPU; batched
convolutions may then round differently by one level, recorded as ``faces_per_forward_pass``).
"""

from __future__ import annotations

import csv
import errno
import io as _stdio
import json
import logging
import math
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine import __version__, export, fidelity, io, provenance, registry, resolution
from engine import device as devices
from engine import faces as facelib
from engine.enhance import Enhancer, paste_scale, pipeline_parameters
from engine.progress import Cancelled, CancelToken, PausableToken  # PausableToken re-exported
from engine.weights import LoadedModel

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.csv"
#: The run manifest: which run the output folder belongs to (see :func:`check_manifest`).
MANIFEST_NAME = "run.json"
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
    "outputs_sha256",
    "native_frame_px",
    "interocular_px",
    "scales_used",
    "evidence_shrink",
    "consistency_db",
    "landmark_drift",
    "fidelity",
)
OK, NO_FACE, ERROR, SKIPPED_DONE = "ok", "no_face", "error", "skipped_done"
COMPLETED = frozenset({OK, NO_FACE, SKIPPED_DONE})

#: Faces in one forward pass. One by default: a face's output bytes then cannot depend on which
#: other faces shared its pass (batched convolutions may round differently with the batch
#: size), so a resumed run gives exactly the uninterrupted run's pixels. More is faster on a
#: GPU but only reproducible to +-1 level; the provenance records how many shared a pass.
DEFAULT_BATCH_FACES = 1
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
    scale: int | str  # the factor asked for, or "auto"
    weights_sha256: str
    status: str
    error: str = ""
    outputs: list[str] = field(default_factory=list)
    outputs_sha256: list[str] = field(default_factory=list)  # as written, one per output
    # Face by face, ";"-separated (engine.resolution): what the evidence holds, what was used.
    native_frame_px: str = ""
    interocular_px: str = ""
    scales_used: str = ""  # "x4", "native75", "none" (not enlarged) or "refused" (would shrink)
    evidence_shrink: str = ""
    # Fidelity checks (engine.fidelity), face by face: the output shrunk back vs what the
    # model saw (PSNR, dB), landmark drift (x eye distance), and "pass"/"warn" for both.
    consistency_db: str = ""
    landmark_drift: str = ""
    fidelity: str = ""

    def to_csv(self) -> dict[str, str]:
        return _csv_safe(
            {
                "file": self.file,
                "sha256": self.sha256,
                "faces": "" if self.faces is None else str(self.faces),
                "model": self.model,
                "scale": str(self.scale),
                "weights_sha256": self.weights_sha256,
                "status": self.status,
                "error": self.error,
                "outputs": ";".join(self.outputs),
                "outputs_sha256": ";".join(self.outputs_sha256),
                "native_frame_px": self.native_frame_px,
                "interocular_px": self.interocular_px,
                "scales_used": self.scales_used,
                "evidence_shrink": self.evidence_shrink,
                "consistency_db": self.consistency_db,
                "landmark_drift": self.landmark_drift,
                "fidelity": self.fidelity,
            }
        )

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> SummaryRow:
        faces = row["faces"]
        return cls(
            file=row["file"],
            sha256=row["sha256"],
            faces=int(faces) if faces else None,
            model=row["model"],
            scale=_scale_field(row["scale"]),
            weights_sha256=row["weights_sha256"],
            status=row["status"],
            error=row["error"],
            outputs=[p for p in row["outputs"].split(";") if p],
            outputs_sha256=[h for h in row["outputs_sha256"].split(";") if h],
            native_frame_px=row.get("native_frame_px", ""),
            interocular_px=row.get("interocular_px", ""),
            scales_used=row.get("scales_used", ""),
            evidence_shrink=row.get("evidence_shrink", ""),
            consistency_db=row.get("consistency_db", ""),
            landmark_drift=row.get("landmark_drift", ""),
            fidelity=row.get("fidelity", ""),
        )


def _csv_safe(row: dict[str, str]) -> dict[str, str]:
    """Every value as UTF-8-writable text (a name that is not valid UTF-8 gets escapes)."""
    return {k: io.display_path(v) for k, v in row.items()}


def _scale_field(text: str) -> int | str:
    return "auto" if text == "auto" else int(text)


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


def _fault_words(exc: BaseException) -> str:
    """What went wrong, for the summary: the file named, a full disk called a full disk."""
    if isinstance(exc, io.OutputError):
        return f"{io.display_path(exc.path.name)}: {_os_reason(exc)}"
    if isinstance(exc, OSError):
        name = io.display_path(Path(exc.filename).name) if exc.filename else ""
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
    # model id -> per face: its Plan (engine.resolution); ``refused`` holds, per model, the
    # faces whose fixed scale would shrink them (not run)
    plans: dict[str, list[resolution.Plan]] = field(default_factory=dict)
    refused: dict[str, set[int]] = field(default_factory=dict)
    aligned: dict[tuple[int, int], facelib.AlignedFace] = field(default_factory=dict)  # (k, px)
    error: str = ""
    skip_rows: list[SummaryRow] | None = None  # previous rows when already done
    sr: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # model -> face -> SR
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
        models: dict[str, LoadedModel | None],
        scale: int | str,
        token: CancelToken,
        on_event: Callable[[BatchEvent], None] | None,
        detector: str,
        enhancer: Enhancer,
        batch_faces: int,
        lookahead: bool,
        allow_shrink: bool = False,
        follow_links: bool = False,
        overwrite: bool = False,
        full: bool = True,
    ) -> None:
        self.full = full
        self.allow_shrink = allow_shrink
        self.follow_links = follow_links
        self.overwrite = overwrite
        self.device_for: dict[str, str] = {}  # a model moved to the CPU after running out of GPU
        # Installed scales per model (Auto chooses among them) and what resume compares.
        self.installed = {m: enhancer.installed_scales(m) for m in models}
        self.enhancer = enhancer
        self.fingerprint = {m: self._fingerprint(m, models[m]) for m in models}
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
        self.timings = dict.fromkeys(("load", "detect", "model", "write", "fidelity", "wait"), 0.0)
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

    def start_afresh(self) -> None:
        """Another run's results are being replaced (``overwrite``): forget its rows and remove
        the files its summary listed, so summary.csv matches the disk again."""
        old = {p for row in read_summary(self.summary_path) for p in row.outputs}
        self.previous, self.rows = {}, {}
        for rel in sorted(old):
            path = (self.out_root / rel).resolve()
            if self.out_root in path.parents and path.name not in (SUMMARY_NAME, MANIFEST_NAME):
                self._remove([path])

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
        if not self.follow_links and _links_outside(path, self.in_root):
            item.error = (
                "a symbolic link to a file outside the input folder: not followed "
                "(pass --follow-links to include such files)"
            )
            return item
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
            self._plan(item)
            self._add_time("detect", t)
        except io.ImageLoadError as exc:
            item.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the run goes on
            log.exception("preparing %s failed", rel)
            item.error = f"{type(exc).__name__}: {exc}"
        if item.error:
            item.still, item.faces, item.aligned, item.plans = None, [], {}, {}
            if not item.sha256:  # a damaged file still gets its hash on record, when readable
                item.sha256 = _hash_regular_file(path)
        return item

    def _plan(self, item: _Item) -> None:
        """Each face's plan per model (engine.resolution) and its aligned crops, once per size."""
        for model_id in self.models:
            entry = registry.get(model_id)
            plans, refused = [], set()
            for k, face in enumerate(item.faces):
                try:
                    plan = resolution.plan(
                        face, entry, self.scale, self.installed[model_id], self.allow_shrink
                    )
                except resolution.ShrinkRefused as exc:
                    plan = exc.plan
                    refused.add(k)
                plans.append(plan)
                if plan.runs and k not in refused and (k, plan.lr_size) not in item.aligned:
                    item.aligned[(k, plan.lr_size)] = facelib.align(
                        item.still.rgb, face, size=plan.lr_size
                    )
            item.plans[model_id], item.refused[model_id] = plans, refused

    def _runs(self, item: _Item, model_id: str) -> list[int]:
        """The faces ``model_id`` runs on (planned to run and not refused)."""
        refused = item.refused.get(model_id, set())
        return [
            k for k, p in enumerate(item.plans.get(model_id, [])) if p.runs and k not in refused
        ]

    def _model(self, model_id: str, scale: int) -> LoadedModel:
        """The loaded model at ``scale`` (the run's own, or at Auto from the Enhancer's cache)."""
        model = self.models[model_id]
        if model is not None and model.scale == scale:
            return model
        return self.enhancer.model(model_id, scale, device=self.device_for.get(model_id))

    def _fingerprint(self, model_id: str, model: LoadedModel | None) -> str:
        """What resume compares: the weights' SHA-256 (at Auto: of every installed scale)."""
        if model is not None:
            return model.weights_sha256 or ""
        entry = registry.get(model_id)
        if entry.is_baseline:
            return ""
        parts = []
        for s in self.installed[model_id]:
            sha = self.enhancer.model(model_id, s).weights_sha256 or ""
            if f"x{s}={sha}" not in parts:
                parts.append(f"x{s}={sha}")
        return ";".join(parts)

    def _still_done(self, sha256: str, previous: list[SummaryRow]) -> bool:
        for model_id, row in zip(self.models, previous, strict=True):
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
        """Run every model on every face of the group, batched by model scale and input size;
        results land in ``item.sr``."""
        for model_id in self.models:
            jobs: dict[tuple[int, int], list[tuple[_Item, int]]] = {}
            for item in group:
                for k in self._runs(item, model_id):
                    plan = item.plans[model_id][k]
                    jobs.setdefault((plan.scale, plan.lr_size), []).append((item, k))
            for (scale, lr_size), pending in sorted(jobs.items()):
                self._run_jobs(model_id, scale, lr_size, pending)

    def _run_jobs(
        self, model_id: str, scale: int, lr_size: int, jobs: list[tuple[_Item, int]]
    ) -> None:
        start = 0
        step = self.batch_faces
        while start < len(jobs):
            self.token.check()  # between forward passes: pause waits here
            chunk = jobs[start : start + step]
            t = time.perf_counter()
            model = self._model(model_id, scale)
            try:
                srs = model.run_batch([item.aligned[(k, lr_size)].pixels for item, k in chunk])
            except Exception as exc:  # noqa: BLE001 - see the branches
                self._add_time("model", t)
                if devices.is_cuda_out_of_memory(exc):
                    step = self._after_oom(model_id, scale, step)
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
            passes = 1 if model.module is not None else len(chunk)
            self.result.forward_passes[model_id] += passes
            for (item, k), sr in zip(chunk, srs, strict=True):
                item.sr.setdefault(model_id, {})[k] = sr
                item.batch_sizes[model_id] = max(item.batch_sizes.get(model_id, 0), len(chunk))
            start += len(chunk)

    def _after_oom(self, model_id: str, scale: int, step: int) -> int:
        """Out of GPU memory: halve the batch; at one face, move this model to the CPU."""
        import torch

        torch.cuda.empty_cache()
        if step > 1:
            log.warning("%s: out of GPU memory, batches of %d faces now", model_id, step // 2)
            return step // 2
        log.warning("%s: out of GPU memory with one face, continuing on the CPU", model_id)
        self.device_for[model_id] = "cpu"
        if self.models[model_id] is not None:
            self.models[model_id] = self.enhancer.model(model_id, scale, device="cpu")
        self.devices.pop(model_id, None)
        self.notes[model_id].append("CUDA out of memory; from here on computed on the CPU")
        return self.batch_faces

    # ------------------------------------------------------------------ writing

    def _record(self, item: _Item, k: int, model_id: str) -> dict[str, Any]:
        plan = item.plans[model_id][k]
        model = self._model(model_id, plan.scale)
        if model_id not in self.devices:
            self.devices[model_id] = devices.describe(model.device)
        params = pipeline_parameters(model.entry, plan.scale, plan) | {
            "detector": self.detector,
            "batch": {
                "input_file": item.rel,
                "faces_per_forward_pass": item.batch_sizes.get(model_id, 1),
            },
        }
        notes = list(self.notes[model_id]) + ([plan.message] if plan.message else [])
        record = provenance.record(
            still=item.still,
            face=item.faces[k],
            face_index=k,
            entry=model.entry,
            scale=plan.scale,
            weights_file=model.path.name if model.path is not None else None,
            weights_sha256=model.weights_sha256,
            weights_metadata=model.metadata,
            parameters=params,
            device=self.devices[model_id],
            notes=notes,
        )
        record["resolution"] = plan.to_dict()
        return record

    def _row(self, item: _Item, model_id: str, status: str = OK, error: str = "") -> SummaryRow:
        """A summary row for ``item`` and ``model_id``, with every face's resolution columns."""
        plans = item.plans.get(model_id, [])
        refused = item.refused.get(model_id, set())

        def used(k: int, plan: resolution.Plan) -> str:
            if k in refused:
                return "refused"
            if not plan.runs:
                return "none"
            return export.scale_tag(plan)

        return SummaryRow(
            file=item.rel,
            sha256=item.sha256,
            faces=len(item.faces) if item.still is not None or item.faces else None,
            model=model_id,
            scale=self.scale,
            weights_sha256=self.fingerprint[model_id],
            status=status,
            error=error,
            native_frame_px=";".join(f"{f.native_frame_px:.1f}" for f in item.faces),
            interocular_px=";".join(f"{f.interocular_px:.1f}" for f in item.faces),
            scales_used=";".join(used(k, p) for k, p in enumerate(plans)),
            evidence_shrink=";".join(
                f"{p.evidence_shrink:.3f}" if p.runs and k not in refused else ""
                for k, p in enumerate(plans)
            ),
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
            for model_id in self.models:
                row = self._row(item, model_id)
                rows.append(row)
                if model_id in item.model_errors:
                    row.status, row.error = ERROR, item.model_errors[model_id]
                    continue
                model_records = []
                checks: dict[int, tuple[fidelity.Check, fidelity.Check]] = {}
                done = self._runs(item, model_id)
                for k in done:
                    self.token.check()  # between faces
                    plan = item.plans[model_id][k]
                    rec = self._record(item, k, model_id)
                    rel = export.output_name(stem, model_id, export.scale_tag(plan), "face", k)
                    sr = item.sr[model_id][k]
                    image, label_text = export.labelled(sr, registry.get(model_id))
                    text = provenance.png_text(rec) | label_text
                    sha = self._save(rel, image, text, written, item)
                    provenance.add_output(rec, "face", rel, sha)
                    outputs.append({"role": "face", "path": rel, "sha256": sha})
                    row.outputs.append(rel)
                    row.outputs_sha256.append(sha)
                    model_records.append(rec)
                    checks[k] = self._fidelity(item, k, plan, sr)
                self._fidelity_columns(row, checks, len(item.faces))
                skipped = [
                    f"face {k}: {p.message}"
                    for k, p in enumerate(item.plans[model_id])
                    if k not in done
                ]
                notes = list(skipped)
                # Only faces the model saw unshrunk may replace the recorded pixels.
                pasted = [k for k in done if not item.plans[model_id][k].shrinks]
                if pasted and self.full:  # (the command line writes faces only by default)
                    scale = max(paste_scale(item.plans[model_id][k]) for k in pasted)
                    if h * w * scale * scale > facelib.MAX_PASTE_PIXELS:
                        notes.append(
                            f"full image not written: {w * scale}x{h * scale} pixels is "
                            "too large; the faces were written"
                        )
                    else:
                        t = time.perf_counter()
                        full = facelib.paste_many(
                            item.still.rgb,
                            scale,
                            [
                                (
                                    item.aligned[(k, item.plans[model_id][k].lr_size)],
                                    item.sr[model_id][k],
                                )
                                for k in pasted
                            ],
                        )
                        self._add_time("write", t)  # "write" = paste-back, encoding, writing
                        rel = export.output_name(stem, model_id, self.scale, "full")
                        document = provenance.bundle(model_records)
                        regions = [
                            export.replaced_region(
                                item.aligned[(k, item.plans[model_id][k].lr_size)], scale
                            )
                            for k in pasted
                        ]
                        image, label_text = export.labelled(full, registry.get(model_id), regions)
                        text = provenance.png_text(document) | label_text
                        sha = self._save(rel, image, text, written, item)
                        for rec in model_records:
                            if rec["resolution"]["evidence_shrink"] <= resolution.SHRINK_LIMIT:
                                provenance.add_output(rec, "full", rel, sha)
                        outputs.append({"role": "full", "path": rel, "sha256": sha})
                        row.outputs.append(rel)
                        row.outputs_sha256.append(sha)
                elif done and not pasted:
                    notes.append("full image not written: every face was shrunk for the model")
                row.error = "; ".join(notes)
                records.extend(model_records)
            rel = self._provenance_name(str(stem))
            sha = self._save_json(rel, self._document(item, records, outputs), written, item)
            for row in rows:
                row.outputs.append(rel)
                row.outputs_sha256.append(sha)
        except BaseException as exc:
            self._remove(written)
            if not isinstance(exc, Exception) or isinstance(exc, Cancelled):
                raise
            if not isinstance(exc, OSError):
                log.exception("writing the results of %s failed", item.rel)
            message = f"results not written: {_fault_words(exc)}"
            for row in rows:
                row.status, row.error, row.outputs, row.outputs_sha256 = ERROR, message, [], []
            done_models = {row.model for row in rows}
            rows += [
                self._row(item, m, ERROR, message) for m in self.models if m not in done_models
            ]
        return rows

    def _provenance_name(self, stem: str) -> str:
        """``<stem>_<models>_<scale>_provenance.json``: like every output, the name says which
        models and scale made it (``img_bicubic+s2_rafsr_x4_provenance.json``)."""
        scale = self.scale if self.scale == resolution.AUTO else f"x{self.scale}"
        return f"{stem}_{'+'.join(self.models)}_{scale}_provenance.json"

    def _fidelity(
        self, item: _Item, k: int, plan: resolution.Plan, sr: np.ndarray
    ) -> tuple[fidelity.Check, fidelity.Check]:
        """Data consistency (against what the model saw) and landmark drift of one face."""
        t = time.perf_counter()
        face = item.faces[k]
        lr = item.aligned[(k, plan.lr_size)].pixels
        consistency = fidelity.data_consistency(lr, sr)
        expected = facelib.transform_points(
            face.landmarks, facelib.alignment_matrix(face, facelib.HR_SIZE)
        )
        drift = fidelity.landmark_drift(expected, fidelity.output_landmarks(sr))
        self._add_time("fidelity", t)
        return consistency, drift

    @staticmethod
    def _fidelity_columns(
        row: SummaryRow, checks: dict[int, tuple[fidelity.Check, fidelity.Check]], n: int
    ) -> None:
        def number(check: fidelity.Check, digits: int) -> str:
            if check.value is None:
                return ""
            return "inf" if math.isinf(check.value) else f"{check.value:.{digits}f}"

        cons, drift, verdict = [], [], []
        for k in range(n):
            if k not in checks:
                cons.append("")
                drift.append("")
                verdict.append("")
                continue
            c, d = checks[k]
            cons.append(number(c, 2))
            drift.append(number(d, 3))
            warn = fidelity.WARN in (c.status, d.status)
            verdict.append("warn" if warn else "pass")
        row.consistency_db, row.landmark_drift = ";".join(cons), ";".join(drift)
        row.fidelity = ";".join(verdict)

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
                    "path": io.display_path(still.path),
                    "name": still.name,
                    "sha256": still.sha256,
                    "original_mode": still.original_mode,
                    "bits_per_sample": still.bits_per_sample,
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

    def _check_new(self, rel: str, item: _Item) -> Path:
        """``rel``'s path, refusing to replace a file this run did not write for this input
        (another input's result, or a file that was there before) unless ``overwrite``."""
        path = self.out_root / rel
        if self.overwrite or not os.path.lexists(path):
            return path
        mine = {
            p for m in self.models if (r := self.previous.get((item.rel, m))) for p in r.outputs
        }
        if rel in mine:
            return path
        raise io.OutputError(
            path,
            "a file of that name already exists and was not written by this run "
            "(pass --overwrite to replace it)",
        )

    def _save(
        self, rel: str, rgb: np.ndarray, text: dict[str, str], written: list[Path], item: _Item
    ) -> str:
        t = time.perf_counter()
        path = self._check_new(rel, item)
        sha = io.save_png(path, rgb, text)
        written.append(path)
        self._add_time("write", t)
        return sha

    def _save_json(
        self, rel: str, document: dict[str, Any], written: list[Path], item: _Item
    ) -> str:
        t = time.perf_counter()
        path = self._check_new(rel, item)
        sha = io.write_bytes_atomic(path, provenance.to_json(document).encode("utf-8"))
        written.append(path)
        self._add_time("write", t)
        return sha

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
                rows = [self._row(item, m, ERROR, item.error) for m in self.models]
                self._finish(item, rows)
            elif not item.faces:
                written: list[Path] = []
                try:
                    rel = self._provenance_name(item.stem)
                    (self.out_root / PurePosixPath(rel).parent).mkdir(parents=True, exist_ok=True)
                    sha = self._save_json(rel, self._document(item, [], []), written, item)
                    status, error, outs, hashes = NO_FACE, "no face found", [rel], [sha]
                except OSError as exc:
                    self._remove(written)
                    status, error = ERROR, f"results not written: {_fault_words(exc)}"
                    outs, hashes = [], []
                rows = [
                    replace(
                        self._row(item, m, status, error),
                        outputs=list(outs),
                        outputs_sha256=list(hashes),
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
    scale: int | str,
    *,
    recursive: bool = True,
    token: CancelToken | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    detector: str = "hog",
    enhancer: Enhancer | None = None,
    batch_faces: int = DEFAULT_BATCH_FACES,
    lookahead: bool = True,
    allow_shrink: bool = False,
    follow_links: bool = False,
    overwrite: bool = False,
    full: bool = True,
) -> BatchSummary:
    """Enhance every face of every image under ``in_dir`` with every model in ``model_ids``.

    Results go to ``out_dir`` (created if needed) as described in the module docstring, with
    ``summary.csv`` rewritten after each image. ``on_event`` receives :class:`BatchEvent` s in the
    caller's thread. ``lookahead=False`` prepares images in the caller's thread (for measuring
    what the overlap gains). ``scale`` is a factor or "auto" (per face, see
    :mod:`engine.resolution`); a fixed factor that would shrink a face skips that face unless
    ``allow_shrink``. A symbolic link to a file outside ``in_dir`` gets an error row instead of
    being read, unless ``follow_links``. ``full=False`` writes the faces and provenance only
    (the command line's default: writing the whole enlarged photo as PNG is most of a
    bicubic run's time). Raises :class:`BatchError` before writing anything when the run
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
        restoring = [e.label for e in entries if e.restores]
        if restoring:
            raise BatchError(
                f"{', '.join(restoring)}: x1 restore runs one still at a time (the app, or "
                "ffe enhance --scale 1); folder runs enlarge only"
            )
        if scale != resolution.AUTO:
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
        if scale == resolution.AUTO:  # loaded per scale as faces need them
            models: dict[str, LoadedModel | None] = dict.fromkeys(ids)
            missing = [registry.get(m).label for m in ids if not enhancer.installed_scales(m)]
            if missing:
                raise BatchError(f"no installed weights at any scale: {', '.join(missing)}")
        else:
            models = {m: enhancer.model(m, scale) for m in ids}
    except (ValueError, OSError) as exc:  # WeightsError/MissingWeightsError, bad device
        raise BatchError(str(exc)) from None
    files = list_inputs(in_root, recursive)
    log.info(
        "batch: %d file(s) from %s to %s, models %s, scale %s",
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
        allow_shrink,
        follow_links,
        overwrite,
        full,
    )
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
    if not check_manifest(out_root, identity, overwrite):
        run.start_afresh()
    _prepare_output(out_root)
    try:
        write_manifest(out_root, identity)
    except OSError as exc:
        raise BatchError(f"the run manifest cannot be written ({exc})") from None
    return run.execute()
