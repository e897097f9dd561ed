"""A face track's result and its controls: the fused face beside the single frame, the ranked
frames (tick to pick, untick to exclude), and the fusion settings.

Shown by :class:`app.controllers.video.VideoEvidenceController` after a "track" job: the model
on the reference frame alone ("single frame N") and on the face fused from K frames ("fused
from K frames"), same model, scale and framing, so the two compare pixel for pixel; a plain
sentence on how the fused face was sized (the stills' resolution policy); under them every
frame of the track, best first, with its score, whether it was fused (or rejected, and why) and
the reasons for its rank. Above them the settings the next run uses: how many frames to fuse,
the frames to search, the detector. Widgets only: the controller reads :meth:`settings` and
submits the job.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs import TRACK_RADIUS
from app.views.common import rgb_to_pixmap

SHOWN_PX = 256  # the 128-px outputs, enlarged by pixel repetition (no smoothing added)
DEFAULT_FUSE = 8
DETECTORS = (("Auto", "auto"), ("HOG", "hog"), ("CNN", "cnn"))


class TrackDialog(QDialog):
    """Fused vs single frame, the track's ranking and the fusion settings."""

    fuseRequested = Signal()  # "Fuse again" with these settings and these frames
    exportRequested = Signal()  # save the fused face that no model enlarged (128 px or more)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Face track and fusion")
        self._key: tuple | None = None  # (frame in use, face box): the picks belong to it
        self._chosen: list[int] = []  # the frames given to the last fusion
        self._edited = False  # the analyst ticked or unticked a frame since then
        self._filling = False
        self.fuse = QSpinBox()
        self.fuse.setRange(1, 64)
        self.fuse.setValue(DEFAULT_FUSE)
        self.fuse.setToolTip(
            "How many frames to fuse: the frame in use and the best-ranked others. Ticking or "
            "unticking frames below fuses exactly the ticked ones instead."
        )
        self.first, self.last = QSpinBox(), QSpinBox()
        for box, tip in ((self.first, "first"), (self.last, "last")):
            box.setToolTip(f"The {tip} frame searched for the face")
        self.detector = QComboBox()
        for text, key in DETECTORS:
            self.detector.addItem(text, key)
        self.detector.setToolTip(
            "Auto: dlib's HOG, then its CNN on a frame where HOG finds no face (as for stills)"
        )
        self.again = QPushButton("Fuse again")
        self.again.setToolTip("Track and fuse with these settings and the ticked frames")
        self.again.clicked.connect(self.fuseRequested)
        controls = QHBoxLayout()
        for text, widget in (
            ("Frames to fuse", self.fuse),
            ("Search frames", self.first),
            ("to", self.last),
            ("Detector", self.detector),
        ):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.again)
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
        self.ranking.itemChanged.connect(self._ticked)
        self.hint = QLabel(
            "Tick a frame to fuse it, untick it to leave it out, then \u201cFuse again\u201d."
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        # A model output is exported from the File menu (it is the output on screen); a face
        # fused but not enlarged is no model output, so it is saved from here.
        self.export = buttons.addButton(
            "Export fused face\u2026", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.export.setToolTip("Save the averaged face, labelled, with its frames and hashes")
        self.export.clicked.connect(self.exportRequested)
        self.export.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(grid)
        layout.addWidget(self.summary)
        layout.addWidget(self.hint)
        layout.addWidget(self.ranking, 1)
        layout.addWidget(buttons)
        self.resize(760, 720)

    # ------------------------------------------------------------------ settings
    def prepare(
        self, frame_index: int, frame_count: int, box: tuple, detector: str = "auto"
    ) -> None:
        """Before a run: for another frame or face the range goes back to the frames around
        it, the detector to the stills' choice, and the picks are forgotten."""
        key = (frame_index, tuple(round(v, 1) for v in box))
        for spin in (self.first, self.last):
            spin.setRange(0, max(0, frame_count - 1))
        if key == self._key:
            return
        self._key = key
        self.first.setValue(max(0, frame_index - TRACK_RADIUS))
        self.last.setValue(min(frame_count - 1, frame_index + TRACK_RADIUS))
        self.detector.setCurrentIndex(max(0, self.detector.findData(detector)))
        self._chosen, self._edited = [], False
        self.ranking.clear()

    def settings(self) -> dict[str, Any]:
        """The TrackArgs fields the analyst set: frames searched, N, detector, picks."""
        out: dict[str, Any] = {
            "start": self.first.value(),
            "stop": self.last.value() + 1,
            "fuse": self.fuse.value(),
            "detector": self.detector.currentData(),
        }
        if self._edited:
            ticked = self.ticked()
            out["use"] = tuple(ticked)
            out["exclude"] = tuple(sorted(set(self._chosen) - set(ticked)))
        return out

    def ticked(self) -> list[int]:
        items = (self.ranking.topLevelItem(i) for i in range(self.ranking.topLevelItemCount()))
        return sorted(
            int(item.text(0)) for item in items if item.checkState(0) == Qt.CheckState.Checked
        )

    def _ticked(self, item: QTreeWidgetItem, column: int) -> None:
        if not self._filling and column == 0:
            self._edited = True
            self.fuse.setValue(max(1, len(self.ticked())))

    # ------------------------------------------------------------------ result
    def set_outcome(self, outcome: Any) -> None:
        """Show a :class:`app.jobs.TrackOutcome`."""
        e = outcome.enhancement
        used, rejected = outcome.used, outcome.rejected()
        if e.enlarged:
            pair = (e.sr_single, e.sr_fused)
            tag = f"{outcome.model_id} \u00d7{outcome.scale}"
        else:  # 128 px or more: the frames averaged at the face's own size, no model
            pair = (e.fused.single, e.fused.lr)
            tag = f"{e.fused.lr.shape[0]} px, not enlarged (no model)"
        for label, rgb in zip((self.single_image, self.fused_image), pair, strict=True):
            label.setPixmap(
                rgb_to_pixmap(rgb).scaled(
                    SHOWN_PX,
                    SHOWN_PX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )  # fmt: skip
            )
        self.single_caption.setText(f"single frame {e.reference}\n{tag}")
        self.fused_caption.setText(
            f"fused from {len(used)} frames ({', '.join(map(str, used))})\n{tag}"
        )
        start, stop = outcome.searched
        track = outcome.track
        lines = [
            f"Track {track.id}: {len(track.faces)} frames with this face "
            f"({track.first} to {track.last}; frames {start} to {stop - 1} searched).",
            outcome.scale_note,
            "Both results are AI output: an investigative lead, not evidence."
            if e.enlarged
            else "Averaged frames: still not the recorded pixels of any one frame.",
            *[n for n in e.notes if n != outcome.scale_note],
        ]
        if outcome.result is not None:
            lines.append("The fused output is in the compare page: export it, check it, report it.")
        self.export.setVisible(outcome.result is None)
        if outcome.log_entry is not None:
            lines.append(f"Case log entry {outcome.log_entry.get('seq')} (track_fuse).")
        self.summary.setText("\n".join(lines))
        self._fill(outcome, used, rejected)

    def _fill(self, outcome: Any, used: list[int], rejected: dict[int, str]) -> None:
        reference = outcome.enhancement.reference
        self._filling = True
        self.ranking.clear()
        for r in outcome.ranked:
            if r.frame_index in used:
                fate = "reference, fused" if r.frame_index == reference else "fused"
            elif r.frame_index in rejected:
                fate = f"rejected: {rejected[r.frame_index]}"
            else:
                fate = "not chosen"
            item = QTreeWidgetItem([str(r.frame_index), f"{r.score:.3f}", fate, r.words])
            flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
            if r.frame_index == reference:  # the frame in use is always fused
                flags &= ~Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags)
            chosen = r.frame_index in outcome.chosen
            item.setCheckState(0, Qt.CheckState.Checked if chosen else Qt.CheckState.Unchecked)
            item.setToolTip(3, r.words)
            item.setToolTip(2, fate)
            self.ranking.addTopLevelItem(item)
        for column in range(3):
            self.ranking.resizeColumnToContents(column)
        self._chosen, self._edited = list(outcome.chosen), False
        self._filling = False
