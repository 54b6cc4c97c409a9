"""Console login: a session cookie after a password check, rate-limited per client and user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.accounts import (
    LOGIN_WINDOW_S,
    PERMISSIONS,
    SESSION_HOURS,
    Principal,
    audit,
    check_password,
    close_session,
    open_session,
)
from api.deps import SESSION_COOKIE, ApiContext, ContextDep, get_principal
from api.schemas import errors

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=errors(401, 429))


class Credentials(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"username": "zhangsan", "password": "…"}]}}

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    username: str
    role: str
    permissions: list[str]


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
    limiter = ctx.login_limiter
    if limiter.blocked(key):
        raise HTTPException(
            429, f"too many failed logins; try again in {int(LOGIN_WINDOW_S / 60)} minutes",
            headers={"Retry-After": str(int(LOGIN_WINDOW_S))},
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
