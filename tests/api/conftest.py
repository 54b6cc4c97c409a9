"""An in-process app on a real SQLite database with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from api.accounts import ROLES, add_user, create_token
from api.app import create_app
from api.deps import ApiContext
from detector.config import Camera, Settings
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.models.deployments import ModelStore
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import open_database
from tests.support.builders import queue_cases

CAMERA = Camera.model_validate(
    {
        "id": "c1",
        "name": "幸福路东",
        "source": {"url": "rtsp://10.0.0.9/stream", "username_env": "U", "password_env": "P"},
        "location": {"address": "幸福路 12 号", "division_code": "110107", "street": "示范街道"},
        "zones": [{"name": "walk", "display_name": "东门口", "purpose": "no_vending",
                   "polygon": [[0, 0.5], [1, 0.5], [1, 0.8], [0, 0.8]]}],
        "problems": ["09006"],
    }
)  # fmt: skip


class Api:
    def __init__(self, root: Path) -> None:
        self.engine, self.sessions = open_database(f"sqlite:///{root / 'db.sqlite'}")
        self.store = EvidenceStore(root / "evidence")
        tax = load_taxonomy(None)
        self.cases = CaseService(tax, Settings(), self.store, {"c1": CAMERA})
        self.tokens: dict[str, str] = {}
        with self.sessions.begin() as s:
            for role in ROLES:
                self.tokens[role] = create_token(s, f"t-{role}", role)
                add_user(s, f"user-{role}", f"password-{role}-123", role)
        queue_cases(self.sessions, self.store, self.cases, 3)
        ctx = ApiContext(
            self.sessions, self.store, tax, {"c1": CAMERA}, lambda _id: None, self.cases, callback_secret="cb",
            model_store=ModelStore(root / "models"),
        )
        self.app: FastAPI = create_app(ctx)

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    yield a
    a.engine.dispose()


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app for a module of tests that only read, or do not mind each other's writes."""
    a = Api(tmp_path_factory.mktemp("api"))
    yield a
    a.engine.dispose()
