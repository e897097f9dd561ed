"""Measure how long the GUI thread is blocked while the worker opens a still and enhances faces.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/ui_latency.py [--random-weights] [--json F]

A 10 ms QTimer heartbeat runs in the GUI thread during each phase; every gap between two ticks
is recorded, and the longest one is how long the window could not react (a gap of 10 ms means
no blocking at all). Phases: opening the sample (load + face detection), enhancing with each
runnable model, and "compare all models".

``--random-weights`` makes untrained weight files (the papers' network configurations, random
initialisation) in a temporary folder so that every network really runs in the worker even
before trained weights are installed: what is measured is the GUI's responsiveness, which does
not depend on the weights' values. The repository's weights folder is never touched.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402

SAMPLE = REPO / "resources" / "samples" / "astronaut.png"


class Heartbeat:
    """A precise 10 ms timer in the GUI thread that records the gaps between its ticks."""

    def __init__(self, interval_ms: int = 10) -> None:
        self.interval_ms = interval_ms
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = 0.0

    def start(self) -> None:
        self.gaps = []
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        self._tick()  # the gap up to the end of the phase counts too
        gaps = sorted(self.gaps)
        return {
            "ticks": len(gaps),
            "max_gap_ms": round(gaps[-1], 1),
            "p99_gap_ms": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], 1),
            "median_gap_ms": round(statistics.median(gaps), 1),
        }


def wait_until(predicate, timeout_s: float = 600.0) -> float:
    """Run the event loop until ``predicate()``; returns the seconds it took."""
    start = time.perf_counter()
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: predicate() and loop.quit())
    poll.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not predicate():
        loop.exec()
    poll.stop()
    if not predicate():
        raise TimeoutError("the app did not reach the expected state in time")
    return time.perf_counter() - start


def make_random_weights(folder: Path, scale: int) -> None:
    """Untrained weights for every network at ``scale`` (papers' configurations), in ``folder``."""
    import torch

    from engine import registry, weights

    torch.manual_seed(0)
    for entry in registry.MODELS:
        if entry.is_baseline or scale not in entry.scales:
            continue
        module = registry.build(entry, scale)
        path = folder / registry.weight_filename(entry, scale)
        scales = [scale] if not entry.shared_weights else list(entry.scales)
        weights.save(
            module, entry, scales, path, training={"note": "random init, latency test only"}
        )
        weights.update_manifest(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--scale", type=int, default=4, choices=(4, 8))
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--dump-stalls",
        type=float,
        metavar="MS",
        help="print every thread's Python stack to stderr whenever the GUI thread stalls this long",
    )
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        factory = None
        if args.random_weights:
            folder = Path(tmp) / "weights"
            make_random_weights(folder, args.scale)

            def factory():
                from engine.enhance import Enhancer

                return Enhancer(weights_dir=str(folder))

        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, **({"enhancer_factory": factory} if factory else {}))
        window.resize(1200, 800)
        window.show()
        beat = Heartbeat()
        if args.dump_stalls:
            # faulthandler's watchdog is a C thread: it fires even while another thread holds
            # the GIL, and shows where every thread was when the GUI stopped ticking.
            watchdog = QTimer()
            watchdog.setInterval(beat.interval_ms)
            watchdog.timeout.connect(
                lambda: faulthandler.dump_traceback_later(args.dump_stalls / 1000, exit=False)
            )
            watchdog.start()

        def phase(name: str, start, done) -> None:
            beat.start()
            start()
            seconds = wait_until(done)
            row = {"phase": name, "seconds": round(seconds, 2)} | beat.stop()
            rows.append(row)
            sys.stdout.write(
                f"{name:<34} {row['seconds']:>7.2f} s  max gap {row['max_gap_ms']:>7.1f} ms  "
                f"p99 {row['p99_gap_ms']:>6.1f} ms  median {row['median_gap_ms']:>5.1f} ms\n"
            )
            sys.stdout.flush()

        idle = lambda: not window.busy_kinds()  # noqa: E731
        phase("engine start (torch, dlib models)", lambda: None, lambda: bool(window.device))
        # Reference: the same heartbeat with nothing running (machine load shows up here).
        idle_until = [0.0]
        phase(
            "idle, 2 s (reference)",
            lambda: idle_until.__setitem__(0, time.perf_counter() + 2),
            lambda: time.perf_counter() >= idle_until[0],
        )
        phase("open + detect faces", lambda: window.open_file(args.image), idle)
        window.set_scale(args.scale)
        for model_id in window.runnable_models():
            window.set_model(model_id)
            phase(f"enhance {model_id} x{args.scale}", window.enhance, idle)
        window.results.clear()  # compare all recomputes every model
        phase(f"compare all ({len(window.runnable_models())} models)", window.compare_all, idle)
        window.close()
    faulthandler.cancel_dump_traceback_later()
    worst = max(
        r["max_gap_ms"] for r in rows if r["phase"].split()[0] in ("open", "enhance", "compare")
    )
    sys.stdout.write(f"longest GUI-thread block during open/enhance/compare: {worst:.1f} ms\n")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "worst_ms": worst}, indent=2) + "\n")
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
