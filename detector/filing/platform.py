"""Platform adapters: one interface, one adapter per kind of platform.

`HttpJsonAdapter` speaks the documented contract (docs/platform-api.md) with
field names mappable in config; `LocalRegister` keeps cases in GridSight for a
centre without an API. Adapters raise `PlatformError`; whether a retry may help
is part of the error, so the filer never guesses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from detector.config import HttpJsonPlatform, LocalPlatform
from detector.filing.case_flow import STATUSES
from detector.store.db import Case


class PlatformError(Exception):
    """A request to the platform failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Attachment:
    kind: str
    path: Path  # on this machine
    rel: str  # relative to the evidence root (what a signed link points at)
    filename: str
    sha256: str
    bytes: int
    content_type: str
    url: str | None = None  # links mode only

    def describe(self) -> dict[str, Any]:
        item = {k: getattr(self, k) for k in ("kind", "filename", "sha256", "bytes", "content_type")}
        if self.url:
            item["url"] = self.url
        return item


@dataclass(frozen=True, slots=True)
class Receipt:
    case_id: str
    status: str


@dataclass(frozen=True, slots=True)
class StatusReport:
    status: str
    note: str | None = None
    at: datetime | None = None  # the platform's time of the status, when it says


class PlatformAdapter(ABC):
    @abstractmethod
    def file_case(self, case: dict[str, Any], files: list[Attachment], key: str) -> Receipt:
        """Files a case; the same `key` must never create a second case."""

    @abstractmethod
    def send_update(self, case_id: str, update: dict[str, Any], files: list[Attachment], key: str) -> None:
        """Still-present or verification report on a filed case."""

    @abstractmethod
    def send_verification(self, answer: dict[str, Any], files: list[Attachment], key: str) -> None:
        """The answer to a 核实 request (present / absent / cannot_see) with its pictures."""

    def get_status(self, case_id: str) -> StatusReport | None:
        """The platform's current status (None: this platform does not tell)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def sign_link(secret: str, path: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()


def verify_link(secret: str, path: str, expires: int, signature: str) -> bool:
    return expires >= time.time() and hmac.compare_digest(sign_link(secret, path, expires), signature)


class HttpJsonAdapter(PlatformAdapter):
    def __init__(self, cfg: HttpJsonPlatform) -> None:
        self.cfg = cfg
        headers = {}
        if cfg.token_env:
            token = os.environ.get(cfg.token_env)
            if not token:
                raise ValueError(f"platform.token_env: environment variable {cfg.token_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        self._link_secret = os.environ.get(cfg.link_secret_env or "", "")
        if cfg.evidence == "links" and not self._link_secret:
            raise ValueError(f"platform.link_secret_env: environment variable {cfg.link_secret_env} is not set")
        self._reverse_status = {v: k for k, v in cfg.status_map.items()}
        self.client = httpx.Client(base_url=cfg.base_url.rstrip("/"), timeout=cfg.timeout_s, headers=headers)

    def close(self) -> None:
        self.client.close()

    def _map(self, body: dict[str, Any]) -> dict[str, Any]:
        return {self.cfg.field_map.get(k, k): v for k, v in body.items()}

    def _link(self, att: Attachment) -> Attachment:
        expires = int(time.time() + self.cfg.link_ttl_hours * 3600)
        sig = sign_link(self._link_secret, att.rel, expires)
        url = f"{(self.cfg.public_url or '').rstrip('/')}/api/v1/evidence/{att.rel}?expires={expires}&sig={sig}"
        return dataclasses.replace(att, url=url)

    def _post(self, path: str, part: str, body: dict[str, Any], files: list[Attachment], key: str) -> dict[str, Any]:
        headers = {"Idempotency-Key": key}
        try:
            if self.cfg.evidence == "links":
                linked = [self._link(a) for a in files]
                body = {**body, "evidence": [a.describe() for a in linked]}
                resp = self.client.post(path, json=self._map(body), headers=headers)
            else:
                body = {**body, "evidence": [a.describe() for a in files]}
                handles = [a.path.open("rb") for a in files]
                try:
                    parts: list[tuple[str, Any]] = [
                        (part, (None, json.dumps(self._map(body), ensure_ascii=False), "application/json"))
                    ]
                    parts += [("file", (a.filename, h, a.content_type)) for a, h in zip(files, handles, strict=True)]
                    resp = self.client.post(path, files=parts, headers=headers)
                finally:
                    for h in handles:
                        h.close()
        except httpx.TimeoutException as e:
            raise PlatformError(f"timeout after {self.cfg.timeout_s} s: {type(e).__name__}", retryable=True) from e
        except httpx.TransportError as e:
            raise PlatformError(f"connection failed: {type(e).__name__}: {e}", retryable=True) from e
        except OSError as e:
            raise PlatformError(f"cannot read evidence: {e}", retryable=False) from e
        return self._json(resp)

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise PlatformError(f"platform answered HTTP {resp.status_code}", retryable=True)
        try:
            data = resp.json()
        except ValueError as e:
            # A 2xx that is not JSON: maybe a proxy page; the request may or may not have
            # arrived, and retrying with the same idempotency key is safe.
            kind = resp.headers.get("content-type", "?")
            msg = f"platform answered HTTP {resp.status_code} with {kind}, not JSON"
            raise PlatformError(msg, retryable=True) from e
        if resp.status_code >= 400:
            msg = data.get("error") if isinstance(data, dict) else None
            raise PlatformError(f"platform refused (HTTP {resp.status_code}): {msg or data}", retryable=False)
        if not isinstance(data, dict):
            raise PlatformError(f"platform answered {type(data).__name__}, expected an object", retryable=True)
        return data

    def file_case(self, case: dict[str, Any], files: list[Attachment], key: str) -> Receipt:
        data = self._post("/cases", "case", case, files, key)
        case_id = data.get(self.cfg.field_map.get("case_id", "case_id"))
        if not case_id:
            raise PlatformError(f"platform answer has no case_id: {data}", retryable=True)
        return Receipt(str(case_id), self._status(data.get("status", "accepted")))

    def send_update(self, case_id: str, update: dict[str, Any], files: list[Attachment], key: str) -> None:
        self._post(f"/cases/{case_id}/updates", "update", update, files, key)

    def send_verification(self, answer: dict[str, Any], files: list[Attachment], key: str) -> None:
        self._post(self.cfg.verification_path, "verification", answer, files, key)

    def get_status(self, case_id: str) -> StatusReport | None:
        try:
            resp = self.client.get(f"/cases/{case_id}")
        except httpx.HTTPError as e:
            raise PlatformError(f"status poll failed: {type(e).__name__}", retryable=True) from e
        data = self._json(resp)
        history = data.get("history") or [{}]
        status = self._status(str(data.get("status")))
        return StatusReport(status, history[-1].get("note"), _time(data.get("updated_at")))

    def _status(self, raw: str) -> str:
        status = self.cfg.status_map.get(raw, raw)
        if status not in STATUSES:
            raise PlatformError(f"unknown platform status {raw!r} (map it in platform.status_map)", retryable=False)
        return status


def _time(value: object) -> datetime | None:
    """An ISO timestamp with its zone, or None (absent or unreadable: no order can be told)."""
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


class LocalRegister(PlatformAdapter):
    """Cases get numbers like E09006202601050001 and stay here; operators move them on."""

    def __init__(self, cfg: LocalPlatform, sessions: sessionmaker[Session]) -> None:
        self.cfg = cfg
        self.sessions = sessions

    def file_case(self, case: dict[str, Any], files: list[Attachment], key: str) -> Receipt:
        with self.sessions() as s:
            existing = s.scalar(select(Case.platform_case_id).where(Case.idempotency_key == key))
            if existing:
                return Receipt(existing, "filed")
            day = datetime.fromisoformat(case["detected_at"]).strftime("%Y%m%d")
            prefix = f"{self.cfg.case_prefix}{case['sxdm'][6:]}{day}"
            count = s.scalar(select(func.count()).select_from(Case).where(Case.platform_case_id.like(prefix + "%")))
        return Receipt(f"{prefix}{(count or 0) + 1:04d}", "filed")

    def send_update(self, case_id: str, update: dict[str, Any], files: list[Attachment], key: str) -> None:
        pass  # the update is already in the case history; nobody else to tell

    def send_verification(self, answer: dict[str, Any], files: list[Attachment], key: str) -> None:
        pass  # the answer is stored with its request (GET /api/v1/verifications/{id}); nobody else to tell


def make_adapter(cfg: LocalPlatform | HttpJsonPlatform, sessions: sessionmaker[Session]) -> PlatformAdapter:
    """The adapter for the configured platform type."""
    if isinstance(cfg, HttpJsonPlatform):
        return HttpJsonAdapter(cfg)
    return LocalRegister(cfg, sessions)
