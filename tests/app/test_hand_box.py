"""A face box drawn by hand is refined before anything runs: the landmarks are fitted in the
worker and shown with the box, the box stays adjustable (each change fits them again), Enter
("Use this face") adds the face, Esc discards it, and implausible fits are named in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.views.zoom_view import LandmarkItem

BIG = Path(__file__).resolve().parents[2] / "resources" / "samples" / "astronaut.png"
FIT_MS = 60_000


def drag(view, start: QPointF, end: QPointF) -> None:
    """Press at ``start``, move to ``end`` and let go (points in still pixels)."""
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    middle = (a + b) / 2
    for kind, pos, buttons in (
        (QEvent.Type.MouseButtonPress, a, left),
        (QEvent.Type.MouseMove, middle, left),
        (QEvent.Type.MouseMove, b, left),
        (QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton),
    ):
        point = QPointF(pos)
        event = QMouseEvent(kind, point, view.viewport().mapToGlobal(point), left, buttons, none)
        QApplication.sendEvent(view.viewport(), event)


@pytest.fixture
def drawn(opened, qtbot):
    """The 256 px sample opened, its detected face's box drawn by hand (a little loose), and
    the jobs the window sent from then on (their argument types' names)."""

    def draw(shift: tuple[float, float, float, float] = (-4, -6, 4, 3)):
        window = opened(BIG)
        window.set_model("bicubic")
        sent: list[str] = []
        submit = window.client.submit
        window.client.submit = lambda args: (sent.append(type(args).__name__), submit(args))[1]
        view = window.image_view
        view.resize(900, 700)
        view.fit()
        window.act_draw.trigger()
        assert view.draw_mode()
        x0, y0, x1, y1 = (v + d for v, d in zip(window.faces[0].box, shift, strict=True))
        drag(view, QPointF(x0, y0), QPointF(x1, y1))
        wait_fit(qtbot, window)
        return window, sent

    return draw


def wait_fit(qtbot, window) -> None:
    qtbot.waitUntil(
        lambda: window.hand_box.item() is not None and window.hand_box.item().landmarks_shown(),
        timeout=FIT_MS,
    )


def landmark_items(window) -> list:
    return [i for i in window.image_view.scene().items() if isinstance(i, LandmarkItem)]


def test_drawing_a_box_shows_its_landmarks_and_starts_no_enhancement(drawn, qtbot):
    window, sent = drawn()
    faces_before = 1
    assert sent == ["BoxArgs"]  # the landmark fit, and nothing else
    qtbot.wait(300)  # nothing follows on its own either
    assert sent == ["BoxArgs"]
    assert window.current is None and len(window.faces) == faces_before
    assert window.hand_box.refining() and len(landmark_items(window)) == 1
    banner = window.hand_box.banner
    assert banner.isVisible() and "check the landmarks" in banner.text()
    assert "follow the face" in banner.text()  # a good box: no warning
    assert banner.use_button.isEnabled()
    assert not window.act_enhance.isEnabled()  # Enter means "Use this face" now
    assert not window.image_view.draw_mode()  # dragging adjusts the box now


def test_moving_and_resizing_the_box_fits_the_landmarks_again(drawn, qtbot):
    window, sent = drawn()
    item = window.hand_box.item()
    first = window.hand_box.fitted()
    x0, y0, x1, y1 = item.box()
    centre = QPointF((x0 + x1) / 2, (y0 + y1) / 2)
    drag(window.image_view, centre, centre + QPointF(8, 5))  # move
    wait_fit(qtbot, window)
    moved = window.hand_box.fitted()
    assert sent == ["BoxArgs", "BoxArgs"]
    assert item.box() == pytest.approx(
        (x0 + 8, y0 + 5, x1 + 8, y1 + 5), abs=1.0
    )  # mouse positions are whole screen pixels
    assert moved is not first and moved.box != first.box
    assert not np.array_equal(moved.landmarks, first.landmarks)
    # the bottom-right handle: resize
    drag(window.image_view, QPointF(x1 + 8, y1 + 5), QPointF(x1 + 20, y1 + 17))
    wait_fit(qtbot, window)
    assert sent == ["BoxArgs", "BoxArgs", "BoxArgs"]
    bx0, by0, bx1, by1 = item.box()
    assert (bx0, by0) == pytest.approx(
        (x0 + 8, y0 + 5), abs=1.0
    )  # mouse positions are whole screen pixels
    assert (bx1, by1) == pytest.approx(
        (x1 + 20, y1 + 17), abs=1.0
    )  # mouse positions are whole screen pixels
    assert len(window.hand_box.boxes()) == 3 and window.hand_box.fitted() is not moved
    assert len(landmark_items(window)) == 1  # the old landmarks are gone


def test_use_this_face_adds_it_and_it_can_be_enhanced(drawn, qtbot, run_job):
    window, sent = drawn()
    boxes = window.hand_box.boxes()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    qtbot.keyClick(window.image_view.viewport(), Qt.Key.Key_Return)
    assert sent == ["BoxArgs"]  # Enter used the face; it did not enhance
    assert len(window.faces) == 2 and window.faces[1].manual
    assert window.faces[1].drawn_boxes == tuple(boxes)
    assert window.face_index == 1 and "drawn by hand" in window.face_list.item(1).text()
    assert not window.hand_box.refining() and not window.hand_box.banner.isVisible()
    assert window.image_view.face_count() == 2 and not landmark_items(window)
    assert window.act_enhance.isEnabled()
    run_job(window, window.enhance)
    face = window.current.provenance["face"]
    assert face["manual"] is True and face["index"] == 1
    assert face["drawn_boxes"] == [[round(v, 2) for v in box] for box in boxes]
    assert face["fit_warnings"] == []


def test_cancel_discards_the_drawn_box(drawn, qtbot):
    window, sent = drawn()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    qtbot.keyClick(window.image_view.viewport(), Qt.Key.Key_Escape)
    assert len(window.faces) == 1 and window.current is None
    assert not window.hand_box.refining() and not window.hand_box.banner.isVisible()
    assert not landmark_items(window) and window.image_view.face_count() == 1
    assert window.act_enhance.isEnabled()  # Enter enhances the detected face again
    assert sent == ["BoxArgs"]


def test_a_box_over_the_hair_is_named_implausible(drawn, qtbot):
    window, _ = drawn()
    x0, y0, x1, y1 = window.faces[0].box
    side = x1 - x0
    window.act_draw.trigger()  # a second box replaces the first
    drag(
        window.image_view,
        QPointF(x0 - 0.1 * side, y0 - 0.7 * side),
        QPointF(x1 + 0.1 * side, y1 - 0.1 * side),
    )
    wait_fit(qtbot, window)
    text = window.hand_box.banner.text()
    assert "looks implausible" in text and "do not follow a face" in text
    assert window.hand_box.banner.use_button.isEnabled()  # the analyst decides, warned
    assert len(window.hand_box.boxes()) == 1


def test_opening_another_still_discards_the_box(drawn, run_job):
    window, _ = drawn()
    run_job(window, lambda: window.open_file(BIG))
    assert not window.hand_box.refining() and not window.hand_box.banner.isVisible()
    assert not landmark_items(window)
