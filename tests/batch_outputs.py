"""Shared by the batch tests: a run's output folder as comparable bytes."""

from __future__ import annotations

import json
from pathlib import Path

from engine import batch


def output_files(root: Path) -> dict[str, bytes]:
    """Every file's bytes; run.json without its creation time (the run's, not an output's)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == batch.MANIFEST_NAME:
                data = json.dumps(json.loads(data)["identity"], sort_keys=True).encode()
            found[path.relative_to(root).as_posix()] = data
    return found
