"""Console login: a session cookie after a password check, rate-limited per client and user."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.accounts import PERMISSIONS, SESSION_HOURS, Principal, audit, check_password, close_session, open_session
from api.deps import SESSION_COOKIE, ApiContext, ContextDep, get_principal
from api.schemas import errors

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=errors(401, 429))

MAX_FAILURES = 5
WINDOW_S = 300.0


class Credentials(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"username": "zhangsan", "password": "…"}]}}

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    username: str
    role: str
    permissions: list[str]


class LoginLimiter:
    """At most MAX_FAILURES failed logins per (client, user name) in WINDOW_S seconds."""

    def __init__(self) -> None:
        self._fails: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, key: tuple[str, str]) -> bool:
        with self._lock:
            q = self._fails[key]
            while q and q[0] < time.monotonic() - WINDOW_S:
                q.popleft()
            return len(q) >= MAX_FAILURES

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails[key].append(time.monotonic())

    def reset(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails.pop(key, None)


limiter = LoginLimiter()


def _login(ctx: ApiContext, creds: Credentials) -> tuple[str, Me] | None:
    with ctx.sessions() as s:
        user = check_password(s, creds.username, creds.password)
        if user is None:
            return None
        sid = open_session(s, user)
        audit(s, user.username, "login", f"user:{user.username}")
        s.commit()
        return sid, Me(username=user.username, role=user.role, permissions=sorted(PERMISSIONS[user.role]))


@router.post("/login")
async def login(creds: Credentials, request: Request, response: Response, ctx: ContextDep) -> Me:
    key = (request.client.host if request.client else "?", creds.username)
    if limiter.blocked(key):
        raise HTTPException(
            429, f"too many failed logins; try again in {int(WINDOW_S / 60)} minutes",
            headers={"Retry-After": str(int(WINDOW_S))},
        )  # fmt: skip
    result = await run_in_threadpool(_login, ctx, creds)  # argon2 and the database block
    if result is None:
        limiter.failed(key)
        raise HTTPException(401, "wrong user name or password")
    limiter.reset(key)
    sid, me = result
    response.set_cookie(
        SESSION_COOKIE, sid, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
        secure=ctx.cookie_secure, path="/",
    )  # fmt: skip
    return me


@router.post("/logout", status_code=204)
def logout(request: Request, ctx: ContextDep) -> Response:
    if sid := request.cookies.get(SESSION_COOKIE):
        with ctx.sessions() as s:
            close_session(s, sid)
            s.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me")
def me(who: Annotated[Principal, Depends(get_principal)]) -> Me:
    return Me(username=who.name, role=who.role, permissions=sorted(PERMISSIONS[who.role]))
