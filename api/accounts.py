"""Users, roles, API tokens, login sessions and the audit log.

Passwords are stored as argon2 hashes; tokens and session ids only as SHA-256
digests, so a copy of the database opens nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from detector.store.db import ApiToken, AuditLog, LoginSession, User

ROLES = ("viewer", "operator", "trainer", "admin")
#: what each role may do; every API route names the permission it needs
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "review", "cases"}),
    "trainer": frozenset({"read", "models"}),
    "admin": frozenset({"read", "review", "cases", "models", "admin"}),
}
SESSION_HOURS = 12
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user or token request that cannot be done (name taken, unknown role, ...)."""


class UnknownAccount(AccountError):
    """No user or token of that name."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (by session) or a machine (by token)."""

    name: str
    role: str
    kind: str  # user | token

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {ROLES}, got {role!r}")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def add_user(s: Session, username: str, password: str, role: str) -> User:
    """Raises: AccountError: bad role, short password or a taken name."""
    _check_role(role)
    _check_password(password)
    if s.scalar(select(User).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} exists")
    user = User(username=username, password_hash=_hasher.hash(password), role=role, created_at=datetime.now(UTC))
    s.add(user)
    return user


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AccountError("password must have at least 10 characters")


def list_users(s: Session) -> list[User]:
    return list(s.scalars(select(User).order_by(User.username)))


def _user(s: Session, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownAccount(f"no user {username!r}")
    return user


def set_disabled(s: Session, username: str, disabled: bool) -> User:
    """Disables (and logs out) or enables a user.

    Raises:
        AccountError: no such user, or it is the last enabled admin (nobody could manage users then).
    """
    user = _user(s, username)
    if disabled and user.role == "admin" and not user.disabled:
        admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.disabled.is_(False)))
        if (admins or 0) <= 1:
            raise AccountError(f"{username!r} is the last enabled admin; add another admin first")
    user.disabled = disabled
    if disabled:
        s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    return user


def reset_password(s: Session, username: str, password: str) -> User:
    """Sets a new password and ends the user's sessions (whoever knew the old one is logged out).

    Raises:
        AccountError: no such user, or a short password.
    """
    _check_password(password)
    user = _user(s, username)
    user.password_hash = _hasher.hash(password)
    s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    return user


def list_tokens(s: Session) -> list[ApiToken]:
    return list(s.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke_token(s: Session, name: str) -> ApiToken:
    """Raises: AccountError: no such token, or it is revoked already."""
    token = s.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise UnknownAccount(f"no token {name!r}")
    if token.revoked:
        raise AccountError(f"token {name!r} is revoked already")
    token.revoked = True
    return token


def user_count(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(User)) or 0


def check_password(s: Session, username: str, password: str) -> User | None:
    user = s.scalar(select(User).where(User.username == username, User.disabled.is_(False)))
    if user is None:
        _hasher.hash(password)  # same work either way: no user-name oracle by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def create_token(s: Session, name: str, role: str) -> str:
    """A new API token; the plain value is returned once and never stored.

    Raises:
        AccountError: bad role or a taken name.
    """
    _check_role(role)
    if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
        raise AccountError(f"token {name!r} exists")
    token = "gst_" + secrets.token_urlsafe(32)
    s.add(ApiToken(name=name, token_hash=_digest(token), role=role, created_at=datetime.now(UTC)))
    return token


def principal_for_token(s: Session, token: str) -> Principal | None:
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked.is_(False)))
    if row is None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now  # at most one write a minute: reads must not queue behind writes
    return Principal(row.name, row.role, "token")


def open_session(s: Session, user: User) -> str:
    sid = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    s.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    s.add(
        LoginSession(
            token_hash=_digest(sid), user_id=user.id, created_at=now, expires_at=now + timedelta(hours=SESSION_HOURS)
        )
    )
    return sid


def principal_for_session(s: Session, sid: str) -> Principal | None:
    row = s.scalar(select(LoginSession).where(LoginSession.token_hash == _digest(sid)))
    if row is None or row.expires_at < datetime.now(UTC):
        return None
    user = s.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return Principal(user.username, user.role, "user")


def close_session(s: Session, sid: str) -> None:
    s.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(sid)))


def audit(
    s: Session, actor: Principal | str, action: str, target: str, before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Records a change in the caller's transaction (it commits with the change or not at all)."""
    name = actor.name if isinstance(actor, Principal) else actor
    s.add(AuditLog(ts=datetime.now(UTC), actor=name, action=action, target=target, before=before, after=after))


LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_S = 300.0


class LoginLimiter:
    """At most LOGIN_MAX_FAILURES failed logins per (client, user name) in LOGIN_WINDOW_S seconds.

    One per API app (ApiContext), so that one app's failures never lock another's users."""

    def __init__(self) -> None:
        self._fails: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, key: tuple[str, str]) -> bool:
        with self._lock:
            q = self._fails[key]
            while q and q[0] < time.monotonic() - LOGIN_WINDOW_S:
                q.popleft()
            return len(q) >= LOGIN_MAX_FAILURES

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails[key].append(time.monotonic())

    def reset(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails.pop(key, None)
