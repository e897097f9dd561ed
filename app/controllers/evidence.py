"""Evidence quality on load: show what the file says about its damage and pick the model
variant it calls for (engine.evidence_quality); the analyst may override, and the engine
records the choice and its reason in every output's provenance ("model_choice")."""

from __future__ import annotations

from typing import Any

from app.controllers import Controller
from engine import evidence_quality, resolution

VARIANT_TIP = (
    "Which variant for which input:\n"
    "\u2022 Robust: compressed, noisy or blurred evidence (CCTV stills, video frames, JPEGs "
    "from phones or the web, DVR exports and screenshots, or when unsure). Chosen for you "
    "unless the file is a good JPEG with little noise.\n"
    "\u2022 Clean-trained: a face known never to have been compressed, or a JPEG of quality "
    "95 or better with little noise. On damaged input it sharpens JPEG blocks and noise into "
    "detail that is not there.\n"
    "Hover over a model for its own advice."
)


class EvidenceController(Controller):
    """Keeps ``state.model_choice`` (the engine's :func:`evidence_quality.model_choice` for the
    still on screen and the selected face) and the evidence line up to date."""

    def still_opened(self) -> None:
        """A still is on screen: switch to the recommended model, say what and why."""
        choice = self.choice(self.state.model_id)
        if choice is None:
            return
        recommended = choice["recommended"]
        if recommended != self.state.model_id and self.state.runnable(recommended):
            self.w.enhancing.set_model(recommended)  # refreshes the pickers, calls show()
        self.show()

    def choice(self, chosen: str) -> dict[str, Any] | None:
        """engine.evidence_quality.model_choice for the still on screen (None without one)."""
        still = self.state.still
        if still is None:
            return None
        return evidence_quality.model_choice(
            getattr(still, "evidence", None), chosen, self._available
        )

    def show(self) -> None:
        """The evidence line and the model picker's tooltip for the model now chosen."""
        info = self.w.evidence_info
        choice = self.choice(self.state.model_id)
        self.w.model_combo.setToolTip(VARIANT_TIP)
        if choice is None:
            info.clear_evidence()
            return
        recommended = self.state.entry(choice["recommended"]).label
        chosen = self.state.entry(choice["chosen"]).label
        evidence = getattr(self.state.still, "evidence", None)
        restore = (
            self.state.entry(choice["recommended"]).restores
            and not self.state.entry(choice["chosen"]).restores
        )
        info.set_evidence(evidence, recommended, chosen, choice["reason"], restore)
        self.w.model_combo.setToolTip(f"{VARIANT_TIP}\n\nFor this still: {choice['reason']}")

    def _available(self, model_id: str) -> bool:
        """Whether the model runs the selected face at the chosen scale (no shrinking), or,
        without a face, whether its weights are installed at that scale: the engine's rule."""
        state = self.state
        if not state.runnable(model_id):
            return False
        if state.face_index is None or not state.faces:
            return True
        try:
            return self.w.enhancing.plan(model_id).runs
        except (resolution.ShrinkRefused, ValueError):
            return False

    @staticmethod
    def _variant_words(variant: str) -> str:
        return {"robust": "robust variant", "psnr": "clean-trained variant"}.get(variant, variant)
