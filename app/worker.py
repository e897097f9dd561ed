"""The one background thread that owns the engine: every load, detection, model run and export.

The GUI thread never runs torch or dlib. It talks to :class:`EngineWorker` (a QObject living
in its own QThread) only through :class:`EngineClient`:

* jobs go in by a queued signal carrying a :class:`Job` (kind, arguments, id, cancel token);
* answers come back as signals: ``progress(job_id, done, total, message)`` (throttled to a few
  a second), ``partial(job_id, payload)`` (one model's output as soon as it is ready),
  ``result(job_id, payload)``, ``failed(job_id, message)`` or ``cancelled(job_id)``, then
  ``finished(job_id)`` on every path (try/finally);
* cancel sets the job's :class:`engine.enhance.CancelToken` directly from the GUI thread
  (a thread-safe flag): a queued "cancel" slot would only run after the job it should stop.

Jobs run one at a time, in the order submitted, so the engine and its loaded models are only
ever touched by this one thread.

The worker also owns the case log (:class:`engine.caselog.CaseLog`): every open, enhancement,
export, batch run, label removal, reproduction and case report appends an entry here, in the
same thread that did the work, right after it succeeded. Each entry written goes out as
``logged(job_id, entry)``; an entry that could not be written goes out as
``log_failed(job_id, message, damaged)`` (the work itself stands: the file was written, the face
enhanced), so the GUI can warn and offer :meth:`engine.caselog.CaseLog.repair`.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from app import errors
from engine.enhance import Cancelled, CancelToken

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2  # at most five progress updates a second reach the GUI


@dataclass
class Job:
    """One unit of work for the worker. ``token`` is shared with the GUI thread for cancelling."""

    id: int
    kind: str  # "init", "open", "box", "enhance", "export", "batch", "caselog", "fidelity"...
    args: dict[str, Any]
    token: CancelToken


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
    detect_ms: float
    history: list = field(default_factory=list)  # case-log entries touching the still, oldest first


@dataclass
class EnhanceOutcome:
    """Answer to "enhance": one Result per model that ran, and a message per model that failed."""

    face_index: int
    scale: int
    results: list = field(default_factory=list)  # [engine.enhance.Result]
    errors: dict[str, str] = field(default_factory=dict)  # model id -> message


@dataclass(frozen=True)
class ModelFailure:
    """A ``partial`` payload: one model of a multi-model job failed (the others go on)."""

    model_id: str
    message: str


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
    elapsed_ms: float


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


class _ThrottledProgress:
    """Forwards progress at most every ``interval`` seconds, plus the first and the last update."""

    def __init__(
        self, emit: Callable[[int, int, str], None], interval: float = PROGRESS_INTERVAL_S
    ):
        self._emit = emit
        self._interval = interval
        self._last = -1e9

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done == 0 or done >= total or now - self._last >= self._interval:
            self._last = now
            self._emit(done, total, message)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str] | None) -> bool:
    """True if two paths name the same file (resolving links; by inode when both exist)."""
    if b is None:
        return False
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
        if minutes >= 60
        else f"{minutes}:{secs:02d}"
    )


def default_enhancer():
    """The real engine (imports torch: called in the worker thread only)."""
    from engine.enhance import Enhancer

    return Enhancer()


class EngineWorker(QObject):
    """Lives in the worker thread; owns the Enhancer (created there on the first job)."""

    progress = Signal(int, int, int, str)
    partial = Signal(int, object)
    result = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    finished = Signal(int)
    logged = Signal(int, object)  # job id, the case-log entry just written
    log_failed = Signal(int, str, bool)  # job id, message, True if the log is half-written

    def __init__(self, enhancer_factory: Callable[[], Any] = default_enhancer) -> None:
        super().__init__()
        self._factory = enhancer_factory
        self._enhancer: Any = None
        self._log: Any = None  # engine.caselog.CaseLog, set by a "caselog" job
        self._case_reference = ""

    @property
    def enhancer(self) -> Any:
        if self._enhancer is None:
            self._enhancer = self._factory()
        return self._enhancer

    @Slot(object)
    def run(self, job: Job) -> None:
        """Run one job; always ends with ``finished(job.id)``."""
        try:
            job.token.check()  # cancelled while it waited in the queue
            handler = getattr(self, f"_job_{job.kind}")
            payload = handler(job)
            job.token.check()  # cancelled during the last step: drop the answer
        except Cancelled:
            self.cancelled.emit(job.id)
        except Exception as exc:  # every failure becomes a message; the thread lives on
            log.warning("job %d (%s) failed: %s", job.id, job.kind, exc, exc_info=True)
            self.failed.emit(job.id, errors.user_message(exc))
        else:
            self.result.emit(job.id, payload)
        finally:
            self.finished.emit(job.id)

    # ------------------------------------------------------------------ jobs
    def _job_init(self, job: Job) -> EngineInfo:
        from engine import device as devices
        from engine import faces

        enhancer = self.enhancer
        device = str(getattr(enhancer, "device", "cpu"))
        try:
            described = devices.describe(device)
        except Exception:  # a test double may report a device torch does not know
            described = device
        faces.load_models()  # dlib's models load now rather than on the first open
        models = list(enhancer.models())
        # torch, dlib and Qt leave about a million long-lived objects. A full (generation 2)
        # garbage collection walks them all while holding the GIL: 300-500 ms measured on this
        # machine, during which the GUI thread freezes. Freezing them moves them out of the
        # collector's reach (they live as long as the process anyway); see scripts/ui_latency.py.
        gc.freeze()
        return EngineInfo(device=described, models=models)

    def _job_open(self, job: Job) -> OpenOutcome:
        from engine import faces, io

        job.token.set_progress(0, 2, "Reading the image")
        still = io.load(job.args["path"])
        job.token.check()
        job.token.set_progress(1, 2, "Looking for faces")
        start = time.perf_counter()
        found = faces.detect(still.rgb)
        detect_ms = (time.perf_counter() - start) * 1000
        job.token.set_progress(2, 2, f"{len(found)} face(s) found")
        job.token.check()  # a cancelled open is not logged: the analyst never saw the still
        self._record(
            job,
            "open",
            input_path=str(still.path) if still.path is not None else None,
            input_sha256=still.sha256,
            parameters={"detector": "hog"},
            details={
                "format": still.format,
                "original_mode": still.original_mode,
                "width": still.width,
                "height": still.height,
                "faces_found": len(found),
                "face_boxes": [[round(float(v), 2) for v in f.box] for f in found],
            },
        )
        history = self._log.history(still.sha256) if self._log is not None else []
        return OpenOutcome(still=still, faces=found, detect_ms=detect_ms, history=history)

    def _job_box(self, job: Job) -> Any:
        from engine import faces

        return faces.face_from_box(job.args["still"].rgb, job.args["box"])

    def _job_enhance(self, job: Job) -> EnhanceOutcome:
        still, face = job.args["still"], job.args["face"]
        model_ids: Sequence[str] = job.args["model_ids"]
        scale: int = job.args["scale"]
        index: int = job.args["face_index"]
        keep_going: bool = job.args.get("keep_going", False)
        allow_shrink: bool = job.args.get("allow_shrink", False)
        enhancer = self.enhancer
        outcome = EnhanceOutcome(face_index=index, scale=scale)
        total = len(model_ids)
        for i, model_id in enumerate(model_ids):
            job.token.check()
            job.token.set_progress(i, total, f"Running {model_id} \u00d7{scale} ({i + 1}/{total})")
            try:
                result = enhancer.enhance(
                    still,
                    face,
                    model_id,
                    scale,
                    job.token,
                    face_index=index,
                    allow_shrink=allow_shrink,
                )
            except Cancelled:
                raise
            except Exception as exc:
                if not keep_going:
                    raise
                message = errors.user_message(exc)
                log.warning("%s x%d failed: %s", model_id, scale, exc)
                outcome.errors[model_id] = message
                self.partial.emit(job.id, ModelFailure(model_id, message))
                continue
            self._log_enhance(job, still, face, result)
            # Result.pasted is the whole still enlarged by the scale: 400 MB for a 1080p still at
            # x8, for every model of a comparison. It is dropped here and rebuilt on export.
            result = dataclasses.replace(result, pasted=None)
            outcome.results.append(result)
            self.partial.emit(job.id, result)
        job.token.set_progress(total, total, "Done")
        return outcome

    def _job_batch(self, job: Job) -> Any:
        """A folder run (engine.batch); faults go out as ``partial`` payloads as they happen."""
        from engine import batch

        def on_event(event) -> None:
            if event.kind == "fault":
                self.partial.emit(job.id, event)
                return
            eta = "" if event.eta_s is None else f", about {_clock(event.eta_s)} left"
            job.token.set_progress(
                event.files_done,
                max(1, event.files_total),
                f"Batch: {event.files_done}/{event.files_total} files, "
                f"{event.faces_done} faces{eta}",
            )

        summary = batch.run_batch(
            job.args["in_dir"],
            job.args["out_dir"],
            job.args["model_ids"],
            job.args["scale"],
            recursive=job.args.get("recursive", True),
            token=job.token,
            on_event=on_event,
            enhancer=self.enhancer,
        )
        self._log_batch(job, summary)
        return summary

    def _job_export(self, job: Job) -> ExportOutcome:
        """Write a PNG: ``rgb`` as given, or the full still rebuilt from ``still`` + ``results``.

        ``strip`` (optional) is the visible label, stacked below the image here.
        """
        from engine import io

        path = Path(job.args["path"])
        forbidden = job.args.get("forbidden")
        if same_file(path, forbidden):
            raise io.OutputError(
                path, "this is the evidence file that was opened; outputs are never written over it"
            )
        rgb = job.args.get("rgb")
        if rgb is None:
            rgb = full_image(job.args["still"], job.args["results"])
        image = rgb  # what the model (or the paste-back) made, without the label strip
        strip = job.args.get("strip")
        if strip is not None:
            if strip.shape[1] != rgb.shape[1]:
                raise ValueError(f"label strip is {strip.shape[1]} px wide, image {rgb.shape[1]}")
            rgb = np.vstack([rgb, strip])
        sha = io.save_png(path, rgb, job.args.get("text"))
        entry = None
        fields = job.args.get("log_fields")
        if fields is not None:
            from engine import caselog

            fields = dict(fields)
            fields["outputs"] = [caselog.output_record(path, sha, rgb, job.args.get("role"))]
            # The image without the label strip: for a face export, the same pixels as the
            # "enhance" entry's pixels_sha256, which ties the file to that entry.
            fields["details"] = {
                **dict(fields.get("details") or {}),
                "image_pixels_sha256": caselog.pixels_sha256(image),
            }
            entry = self._record(job, "export", **fields)
        return ExportOutcome(path=path, sha256=sha, log_entry=entry)

    # ------------------------------------------------------------------ case log
    def _job_caselog(self, job: Job) -> CaseLogState:
        """Use the case log at ``path`` (its folder is created) for every later entry."""
        from engine import caselog

        path = Path(job.args["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log = caselog.CaseLog(path, examiner=job.args.get("examiner") or None)
        self._case_reference = str(job.args.get("case_reference") or "")
        return CaseLogState(path=path, examiner=self._log.examiner, verification=self._log.verify())

    def _job_repair_log(self, job: Job) -> CaseLogState:
        """Move a half-written last line aside (logged as "repaired") and verify again."""
        log_ = self._require_log()
        entry = log_.repair()
        if entry is not None:
            self.logged.emit(job.id, entry)
        return CaseLogState(
            path=log_.path, examiner=log_.examiner, verification=log_.verify(), repaired=entry
        )

    def _job_verify_log(self, job: Job) -> Any:
        """The whole chain checked: engine.caselog.VerifyReport."""
        return self._require_log().verify()

    def _job_log(self, job: Job) -> dict:
        """Append one entry (e.g. "label_removed"); raises if it cannot be written, because the
        action it records must not happen unrecorded."""
        log_ = self._require_log()
        fields = dict(job.args.get("fields") or {})
        fields["details"] = self._details(fields.get("details"))
        entry = log_.append(job.args["action"], **fields)
        self.logged.emit(job.id, entry)
        return entry

    def _job_reproduce(self, job: Job) -> ReproduceOutcome:
        """Re-run a logged "enhance" entry (engine.caselog.reproduce) and log the verdict."""
        from engine import caselog, io

        entry = job.args["entry"]
        job.token.set_progress(0, 1, f"Re-running entry {entry.get('seq')}")
        report = caselog.reproduce(entry, self.enhancer, io.load)
        job.token.set_progress(1, 1, "Re-run done")
        self._record(
            job,
            "reproduce",
            input_path=entry.get("input_path"),
            input_sha256=entry.get("input_sha256"),
            model_id=entry.get("model_id"),
            weights_sha256=entry.get("weights_sha256"),
            scale=entry.get("scale"),
            device=report.device_now,
            details={
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
        )
        return ReproduceOutcome(entry=entry, report=report)

    def _require_log(self) -> Any:
        if self._log is None:
            from engine.caselog import CaseLogError

            raise CaseLogError("no case log is open yet")
        return self._log

    def _details(self, details: dict | None) -> dict:
        out = dict(details or {})
        if self._case_reference:
            out.setdefault("case_reference", self._case_reference)
        return out

    def _record(self, job: Job, action: str, **fields: Any) -> dict | None:
        """Append an entry; a failure is reported by ``log_failed`` and does not undo the work."""
        if self._log is None:
            return None
        from engine import caselog

        fields["details"] = self._details(fields.get("details"))
        try:
            entry = self._log.append(action, **fields)
        except caselog.CaseLogError as exc:
            damaged = isinstance(exc, caselog.CaseLogDamaged)
            log.error("case log: %s entry not written: %s", action, exc)
            self.log_failed.emit(job.id, f"The {action!r} entry was not written: {exc}", damaged)
            return None
        self.logged.emit(job.id, entry)
        return entry

    def _log_enhance(self, job: Job, still: Any, face: Any, result: Any) -> None:
        from engine import caselog

        try:
            fields = caselog.enhance_fields(still, face, result)
        except (AttributeError, TypeError, ValueError) as exc:  # a test double's bare Result
            log.warning("enhancement not logged: %s", exc)
            self.log_failed.emit(job.id, f"The enhancement could not be described: {exc}", False)
            return
        self._record(job, "enhance", **fields)

    def _log_batch(self, job: Job, summary: Any) -> None:
        from engine import caselog, io

        outputs = []
        if summary.summary_path is not None and Path(summary.summary_path).is_file():
            path = Path(summary.summary_path)
            outputs.append(caselog.output_record(path, io.sha256_file(path), role="summary"))
        self._record(
            job,
            "batch",
            input_path=str(summary.in_dir),
            scale=summary.scale,
            parameters={"models": list(summary.models), "recursive": job.args.get("recursive")},
            outputs=outputs,
            details={
                "out_dir": str(summary.out_dir),
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
        )

    # ------------------------------------------------------------------ fidelity
    def _job_fidelity(self, job: Job) -> FidelityOutcome:
        """engine.fidelity.check_all on one face's outputs at one scale (0.3-0.9 s per output)."""
        from engine import fidelity

        results = list(job.args["results"])
        first = results[0]
        job.token.set_progress(0, 1, f"Fidelity checks of {len(results)} output(s)")
        start = time.perf_counter()
        report = fidelity.check_all(
            first.lr,
            {r.model_id: r.sr for r in results},
            first.input_landmarks,
            {r.model_id: r.output_landmarks for r in results},
            evidence_shrink={r.model_id: r.evidence_shrink for r in results},
        )
        elapsed = (time.perf_counter() - start) * 1000
        job.token.set_progress(1, 1, "Fidelity checks done")
        return FidelityOutcome(
            face_index=first.face_index, scale=first.scale, report=report, elapsed_ms=elapsed
        )

    # ------------------------------------------------------------------ case report
    def _job_report(self, job: Job) -> ReportOutcome:
        """HTML (engine.report.build_html) and an A4 PDF of it, per group of results.

        ``groups`` is a list of (suffix, results, fidelity) where ``fidelity`` maps a face index
        to its FidelityReport; the files are ``<html path stem><suffix>.html`` and ``.pdf``.
        Nothing is written over the evidence file or the case log.
        """
        from engine import report as reports

        html_path = Path(job.args["path"])
        forbidden = [job.args.get("forbidden")]
        if self._log is not None:
            forbidden += [self._log.path, self._log.head_path]
        groups = job.args["groups"]
        targets = []
        for suffix, _, _ in groups:
            stem = html_path.with_name(html_path.stem + suffix)
            targets.append((stem.with_suffix(".html"), stem.with_suffix(".pdf")))
        for pair in targets:
            for target in pair:
                if any(same_file(target, f) for f in forbidden if f is not None):
                    raise _output_error(
                        target,
                        "it is the evidence file or the case log; reports never replace them",
                    )
        verification = self._log.verify() if self._log is not None else None
        written = []
        for i, ((_, results, fidelity_map), (html_target, pdf_target)) in enumerate(
            zip(groups, targets, strict=True)
        ):
            job.token.check()
            job.token.set_progress(i, len(groups), f"Writing {html_target.name}")
            page = reports.build_html(
                job.args["still"],
                results,
                fidelity_map or None,
                verification,
                examiner=job.args.get("examiner"),
                case_reference=job.args.get("case_reference") or None,
            )
            written.append((html_target, _write_bytes(html_target, page.encode("utf-8"))))
            written.append((pdf_target, write_pdf(page, pdf_target)))
        job.token.set_progress(len(groups), len(groups), "Case report written")
        from engine import caselog

        still = job.args["still"]
        self._record(
            job,
            "report",
            input_path=str(still.path) if still.path is not None else None,
            input_sha256=still.sha256,
            outputs=[caselog.output_record(p, sha, role=p.suffix[1:]) for p, sha in written],
            details={
                "enhancements": sum(len(g[1]) for g in groups),
                "log_verified_ok": None if verification is None else verification.ok,
                "log_head_sha256": None if verification is None else verification.head_sha256,
            },
        )
        return ReportOutcome(files=written, verification=verification, groups=len(groups))


def _output_error(path: Path, reason: str) -> Exception:
    from engine import io

    return io.OutputError(path, reason)


def _write_bytes(path: Path, data: bytes) -> str:
    """engine.io's atomic writer; returns the file's SHA-256."""
    from engine import io as eio

    return eio.write_bytes_atomic(path, data)


def write_pdf(html_text: str, path: Path) -> str:
    """Render ``html_text`` to an A4 PDF at ``path`` (atomically); returns the file's SHA-256.

    QTextDocument + QPdfWriter, which may run outside the GUI thread (they paint on a paged
    device, not a widget). The HTML is the engine's plain report markup, which QTextDocument
    renders with its embedded ``data:`` images.
    """
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    if not path.parent.is_dir():
        raise _output_error(path, f"the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    document = QTextDocument()
    document.setHtml(html_text)
    writer = QPdfWriter(str(tmp))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
    writer.setResolution(300)
    writer.setTitle("Forensic Face Enhancer - case report")
    writer.setCreator("Forensic Face Enhancer")
    document.print_(writer)
    del writer  # the file is complete once the writer is gone
    try:
        data = tmp.read_bytes()
    except OSError as exc:
        raise _output_error(path, f"the PDF could not be written ({exc.strerror or exc})") from exc
    tmp.unlink(missing_ok=True)
    if not data.startswith(b"%PDF"):
        raise _output_error(path, "Qt did not produce a PDF")
    return _write_bytes(path, data)


def full_image(still: Any, results: Sequence[Any]) -> np.ndarray:
    """The still enlarged by the results' scale with every result's face pasted in.

    The worker drops ``Result.pasted`` after each run (see ``_job_enhance``), so it is rebuilt
    here from the alignment each Result keeps, only when a full image is exported.
    """
    from engine import enhance

    return enhance.paste_all(still.rgb, list(results))


class WorkerThread(QThread):
    """The worker's thread; its event loop runs inside a Python ``run``.

    Overriding ``run`` keeps one Python thread state alive for the thread's whole life. With
    QThread's C++ ``run``, each queued slot call creates and destroys a thread state, and
    dlib's pybind11 bindings crash (segfault in ``tstate_delete_common``) when they first
    initialise their numpy API from such a short-lived state.
    """

    def run(self) -> None:
        self.exec()


class EngineClient(QObject):
    """GUI-thread handle on the worker: starts the thread, submits jobs, cancels, shuts down."""

    progress = Signal(int, int, int, str)
    partial = Signal(int, object)
    result = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    finished = Signal(int)
    logged = Signal(int, object)
    log_failed = Signal(int, str, bool)

    _submit = Signal(object)

    def __init__(
        self, enhancer_factory: Callable[[], Any] = default_enhancer, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._tokens: dict[int, CancelToken] = {}
        self._kinds: dict[int, str] = {}
        self.thread = WorkerThread()
        self.thread.setObjectName("engine-worker")
        self.worker = EngineWorker(enhancer_factory)
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run)
        # Relay the worker's signals (queued across threads) through this GUI-thread object.
        self.worker.progress.connect(self.progress)
        self.worker.partial.connect(self.partial)
        self.worker.result.connect(self.result)
        self.worker.failed.connect(self.failed)
        self.worker.cancelled.connect(self.cancelled)
        self.worker.logged.connect(self.logged)
        self.worker.log_failed.connect(self.log_failed)
        self.worker.finished.connect(self._forget)
        self.thread.finished.connect(self.worker.deleteLater)
        self.thread.start()

    # ------------------------------------------------------------------ jobs
    def submit(self, kind: str, *, pausable: bool = False, **args: Any) -> int:
        """Queue a job for the worker; returns its id (the signals carry it back).

        ``pausable`` gives the job an ``engine.batch.PausableToken`` (see :meth:`pause`).
        """
        if not self.thread.isRunning():
            raise RuntimeError("the engine worker has been shut down")
        if not hasattr(EngineWorker, f"_job_{kind}"):
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = next(self._ids)
        progress = _ThrottledProgress(
            lambda done, total, message: self.worker.progress.emit(job_id, done, total, message)
        )
        if pausable:
            from engine.batch import PausableToken

            token: CancelToken = PausableToken(on_progress=progress)
        else:
            token = CancelToken(on_progress=progress)
        self._tokens[job_id] = token
        self._kinds[job_id] = kind
        self._submit.emit(Job(id=job_id, kind=kind, args=args, token=token))
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop (thread-safe: sets its token's flag; the engine checks it)."""
        token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def pause(self, job_id: int, paused: bool) -> None:
        """Pause or resume a pausable job (thread-safe; it stops at its next check)."""
        token = self._tokens.get(job_id)
        if token is not None and hasattr(token, "pause"):
            token.pause() if paused else token.resume()

    def cancel_all(self) -> None:
        for token in list(self._tokens.values()):
            token.cancel()

    def pending(self) -> dict[int, str]:
        """Jobs submitted and not finished yet: id -> kind."""
        return dict(self._kinds)

    def is_busy(self) -> bool:
        return bool(self._kinds)

    @Slot(int)
    def _forget(self, job_id: int) -> None:
        self._tokens.pop(job_id, None)
        self._kinds.pop(job_id, None)
        self.finished.emit(job_id)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel every job, stop the thread and wait for it; True if it stopped in time."""
        self.cancel_all()
        if not self.thread.isRunning():
            return True
        self.thread.quit()
        stopped = self.thread.wait(timeout_ms)
        if not stopped:
            log.error("the engine worker did not stop within %d ms", timeout_ms)
        return bool(stopped)
