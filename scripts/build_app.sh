#!/usr/bin/env bash
# Build the one-folder application dist/ForensicFaceEnhancer/ (GUI + `ffe` CLI) with PyInstaller.
#
# Uses the project's .venv (created by `make run` / `make test`); installs the `build` extra
# (PyInstaller) into it. Takes several minutes on two cores; prints the bundle's size and the
# build time. Check the result with: FFE_TEST_BUNDLE=1 .venv/bin/pytest -q tests/test_packaging.py
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
if [[ ! -x $PY ]]; then
    echo "no .venv: run 'make test' (or 'make run') first" >&2
    exit 1
fi
$PY -m pip install --disable-pip-version-check -q -e '.[build]'

start=$(date +%s)
# nice: the build is CPU-heavy for minutes and should not starve an interactive session.
nice -n 10 $PY -m PyInstaller --noconfirm --clean --log-level WARN pyinstaller.spec
end=$(date +%s)

echo "built dist/ForensicFaceEnhancer in $((end - start)) s"
du -sh dist/ForensicFaceEnhancer
