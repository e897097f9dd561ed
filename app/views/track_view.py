"""A face track's result: the fused face beside the single frame, and the ranked frames.

Shown by :class:`app.controllers.video.VideoEvidenceController` after a "track" job: the model
on the reference frame alone ("single frame N") and on the face fused from K frames ("fused
from K frames"), same model, scale and framing, so the two compare pixel for pixel; under them
every frame of the track, best first, with its score, whether it was fused (or rejected, and
why) and the reasons for its rank.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.views.common import rgb_to_pixmap

SHOWN_PX = 256  # the 128-px outputs, enlarged by pixel repetition (no smoothing added)


class TrackDialog(QDialog):
    """Fused vs single frame, and the track's ranking (a :class:`app.jobs.TrackOutcome`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Face track and fusion")
        self.single_image, self.fused_image = QLabel(), QLabel()
        self.single_caption, self.fused_caption = QLabel(), QLabel()
        grid = QGridLayout()
        for column, (image, caption) in enumerate(
            ((self.single_image, self.single_caption), (self.fused_image, self.fused_caption))
        ):
            image.setFixedSize(SHOWN_PX, SHOWN_PX)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption.setWordWrap(True)
            grid.addWidget(image, 0, column)
            grid.addWidget(caption, 1, column)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.ranking = QTreeWidget()
        self.ranking.setHeaderLabels(["frame", "score", "fusion", "why this rank"])
        self.ranking.setRootIsDecorated(False)
        self.ranking.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.ranking, 1)
        layout.addWidget(buttons)
        self.resize(720, 640)

    def set_outcome(self, outcome: Any) -> None:
        """Show a :class:`app.jobs.TrackOutcome`."""
        e = outcome.enhancement
        used, rejected = outcome.used, outcome.rejected()
        for label, rgb in ((self.single_image, e.sr_single), (self.fused_image, e.sr_fused)):
            label.setPixmap(
                rgb_to_pixmap(rgb).scaled(
                    SHOWN_PX,
                    SHOWN_PX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )  # fmt: skip
            )
        tag = f"{outcome.model_id} \u00d7{outcome.scale}"
        self.single_caption.setText(f"single frame {e.reference}\n{tag}")
        self.fused_caption.setText(
            f"fused from {len(used)} frames ({', '.join(map(str, used))})\n{tag}"
        )
        start, stop = outcome.searched
        track = outcome.track
        lines = [
            f"Track {track.id}: {len(track.faces)} frames with this face "
            f"({track.first} to {track.last}; frames {start} to {stop - 1} searched). "
            f"Scale {outcome.scale_note}.",
            "Both results are AI output: an investigative lead, not evidence.",
            *e.notes,
        ]
        if outcome.log_entry is not None:
            lines.append(f"Case log entry {outcome.log_entry.get('seq')} (track_fuse).")
        self.summary.setText("\n".join(lines))
        self.ranking.clear()
        for r in outcome.ranked:
            if r.frame_index in used:
                fate = "reference, fused" if r.frame_index == e.reference else "fused"
            elif r.frame_index in rejected:
                fate = f"rejected: {rejected[r.frame_index]}"
            else:
                fate = "not chosen"
            item = QTreeWidgetItem([str(r.frame_index), f"{r.score:.3f}", fate, r.words])
            item.setToolTip(3, r.words)
            item.setToolTip(2, fate)
            self.ranking.addTopLevelItem(item)
        for column in range(3):
            self.ranking.resizeColumnToContents(column)
