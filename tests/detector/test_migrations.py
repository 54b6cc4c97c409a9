"""Processes started together on a fresh database (a supervisor's workers, a cluster) all come up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

from detector.store.db import make_engine

# Each process waits for the same instant, then opens (and so migrates) the database.
OPEN_AT_ONCE = """
import sys, time
from detector.store.db import open_database
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
open_database(sys.argv[1])
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gridsight.db'}"
    return request.getfixturevalue("postgres_url")


def test_processes_migrating_a_fresh_database_at_once_all_start(fresh_url: str) -> None:
    at = time.time() + 3  # past every interpreter's start-up
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, fresh_url, str(at)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(errors)
    assert "camera_leases" in inspect(make_engine(fresh_url)).get_table_names()
