"""Run the test district platform (``platform_server.py``) as a child process.

    with PlatformServer(tmp_path / "platform", token="t0k") as plat:
        plat.base_url                     # http://127.0.0.1:PORT/gridsight/v1
        plat.admin.faults(fail_rate=0.5, seed=1)
        plat.admin.cases()                # every stored case, with files and updates
        plat.admin.set_status(case_id, "dispatched", note="派遣到城管执法")
        plat.admin.stats()
        plat.stop(); plat.start()         # same port, same data: cases survive
        plat.kill(); plat.start()         # SIGKILL: committed cases survive too

The contract is docs/platform-api.md. The child exits when this process dies
(its stdin is a pipe we never write; it exits on EOF).
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path
from typing import Any

import httpx

from .child import ChildServer

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PREFIX = "/gridsight/v1"


def sign_callback(secret: str, timestamp: str | int, body: bytes) -> str:
    """The X-Platform-Signature of a status callback: hex HMAC-SHA256(secret, b"{timestamp}." + body)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class PlatformServerError(RuntimeError):
    pass


class PlatformAdmin:
    """The test-only ``/_admin`` API of a running PlatformServer."""

    def __init__(self, server: PlatformServer) -> None:
        self._server = server

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        with httpx.Client(base_url=self._server.root_url, timeout=30) as client:
            resp = client.request(method, path, json=json)
        if resp.status_code >= 400:
            raise PlatformServerError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text}")
        return resp.json()

    def faults(self, **settings: Any) -> dict:
        """Replace the fault settings (fail_rate, hang_rate, drop_after_accept_rate, delay_s,
        non_json_rate, seed); no arguments turns every fault off. Returns the new settings."""
        return self._call("POST", "/_admin/faults", settings)

    def cases(self) -> list[dict]:
        """Every stored case: status object + idempotency_key, form, payload, files, updates."""
        return self._call("GET", "/_admin/cases")

    def case(self, case_id: str) -> dict:
        for case in self.cases():
            if case["case_id"] == case_id:
                return case
        raise KeyError(case_id)

    def set_status(self, case_id: str, status: str, note: str = "") -> dict:
        """Move a case on; the answer carries callback_status (HTTP status of the callback, or None)."""
        return self._call("POST", "/_admin/status", {"case_id": case_id, "status": status, "note": note})

    def verifications(self) -> list[dict]:
        """Every 核实 answer received: answer_id, idempotency_key, form, payload, files."""
        return self._call("GET", "/_admin/verifications")

    def stats(self) -> dict:
        """{"requests": {endpoint: {outcome: n}}, "duplicates_replayed": n, "cases": n, "updates": n}."""
        return self._call("GET", "/_admin/stats")

    def fetch_evidence(self, case_id: str) -> dict:
        """Download the case's linked evidence now (as the platform would later); returns the case."""
        return self._call("POST", "/_admin/fetch_evidence", {"case_id": case_id})


class PlatformServer(ChildServer):
    """The test platform on 127.0.0.1, state in `data_dir`; restartable on the same port."""

    error = PlatformServerError
    label = "platform server"

    def __init__(
        self,
        data_dir: Path,
        *,
        token: str | None = None,
        callback_url: str | None = None,
        callback_secret: str | None = None,
        port: int | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        if bool(callback_url) != bool(callback_secret):
            raise ValueError("callback_url and callback_secret go together")
        self.data_dir = Path(data_dir).resolve()
        self.token = token
        self.callback_url = callback_url
        self.callback_secret = callback_secret
        super().__init__(port, startup_timeout, cwd=REPO)
        self.admin = PlatformAdmin(self)

    # --- public API -------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}{PREFIX}"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header this server wants (empty without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def __repr__(self) -> str:
        return f"PlatformServer(port={self._port}, data_dir={self.data_dir}, running={self.running})"

    # --- internals --------------------------------------------------------------
    def _command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.platform_server",
            "--port",
            str(self._port or 0),
            "--data",
            str(self.data_dir),
            "--exit-on-stdin-eof",
        ]
        if self.token:
            cmd += ["--token", self.token]
        if self.callback_url:
            cmd += ["--callback-url", self.callback_url, "--callback-secret", str(self.callback_secret)]
        return cmd

    def _shown(self, cmd: list[str]) -> str:
        return " ".join("***" if prev in ("--token", "--callback-secret") else a for prev, a in zip(["", *cmd], cmd))
