"""The evidence line above the faces: what the file says about its own damage (JPEG quality
from its quantisation tables, noise level) and the model variant recommended for it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

NOT_ASSESSED = "Evidence quality: not assessed (no file): the robust variant is recommended."


class EvidenceInfo(QLabel):
    """One word-wrapped paragraph; its tooltip gives the reason in full."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evidenceInfo")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setMargin(4)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.clear_evidence()

    def clear_evidence(self) -> None:
        self.setText("")
        self.setToolTip("")
        self.setVisible(False)

    def set_evidence(
        self, evidence: Any, recommended: str, chosen: str, reason: str, restore: bool = False
    ) -> None:
        """``evidence``: engine.evidence_quality.EvidenceQuality or None; ``recommended`` and
        ``chosen``: model labels; ``reason``: the recommendation in plain words; ``restore``:
        the recommendation is an x1 restoration model, which nothing enlarging replaces and
        which runs only when its scale is chosen by hand."""
        quality = evidence.summary() if evidence is not None else None
        first = f"Evidence: {quality}." if quality else NOT_ASSESSED
        why = ""
        if evidence is not None and evidence.clean and evidence.recommended == "robust":
            why = " (a lossless file does not record what its pixels went through before)"
        if restore:
            why = " at the scale x1 restore (choose it by hand): nothing enlarges a face this size"
        lines = [first, f"Recommended: {recommended}{why}."]
        if chosen != recommended and not restore:
            lines.append(f"In use: {chosen} (your choice).")
        self.setText("\n".join(lines))
        self.setToolTip(reason)
        self.setVisible(True)
