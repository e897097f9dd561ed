"""The views on their own: zoom and sync, face picking, landmark overlay, labels, conversions."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt

from app.views.common import (
    AI_LABEL,
    INTERPOLATED_LABEL,
    add_label_strip,
    label_strip,
    ms_text,
    output_label,
    qimage_to_rgb,
    rgb_to_pixmap,
    rgb_to_qimage,
)
from app.views.compare_view import ComparePair, CompareView, enlarge_input
from app.views.face_list import face_caption
from app.views.image_view import ImageView
from app.views.zoom_view import LandmarkItem, ViewSync, ZoomView

RNG = np.random.default_rng(1)


def test_qimage_round_trip_keeps_every_pixel():
    rgb = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd width: padded scan lines
    assert np.array_equal(qimage_to_rgb(rgb_to_qimage(rgb)), rgb)


def test_label_strip_is_appended_below_and_leaves_pixels_alone(qtbot):
    rgb = RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    out = add_label_strip(rgb, [AI_LABEL, "RAFSR x4"])
    assert out.shape[1] == 128 and out.shape[0] > 128
    assert np.array_equal(out[:128], rgb)
    strip = out[128:].reshape(-1, 3)
    assert (strip == [180, 20, 20]).all(axis=1).mean() > 0.5  # red background
    assert (strip.min(axis=1) > 200).any()  # white text drawn


def test_the_replaced_region_is_outlined():
    from types import SimpleNamespace

    from app.views.common import OUTLINE, outline_pasted

    aligned = SimpleNamespace(matrix=np.array([[1.0, 0, -10], [0, 1.0, -10]]), size=20)
    rgb = np.zeros((100, 100, 3), np.uint8)  # a 50 px still enlarged x2
    out = outline_pasted(rgb, [SimpleNamespace(aligned=aligned, plan=None)], 50)
    assert not rgb.any()  # the input is not changed
    assert tuple(out[40, 20]) == OUTLINE and tuple(out[20, 40]) == OUTLINE  # the frame's edges
    assert not out[40, 40].any() and not out[5, 5].any()  # inside and outside untouched


def test_label_strip_grows_with_the_image(qtbot):
    """Issue 28: a fixed 46 px strip under a 4000 px export was a thin line on a screen."""
    small = label_strip(128, [AI_LABEL, "RAFSR x4"]).shape[0]
    large = label_strip(4000, [AI_LABEL, "RAFSR x4"]).shape[0]
    assert small <= 50
    assert large >= 4000 // 40 * 2  # two lines of a 100 px font: readable when fitted


def test_labels_and_times():
    assert output_label("bicubic", "baseline") == INTERPOLATED_LABEL
    assert output_label("s2_rafsr", "S2") == AI_LABEL
    assert ms_text(0.42) == "0.4 ms" and ms_text(123.4) == "123 ms" and ms_text(2500) == "2.5 s"
    # the score in words and its detector (issue 28: "score 1.37" said nothing)
    assert face_caption(0, 1.234, False) == "#1  strong match (HOG score 1.23)"
    assert face_caption(2, float("nan"), True) == "#3  drawn by hand"
    assert (
        face_caption(0, 1.234, False, 41.4)
        == "#1  native 41 px \u00b7 strong match (HOG score 1.23)"
    )
    assert face_caption(1, 0.31, False, None, "cnn") == "#2  weak match (CNN score 0.31)"
    assert face_caption(1, 0.7, False) == "#2  fair match (HOG score 0.70)"


def test_zoom_fit_actual_and_sync(qtbot):
    a, b = ZoomView(), ZoomView()
    for view in (a, b):
        qtbot.addWidget(view)
        view.resize(300, 300)
        view.scene().addPixmap(rgb_to_pixmap(np.zeros((128, 128, 3), np.uint8)))
        view.scene().setSceneRect(QRectF(0, 0, 128, 128))
        view.show()
    ViewSync(a, b)
    a.fit()
    assert a.fitting and a.zoom > 1.5
    a.actual_size()
    assert a.zoom == pytest.approx(1.0) and b.zoom == pytest.approx(1.0) and not b.fitting
    a.zoom_in()
    assert a.zoom == pytest.approx(1.25) and b.zoom == pytest.approx(1.25)
    b.set_zoom(4.0)
    b.centerOn(QPointF(60, 70))  # reachable at zoom 4 in a 300 px view (centre 37.5..90.5)
    centre = a.mapToScene(a.viewport().rect().center())
    assert a.zoom == pytest.approx(4.0)
    assert abs(centre.x() - 60) < 1 and abs(centre.y() - 70) < 1
    a.set_zoom(1000)
    assert a.zoom == pytest.approx(64.0)  # clamped


def test_image_view_picks_the_smallest_face_under_a_click(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.set_image(np.zeros((100, 200, 3), np.uint8))
    view.set_faces([(10, 10, 90, 90), (30, 30, 50, 50)], [False, True])
    assert view.face_count() == 2
    assert view.face_at(QPointF(40, 40)) == 1
    assert view.face_at(QPointF(15, 15)) == 0
    assert view.face_at(QPointF(150, 50)) is None
    clicked: list[int] = []
    view.faceClicked.connect(clicked.append)
    view.resize(400, 200)
    view.show()
    view.fit()
    qtbot.mouseClick(
        view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(QPointF(40, 40))
    )
    assert clicked == [1]
    view.set_image(None)
    assert view.face_count() == 0 and not view.has_image()


def test_landmark_overlay_needs_68_points():
    with pytest.raises(ValueError):
        LandmarkItem(np.zeros((5, 2)), QRectF(0, 0, 128, 128))


def test_compare_view_modes_and_input_enlargement(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    lr = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    near = enlarge_input(lr, (128, 128), "nearest")
    assert np.array_equal(near[::4, ::4], lr)  # nearest: every LR pixel becomes a 4x4 block
    assert not np.array_equal(enlarge_input(lr, (128, 128), "bicubic"), near)
    points = RNG.uniform(20, 100, (68, 2))
    pair = ComparePair(
        lr=lr,
        sr=near,
        input_landmarks=points,
        output_landmarks=None,
        model_name="Test",
        label=AI_LABEL,
        scale=4,
        time_ms=12.0,
    )
    view.set_pair(pair)
    assert view.output_view.caption() == [AI_LABEL, "Test \u00b7 \u00d74 \u00b7 12 ms"]
    view.set_landmarks_visible(True)
    assert "No landmarks" in view._note.text()  # the output had none: said, not hidden
    assert sum(isinstance(i, LandmarkItem) for i in view.input_view.scene().items()) == 1
    assert sum(isinstance(i, LandmarkItem) for i in view.output_view.scene().items()) == 0
    view.set_mode("wipe")
    view.wipe_slider.setValue(250)
    assert view.wipe_view.fraction() == pytest.approx(0.25)
    assert view.wipe_view.caption()[0] == AI_LABEL
    with pytest.raises(ValueError):
        view.set_mode("overlay")
    view.set_pair(None)
    assert not view.wipe_view.scene().items()


def test_the_wipe_line_is_dragged_on_the_image(qtbot):
    """Issue 28: the split follows the mouse on the image, and the slider follows it."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(600, 500)
    view.show()
    lr = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    sr = RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    view.set_pair(ComparePair(lr, sr, None, None, "Test", AI_LABEL, 4, 1.0))
    view.set_mode("wipe")
    wipe = view.wipe_view
    wipe.fit()
    qtbot.wait(50)
    start = wipe.mapFromScene(64, 64).toPointF()
    end = wipe.mapFromScene(96, 64).toPointF()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for kind, pos, buttons in (
        (QEvent.Type.MouseButtonPress, start, left),
        (QEvent.Type.MouseMove, end, left),
        (QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton),
    ):
        event = QMouseEvent(kind, pos, wipe.viewport().mapToGlobal(pos), left, buttons, none)
        QApplication.sendEvent(wipe.viewport(), event)
    assert abs(wipe.fraction() - 0.75) < 0.02
    assert abs(view.wipe_slider.value() - 750) <= 20
