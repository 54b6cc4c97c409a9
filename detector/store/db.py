"""Database: SQLAlchemy 2.x models, engine setup and Alembic migrations.

Everything a restart needs — open incidents, persistence candidates, camera
state — lives here, never only in memory. SQLite runs in WAL mode so the API
can read while the pipeline writes.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    false,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pipeline times are always aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {datetime: UtcDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class CameraRow(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="connecting")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_frame_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    analyzer_state: Mapped[bytes | None] = mapped_column(LargeBinary)


class Incident(Base):
    """One real problem at one place: camera + preset + zone + problem + coarse cell."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_key: Mapped[str] = mapped_column(String(200), index=True)
    # == case_key while the incident is active, NULL once cleared: the unique
    # index makes "at most one active incident per key" a database fact.
    active_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    ptz_preset: Mapped[str | None] = mapped_column(String(64))
    zone: Mapped[str] = mapped_column(String(40))
    problem_code: Mapped[str] = mapped_column(String(5), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | present | cleared | recurred
    opened_at: Mapped[datetime]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    recurrences: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Operator review: None (filed automatically), pending, confirmed, rejected, relabelled
    review_state: Mapped[str | None] = mapped_column(String(16), index=True)
    review_note: Mapped[str | None] = mapped_column(Text)

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.id", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[EvidenceFile]] = relationship(
        back_populates="incident", order_by="EvidenceFile.id", cascade="all, delete-orphan"
    )


class IncidentEvent(Base):
    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # opened | present | cleared | recurred
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    incident: Mapped[Incident] = relationship(back_populates="events")


class EvidenceFile(Base):
    """A file under the evidence root, named by its content hash."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # annotated | clean | clip | first_seen | fresh | after
    path: Mapped[str] = mapped_column(String(255), index=True)  # relative to the evidence root
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    incident: Mapped[Incident] = relationship(back_populates="evidence")


class Candidate(Base):
    """Persistence state of a possible problem that is not (yet) an incident."""

    __tablename__ = "candidates"

    case_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    first_seen_at: Mapped[datetime]
    last_hit_at: Mapped[datetime]
    history: Mapped[list[Any]] = mapped_column(JSON)  # [[iso ts, hit 0/1], ...] newest last
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[Any]] = mapped_column(JSON)
    # the annotated picture of the first sighting (evidence-root path): the "before" of the case
    first_frame: Mapped[str | None] = mapped_column(String(255))


class Case(Base):
    """What is filed to the platform for an incident (a recurrence after closing is a new case)."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    problem_code: Mapped[str] = mapped_column(String(5))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the national fields, built once
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | accepted | filed | ... | closed
    platform_case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    deadline: Mapped[datetime]
    recurrence_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    verification: Mapped[str | None] = mapped_column(String(16))  # checking | cleared | not_resolved
    verify_started_at: Mapped[datetime | None]
    last_update_at: Mapped[datetime | None]  # pipeline time of the last still-present update
    # the platform's time of the status the case is in (an update older than this is stale)
    status_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    history: Mapped[list[CaseHistory]] = relationship(order_by="CaseHistory.id", cascade="all, delete-orphan")


class CaseHistory(Base):
    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime]
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # detector/filing/case_flow.yaml: SOURCES
    note: Mapped[str | None] = mapped_column(Text)
    # an update older than the case's status: recorded, not applied
    stale: Mapped[bool] = mapped_column(default=False, server_default=false())


class Outbox(Base):
    """A message for the platform, written in the same transaction as the change it reports."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # a case's message, or (case_id NULL) the answer to a 核实 request
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    verification_id: Mapped[int | None] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # file | update | verification
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | sending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claim: Mapped[str | None] = mapped_column(String(32))  # the token of the claim that holds it
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Verification(Base):
    """A 核实 request from the centre: is this problem still there? Answered once, by the cameras that cover it."""

    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem_code: Mapped[str] = mapped_column(String(5))
    location: Mapped[dict[str, Any]] = mapped_column(JSON)  # as requested: {grid_code} | {lon, lat} | {camera_id}
    reference: Mapped[str | None] = mapped_column(String(128))  # the platform's own id of the report
    requested_by: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | answered
    result: Mapped[str | None] = mapped_column(String(16))  # present | absent | cannot_see
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]

    looks: Mapped[list[VerificationLook]] = relationship(
        back_populates="verification", order_by="VerificationLook.id", cascade="all, delete-orphan"
    )


class VerificationLook(Base):
    """One camera's part of a 核实 request: pending until its next analysed frame (or its deadline)."""

    __tablename__ = "verification_looks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    verification_id: Mapped[int] = mapped_column(ForeignKey("verifications.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    preset: Mapped[str | None] = mapped_column(String(64))  # a PTZ camera: the preset whose view answers
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | present | absent | cannot_see
    reason: Mapped[str | None] = mapped_column(Text)  # cannot_see: why
    deadline: Mapped[datetime]
    frame_at: Mapped[datetime | None]  # pipeline time of the frame that answered
    answered_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # present: the findings (box, score, zone)

    verification: Mapped[Verification] = relationship(back_populates="looks")
    evidence: Mapped[list[VerificationFile]] = relationship(
        order_by="VerificationFile.id", cascade="all, delete-orphan"
    )


class VerificationFile(Base):
    """A picture under the evidence root that answers a look (annotated | clean)."""

    __tablename__ = "verification_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    look_id: Mapped[int] = mapped_column(ForeignKey("verification_looks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(255), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class CameraHealthEvent(Base):
    """A camera's state changes, for its health history."""

    __tablename__ = "camera_health"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    ts: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | trainer | admin
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class ApiToken(Base):
    """A machine's credential; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)


class LoginSession(Base):
    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditLog(Base):
    """Who did what, when, with the before and after of the change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(80))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ModelDeployment(Base):
    """A trainer's decision: this model version is active, or runs in shadow on some cameras.

    The open row (ended_at NULL) per model and role is the current state; ended rows are
    the history that `rollback` goes back through.
    """

    __tablename__ = "model_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(8))  # active | shadow
    cameras: Mapped[list[Any] | None] = mapped_column(JSON)  # shadow: camera ids (None: every camera)
    actor: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ModelFinding(Base):
    """A box from a camera where a shadow model runs: the shadow's and the active model's, frame by frame."""

    __tablename__ = "model_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the shadow run (model_deployments.id) whose cameras recorded it: frame times are the
    # cameras' clocks (a file plays faster than real time), so runs are told apart by id
    run_id: Mapped[int] = mapped_column(ForeignKey("model_deployments.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(8))  # active | shadow
    camera_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    label: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[Any]] = mapped_column(JSON)  # normalised xyxy

    __table_args__ = (Index("ix_model_findings_run", "run_id", "camera_id", "ts"),)


class CameraLease(Base):
    """Which instance serves a camera, until when (several instances on one database; detector/runtime/leases.py)."""

    __tablename__ = "camera_leases"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128), index=True)  # instance id; NULL: released
    expires_at: Mapped[datetime]  # the database's clock
    claimed_at: Mapped[datetime]  # when the current holder took it
    generation: Mapped[int] = mapped_column(Integer, default=1)  # +1 at every change of holder (fencing epoch)


class LeaseInstance(Base):
    """A live instance and the cameras it may take, renewed with its leases (for the fair share)."""

    __tablename__ = "lease_instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    cameras: Mapped[list[Any]] = mapped_column(JSON)  # ids of the cameras its filter allows
    started_at: Mapped[datetime]
    expires_at: Mapped[datetime]


def make_engine(url: str) -> Engine:
    """Creates the engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


MIGRATION_LOCK = 0x67726964  # PostgreSQL advisory lock key ("grid")


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest Alembic revision.

    Processes started together (a supervisor's workers, instances on one database)
    migrate one at a time: the first upgrades, the others then find it done.
    SQLite runs DDL outside transactions, so a file lock beside the database
    serialises them; PostgreSQL takes an advisory lock for the transaction.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def open_database(url: str) -> tuple[Engine, sessionmaker]:
    """An engine on a database migrated to the newest schema, and its session factory."""
    engine = make_engine(url)
    migrate(engine)
    return engine, session_factory(engine)
