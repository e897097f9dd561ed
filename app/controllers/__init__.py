"""Controllers: one concern each, between the window's widgets, the state and the worker.

* :mod:`.opening` -- open a still, detect faces, recent files;
* :mod:`.hand_box` -- a face drawn by hand: landmarks shown, box adjusted, then used or discarded;
* :mod:`.enhancing` -- the model and scale pickers, enhance, compare all models;
* :mod:`.fidelity` -- the fidelity checks of each output, shown under it and on the grid;
* :mod:`.evidence` -- the evidence-quality line and the recommended model as the default;
* :mod:`.exporting` -- PNG exports, the case report, batch runs;
* :mod:`.case_log` -- the case log, its verification and reproduction, the visible label,
  and the examiner's settings (name, case, log folder) it is written under.

Each holds a reference to the window (for its widgets and :meth:`MainWindow.submit`) and to
its :class:`app.state.SessionState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.main_window import MainWindow


class Controller:
    """Base: the window, its state and its error presenter."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.state = window.state
        self.errors = window.errors
