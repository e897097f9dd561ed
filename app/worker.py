"""The one background thread that owns the engine: every load, detection, model run and export.

The GUI thread never runs torch or dlib. It talks to :class:`EngineWorker` (a QObject living
in its own QThread) only through :class:`app.client.EngineClient`:

* jobs go in by a queued signal carrying an :class:`app.jobs.Job` (its :class:`JobSpec` from
  :data:`JOBS`, typed arguments, id, cancel token);
* answers come back as signals: ``progress(job_id, done, total, message)`` (throttled to a few
  a second), ``partial(job_id, payload)`` (one model's output as soon as it is ready),
  ``result(job_id, payload)``, ``failed(job_id, ErrorMessage)`` or ``cancelled(job_id)``, then
  ``finished(job_id)`` on every path (try/finally);
* cancel sets the job's :class:`engine.progress.CancelToken` directly from the GUI thread
  (a thread-safe flag): a queued "cancel" slot would only run after the job it should stop.

Jobs run one at a time, in the order submitted, so the engine and its loaded models are only
ever touched by this one thread. :data:`JOBS` is the one table of job kinds: each with its
handler, its argument and answer types, whether Cancel may stop it, whether it survives
opening another still, and the title shown when it fails.

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
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from app import errors
from app.jobs import (
    BatchArgs,
    BoxArgs,
    CaseLogArgs,
    CaseLogState,
    DetectArgs,
    DetectOutcome,
    EngineInfo,
    EnhanceArgs,
    EnhanceOutcome,
    ExportArgs,
    ExportOutcome,
    FidelityArgs,
    FidelityOutcome,
    InitArgs,
    Job,
    JobSpec,
    LogArgs,
    ModelFailure,
    OpenArgs,
    OpenOutcome,
    RepairLogArgs,
    ReportArgs,
    ReportOutcome,
    ReproduceArgs,
    ReproduceOutcome,
    TrackArgs,
    TrackOutcome,
    VerifyLogArgs,
)
from app.pdf import output_error as _output_error
from app.pdf import write_bytes as _write_bytes
from app.pdf import write_pdf
from app.video_jobs import job_track
from engine.progress import Cancelled

log = logging.getLogger(__name__)


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


def batch_progress_text(event: Any, names: Sequence[str]) -> str:
    """ "File 9 of 11: sub/c.jpg (8 done, 12 faces, about 00:40 left)": the file being worked on,
    not the last one finished; the end of the run in its own words."""
    done, total = event.files_done, event.files_total
    eta = "" if event.eta_s is None else f", about {_clock(event.eta_s)} left"
    counts = f"{done} done, {event.faces_done} faces{eta}"
    if event.kind in ("done", "cancelled") or done >= total:
        return f"Batch: {done}/{total} files, {event.faces_done} faces"
    current = f": {names[done]}" if done < len(names) else ""
    return f"File {done + 1} of {total}{current} ({counts})"


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
    failed = Signal(int, object)  # job id, app.errors.ErrorMessage
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
            payload = job.spec.handler(self, job)
            if not job.spec.reports_cancel:
                job.token.check()  # cancelled during the last step: drop the answer
        except Cancelled:
            self.cancelled.emit(job.id)
        except Exception as exc:  # every failure becomes a message; the thread lives on
            log.warning("job %d (%s) failed: %s", job.id, job.kind, exc, exc_info=True)
            self.failed.emit(job.id, errors.describe(exc))
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
        from engine import caselog, io

        job.token.set_progress(0, 3, "Reading the image")
        still = job.args.still if job.args.still is not None else io.load(job.args.path)
        job.token.check()
        found, used, fallback = self._find_faces(job, still.rgb, job.args.detector)
        job.token.set_progress(3, 3, f"{len(found)} face(s) found")
        job.token.check()  # a cancelled open is not logged: the analyst never saw the still
        self._record(job, "open", **caselog.open_fields(still, found, used))
        history = self._log.history(still.sha256) if self._log is not None else []
        return OpenOutcome(
            still=still, faces=found, history=history, detector=used, fallback=fallback
        )

    def _job_detect(self, job: Job) -> DetectOutcome:
        """The faces of the still on screen found again (another detector); logged as "detect"."""
        from engine import caselog

        still = job.args.still
        found, used, fallback = self._find_faces(job, still.rgb, job.args.detector)
        job.token.check()
        self._record(job, "detect", **caselog.open_fields(still, found, used))
        return DetectOutcome(faces=found, detector=used, fallback=fallback)

    def _find_faces(self, job: Job, rgb: np.ndarray, detector: str) -> tuple[list, str, bool]:
        """(faces, the detector that found them, whether HOG found none and the CNN was tried).

        "auto": dlib's HOG (fast, frontal faces), then its CNN (slower, finds smaller, turned
        and blurred faces) when HOG finds nothing."""
        from engine import faces

        first = "cnn" if detector == "cnn" else "hog"
        job.token.set_progress(1, 3, f"Looking for faces ({first.upper()} detector)")

        def before_cnn_fallback() -> None:
            job.token.check()
            job.token.set_progress(2, 3, "No face found by HOG: trying the CNN detector (slower)")

        found, used = faces.detect_with(rgb, detector, before_cnn_fallback)
        return found, used, used != first

    def _job_box(self, job: Job) -> Any:
        from engine import faces

        return faces.face_from_box(job.args.still.rgb, job.args.box)

    def _job_enhance(self, job: Job) -> EnhanceOutcome:
        still, face = job.args.still, job.args.face
        model_ids: Sequence[str] = job.args.model_ids
        scale: int = job.args.scale
        index: int = job.args.face_index
        keep_going: bool = job.args.keep_going
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
                    allow_shrink=job.args.allow_shrink,
                )
            except Cancelled:
                raise
            except Exception as exc:
                if not keep_going:
                    raise
                error = errors.describe(exc)
                log.warning("%s x%d failed: %s", model_id, scale, exc)
                outcome.errors[model_id] = error
                self.partial.emit(job.id, ModelFailure(model_id, error))
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
        """A folder run (engine.batch); faults go out as ``partial`` payloads as they happen.

        Progress names the file being worked on (the engine reports finished files; the run
        takes them in :func:`engine.batch.list_inputs` order). A cancelled run still answers
        with its summary: what was done before Cancel, kept and logged.
        """
        from app.batch_progress import QuietToken
        from engine import batch

        try:
            names = [
                rel
                for _, rel in batch.list_inputs(
                    Path(job.args.in_dir).expanduser().resolve(), job.args.recursive
                )
            ]
        except OSError:
            names = []

        def on_event(event) -> None:
            if event.kind == "fault":
                self.partial.emit(job.id, event)
                return
            job.token.set_progress(
                event.files_done, max(1, event.files_total), batch_progress_text(event, names)
            )

        summary = batch.run_batch(
            job.args.in_dir,
            job.args.out_dir,
            job.args.model_ids,
            job.args.scale,
            detector=job.args.detector,
            recursive=job.args.recursive,
            token=QuietToken(job.token),  # its own lines name the last file finished
            on_event=on_event,
            enhancer=self.enhancer,
            overwrite=job.args.overwrite,
            dask=job.args.dask,
        )
        self._log_batch(job, summary)
        return summary

    def _job_export(self, job: Job) -> ExportOutcome:
        """Write a PNG: ``rgb`` as given, or the full still rebuilt from ``still`` + ``results``.

        ``strip`` (optional) is the visible label, stacked below the image here.
        """
        from engine import io

        path = Path(job.args.path)
        forbidden = job.args.forbidden
        if same_file(path, forbidden):
            raise io.OutputError(
                path, "this is the evidence file that was opened; outputs are never written over it"
            )
        rgb = job.args.rgb
        if rgb is None:
            job.token.set_progress(0, 3, "Rebuilding the full image")
            rgb = full_image(job.args.still, job.args.results)
        image = rgb  # what the model (or the paste-back) made, without the label strip
        strip = job.args.strip
        if strip is not None and job.args.rgb is None:  # labelled full image: what was replaced
            from app.views.common import outline_pasted

            rgb = outline_pasted(rgb, job.args.results, job.args.still.width)
        if strip is not None:
            if strip.shape[1] != rgb.shape[1]:
                raise ValueError(f"label strip is {strip.shape[1]} px wide, image {rgb.shape[1]}")
            rgb = np.vstack([rgb, strip])
        # PNG compression of a large still takes seconds: the bar must not say "done" meanwhile
        job.token.set_progress(1, 3, f"Writing {path.name}")
        sha = io.save_png(path, rgb, job.args.text)
        job.token.set_progress(2, 3, "Logging the export")
        entry = None
        fields = job.args.log_fields
        if fields is not None:
            from engine import caselog

            fields = dict(fields)
            fields["outputs"] = [caselog.output_record(path, sha, rgb, job.args.role)]
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

        path = Path(job.args.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log = caselog.CaseLog(path, examiner=job.args.examiner or None)
        self._case_reference = str(job.args.case_reference or "")
        sha = job.args.still_sha256
        return CaseLogState(
            path=path,
            examiner=self._log.examiner,
            verification=self._log.verify(),
            history=None if sha is None else self._log.history(sha),
        )

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
        fields = dict(job.args.fields or {})
        fields["details"] = self._details(fields.get("details"))
        entry = log_.append(job.args.action, **fields)
        self.logged.emit(job.id, entry)
        return entry

    def _job_reproduce(self, job: Job) -> ReproduceOutcome:
        """Re-run a logged "enhance" entry (engine.caselog.reproduce) and log the verdict."""
        from engine import caselog, io

        entry = job.args.entry
        job.token.set_progress(0, 1, f"Re-running entry {entry.get('seq')}")
        report = caselog.reproduce(entry, self.enhancer, io.load)
        job.token.set_progress(1, 1, "Re-run done")
        self._record(job, "reproduce", **caselog.reproduce_fields(entry, report))
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
        from engine import caselog

        self._record(job, "batch", **caselog.batch_fields(summary, job.args.recursive))

    # ------------------------------------------------------------------ fidelity
    def _job_fidelity(self, job: Job) -> FidelityOutcome:
        """engine.fidelity.check_all on one face's outputs at one scale (0.3-0.9 s per output)."""
        from engine import fidelity

        results = list(job.args.results)
        # agreement's reference: the input with the most evidence (models may differ at Auto)
        first = max(results, key=lambda r: r.lr.shape[0])
        job.token.set_progress(0, 1, f"Fidelity checks of {len(results)} output(s)")
        report = fidelity.check_all(
            first.lr,
            {r.model_id: r.sr for r in results},
            first.input_landmarks,
            {r.model_id: r.output_landmarks for r in results},
            evidence_shrink={r.model_id: r.evidence_shrink for r in results},
            lrs={r.model_id: r.lr for r in results},
            evidence=first.provenance.get("evidence_quality"),  # sets the consistency line
        )
        job.token.set_progress(1, 1, "Fidelity checks done")
        return FidelityOutcome(face_index=first.face_index, scale=first.scale, report=report)

    # ------------------------------------------------------------------ case report
    def _job_report(self, job: Job) -> ReportOutcome:
        """HTML (engine.report.build_html) and an A4 PDF of it, per group of results.

        ``groups`` is a list of (suffix, results, fidelity) where ``fidelity`` maps a face index
        to its FidelityReport; the files are ``<html path stem><suffix>.html`` and ``.pdf``.
        Nothing is written over the evidence file or the case log.
        """
        from engine import report as reports
        from engine.provenance import utc_now

        html_path = Path(job.args.path)
        forbidden = [job.args.forbidden]
        if self._log is not None:
            forbidden += [self._log.path, self._log.head_path]
        groups = job.args.groups
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
            common = dict(
                examiner=job.args.examiner,
                case_reference=job.args.case_reference or None,
                faces=job.args.faces,
                generated_utc=utc_now(),
            )
            page = reports.build_html(
                job.args.still, results, fidelity_map or None, verification, **common
            )
            html_sha = _write_bytes(html_target, page.encode("utf-8"))
            written.append((html_target, html_sha))
            # The PDF for reading and printing: the provenance records stay in the HTML.
            printed = reports.build_html(
                job.args.still,
                results,
                fidelity_map or None,
                verification,
                provenance_in=(html_target.name, html_sha),
                **common,
            )
            title = reports.report_title(job.args.case_reference or None)
            written.append(
                (pdf_target, write_pdf(printed, pdf_target, title, job.args.examiner or ""))
            )
        job.token.set_progress(len(groups), len(groups), "Case report written")
        from engine import caselog

        enhancements = sum(len(g[1]) for g in groups)
        fields = caselog.report_fields(job.args.still, written, enhancements, verification)
        self._record(job, "report", **fields)
        return ReportOutcome(files=written, verification=verification, groups=len(groups))


def full_image(still: Any, results: Sequence[Any]) -> np.ndarray:
    """The still enlarged by the results' scale with every result's face pasted in.

    The worker drops ``Result.pasted`` after each run (see ``_job_enhance``), so it is rebuilt
    here from the alignment each Result keeps, only when a full image is exported.
    """
    from engine import enhance

    return enhance.paste_all(still.rgb, list(results))


W = EngineWorker  # the handlers, by their short name in the table below
# fmt: off
#: The one table of job kinds, keyed by their argument type: kind, handler, answer type, the
#: title shown when it fails; Cancel leaves the bookkeeping jobs alone; a job about the still on
#: screen is cancelled, and its answer dropped, when another still is opened.
JOBS: dict[type, JobSpec] = {spec.args: spec for spec in (
    JobSpec("init", InitArgs, EngineInfo, W._job_init,
            "The engine could not start", cancellable=False),
    JobSpec("open", OpenArgs, OpenOutcome, W._job_open,
            "Cannot open the image", survives_new_still=False),
    JobSpec("detect", DetectArgs, DetectOutcome, W._job_detect,
            "Face detection failed", survives_new_still=False),
    JobSpec("box", BoxArgs, "engine.faces.Face", W._job_box,
            "No face in that box", survives_new_still=False),
    JobSpec("enhance", EnhanceArgs, EnhanceOutcome, W._job_enhance,
            "Enhancement failed", survives_new_still=False),
    JobSpec("fidelity", FidelityArgs, FidelityOutcome, W._job_fidelity,
            "Fidelity checks failed", survives_new_still=False),
    JobSpec("export", ExportArgs, ExportOutcome, W._job_export,
            "Export failed"),
    JobSpec("batch", BatchArgs, "engine.batch.BatchSummary", W._job_batch,
            "The batch run did not start", pausable=True, reports_cancel=True),
    JobSpec("caselog", CaseLogArgs, CaseLogState, W._job_caselog,
            "The case log cannot be used", cancellable=False),
    JobSpec("repair_log", RepairLogArgs, CaseLogState, W._job_repair_log,
            "The case log was not repaired", cancellable=False),
    JobSpec("verify_log", VerifyLogArgs, "engine.caselog.VerifyReport", W._job_verify_log,
            "The case log cannot be verified"),
    JobSpec("log", LogArgs, dict, W._job_log,
            "The visible label stays on", cancellable=False),
    JobSpec("reproduce", ReproduceArgs, ReproduceOutcome, W._job_reproduce,
            "The entry cannot be re-run"),
    JobSpec("report", ReportArgs, ReportOutcome, W._job_report,
            "The case report was not written"),
    JobSpec("track", TrackArgs, TrackOutcome, job_track,
            "Track and fuse failed", survives_new_still=False),
)}
# fmt: on
del W
