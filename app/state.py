"""The GUI's one state object: the still on screen, its faces, the results, their fidelity checks.

Controllers (:mod:`app.controllers`) read and change it; the window and views only show it.
``generation`` counts the stills opened: a job's answer about an older still is dropped.
Results are cached per (face index, model id, scale): models are deterministic, so re-running
one would only give the same bytes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import export, registry

AUTO = "auto"  # engine.resolution.AUTO: the scale chosen per face from its native resolution
RESTORE = registry.RESTORE_SCALE  # 1: "x1 restore", chosen by hand only (engine.resolution)
NUMERIC_SCALES = (2, 3, 4, 8)
SCALES = (AUTO, *NUMERIC_SCALES, RESTORE)
# the default scale of a session: enlargement only (x1 restore is chosen by hand, each time)
ENLARGE_SCALES = (AUTO, *NUMERIC_SCALES)

Scale = int | str  # a factor, or AUTO
ResultKey = tuple[int, str, Scale]  # (face index, model id, the scale asked for)


def parse_scale(value: Any, default: Scale = AUTO) -> Scale:
    """A scale from settings or a combo box: "auto", one of :data:`NUMERIC_SCALES` or 1."""
    if str(value).strip().lower() == AUTO:
        return AUTO
    try:
        scale = int(value)
    except (TypeError, ValueError):
        return default
    return scale if scale in SCALES else default


def scale_text(scale: Scale) -> str:
    """ "Auto", "\u00d74", or "\u00d71 restore"."""
    if scale == AUTO:
        return "Auto"
    return "\u00d71 restore" if scale == RESTORE else f"\u00d7{scale}"


def result_key(result: Any) -> ResultKey:
    """Where a Result is cached: under the scale the analyst asked for ("auto" or a factor)."""
    return export.result_key(result)


@dataclass
class SessionState:
    """Everything the window knows about the session; no widgets here."""

    model_id: str = "bicubic"
    scale: Scale = AUTO
    entries: list = field(default_factory=lambda: list(registry.MODELS))
    device: str = ""  # set when the engine has started
    statuses: dict[str, dict[int, str]] = field(default_factory=dict)  # model -> scale -> state
    still: Any = None  # engine.io.Still
    faces: list = field(default_factory=list)  # [engine.faces.Face]
    face_index: int | None = None
    results: dict[ResultKey, Any] = field(default_factory=dict)  # -> engine.enhance.Result
    current: Any = None  # the Result shown in the compare page
    # (face, model, scale) -> (ModelFidelity, the FidelityReport it came from)
    model_fidelity: dict[ResultKey, tuple[Any, Any]] = field(default_factory=dict)
    generation: int = 0  # stills opened so far
    caselog_state: Any = None  # app.jobs.CaseLogState, as the worker reports it
    log_entries: int = 0
    log_problem: str | None = None
    log_checked: str | None = None  # local time of the last verification ("14:05:09")
    label_removal: dict | None = None  # set while the visible label is off
    detector: str = "auto"  # the analyst's choice: "auto", "hog" or "cnn"
    detector_used: str = "hog"  # the detector that found the faces on screen

    def new_still(self, still: Any, faces: list) -> None:
        """A still was opened: forget everything that belonged to the previous one."""
        self.still = still
        self.faces = list(faces)
        self.results = {}
        self.model_fidelity = {}
        self.current = None
        self.face_index = None

    def current_key(self) -> ResultKey | None:
        r = self.current
        return None if r is None else result_key(r)

    # ------------------------------------------------------------------ models
    def entry(self, model_id: str) -> registry.ModelEntry:
        return registry.get(model_id)

    def model_state(self, model_id: str, scale: Scale) -> str:
        """ "installed", "missing", "invalid: ...", "not offered" or "unknown" (not checked yet).

        At Auto: "installed" when any scale is, else the state of its first scale."""
        entry = self.entry(model_id)
        if entry.restores and scale != RESTORE:  # x1 restore runs only when chosen by hand
            return "not offered"
        if scale == AUTO:
            states = [self.model_state(model_id, s) for s in entry.scales]
            return "installed" if "installed" in states else states[0]
        if scale not in entry.scales:
            return "not offered"
        if entry.is_baseline:
            return "installed"
        return self.statuses.get(model_id, {}).get(scale, "unknown")

    def runnable(self, model_id: str, scale: Scale | None = None) -> bool:
        return self.model_state(model_id, self.scale if scale is None else scale) == "installed"

    def runnable_models(self, scale: Scale | None = None) -> list[str]:
        return [e.id for e in self.entries if self.runnable(e.id, scale)]

    def model_text(self, entry: registry.ModelEntry) -> str:
        state = self.model_state(entry.id, self.scale)
        suffix = {
            "installed": "",
            "missing": " (no trained weights)",
            "unknown": " (checking weights\u2026)",
            "not offered": f" (not offered at {scale_text(self.scale)})",
        }.get(state, " (weights invalid)")
        return entry.label + suffix

    def unavailable_reason(self, entry: registry.ModelEntry) -> str:
        state = self.model_state(entry.id, self.scale)
        if state == "missing":
            return f"no trained weights at {scale_text(self.scale)}"
        if state == "not offered":
            return f"not offered at {scale_text(self.scale)}"
        if state == "unknown":
            return "weights not checked yet"
        return f"weights unusable: {state.removeprefix('invalid: ')}"
