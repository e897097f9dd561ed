"""The house stays in order: rooms of a readable size, one job table, one of each definition.

Checked on the source, like tests/test_layers.py: a window class that grows back into one room,
a worker that looks its handlers up by building strings, or a second ``SOFTWARE`` or
``utc_now`` fails here rather than in review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("engine", "app", "training", "scripts", "benchmarks")
MAX_WINDOW_LINES = 500
MAX_APP_MODULE_LINES = 600


def lines(path: Path) -> int:
    return len(path.read_text("utf-8").splitlines())


def test_the_main_window_is_a_thin_shell():
    assert lines(ROOT / "app" / "main_window.py") < MAX_WINDOW_LINES


def test_no_app_module_is_one_room_for_everything():
    big = {
        str(p.relative_to(ROOT)): lines(p)
        for p in (ROOT / "app").rglob("*.py")
        if lines(p) > MAX_APP_MODULE_LINES
    }
    assert big == {}


def test_the_worker_has_one_job_table_and_no_string_built_lookup():
    source = (ROOT / "app" / "worker.py").read_text("utf-8")
    assert not re.search(r"getattr\([^)]*f[\"']_job_", source)
    assert "hasattr(EngineWorker" not in (ROOT / "app" / "client.py").read_text("utf-8")
    from app.jobs import JobSpec
    from app.worker import JOBS

    kinds = [spec.kind for spec in JOBS.values()]
    assert len(kinds) == len(set(kinds))
    for args_type, spec in JOBS.items():
        assert isinstance(spec, JobSpec) and spec.args is args_type
        assert callable(spec.handler) and spec.failure_title


def test_the_window_keeps_no_job_tables_of_its_own():
    source = (ROOT / "app" / "main_window.py").read_text("utf-8")
    for name in ("INDEPENDENT_JOBS", "UNCANCELLABLE_JOBS", "titles = {"):
        assert name not in source


def definitions(pattern: str) -> list[str]:
    """Where a module-level assignment or a function named by ``pattern`` is defined."""
    found = []
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"), filename=str(path))
            for node in tree.body:
                names = []
                if isinstance(node, ast.FunctionDef | ast.ClassDef):
                    names = [node.name]
                elif isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names = [node.target.id]
                for name in names:
                    if re.fullmatch(pattern, name):
                        found.append(f"{path.relative_to(ROOT)}:{name}")
    return found


def test_each_shared_definition_exists_once():
    patterns = ("SOFTWARE", "utc_now", "HR_SIZE", "canonical.*", "WEIGHTS_DIR")
    for pattern in (*patterns, "CancelToken", "PausableToken", "Cancelled"):
        assert len(definitions(pattern)) <= 1, definitions(pattern)
    # Out of memory: recognised in one module (the GUI, the pipeline and batch runs ask it).
    where = {d.split(":")[0] for d in definitions(r"_?is_\w*(out_of_memory|oom)\w*")}
    assert where == {"engine/device.py"}
