"""Start-up time of the GUI: launch to main window shown, and the import time of the window.

Each run starts the app in a fresh process on Qt's offscreen platform with
``FFE_STARTUP_PROBE=1``; ``app.main`` then writes ``ffe-startup window-shown <unix time>`` on
the event loop's first turn after ``show()``. Start-up = that time minus the time just before
the process was spawned (interpreter start, imports, window construction, first layout). The
process is then terminated. Each run gets its own empty HOME/XDG folders with an examiner
already set, so the user's settings and case log are never touched and no first-start dialog
is measured. Also measured, each in a fresh process: the import time of ``app.main_window``,
and whether torch was already imported when the window showed (it should not be needed: the
engine worker imports torch in its own thread).

Usage: ``.venv/bin/python benchmarks/startup.py [--runs 5] [--exe EXECUTABLE]``; ``--exe
dist/ForensicFaceEnhancer/ForensicFaceEnhancer`` measures the PyInstaller bundle instead of
``python -m app``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "ffe-startup window-shown "


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        FFE_STARTUP_PROBE="1",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    ini = home / "config" / "ForensicFaceEnhancer" / "Forensic Face Enhancer.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[General]\nexaminer=benchmark\n")
    return env


def time_to_window(command: list[str], timeout_s: float = 120.0) -> tuple[float, bool]:
    """Seconds from spawning ``command`` to its probe line, and whether torch was loaded then.

    The process is terminated afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="ffe-startup-") as tmp:
        start = time.time()
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_env(Path(tmp)),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            deadline = start + timeout_s
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(PROBE):
                    shown, torch_flag = line[len(PROBE) :].split()
                    return float(shown) - start, torch_flag == "torch=True"
                if time.time() > deadline:
                    break
            raise RuntimeError(f"no start-up probe line from {command}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


IMPORT_SNIPPET = """
import sys, time
t = time.perf_counter()
import app.main_window
print(time.perf_counter() - t, 'torch' in sys.modules, 'dlib' in sys.modules)
"""


def import_time() -> tuple[float, bool, bool]:
    """Seconds to import app.main_window in a fresh interpreter; whether torch/dlib came along."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET],
        cwd=ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), out[1] == "True", out[2] == "True"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--exe", type=Path, default=None, help="a bundled GUI executable")
    args = parser.parse_args(argv)
    command = [str(args.exe)] if args.exe else [sys.executable, "-m", "app"]
    load_start = os.getloadavg()
    time_to_window(command)  # warm the file cache; not counted
    probes = [time_to_window(command) for _ in range(args.runs)]
    shown = [s for s, _ in probes]
    imports = [import_time() for _ in range(args.runs)]
    load_end = os.getloadavg()
    print(f"command: {' '.join(command)}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores")
    print(
        f"load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in load_start)}, "
        f"at end {'/'.join(f'{x:.1f}' for x in load_end)}"
    )
    print(
        f"launch -> window shown: median {statistics.median(shown):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in shown)}); "
        f"torch already imported (by the worker thread) when shown: {[t for _, t in probes]}"
    )
    secs = [t for t, _, _ in imports]
    print(
        f"import app.main_window: median {statistics.median(secs):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in secs)}); "
        f"torch imported by it: {any(t for _, t, _ in imports)}, "
        f"dlib: {any(d for _, _, d in imports)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
