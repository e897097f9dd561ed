"""The model and scale pickers, Enhance (one model) and Compare all models (the grid)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt

from app.controllers import Controller
from app.jobs import EngineInfo, EnhanceArgs, EnhanceOutcome, InitArgs, ModelFailure
from app.state import SCALES
from app.views.common import ms_text, output_label
from app.views.compare_view import ComparePair

log = logging.getLogger(__name__)


class EnhanceController(Controller):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.grid_job: int | None = None  # the comparison filling the grid

    # ------------------------------------------------------------------ engine and models
    def check_engine(self) -> int:
        """Start the engine (or recheck the installed weights): device and model states."""
        return self.w.submit(InitArgs(), on_result=self._engine_ready, on_failed=self._no_engine)

    def _engine_ready(self, info: EngineInfo) -> None:
        w, state = self.w, self.state
        state.device = info.device
        shown = "CPU" if info.device == "cpu" else f"CUDA \u00b7 {info.device}"
        w.device_label.setText(f"Device: {shown}")
        w.device_label.setToolTip(info.device)
        state.statuses = {entry.id: dict(states) for entry, states in info.models}
        self.refresh_models()
        dialog = w.exporting.batch_dialog
        if dialog is not None and not dialog.is_running():
            dialog.refresh_models()
        missing = [e.label for e in state.entries if not e.is_baseline and not state.runnable(e.id)]
        if missing:
            log.info("models without usable weights at x%d: %s", state.scale, ", ".join(missing))

    def _no_engine(self, error: Any) -> None:
        self.w.device_label.setText("Device: engine failed")
        self.errors.failure(error, "The engine could not start")

    def refresh_models(self) -> None:
        """Label and enable the model pickers for the current scale; fall back if needed."""
        w, state = self.w, self.state
        if not state.runnable(state.model_id) and (
            state.model_state(state.model_id, state.scale) != "unknown"
        ):
            previous = state.model_id
            state.model_id = "bicubic"
            if previous != "bicubic":
                self.errors.status(
                    f"{state.entry(previous).label} cannot run at \u00d7{state.scale}; "
                    "using Bicubic"
                )
        for i, entry in enumerate(state.entries):
            model_state = state.model_state(entry.id, state.scale)
            text = state.model_text(entry)
            tip = entry.citation if model_state == "installed" else f"{text}. {model_state}"
            action = w.model_actions[entry.id]
            action.setText(text.replace("&", "&&"))  # "Wu & Chen": not a mnemonic
            action.setEnabled(model_state == "installed")
            action.setToolTip(tip)
            action.setChecked(entry.id == state.model_id)
            w.model_combo.setItemText(i, text)
            w.model_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
            w.model_combo.model().item(i).setEnabled(model_state == "installed")
        w.model_combo.setCurrentIndex(w.model_combo.findData(state.model_id))
        w.scale_combo.setCurrentIndex(w.scale_combo.findData(state.scale))
        w.scale_actions[state.scale].setChecked(True)
        w.model_label.setText(
            f"Model: {state.entry(state.model_id).label} \u00b7 \u00d7{state.scale}"
        )
        w.update_actions()

    def set_model(self, model_id: str) -> None:
        if not self.state.runnable(model_id):
            entry = self.state.entry(model_id)
            self.errors.status(f"{self.state.model_text(entry)}: it cannot run")
            self.refresh_models()
            return
        self.state.model_id = model_id
        self.refresh_models()
        self.show_cached()

    def set_scale(self, scale: int) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}")
        self.state.scale = int(scale)
        self.refresh_models()
        self.show_cached()

    # ------------------------------------------------------------------ enhancing
    def enhance(self) -> int | None:
        """Enhance the selected face with the chosen model (cached results are shown at once)."""
        state = self.state
        if state.still is None or state.face_index is None:
            self.errors.status("Open a still and select a face first")
            return None
        if not state.runnable(state.model_id):
            entry = state.entry(state.model_id)
            self.errors.status(f"{state.model_text(entry)}: it cannot run")
            return None
        if self.show_cached():
            self.w.show_page("side" if self.w.compare_view.mode() == "side" else "wipe")
            return None
        return self.w.submit(
            self._args([state.model_id]),
            on_partial=self._partial,
            on_result=self._enhanced,
        )

    def _args(self, model_ids: list[str], keep_going: bool = False) -> EnhanceArgs:
        state = self.state
        return EnhanceArgs(
            still=state.still,
            face=state.faces[state.face_index],
            face_index=state.face_index,
            model_ids=model_ids,
            scale=state.scale,
            keep_going=keep_going,
            allow_shrink=True,  # until the toolbar's Auto scale and its shrink warning land
        )

    def compare_all(self) -> int | None:
        """Every model with installed weights at this scale, plus bicubic and lanczos, in a grid."""
        state, grid = self.state, self.w.grid_view
        if state.still is None or state.face_index is None:
            self.errors.status("Open a still and select a face first")
            return None
        model_ids = state.runnable_models()
        unavailable = [e for e in state.entries if e.id not in model_ids]
        grid.set_tiles(
            [("input", "Input (aligned, nearest)")]
            + [(mid, state.entry(mid).label) for mid in model_ids]
            + [(e.id, e.label) for e in unavailable]
        )
        for entry in unavailable:  # shown, so the analyst sees what is not there and why
            grid.tile(entry.id).set_unavailable(state.unavailable_reason(entry))
        cached = [state.results.get((state.face_index, mid, state.scale)) for mid in model_ids]
        for result in cached:
            if result is not None:
                self.fill_tile(result)
        todo = [mid for mid, result in zip(model_ids, cached, strict=True) if result is None]
        self.w.show_page("grid")
        if not todo:
            self.grid_job = None
            self.w.fidelity.compare(state.face_index, state.scale)
            return None
        self.grid_job = self.w.submit(
            self._args(todo, keep_going=True),
            on_partial=self._grid_partial,
            on_result=self._compared,
            on_cancelled=self.w.grid_view.mark_cancelled,
            on_finished=self._grid_finished,
        )
        return self.grid_job

    def _partial(self, payload: Any) -> None:
        if not isinstance(payload, ModelFailure):
            self.state.results[(payload.face_index, payload.model_id, payload.scale)] = payload

    def _grid_partial(self, payload: Any) -> None:
        if isinstance(payload, ModelFailure):
            tile = self.w.grid_view.tile(payload.model_id)
            if tile is not None:
                tile.set_failed(payload.error.text.split("\n")[0])
            return
        self._partial(payload)
        self.fill_tile(payload)

    def _grid_finished(self) -> None:
        self.grid_job = None

    def _store(self, outcome: EnhanceOutcome) -> None:
        for result in outcome.results:
            self.state.results[(result.face_index, result.model_id, result.scale)] = result

    def _compared(self, outcome: EnhanceOutcome) -> None:
        self._store(outcome)
        failed = len(outcome.errors)
        shown = sum(1 for tile in self.w.grid_view.tiles()[1:] if tile.has_image())
        self.errors.status(
            f"Compared {shown} model(s) at \u00d7{outcome.scale}"
            + (f"; {failed} failed (see their tiles)" if failed else ""),
            15000,
        )
        self.w.fidelity.compare(outcome.face_index, outcome.scale)

    def _enhanced(self, outcome: EnhanceOutcome) -> None:
        self._store(outcome)
        if outcome.results:
            self.show_result(outcome.results[-1])
            self.w.show_page("side" if self.w.compare_view.mode() == "side" else "wipe")
            t = outcome.results[-1].timings
            self.errors.status(
                f"Enhanced in {ms_text(t.get('total'))} (model {ms_text(t.get('model'))})", 15000
            )

    def show_cached(self) -> bool:
        """Show the cached result of the current face, model and scale, if there is one."""
        state = self.state
        if state.face_index is None:
            return False
        result = state.results.get((state.face_index, state.model_id, state.scale))
        if result is None:
            state.current = None
            self.w.compare_view.set_pair(None)
            self.w.fidelity_panel.clear()
            self.w.update_actions()
            return False
        self.show_result(result)
        return True

    def show_result(self, result: Any) -> None:
        """Put one Result in the compare page, with its fidelity checks (computed if needed)."""
        self.state.current = result
        self.w.fidelity.show()
        entry = self.state.entry(result.model_id)
        self.w.compare_view.set_pair(
            ComparePair(
                lr=result.lr,
                sr=result.sr,
                input_landmarks=result.input_landmarks,
                output_landmarks=result.output_landmarks,
                model_name=entry.label,
                label=output_label(entry.id, entry.paper),
                scale=result.scale,
                time_ms=result.timings.get("model"),
            )
        )
        self.w.update_actions()

    def fill_tile(self, result: Any) -> None:
        from engine import imaging

        grid = self.w.grid_view
        input_tile = grid.tile("input")
        if input_tile is not None and not input_tile.has_image():
            side = result.sr.shape[0]
            shown = imaging.resize(result.lr, side, side, "nearest")
            input_tile.set_image(
                shown,
                f"{result.lr.shape[1]}\u00d7{result.lr.shape[0]} px aligned input",
                None,
                clickable=False,
            )
        tile = grid.tile(result.model_id)
        if tile is None:
            return
        entry = self.state.entry(result.model_id)
        t = result.timings
        tile.set_image(
            result.sr,
            f"\u00d7{result.scale} \u00b7 model {ms_text(t.get('model'))} "
            f"\u00b7 total {ms_text(t.get('total'))}",
            output_label(entry.id, entry.paper),
        )

    def tile_clicked(self, model_id: str) -> None:
        state = self.state
        if state.face_index is None:
            return
        result = state.results.get((state.face_index, model_id, state.scale))
        if result is None:
            return
        self.show_result(result)
        self.w.show_page("side")
