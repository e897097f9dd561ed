"""The model and scale pickers, Enhance (one model) and Compare all models (the grid)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.controllers import Controller
from app.jobs import EngineInfo, EnhanceArgs, EnhanceOutcome, InitArgs, ModelFailure
from app.state import AUTO, SCALES, result_key, scale_text
from app.views.common import ms_text, output_label
from app.views.compare_view import ComparePair, evidence_view
from engine import resolution

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
            log.info("models without usable weights at %s: %s", state.scale, ", ".join(missing))

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
            runnable = state.runnable_models()
            # Bicubic, or at x1 restore (where it is not offered) the first restoration model
            state.model_id = "bicubic" if "bicubic" in runnable or not runnable else runnable[0]
            if previous != state.model_id:
                self.errors.status(
                    f"{state.entry(previous).label} cannot run at {scale_text(state.scale)}; "
                    f"using {state.entry(state.model_id).label}"
                )
        for i, entry in enumerate(state.entries):
            model_state = state.model_state(entry.id, state.scale)
            text = state.model_text(entry)
            # which input the model is for, in plain words (engine.registry.USE_WHEN)
            tip = (
                f"{entry.use_when}\n\n{entry.citation}"
                if model_state == "installed"
                else f"{text}. {model_state}"
            )
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
            f"Model: {state.entry(state.model_id).label} \u00b7 {scale_text(state.scale)}"
        )
        w.evidence.show()  # the recommendation against the model now chosen
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

    def set_scale(self, scale: int | str) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}")
        self.state.scale = scale if scale == AUTO else int(scale)
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
        try:
            plan = self.plan(state.model_id)
        except resolution.ShrinkRefused as refused:
            self.confirm_shrink(refused.plan)
            return None
        if not plan.runs:
            self.show_native(plan)
            return None
        return self._submit_one(allow_shrink=False)

    def _submit_one(self, allow_shrink: bool) -> int:
        return self.w.submit(
            self._args([self.state.model_id], allow_shrink=allow_shrink),
            on_partial=self._partial,
            on_result=self._enhanced,
        )

    def plan(self, model_id: str, allow_shrink: bool = False) -> resolution.Plan:
        """How ``model_id`` meets the selected face at the chosen scale (engine.resolution);
        raises ShrinkRefused for a fixed scale that would shrink it."""
        state = self.state
        entry = state.entry(model_id)
        installed = [s for s in entry.scales if state.model_state(model_id, s) == "installed"]
        face = state.faces[state.face_index]
        return resolution.plan(face, entry, state.scale, installed, allow_shrink=allow_shrink)

    def confirm_shrink(self, plan: resolution.Plan) -> QMessageBox:
        """Ask before running a fixed scale that shrinks the face (a warning, default: no)."""
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "This scale shrinks the evidence",
            f"{plan.message}\n\nAuto would enhance this face without shrinking it. If you run "
            "it anyway, the fidelity panel flags the result, the case log records the shrink "
            f"factor ({resolution.times(plan.evidence_shrink)}), and the output is not pasted "
            "back over the recorded pixels.",
            QMessageBox.StandardButton.NoButton,
            self.w,
        )
        box.setObjectName("shrinkDialog")
        run = box.addButton("Enhance anyway", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: button is run and self._submit_one(True))
        box.open()
        return box

    def show_native(self, plan: resolution.Plan) -> None:
        """Nothing runs for this face (already 128 px or more, or no file fits): show its
        recorded pixels and say why, in plain words."""
        state = self.state
        face = state.faces[state.face_index]
        crop, box = resolution.evidence_crop(state.still.rgb, face)
        state.current = None
        self.w.compare_view.show_native(crop, box, plan.message)
        self.w.fidelity_panel.clear()
        self.w.show_page("side")
        self.errors.status(plan.message, 15000)
        self.w.update_actions()

    def _args(
        self, model_ids: list[str], keep_going: bool = False, allow_shrink: bool = False
    ) -> EnhanceArgs:
        state = self.state
        return EnhanceArgs(
            still=state.still,
            face=state.faces[state.face_index],
            face_index=state.face_index,
            model_ids=model_ids,
            scale=state.scale,
            keep_going=keep_going,
            allow_shrink=allow_shrink,
        )

    def compare_all(self) -> int | None:
        """Every model with installed weights at this scale, plus bicubic and lanczos, in a grid."""
        state, grid = self.state, self.w.grid_view
        if state.still is None or state.face_index is None:
            self.errors.status("Open a still and select a face first")
            return None
        runnable = state.runnable_models()
        # A model is left out where it would shrink this face (or, at Auto, where nothing fits).
        reasons = {e.id: state.unavailable_reason(e) for e in state.entries if e.id not in runnable}
        for model_id in runnable:
            try:
                plan = self.plan(model_id)
            except resolution.ShrinkRefused as refused:
                reasons[model_id] = refused.plan.message
                continue
            if not plan.runs:
                reasons[model_id] = plan.message
        model_ids = [m for m in runnable if m not in reasons]
        unavailable = [e for e in state.entries if e.id in reasons]
        face = state.faces[state.face_index]
        crop, _ = resolution.evidence_crop(state.still.rgb, face)
        grid.set_tiles(
            [("evidence", "Recorded pixels"), ("input", "Model input")]
            + [(mid, state.entry(mid).label) for mid in model_ids]
            + [(e.id, e.label) for e in unavailable]
        )
        grid.tile("evidence").set_image(
            evidence_view(crop, 128),
            f"{crop.shape[1]}\u00d7{crop.shape[0]} px of the still, as recorded "
            "(each block is one pixel)",
            None,
            clickable=False,
        )
        for entry in unavailable:  # shown, so the analyst sees what is not there and why
            grid.tile(entry.id).set_unavailable(reasons[entry.id])
        if not model_ids:
            self.w.show_page("grid")
            self.errors.status(f"No model runs on this face: {face_words(face)}", 15000)
            return None
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
            self.state.results[result_key(payload)] = payload

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
            self.state.results[result_key(result)] = result

    def _compared(self, outcome: EnhanceOutcome) -> None:
        self._store(outcome)
        failed = len(outcome.errors)
        shown = sum(1 for tile in self.w.grid_view.tiles()[1:] if tile.has_image())
        self.errors.status(
            f"Compared {shown} model(s) at {scale_text(outcome.scale)}"
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
        state = self.state
        state.current = result
        # The pickers name what is on screen (a grid tile, or a result that arrived after
        # the analyst picked another model, shows another model's output).
        _, model_id, scale = result_key(result)
        fused = getattr(result, "fusion", None)
        if fused is None and (model_id, scale) != (state.model_id, state.scale):
            state.model_id, state.scale = model_id, scale
            self.refresh_models()
        self.w.fidelity.show()
        entry = state.entry(result.model_id)
        evidence = None
        restored = getattr(result, "crop_box", None) is not None  # lr is the recorded crop
        if not restored and state.still is not None and 0 <= result.face_index < len(state.faces):
            evidence = resolution.evidence_crop(state.still.rgb, state.faces[result.face_index])
        self.w.compare_view.set_pair(
            ComparePair(
                lr=result.lr,
                sr=result.sr,
                input_landmarks=result.input_landmarks,
                output_landmarks=result.output_landmarks,
                model_name=entry.label
                if fused is None
                else f"{entry.label} \u00b7 fused from {fused['frames_used']} frames",
                label=output_label(entry.id, entry.paper),
                scale=result.scale,
                time_ms=result.timings.get("model"),
                evidence=None if evidence is None else evidence[0],
                plan=getattr(result, "plan", None),
                fused_frames=0 if fused is None else int(fused["frames_used"]),
            )
        )
        self.w.update_actions()

    def fill_tile(self, result: Any) -> None:
        from engine import imaging

        grid = self.w.grid_view
        input_tile = grid.tile("input")
        if input_tile is not None and not input_tile.has_image():
            if getattr(result, "crop_box", None) is not None:  # x1 restore: the recorded crop
                h, w = result.lr.shape[:2]
                input_tile.set_image(
                    result.lr,
                    f"{w}\u00d7{h} px of the still, not aligned, not resampled (x1 restore)",
                    None,
                    clickable=False,
                )
            else:
                side = result.sr.shape[0]
                shown = imaging.resize(result.lr, side, side, "nearest")
                input_tile.set_image(
                    shown,
                    f"aligned, resampled to {result.lr.shape[0]} px: not the recorded pixels",
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
            f"{how_enlarged(result)} \u00b7 model {ms_text(t.get('model'))} "
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


def face_words(face: Any) -> str:
    """ "native 41 px, eyes 11 px apart" for a face (engine.faces.Face)."""
    return f"native {face.native_frame_px:.0f} px, eyes {face.interocular_px:.0f} px apart"


def how_enlarged(result: Any) -> str:
    """ "\u00d74", or "native 75 px \u2192 \u00d71.71" for a face run at its native size."""
    plan = getattr(result, "plan", None)
    fused = getattr(result, "fusion", None)
    tail = "" if fused is None else f" \u00b7 fused from {fused['frames_used']} frames"
    if plan is not None and plan.mode == "native":
        return f"native {plan.lr_size} px \u2192 \u00d7{plan.factor:.2f}{tail}"
    return scale_text(result.scale) + tail
