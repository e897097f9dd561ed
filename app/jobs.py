"""The worker's jobs as types: what each job takes, what it answers, and how the GUI treats it.

Every job kind has one argument dataclass (what the GUI sends), one answer type (what
``result`` carries) and one :class:`JobSpec` in :data:`app.worker.JOBS` that ties them to the
worker's handler and says whether Cancel may stop the job, whether its answer survives opening
another still, and the title an analyst reads when it fails. Nothing here imports Qt or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------- arguments


@dataclass(frozen=True, eq=False)
class InitArgs:
    """Start the engine (or recheck the installed weights); answered by :class:`EngineInfo`."""


@dataclass(frozen=True, eq=False)
class OpenArgs:
    """Load a still and find its faces; answered by :class:`OpenOutcome`.

    ``still``: an already loaded still (a video frame, ``engine.video.FrameStill``) used as is
    instead of reading ``path``.
    """

    path: str = ""
    still: Any = None  # engine.io.Still
    detector: str = "auto"  # "auto" (HOG, then the CNN when HOG finds none), "hog" or "cnn"


@dataclass(frozen=True, eq=False)
class DetectArgs:
    """Find the faces of the still on screen again; answered by :class:`DetectOutcome`."""

    still: Any  # engine.io.Still
    detector: str = "auto"


@dataclass(frozen=True, eq=False)
class BoxArgs:
    """Place landmarks in a box drawn by hand; answered by an ``engine.faces.Face``."""

    still: Any  # engine.io.Still
    box: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class EnhanceArgs:
    """Run one face through one or more models; answered by :class:`EnhanceOutcome`.

    ``keep_going``: a model that fails is reported as a :class:`ModelFailure` and the others
    still run (the comparison grid); otherwise the first failure fails the job.
    """

    still: Any  # engine.io.Still
    face: Any  # engine.faces.Face
    face_index: int
    model_ids: Sequence[str]
    scale: int | str  # a factor, or "auto" (engine.resolution: from the face's native size)
    keep_going: bool = False
    allow_shrink: bool = False  # the analyst confirmed a forced scale that shrinks the face


@dataclass(frozen=True, eq=False)
class ExportArgs:
    """Write a PNG; answered by :class:`ExportOutcome`.

    ``rgb`` as given (a face), or the full still rebuilt from ``still`` + ``results``; ``strip``
    is the visible label stacked below; ``text`` the PNG text chunks; ``log_fields`` the
    case-log entry's fields (see :func:`engine.export.export_log_fields`), None for no entry.
    """

    path: str
    forbidden: str | None = None  # the evidence file: never written over
    rgb: Any = None  # np.ndarray (H, W, 3) uint8
    still: Any = None
    results: Sequence[Any] = ()
    strip: Any = None  # np.ndarray (h, W, 3) uint8
    text: dict[str, str] | None = None
    role: str | None = None
    log_fields: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class TrackArgs:
    """Track the face at ``box`` in frame ``frame_index`` over frames ``start`` to ``stop - 1``
    (None: :data:`TRACK_RADIUS` on each side), fuse the best ``fuse`` frames -- or exactly the
    frames in ``use`` (the analyst's picks), never those in ``exclude`` -- and run the model on
    the fused face and on the frame alone; answered by :class:`TrackOutcome`. The scale follows
    the stills' policy (engine.resolution); a fixed scale that would shrink the face is refused
    unless ``allow_shrink``. The worker opens the clip itself and checks its SHA-256."""

    clip_path: str
    clip_sha256: str
    frame_index: int
    box: tuple[float, float, float, float]
    model_id: str
    scale: int | str  # a factor, or "auto" (engine.resolution.plan on the face)
    face_index: int = 0  # the face's index in the frame in use (the still on screen)
    start: int | None = None
    stop: int | None = None
    fuse: int = 8
    use: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()
    detector: str = "auto"  # "auto", "hog" or "cnn", as for stills
    allow_shrink: bool = False

    def frames(self, count: int) -> tuple[int, int]:
        """The frames searched, ``start`` to ``stop - 1``, within a clip of ``count`` frames."""
        start = self.frame_index - TRACK_RADIUS if self.start is None else self.start
        stop = self.frame_index + TRACK_RADIUS + 1 if self.stop is None else self.stop
        start, stop = max(0, start), min(count, stop)
        if not start <= self.frame_index < stop:
            raise ValueError(
                f"the frames searched ({start} to {stop - 1}) must hold frame {self.frame_index}"
            )
        return start, stop


TRACK_RADIUS = 60  # frames searched on each side of the frame in use, unless the analyst says


@dataclass(frozen=True, eq=False)
class BatchArgs:
    """A folder run (engine.batch); answered by an ``engine.batch.BatchSummary``."""

    in_dir: str
    out_dir: str
    model_ids: Sequence[str]
    scale: int
    detector: str = "hog"  # "hog", "cnn" or "auto" (HOG, then the CNN where HOG finds none)
    recursive: bool = True
    overwrite: bool = False  # replace another run's results in out_dir
    dask: str | None = None  # where the photos run: None (in the app), "local:N", "tcp://H:P"


@dataclass(frozen=True, eq=False)
class CaseLogArgs:
    """Use the case log at ``path``; answered by :class:`CaseLogState`."""

    path: str
    examiner: str = ""
    case_reference: str = ""
    still_sha256: str | None = None  # the still on screen: its history in this log comes back


@dataclass(frozen=True, eq=False)
class RepairLogArgs:
    """Move a half-written last line aside; answered by :class:`CaseLogState`."""


@dataclass(frozen=True, eq=False)
class VerifyLogArgs:
    """Check the whole hash chain; answered by an ``engine.caselog.VerifyReport``."""


@dataclass(frozen=True, eq=False)
class LogArgs:
    """Append one entry (e.g. "label_removed"); answered by the entry (a dict)."""

    action: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ReproduceArgs:
    """Re-run a logged "enhance" entry; answered by :class:`ReproduceOutcome`."""

    entry: dict[str, Any]


@dataclass(frozen=True, eq=False)
class ReportArgs:
    """Write the case report (HTML and PDF); answered by :class:`ReportOutcome`.

    ``groups``: (file suffix, results, {face index: FidelityReport}), see
    :func:`engine.export.report_groups`.
    """

    path: str
    still: Any
    groups: Sequence[tuple[str, list, dict]]
    examiner: str | None = None
    case_reference: str | None = None
    forbidden: str | None = None
    faces: int | None = None  # faces in the still (the report's summary names them)


@dataclass(frozen=True, eq=False)
class FidelityArgs:
    """engine.fidelity.check_all on one face's outputs at one scale; :class:`FidelityOutcome`."""

    results: Sequence[Any]


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class EngineInfo:
    """Answer to "init": the device and every registered model with its status per scale."""

    device: str  # e.g. "cpu" or "cuda:0 (NVIDIA ...)"
    models: list  # [(ModelEntry, {scale: "installed" | "missing" | "invalid: ..."})]


@dataclass(frozen=True)
class OpenOutcome:
    """Answer to "open": the loaded still and the faces found in it (left to right)."""

    still: Any  # engine.io.Still
    faces: list  # [engine.faces.Face]
    history: list = field(default_factory=list)  # case-log entries touching the still, oldest first
    detector: str = "hog"  # the detector that found ``faces`` ("cnn" after a fallback)
    fallback: bool = False  # HOG found nothing and the CNN was tried (detector "auto")


@dataclass
class DetectOutcome:
    """Answer to "detect": the faces found again, and by which detector."""

    faces: list
    detector: str = "hog"
    fallback: bool = False


@dataclass
class EnhanceOutcome:
    """Answer to "enhance": one Result per model that ran, and the error of each that failed."""

    face_index: int
    scale: int
    results: list = field(default_factory=list)  # [engine.enhance.Result]
    errors: dict[str, Any] = field(default_factory=dict)  # model id -> app.errors.ErrorMessage


@dataclass(frozen=True)
class TrackOutcome:
    """Answer to "track": the track (``engine.tracks.Track``), its ranking, the frames chosen
    for fusion, the fused and single-frame results (``engine.video_enhance.TrackEnhancement``)
    and how the scale was chosen."""

    frame_index: int
    model_id: str
    scale: int  # the model's factor (1: the face was fused but not enlarged)
    scale_note: str  # what happened, in plain words (engine.video_enhance.what_happened)
    searched: tuple[int, int]  # frames start..stop-1
    track: Any
    ranked: list  # [engine.tracks.RankedFace], best first
    chosen: list[int]  # frame indices given to the fusion
    enhancement: Any
    log_entry: dict | None = None
    result: Any = None  # the fused face as an engine.enhance.Result (None: not enlarged)
    args: Any = None  # the TrackArgs asked

    @property
    def used(self) -> list[int]:
        """Frame indices the fusion kept (the others were rejected, each with its reason)."""
        return [self.chosen[p] for p in self.enhancement.fused.used]

    def rejected(self) -> dict[int, str]:
        return {
            self.chosen[r.position]: r.rejected
            for r in self.enhancement.fused.registrations
            if r.rejected is not None
        }


@dataclass(frozen=True)
class ModelFailure:
    """A ``partial`` payload: one model of a multi-model job failed (the others go on)."""

    model_id: str
    error: Any  # app.errors.ErrorMessage

    @property
    def message(self) -> str:
        return self.error.full()


@dataclass(frozen=True)
class ExportOutcome:
    """Answer to "export": the file written and its SHA-256."""

    path: Path
    sha256: str
    log_entry: dict | None = None  # the "export" case-log entry, None if it was not written


@dataclass(frozen=True)
class CaseLogState:
    """Answer to "caselog" and "repair_log": the log in use and how its verification went."""

    path: Path
    examiner: str
    verification: Any  # engine.caselog.VerifyReport
    repaired: dict | None = None  # the "repaired" entry, when a repair was made
    history: list | None = None  # entries of CaseLogArgs.still_sha256 in this log (None: no still)

    @property
    def is_new(self) -> bool:
        """No log file yet (it is created by the first entry): not a problem."""
        return self.verification.reason == "missing"

    @property
    def truncated(self) -> bool:
        """The log ends in a half-written line: :meth:`CaseLog.repair` can fix that."""
        return any(p.kind == "truncated" for p in self.verification.problems)


@dataclass(frozen=True)
class FidelityOutcome:
    """Answer to "fidelity": the checks of one face's outputs at one scale."""

    face_index: int
    scale: int
    report: Any  # engine.fidelity.FidelityReport


@dataclass(frozen=True)
class ReproduceOutcome:
    """Answer to "reproduce": the entry that was re-run and the verdict."""

    entry: dict
    report: Any  # engine.caselog.ReproduceReport


@dataclass(frozen=True)
class ReportOutcome:
    """Answer to "report": the HTML and PDF files written, with the log verdict they carry."""

    files: list  # [(Path, sha256)]
    verification: Any  # engine.caselog.VerifyReport (before the report's own entry)
    groups: int  # how many reports (one per scale when a model ran at several scales)


# ---------------------------------------------------------------------------- the table's rows


@dataclass(frozen=True)
class JobSpec:
    """One job kind: its types, its handler in the worker, and how the GUI treats it.

    ``cancellable``: False for short bookkeeping jobs that Cancel must leave alone (a
    cancelled "caselog" job would leave the session without a case log, a cancelled "log" job
    would half-do a label removal). ``survives_new_still``: its answer stays valid when
    another still is opened meanwhile (otherwise the job is cancelled and its answer dropped).
    ``pausable``: the job gets an ``engine.progress.PausableToken``. ``reports_cancel``: a
    cancelled run still answers (a batch summary saying what was done before Cancel).
    """

    kind: str
    args: type
    answer: type | str  # the answer's type, or its dotted name for engine types (no import)
    handler: Callable[[Any, Any], Any]  # (EngineWorker, Job) -> answer
    failure_title: str
    cancellable: bool = True
    survives_new_still: bool = True
    pausable: bool = False
    reports_cancel: bool = False


@dataclass
class Job:
    """One unit of work for the worker. ``token`` is shared with the GUI thread for cancelling."""

    id: int
    spec: JobSpec
    args: Any  # an instance of spec.args
    token: Any  # engine.progress.CancelToken

    @property
    def kind(self) -> str:
        return self.spec.kind
