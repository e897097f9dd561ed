"""Engine tests never touch the user's real case log: command-line runs log to a temp folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_case_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FFE_CASE_DIR", str(tmp_path_factory.mktemp("caselog")))
