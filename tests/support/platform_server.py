"""A real district-platform server implementing docs/platform-api.md, for tests.

Run it as its own process (the wrapper ``tests/support/platform.py`` does this):

    .venv/bin/python -m tests.support.platform_server --port 0 --data /tmp/plat \
        [--token T] [--callback-url URL --callback-secret S] [--exit-on-stdin-eof]

It binds 127.0.0.1 only and prints ``READY <port>`` on stdout once listening.
Everything (cases, updates, received files, idempotency keys, history, fault
settings, counters) lives in ``--data``: ``platform.sqlite3`` plus ``files/``,
so a stop/start (or a SIGKILL) keeps every committed case.

Contract endpoints are under ``/gridsight/v1``; test-only endpoints under
``/_admin`` (never authenticated):

* ``POST /_admin/faults``  {fail_rate, hang_rate, drop_after_accept_rate,
  delay_s, non_json_rate, seed}: replaces the fault settings (missing = 0);
  they apply to POST /cases, POST /cases/{id}/updates and POST /verifications only.
* ``GET  /_admin/faults``, ``GET /_admin/cases``, ``GET /_admin/verifications``, ``GET /_admin/stats``
* ``POST /_admin/status``  {case_id, status, note}: moves a case on, appends
  history and sends the signed status callback if one is configured.
* ``POST /_admin/fetch_evidence`` {case_id}: downloads the case's (and its
  updates') linked evidence now, like a platform does "later", and checks sha256.

Fault pipeline of one POST (one random draw per fault, every request, from a
``random.Random(seed)`` re-created when faults are set and at start-up):
auth (401) -> fail (500, nothing stored) -> hang (no answer until the client
goes away, nothing stored) -> non_json (200 text/html, nothing stored) ->
normal processing (replay / validate / store) -> delay_s (sleep *after*
storing, before answering) -> drop_after_accept (only when this request stored
something new: the socket is closed with no response at all).

Dropping the connection: uvicorn runs with ``_DroppableH11``, its h11 protocol
plus an ASGI scope extension ``gridsight.abort`` holding the connection's
``transport.abort``; the ``_Drop`` response calls it (the client sees the
server close the connection without a status line) and waits for uvicorn to
notice the disconnect, so uvicorn writes no 500 of its own.

Multipart is parsed here (stdlib only; python-multipart is not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import socket
import sqlite3
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

PREFIX = "/gridsight/v1"
STATUSES = ("accepted", "filed", "dispatched", "handled", "verified", "closed", "voided")
CST = timezone(timedelta(hours=8))
MAX_KEY_LEN = 128
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # visible ASCII, no spaces
FILENAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
CALLBACK_TIMEOUT_S = 5.0
HANG_S = 3600.0


def now_iso() -> str:
    return datetime.now(CST).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------ payload models
class _Open(BaseModel):
    """Unknown extra fields are accepted and stored (cities add their own)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class EvidenceItem(_Open):
    kind: Literal["first_seen", "annotated", "clean", "clip", "after"]
    filename: str = Field(pattern=FILENAME_RE)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(alias="bytes", ge=0)
    content_type: str = Field(min_length=1)
    url: str | None = Field(None, pattern=r"^https?://")


class Department(_Open):
    name: str = Field(min_length=1)
    code: str | None = None


def _unique_filenames(evidence: list[EvidenceItem]) -> None:
    names = [e.filename for e in evidence]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"evidence filenames must be unique, repeated: {dup}")


class CaseIn(_Open):
    sxdm: str = Field(pattern=r"^[0-9]{11}$")
    sxmc: str = Field(min_length=1)
    source: str = Field(min_length=1)
    case_type: str = Field(min_length=1)
    description: str
    address: str
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    crs: str | None = None
    grid_code: str | None = Field(None, pattern=r"^[0-9A-Z]{15}$")
    district_code: str | None = Field(None, pattern=r"^[0-9]{6}$")
    street: str | None = None
    community: str | None = None
    department: Department | None = None
    co_dispatch_street: bool | None = None
    area_class: str | None = None
    urgency: str | None = None
    deadline: AwareDatetime | None = None
    detected_at: AwareDatetime
    first_seen_at: AwareDatetime | None = None
    camera_id: str = Field(min_length=1)
    legacy_code: str | None = None
    recurrence_of: str | None = None
    gridsight_case_id: int
    idempotency_key: str | None = Field(None, max_length=MAX_KEY_LEN)
    evidence: list[EvidenceItem]

    @model_validator(mode="after")
    def _rules(self) -> CaseIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together: both numbers or both null")
        if not self.address.strip() and self.lon is None:
            raise ValueError("a case needs an address or lon/lat")
        if self.co_dispatch_street and not (self.street or "").strip():
            raise ValueError("co_dispatch_street needs street (the street office to co-dispatch to)")
        _unique_filenames(self.evidence)
        return self


class UpdateIn(_Open):
    kind: Literal["still_present", "verification"]
    result: Literal["cleared", "not_resolved"] | None = None
    ts: AwareDatetime
    note: str | None = None
    evidence: list[EvidenceItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> UpdateIn:
        if self.kind == "verification" and self.result is None:
            raise ValueError("a verification update needs result: cleared or not_resolved")
        if self.kind == "still_present" and self.result is not None:
            raise ValueError("a still_present update has result null")
        _unique_filenames(self.evidence)
        return self


class VerificationEvidence(EvidenceItem):
    kind: Literal["annotated", "clean"]  # type: ignore[assignment]


class VerificationCamera(_Open):
    camera_id: str = Field(min_length=1)
    result: Literal["present", "absent", "cannot_see"]
    reason: str | None = None
    frame_at: AwareDatetime | None = None


class VerificationIn(_Open):
    """GridSight's answer to a 核实 request (POST /verifications)."""

    verification_id: int
    reference: str | None = None
    problem_code: str = Field(pattern=r"^[0-9]{5}$")
    location: dict[str, Any] | None = None
    result: Literal["present", "absent", "cannot_see"]
    requested_at: AwareDatetime
    answered_at: AwareDatetime
    cameras: list[VerificationCamera] = Field(min_length=1)
    evidence: list[VerificationEvidence] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rules(self) -> VerificationIn:
        _unique_filenames(self.evidence)  # type: ignore[arg-type]
        return self


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_rate: float = Field(0.0, ge=0, le=1)
    hang_rate: float = Field(0.0, ge=0, le=1)
    drop_after_accept_rate: float = Field(0.0, ge=0, le=1)
    delay_s: float = Field(0.0, ge=0, le=600)
    non_json_rate: float = Field(0.0, ge=0, le=1)
    seed: int | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    status: Literal["accepted", "filed", "dispatched", "handled", "verified", "closed", "voided"]
    note: str = ""


class FetchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str


# ------------------------------------------------------------------ errors
class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _pydantic_message(prefix: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"])
        where = f"{prefix}.{loc}" if loc else prefix
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# ------------------------------------------------------------------ multipart (stdlib)
class Part:
    __slots__ = ("content_type", "data", "filename", "name")

    def __init__(self, name: str, filename: str | None, content_type: str | None, data: bytes) -> None:
        self.name, self.filename, self.content_type, self.data = name, filename, content_type, data


_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> tuple[str, dict[str, str]]:
    main = value.split(";", 1)[0].strip().lower()
    params: dict[str, str] = {}
    for k, v in _PARAM_RE.findall(value):
        v = v.strip()
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[k.lower()] = v
    if "filename*" in params:  # RFC 5987: UTF-8''percent-encoded
        from urllib.parse import unquote

        charset, _, encoded = params["filename*"].partition("''")
        params["filename"] = unquote(encoded, encoding=charset or "utf-8")
    return main, params


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    _, params = _header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    delim = b"--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(b"\r\n" + delim)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise BadRequest("malformed multipart body (no closing boundary)")
    parts = []
    for chunk in chunks[1:-1]:
        line_end = chunk.find(b"\r\n")  # the rest of the boundary line (transport padding)
        head_end = chunk.find(b"\r\n\r\n", line_end)
        if line_end < 0 or chunk[:line_end].strip() or head_end < 0:
            raise BadRequest("malformed multipart part")
        headers: dict[str, str] = {}
        for line in chunk[line_end + 2 : head_end].split(b"\r\n"):
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                raise BadRequest("malformed multipart part header")
            headers[name.strip().lower()] = value.strip()
        disposition, dparams = _header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in dparams:
            raise BadRequest("multipart part without Content-Disposition: form-data; name=...")
        ctype = headers.get("content-type")
        parts.append(Part(dparams["name"], dparams.get("filename"), ctype, chunk[head_end + 4 :]))
    return parts


# ------------------------------------------------------------------ storage
SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    form TEXT NOT NULL,
    payload TEXT NOT NULL,
    response TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    status TEXT NOT NULL,
    ts TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    form TEXT NOT NULL,
    payload TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    owner TEXT NOT NULL,            -- case_id or update_id
    filename TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    declared_sha256 TEXT NOT NULL,
    declared_bytes INTEGER NOT NULL,
    url TEXT,                       -- linked evidence (null: uploaded)
    path TEXT,                      -- relative to the data dir; null until received
    sha256 TEXT,
    bytes INTEGER,
    sha256_ok INTEGER,              -- null until received
    fetch_error TEXT,
    PRIMARY KEY (owner, filename)
);
CREATE TABLE IF NOT EXISTS verifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    form TEXT NOT NULL,
    payload TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stats (endpoint TEXT NOT NULL, outcome TEXT NOT NULL, n INTEGER NOT NULL,
                                  PRIMARY KEY (endpoint, outcome));
"""


class Store:
    """SQLite + files under the data dir. Used from the event-loop thread only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(root / "platform.sqlite3", isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    # --- kv / stats
    def get_kv(self, key: str, default: Any) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set_kv(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def count(self, endpoint: str, outcome: str) -> None:
        self.db.execute(
            "INSERT INTO stats(endpoint, outcome, n) VALUES (?, ?, 1) "
            "ON CONFLICT(endpoint, outcome) DO UPDATE SET n = n + 1",
            (endpoint, outcome),
        )

    def stats(self) -> dict[str, Any]:
        requests: dict[str, dict[str, int]] = {}
        replayed = 0
        for row in self.db.execute("SELECT endpoint, outcome, n FROM stats ORDER BY endpoint, outcome"):
            requests.setdefault(row["endpoint"], {})[row["outcome"]] = row["n"]
            if row["outcome"] == "replayed":
                replayed += row["n"]
        return {
            "requests": requests,
            "duplicates_replayed": replayed,
            "cases": self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0],
            "updates": self.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0],
        }

    # --- cases
    def case_by_key(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM cases WHERE idempotency_key=?", (key,)).fetchone()

    def case(self, case_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM cases WHERE case_id=?", (case_id,)).fetchone()

    def update_by_key(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM updates WHERE idempotency_key=?", (key,)).fetchone()

    def _next_id(self, table: str, prefix: str) -> str:
        row = self.db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()
        return f"{prefix}-{datetime.now(CST):%Y%m%d}-{row[0]:06d}"

    def _save_files(self, owner: str, folder: Path, evidence: list[EvidenceItem], uploads: dict[str, bytes]) -> None:
        for item in evidence:
            path = sha = size = ok = None
            if item.filename in uploads:
                data = uploads[item.filename]
                target = self.files_dir / folder / item.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                tmp.write_bytes(data)
                os.replace(tmp, target)
                path = str(target.relative_to(self.root))
                sha, size, ok = hashlib.sha256(data).hexdigest(), len(data), 1
            self.db.execute(
                "INSERT INTO files(owner, filename, kind, content_type, declared_sha256, declared_bytes, url, path,"
                " sha256, bytes, sha256_ok) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    owner,
                    item.filename,
                    item.kind,
                    item.content_type,
                    item.sha256,
                    item.size,
                    item.url,
                    path,
                    sha,
                    size,
                    ok,
                ),
            )

    def create_case(self, key: str, form: str, payload: dict, case: CaseIn, uploads: dict[str, bytes]) -> dict:
        ts = now_iso()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            case_id = self._next_id("cases", "PC")
            response = {"case_id": case_id, "status": "accepted"}
            self.db.execute(
                "INSERT INTO cases(case_id, idempotency_key, form, payload, response, status, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (case_id, key, form, json.dumps(payload, ensure_ascii=False), json.dumps(response), "accepted", ts, ts),
            )
            self.db.execute(
                "INSERT INTO history(case_id, status, ts, note) VALUES (?,?,?,?)", (case_id, "accepted", ts, "")
            )
            self._save_files(case_id, Path(case_id), case.evidence, uploads)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return response

    def create_update(
        self, case_id: str, key: str, form: str, payload: dict, update: UpdateIn, uploads: dict[str, bytes]
    ) -> dict:
        ts = now_iso()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            update_id = self._next_id("updates", "PU")
            response = {"update_id": update_id, "case_id": case_id, "status": "accepted"}
            self.db.execute(
                "INSERT INTO updates(update_id, case_id, idempotency_key, form, payload, response, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (update_id, case_id, key, form, json.dumps(payload, ensure_ascii=False), json.dumps(response), ts),
            )
            self._save_files(update_id, Path(case_id) / "updates" / update_id, update.evidence, uploads)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return response

    def verification_by_key(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM verifications WHERE idempotency_key=?", (key,)).fetchone()

    def create_verification(
        self, key: str, form: str, payload: dict, answer: VerificationIn, uploads: dict[str, bytes]
    ) -> dict:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            answer_id = self._next_id("verifications", "PV")
            response = {"answer_id": answer_id, "status": "accepted"}
            self.db.execute(
                "INSERT INTO verifications(answer_id, idempotency_key, form, payload, response, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (answer_id, key, form, json.dumps(payload, ensure_ascii=False), json.dumps(response), now_iso()),
            )
            self._save_files(answer_id, Path("verifications") / answer_id, answer.evidence, uploads)  # type: ignore[arg-type]
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return response

    def verifications(self) -> list[dict]:
        return [
            {"answer_id": r["answer_id"], "idempotency_key": r["idempotency_key"], "form": r["form"],
             "payload": json.loads(r["payload"]), "created_at": r["created_at"], "files": self.files_of(r["answer_id"])}
            for r in self.db.execute("SELECT * FROM verifications ORDER BY seq")
        ]  # fmt: skip

    def set_status(self, case_id: str, status: str, note: str) -> str:
        ts = now_iso()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("UPDATE cases SET status=?, updated_at=? WHERE case_id=?", (status, ts, case_id))
        self.db.execute("INSERT INTO history(case_id, status, ts, note) VALUES (?,?,?,?)", (case_id, status, ts, note))
        self.db.execute("COMMIT")
        return ts

    def status_object(self, row: sqlite3.Row) -> dict:
        history = [
            {"status": h["status"], "ts": h["ts"], "note": h["note"]}
            for h in self.db.execute("SELECT * FROM history WHERE case_id=? ORDER BY seq", (row["case_id"],))
        ]
        return {"case_id": row["case_id"], "status": row["status"], "updated_at": row["updated_at"], "history": history}

    def files_of(self, owner: str) -> list[dict]:
        out = []
        for f in self.db.execute("SELECT * FROM files WHERE owner=? ORDER BY rowid", (owner,)):
            out.append(
                {
                    "filename": f["filename"],
                    "kind": f["kind"],
                    "content_type": f["content_type"],
                    "declared_sha256": f["declared_sha256"],
                    "declared_bytes": f["declared_bytes"],
                    "url": f["url"],
                    "received": f["path"] is not None,
                    "path": str(self.root / f["path"]) if f["path"] else None,
                    "sha256": f["sha256"],
                    "bytes": f["bytes"],
                    "sha256_ok": None if f["sha256_ok"] is None else bool(f["sha256_ok"]),
                    "fetch_error": f["fetch_error"],
                }
            )
        return out

    def dump(self) -> list[dict]:
        out = []
        for row in self.db.execute("SELECT * FROM cases ORDER BY seq"):
            updates = [
                {
                    "update_id": u["update_id"],
                    "idempotency_key": u["idempotency_key"],
                    "form": u["form"],
                    "payload": json.loads(u["payload"]),
                    "created_at": u["created_at"],
                    "files": self.files_of(u["update_id"]),
                }
                for u in self.db.execute("SELECT * FROM updates WHERE case_id=? ORDER BY seq", (row["case_id"],))
            ]
            out.append(
                {
                    **self.status_object(row),
                    "idempotency_key": row["idempotency_key"],
                    "form": row["form"],
                    "created_at": row["created_at"],
                    "payload": json.loads(row["payload"]),
                    "files": self.files_of(row["case_id"]),
                    "updates": updates,
                }
            )
        return out


# ------------------------------------------------------------------ special responses
class _Hang(Response):
    """Never answers: waits until the client goes away (or an hour)."""

    def __init__(self) -> None:
        super().__init__(status_code=504)

    async def __call__(self, scope, receive, send) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANG_S):
                while (await receive())["type"] != "http.disconnect":
                    pass


class _Drop(Response):
    """Closes the TCP connection without sending anything (see _DroppableH11)."""

    def __init__(self) -> None:
        super().__init__(status_code=502)

    async def __call__(self, scope, receive, send) -> None:
        ext = scope.get("extensions", {}).get("gridsight.abort")
        if ext is None:
            raise RuntimeError("drop_after_accept needs the server's _DroppableH11 protocol")
        ext["abort"]()
        # Wait until uvicorn has seen the connection go, so it does not answer 500 itself.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while (await receive())["type"] != "http.disconnect":
                    pass


class _DroppableH11(H11Protocol):
    """uvicorn's h11 protocol, plus scope["extensions"]["gridsight.abort"]["abort"]: close the socket now."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope, receive, send):
            scope.setdefault("extensions", {})["gridsight.abort"] = {"abort": self.transport.abort}
            await inner(scope, receive, send)

        self.app = app


NON_JSON_PAGE = (
    "<!DOCTYPE html><html><head><title>Gateway</title></head>"
    "<body><h1>统一认证网关</h1><p>The request was intercepted.</p></body></html>"
)


# ------------------------------------------------------------------ the app
def create_app(
    data: Path, *, token: str | None = None, callback_url: str | None = None, callback_secret: str | None = None
) -> FastAPI:
    store = Store(data)
    app = FastAPI(title="GridSight test platform", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Any] = {}

    def load_faults(f: Faults) -> None:
        state["faults"] = f
        state["rng"] = random.Random(f.seed)

    load_faults(Faults.model_validate(store.get_kv("faults", {})))

    @app.exception_handler(StarletteHTTPException)
    async def _http_exc(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return error(400, msgs)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    def unauthorized(request: Request) -> JSONResponse | None:
        if token is None:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return error(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="gridsight"'})

    def idempotency_key(request: Request) -> str:
        key = request.headers.get("idempotency-key")
        if key is None:
            raise BadRequest("Idempotency-Key header is required")
        if not _KEY_RE.match(key):
            raise BadRequest(f"Idempotency-Key must be 1..{MAX_KEY_LEN} visible ASCII characters")
        return key

    async def read_body(request: Request, part_name: str) -> tuple[str, bytes, dict[str, bytes]]:
        """(form, the JSON object's bytes, uploaded files by filename)."""
        ctype = request.headers.get("content-type", "")
        kind = ctype.split(";", 1)[0].strip().lower()
        body = await request.body()
        if kind == "application/json":
            return "json", body, {}
        if kind != "multipart/form-data":
            raise BadRequest(f"Content-Type must be application/json or multipart/form-data, not {ctype!r}")
        obj: bytes | None = None
        files: dict[str, bytes] = {}
        for part in parse_multipart(body, ctype):
            if part.name == part_name and part.filename is None:
                if obj is not None:
                    raise BadRequest(f"more than one {part_name!r} part")
                if (part.content_type or "").split(";")[0].strip().lower() != "application/json":
                    raise BadRequest(f"part {part_name!r} must have Content-Type: application/json")
                obj = part.data
            elif part.name == "file" and part.filename:
                if part.filename in files:
                    raise BadRequest(f"two file parts named {part.filename!r}")
                files[part.filename] = part.data
            else:
                raise BadRequest(
                    f"unexpected multipart part name={part.name!r} filename={part.filename!r} "
                    f"(want one {part_name!r} JSON part and 'file' parts with filenames)"
                )
        if obj is None:
            raise BadRequest(f"multipart body without a {part_name!r} part")
        return "multipart", obj, files

    def check_evidence(form: str, evidence: list[EvidenceItem], files: dict[str, bytes]) -> None:
        declared = {e.filename: e for e in evidence}
        for name in files:
            item = declared.get(name)
            if item is None:
                raise BadRequest(f"file part {name!r} is not in evidence")
            if item.url:
                raise BadRequest(f"evidence {name!r} has a url and a file part: send one or the other")
        for item in evidence:
            if form == "json" and not item.url:
                raise BadRequest(f"evidence {item.filename!r}: JSON bodies carry links, url is required")
            if item.url:
                continue
            if item.filename not in files:
                raise BadRequest(f"evidence {item.filename!r}: no file part with this filename (and no url)")
            data = files[item.filename]
            sha = hashlib.sha256(data).hexdigest()
            if sha != item.sha256:
                raise BadRequest(f"evidence {item.filename!r}: sha256 of the file is {sha}, declared {item.sha256}")
            if len(data) != item.size:
                raise BadRequest(f"evidence {item.filename!r}: file has {len(data)} bytes, declared {item.size}")

    def parse_object(raw: bytes, model: type[BaseModel], name: str) -> tuple[dict, Any]:
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"{name}: invalid JSON: {e}") from e
        if not isinstance(payload, dict):
            raise BadRequest(f"{name}: expected a JSON object, got {type(payload).__name__}")
        try:
            obj = model.model_validate_json(raw, strict=True)
        except ValidationError as e:
            raise BadRequest(_pydantic_message(name, e)) from e
        return payload, obj

    async def file_case(request: Request) -> tuple[int, dict, bool]:
        key = idempotency_key(request)
        if (row := store.case_by_key(key)) is not None:
            return 200, json.loads(row["response"]), False
        form, raw, files = await read_body(request, "case")
        payload, case = parse_object(raw, CaseIn, "case")
        if case.idempotency_key is not None and case.idempotency_key != key:
            raise BadRequest("case.idempotency_key differs from the Idempotency-Key header")
        if case.recurrence_of is not None and store.case(case.recurrence_of) is None:
            raise BadRequest(f"case.recurrence_of: unknown case {case.recurrence_of!r}")
        check_evidence(form, case.evidence, files)
        return 201, store.create_case(key, form, payload, case, files), True

    async def file_update(request: Request, case_id: str) -> tuple[int, dict, bool]:
        if store.case(case_id) is None:
            raise BadRequest(f"unknown case {case_id!r}", 404)
        key = idempotency_key(request)
        if (row := store.update_by_key(key)) is not None:
            if row["case_id"] != case_id:
                raise BadRequest(f"Idempotency-Key already used for an update of case {row['case_id']}")
            return 200, json.loads(row["response"]), False
        form, raw, files = await read_body(request, "update")
        payload, update = parse_object(raw, UpdateIn, "update")
        check_evidence(form, update.evidence, files)
        return 201, store.create_update(case_id, key, form, payload, update, files), True

    async def file_verification(request: Request) -> tuple[int, dict, bool]:
        key = idempotency_key(request)
        if (row := store.verification_by_key(key)) is not None:
            return 200, json.loads(row["response"]), False
        form, raw, files = await read_body(request, "verification")
        payload, answer = parse_object(raw, VerificationIn, "verification")
        check_evidence(form, answer.evidence, files)  # type: ignore[arg-type]
        return 201, store.create_verification(key, form, payload, answer, files), True

    async def faulty_post(request: Request, endpoint: str, handler) -> Response:
        if (resp := unauthorized(request)) is not None:
            store.count(endpoint, "401")
            return resp
        f: Faults = state["faults"]
        rng: random.Random = state["rng"]
        fail, hang, non_json, drop = (rng.random() for _ in range(4))
        if fail < f.fail_rate:
            store.count(endpoint, "fault_fail")
            return error(500, "injected failure (fail_rate)")
        if hang < f.hang_rate:
            store.count(endpoint, "fault_hang")
            return _Hang()
        if non_json < f.non_json_rate:
            store.count(endpoint, "fault_non_json")
            return HTMLResponse(NON_JSON_PAGE, status_code=200)
        try:
            status, body, created = await handler()
        except BadRequest as e:
            status, body, created = e.status, {"error": str(e)}, False
        if f.delay_s:
            await asyncio.sleep(f.delay_s)
        if created and drop < f.drop_after_accept_rate:
            store.count(endpoint, "dropped_after_accept")
            return _Drop()
        store.count(endpoint, "replayed" if status == 200 else str(status))
        return JSONResponse(body, status_code=status)

    # --- contract endpoints
    @app.post(PREFIX + "/cases")
    async def post_case(request: Request) -> Response:
        return await faulty_post(request, "POST /cases", lambda: file_case(request))

    @app.post(PREFIX + "/cases/{case_id}/updates")
    async def post_update(request: Request, case_id: str) -> Response:
        return await faulty_post(request, "POST /cases/{id}/updates", lambda: file_update(request, case_id))

    @app.post(PREFIX + "/verifications")
    async def post_verification(request: Request) -> Response:
        return await faulty_post(request, "POST /verifications", lambda: file_verification(request))

    @app.get(PREFIX + "/cases/{case_id}")
    async def get_case(request: Request, case_id: str) -> Response:
        endpoint = "GET /cases/{id}"
        if (resp := unauthorized(request)) is not None:
            store.count(endpoint, "401")
            return resp
        row = store.case(case_id)
        store.count(endpoint, "200" if row else "404")
        return JSONResponse(store.status_object(row)) if row else error(404, f"unknown case {case_id!r}")

    @app.get(PREFIX + "/cases")
    async def find_case(request: Request) -> Response:
        endpoint = "GET /cases?idempotency_key"
        if (resp := unauthorized(request)) is not None:
            store.count(endpoint, "401")
            return resp
        key = request.query_params.get("idempotency_key")
        if not key:
            store.count(endpoint, "400")
            return error(400, "query parameter idempotency_key is required")
        row = store.case_by_key(key)
        store.count(endpoint, "200" if row else "404")
        return JSONResponse(store.status_object(row)) if row else error(404, "no case with this idempotency key")

    # --- admin endpoints (tests only)
    @app.get("/_admin/faults")
    async def get_faults() -> dict:
        return state["faults"].model_dump()

    @app.post("/_admin/faults")
    async def set_faults(faults: Faults) -> dict:
        store.set_kv("faults", faults.model_dump())
        load_faults(faults)
        return faults.model_dump()

    @app.get("/_admin/cases")
    async def admin_cases() -> list:
        return store.dump()

    @app.get("/_admin/verifications")
    async def admin_verifications() -> list:
        return store.verifications()

    @app.get("/_admin/stats")
    async def admin_stats() -> dict:
        return store.stats()

    @app.post("/_admin/status")
    async def admin_status(change: StatusChange) -> Response:
        if store.case(change.case_id) is None:
            return error(404, f"unknown case {change.case_id!r}")
        ts = store.set_status(change.case_id, change.status, change.note)
        out: dict[str, Any] = {
            **store.status_object(store.case(change.case_id)),
            "callback_status": None,
            "callback_error": None,
        }
        if callback_url:
            body = json.dumps(
                {"case_id": change.case_id, "status": change.status, "ts": ts, "note": change.note}, ensure_ascii=False
            ).encode()
            stamp = str(int(time.time()))
            sig = hmac.new((callback_secret or "").encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "X-Platform-Timestamp": stamp, "X-Platform-Signature": sig}
            try:
                async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S) as client:
                    resp = await client.post(callback_url, content=body, headers=headers)
                out["callback_status"] = resp.status_code
            except httpx.HTTPError as e:
                out["callback_error"] = f"{type(e).__name__}: {e}"
        return JSONResponse(out)

    @app.post("/_admin/fetch_evidence")
    async def admin_fetch(req: FetchRequest) -> Response:
        if store.case(req.case_id) is None:
            return error(404, f"unknown case {req.case_id!r}")
        owners = [(req.case_id, Path(req.case_id))] + [
            (u["update_id"], Path(req.case_id) / "updates" / u["update_id"])
            for u in store.db.execute("SELECT update_id FROM updates WHERE case_id=?", (req.case_id,))
        ]
        async with httpx.AsyncClient(timeout=10) as client:
            for owner, folder in owners:
                for f in store.db.execute("SELECT * FROM files WHERE owner=? AND url IS NOT NULL", (owner,)).fetchall():
                    try:
                        resp = await client.get(f["url"])
                        resp.raise_for_status()
                    except httpx.HTTPError as e:
                        store.db.execute(
                            "UPDATE files SET fetch_error=? WHERE owner=? AND filename=?",
                            (f"{type(e).__name__}: {e}", owner, f["filename"]),
                        )
                        continue
                    target = store.files_dir / folder / f["filename"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(resp.content)
                    sha = hashlib.sha256(resp.content).hexdigest()
                    ok = sha == f["declared_sha256"] and len(resp.content) == f["declared_bytes"]
                    store.db.execute(
                        "UPDATE files SET path=?, sha256=?, bytes=?, sha256_ok=?, fetch_error=NULL"
                        " WHERE owner=? AND filename=?",
                        (str(target.relative_to(store.root)), sha, len(resp.content), int(ok), owner, f["filename"]),
                    )
        return JSONResponse(next(c for c in store.dump() if c["case_id"] == req.case_id))

    return app


# ------------------------------------------------------------------ process entry point
class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"READY {self.port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--data", type=Path, required=True, help="state folder (created if missing)")
    ap.add_argument("--token", help="require Authorization: Bearer TOKEN on the contract endpoints")
    ap.add_argument("--callback-url", help="GridSight's callback URL, e.g. http://h:p/api/v1/platform/callback")
    ap.add_argument("--callback-secret", help="HMAC secret for the callback signature")
    ap.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (parent died)")
    args = ap.parse_args(argv)
    if bool(args.callback_url) != bool(args.callback_secret):
        ap.error("--callback-url and --callback-secret go together")

    args.data.mkdir(parents=True, exist_ok=True)
    app = create_app(args.data, token=args.token, callback_url=args.callback_url, callback_secret=args.callback_secret)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as e:
        print(f"platform_server: could not bind 127.0.0.1:{args.port}: {e}", file=sys.stderr, flush=True)
        return 2
    config = uvicorn.Config(
        app, http=_DroppableH11, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=1
    )
    server = _Server(config, sock.getsockname()[1])
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            with contextlib.suppress(Exception):
                sys.stdin.buffer.read()
            server.should_exit = True

        threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
