"""Console users and machine tokens, for admins: list, add, disable, enable, reset a password, revoke.

Every change is audited in the transaction that makes it, as the CLI's are (actor "cli" there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from sqlalchemy.orm import Session

from api.accounts import (
    AccountError,
    Principal,
    UnknownAccount,
    add_user,
    audit,
    generate_password,
    list_tokens,
    list_users,
    reset_password,
    revoke_token,
    set_disabled,
)
from api.deps import Admin, SessionDep
from api.schemas import PasswordReset, TokenPublic, UserCreate, UserPublic, UserWithPassword, errors
from detector.store.db import ApiToken, User

router = APIRouter(prefix="/api/v1", tags=["users"], responses=errors(401, 403, 404, 409))
#: a user or token name in a path (names made by `gridsight token create` may hold any character)
Name = Annotated[str, PathParam(min_length=1, max_length=64)]


def _user(u: User) -> UserPublic:
    return UserPublic(username=u.username, role=u.role, disabled=u.disabled, created_at=u.created_at)


def _token(t: ApiToken) -> TokenPublic:
    return TokenPublic(
        name=t.name, role=t.role, revoked=t.revoked, created_at=t.created_at, last_used_at=t.last_used_at
    )


def _change(s: Session, do: Callable[[], Any]) -> Any:
    """`do()` then commit; an account error answers 404 (no such name) or 409 (not now), nothing written."""
    try:
        result = do()
    except UnknownAccount as e:
        s.rollback()
        raise HTTPException(404, str(e)) from e
    except AccountError as e:
        s.rollback()
        raise HTTPException(409, str(e)) from e
    s.commit()
    return result


@router.get("/users")
def users(_: Admin, s: SessionDep) -> list[UserPublic]:
    return [_user(u) for u in list_users(s)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, who: Admin, s: SessionDep) -> UserWithPassword:
    """Adds a user; without a password one is generated and answered this once."""
    password = body.password or generate_password()

    def do() -> User:
        user = add_user(s, body.username, password, body.role)
        audit(s, who, "user.add", f"user:{body.username}", None, {"role": body.role})
        return user

    user = _change(s, do)
    return UserWithPassword(user=_user(user), password=None if body.password else password)


def _set_disabled(s: Session, who: Principal, username: str, disabled: bool) -> UserPublic:
    if disabled and who.kind == "user" and who.name == username:
        raise HTTPException(409, "you cannot disable yourself (another admin can)")

    def do() -> User:
        user = set_disabled(s, username, disabled)
        action = "user.disable" if disabled else "user.enable"
        audit(s, who, action, f"user:{username}", {"disabled": not disabled}, {"disabled": disabled})
        return user

    return _user(_change(s, do))


@router.post("/users/{username}/disable")
def disable_user(username: Name, who: Admin, s: SessionDep) -> UserPublic:
    """Disables the user and ends their sessions at once."""
    return _set_disabled(s, who, username, True)


@router.post("/users/{username}/enable")
def enable_user(username: Name, who: Admin, s: SessionDep) -> UserPublic:
    return _set_disabled(s, who, username, False)


@router.post("/users/{username}/password")
def reset_user_password(username: Name, body: PasswordReset, who: Admin, s: SessionDep) -> UserWithPassword:
    """Sets a new password (generated unless given) and ends the user's sessions."""
    password = body.password or generate_password()

    def do() -> User:
        user = reset_password(s, username, password)
        audit(s, who, "user.reset_password", f"user:{username}")
        return user

    user = _change(s, do)
    return UserWithPassword(user=_user(user), password=None if body.password else password)


@router.get("/tokens")
def tokens(_: Admin, s: SessionDep) -> list[TokenPublic]:
    return [_token(t) for t in list_tokens(s)]


@router.post("/tokens/{name}/revoke")
def revoke(name: Name, who: Admin, s: SessionDep) -> TokenPublic:
    """Revokes the token: the next request with it is refused."""

    def do() -> ApiToken:
        token = revoke_token(s, name)
        audit(s, who, "token.revoke", f"token:{name}", {"revoked": False}, {"revoked": True})
        return token

    return _token(_change(s, do))
