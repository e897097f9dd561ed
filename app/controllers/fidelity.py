"""The fidelity checks of each output (engine.fidelity, in the worker): panel and grid tiles."""

from __future__ import annotations

from typing import Any

from app.controllers import Controller
from app.jobs import FidelityArgs, FidelityOutcome
from app.state import ResultKey, Scale, result_key
from app.views.fidelity_panel import CHECK_NAMES, value_text


class FidelityController(Controller):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.jobs: dict[int, list[ResultKey]] = {}  # running fidelity jobs -> the outputs
        self.then: Any = None  # called once no fidelity job is left (a waiting case report)

    def forget(self) -> None:
        """Another still: its checks are not wanted any more."""
        self.jobs = {}
        self.then = None

    def pending(self) -> set[ResultKey]:
        return {k for keys in self.jobs.values() for k in keys}

    def _title(self, result: Any) -> str:
        label = self.state.entry(result.model_id).label
        return f"{label} \u00d7{result.scale} \u00b7 face {result.face_index + 1}"  # scale used

    def show(self) -> None:
        """The panel for the output on screen; a job for its checks if they are not known yet."""
        panel, result = self.w.fidelity_panel, self.state.current
        if result is None:
            panel.clear()
            return
        key = self.state.current_key()
        known = self.state.model_fidelity.get(key)
        if known is not None:
            names = {e.id: e.label for e in self.state.entries}
            panel.set_fidelity(known[0], known[1], self._title(result), names)
            return
        panel.set_pending(self._title(result))
        if key not in self.pending():
            self.request([result])

    def request(self, results: list) -> int:
        keys = [result_key(r) for r in results]
        job_id = self.w.submit(
            FidelityArgs(results=list(results)),
            on_result=lambda outcome: self._done(outcome, keys),
            on_failed=lambda error: self._failed(keys, error),
            on_cancelled=lambda: self._cancelled(keys),
            on_finished=lambda: self._finished(job_id),
        )
        self.jobs[job_id] = keys
        return job_id

    def compare(self, face_index: int | None, scale: Scale) -> int | None:
        """Checks across every output of a face at a scale (agreement needs them together)."""
        if face_index is None:
            return None
        results = [
            r
            for (f, _, s), r in sorted(self.state.results.items(), key=_order)
            if f == face_index and s == scale
        ]
        if len(results) < 2:
            return None
        wanted = {r.model_id for r in results}
        for (f, _, s), (_, report) in self.state.model_fidelity.items():
            if f == face_index and s == scale and set(report.models) >= wanted:
                self.mark_tiles(face_index, scale)
                return None  # already checked together
        for keys in self.jobs.values():
            if {k[1] for k in keys if k[0] == face_index and k[2] == scale} >= wanted:
                return None  # on its way
        return self.request(results)

    def _done(self, outcome: FidelityOutcome, asked: list[ResultKey]) -> None:
        report, known_all = outcome.report, self.state.model_fidelity
        by_model = {key[1]: key for key in asked}  # the keys the results are cached under
        for model_id, model_fidelity in report.models.items():
            key = by_model[model_id]
            known = known_all.get(key)
            # A check against more outputs replaces one against fewer, never the other way.
            if known is None or len(known[1].models) <= len(report.models):
                known_all[key] = (model_fidelity, report)
        keys = {by_model[m] for m in report.models}
        if self.state.current_key() in keys:
            self.show()
        if asked:
            self.mark_tiles(outcome.face_index, asked[0][2])
        flagged = [m for m, mf in report.models.items() if mf.flagged]
        if flagged:
            names = ", ".join(self.state.entry(m).label for m in flagged)
            self.errors.status(f"Fidelity warning: {names} (see the checks under the output)")

    def _failed(self, keys: list[ResultKey], error: Any) -> None:
        # Background work: the panel says it, no dialog.
        if self.state.current_key() in keys:
            self.w.fidelity_panel.clear(f"The fidelity checks failed: {error.full()}")
        self.errors.status("Fidelity checks failed (see the panel under the output)")

    def _cancelled(self, keys: list[ResultKey]) -> None:
        if self.state.current_key() in keys:
            self.w.fidelity_panel.clear(
                "The fidelity checks were cancelled; show this output again to compute them."
            )

    def _finished(self, job_id: int) -> None:
        self.jobs.pop(job_id, None)
        if self.then is not None and not self.jobs:
            then, self.then = self.then, None
            then()

    def mark_tiles(self, face_index: int, scale: Scale) -> None:
        """Fidelity line on the grid's tiles, when the grid shows this face and scale."""
        if face_index != self.state.face_index or scale != self.state.scale:
            return
        for tile in self.w.grid_view.tiles():
            known = self.state.model_fidelity.get((face_index, tile.key, scale))
            if known is None or not tile.has_image():
                continue
            warnings = [
                f"{CHECK_NAMES[c.name].lower()} {value_text(c)}"
                for c in known[0].checks
                if c.status == "warn"
            ]
            tile.set_fidelity(warnings)


def _order(item: tuple) -> tuple:
    """Sort cached results by face, model, then scale ("auto" and factors side by side)."""
    (face, model, scale), _ = item
    return (face, model, str(scale))
