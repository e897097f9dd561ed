"""The window at 1280x800 (issue 28): nothing forces it wider, the agreement matrix of ten
outputs shows every row, and the fidelity panel scrolls rather than squeezing the faces."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app.views.fidelity_panel import FidelityPanel


def _check(name: str, value: float, threshold: float) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, value=value, threshold=threshold, status="pass", detail="",
        meaning="A sentence that wraps over a few lines in a narrow panel. " * 3,
    )  # fmt: skip


def test_a_ten_output_matrix_shows_every_row(qtbot):
    labels = ["input (bicubic)"] + [f"model_{i}" for i in range(9)]
    names = {f"model_{i}": f"A long model name number {i} (Author et al. 2023)" for i in range(9)}
    distances = np.full((10, 10), 0.3).tolist()
    agreement = _check("agreement", 0.3, 0.55)
    model = SimpleNamespace(
        model_id="model_0",
        checks=[_check("consistency", 40.0, 30.0), _check("drift", 0.05, 0.1), agreement],
        consistency=SimpleNamespace(difference=np.zeros((32, 32, 3), np.uint8)),
        agreement=agreement,
    )
    report = SimpleNamespace(labels=labels, distances=distances, models={"model_0": model})
    panel = FidelityPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 400)
    panel.show()
    panel.set_fidelity(model, report, "title", names)
    assert panel.matrix_size() == 10
    shown = panel.matrix.height() - panel.matrix.horizontalHeader().height()
    assert shown >= panel.matrix.verticalHeader().length()  # no row behind a scroll bar
    assert all(
        len(panel.matrix.verticalHeaderItem(i).text()) <= 21 for i in range(10)
    )  # names shortened in the row headers, in full in the tooltips
    assert "amber above 0.55" in panel.matrix_title.text()


def test_the_window_fits_a_1280x800_screen(make_window):
    window = make_window()
    window.resize(1280, 800)
    assert window.minimumSizeHint().width() <= 1280
    assert window.width() <= 1280
    scroll = window.compare_view.fidelity_scroll
    assert scroll.widget() is window.fidelity_panel and scroll.widgetResizable()
