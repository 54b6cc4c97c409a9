"""Camera leases: which instance serves which camera when several GridSight instances share a database.

A lease is one row per camera (`camera_leases`): its holder, until when, and a
generation that grows at every change of holder. An instance

* **claims** a camera atomically: renew it if it is already mine, steal it if
  its lease was released or has expired, insert it if nobody ever held it —
  each one statement, so of two instances claiming at once exactly one wins
  (PostgreSQL re-checks the WHERE under the row lock; SQLite serialises writers);
* **renews** all its leases every `renew_s`, in one statement;
* **releases** them on a clean stop, so the others take the cameras at their
  next round instead of waiting for the expiry;
* when it dies (kill -9) does nothing: its leases expire after `lease_s` and
  the others steal them.

Clock: the database's. Expiry times are computed from, and compared with, the
database server's time (PostgreSQL `now()`, read in the transaction that uses
it), so instances whose clocks disagree still agree on when a lease ends.
With SQLite the database lives on this host, so the host clock *is* its clock.
Locally, an instance counts its lease from its monotonic clock *before* the
renewal was sent — never later than the database's expiry — and stops serving
a camera `lease_s / 5` earlier still, so two instances never analyse one camera
at once even when renewals fail.

Which cameras to claim is the pure `plan()`; the `LeaseKeeper` thread runs it.
Each instance also keeps a row in `lease_instances` (the cameras it may take,
renewed with its leases): the live ones are what the fair share divides by.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from detector.runtime.pipeline import FrameQueues
from detector.store.db import CameraLease, LeaseInstance
from detector.types import Frame

log = logging.getLogger(__name__)

LEASES = CameraLease.__table__
INSTANCES = LeaseInstance.__table__
STALE_ROUNDS = 2  # a camera free this many rounds in a row is claimed even above the fair share
FORGET_INSTANCES = timedelta(hours=1)  # rows of instances gone this long are deleted


class LeaseError(RuntimeError):
    """This instance cannot take part in the leases (its id is in use)."""


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Lease:
    camera_id: str
    holder: str | None  # None: released
    expires_at: datetime
    generation: int

    def free(self, now: datetime) -> bool:
        """Released or expired: any instance may claim it."""
        return self.holder is None or self.expires_at <= now


# ---------------------------------------------------------------- statements (in the caller's transaction)


def db_now(s: Session) -> datetime:
    """The database's clock: PostgreSQL's `now()` (this transaction's start); SQLite: this host's, its own."""
    if s.get_bind().dialect.name == "postgresql":
        return s.scalar(select(func.now())).astimezone(UTC)
    return datetime.now(UTC)


def _insert(s: Session) -> Any:
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def claim(s: Session, camera_id: str, *, me: str, lease_s: float, now: datetime | None = None) -> Lease | None:
    """Takes the camera for `me` if it is mine, released, expired or never held; None if another holds it."""
    now = now or db_now(s)
    until = now + timedelta(seconds=lease_s)
    c = LEASES.c
    got = s.execute(update(LEASES).where(c.camera_id == camera_id, c.holder == me).values(expires_at=until)).rowcount
    if not got:  # steal: released or expired (a concurrent thief waits for the row lock, then sees the new holder)
        free = or_(c.holder.is_(None), c.expires_at <= now)
        got = s.execute(
            update(LEASES)
            .where(c.camera_id == camera_id, free)
            .values(holder=me, expires_at=until, claimed_at=now, generation=c.generation + 1)
        ).rowcount
    if not got:  # never held: the first insert wins, the others do nothing
        ins = _insert(s)(LEASES).values(camera_id=camera_id, holder=me, expires_at=until, claimed_at=now, generation=1)
        ins = ins.on_conflict_do_nothing(index_elements=["camera_id"]).returning(c.camera_id)
        got = s.execute(ins).first() is not None  # (rowcount: -1 for an INSERT on psycopg)
    if not got:
        return None
    generation = s.scalar(select(c.generation).where(c.camera_id == camera_id))
    return Lease(camera_id, me, until, generation)


def renew(s: Session, *, me: str, lease_s: float, now: datetime | None = None) -> dict[str, int]:
    """Extends every lease `me` holds; returns them (camera id → generation).

    A lease of mine that expired but that nobody stole is renewed too: while the
    holder is still me, no other instance has served the camera.
    """
    now = now or db_now(s)
    c = LEASES.c
    s.execute(update(LEASES).where(c.holder == me).values(expires_at=now + timedelta(seconds=lease_s)))
    return {cam: gen for cam, gen in s.execute(select(c.camera_id, c.generation).where(c.holder == me))}


def release(s: Session, camera_ids: Collection[str] | None = None, *, me: str, now: datetime | None = None) -> int:
    """Gives up `me`'s leases (all of them when `camera_ids` is None); returns how many."""
    now = now or db_now(s)
    q = update(LEASES).where(LEASES.c.holder == me)
    if camera_ids is not None:
        q = q.where(LEASES.c.camera_id.in_(list(camera_ids)))
    return s.execute(q.values(holder=None, expires_at=now)).rowcount


def leases(s: Session) -> dict[str, Lease]:
    rows = s.execute(select(LEASES.c.camera_id, LEASES.c.holder, LEASES.c.expires_at, LEASES.c.generation))
    return {r.camera_id: Lease(r.camera_id, r.holder, r.expires_at, r.generation) for r in rows}


def heartbeat(s: Session, *, me: str, cameras: Collection[str], lease_s: float, now: datetime | None = None) -> None:
    """Says `me` is alive (for `lease_s`) and which cameras it may take; forgets instances long gone."""
    now = now or db_now(s)
    until = now + timedelta(seconds=lease_s)
    ins = _insert(s)(INSTANCES).values(id=me, cameras=sorted(cameras), started_at=now, expires_at=until)
    s.execute(ins.on_conflict_do_update(index_elements=["id"], set_={"cameras": sorted(cameras), "expires_at": until}))
    s.execute(delete(INSTANCES).where(INSTANCES.c.expires_at < now - FORGET_INSTANCES))


def live_instances(s: Session, *, now: datetime | None = None) -> dict[str, frozenset[str]]:
    """Instances whose heartbeat has not expired, with the cameras each may take."""
    now = now or db_now(s)
    rows = s.execute(select(INSTANCES.c.id, INSTANCES.c.cameras).where(INSTANCES.c.expires_at > now))
    return {r.id: frozenset(r.cameras) for r in rows}


def leave(s: Session, *, me: str) -> int:
    """A clean stop: every lease released and the instance's row deleted; returns the leases released."""
    n = release(s, me=me)
    s.execute(delete(INSTANCES).where(INSTANCES.c.id == me))
    return n


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True, slots=True)
class Plan:
    claim: tuple[str, ...] = ()
    shed: tuple[str, ...] = ()  # to hand over: stop serving, then release


def rank(me: str, camera_id: str) -> bytes:
    """This instance's order of preference for cameras: instances starting together reach for different ones."""
    return hashlib.sha256(f"{me}|{camera_id}".encode()).digest()


def fair_share(cameras: Collection[str], instances: Mapping[str, Collection[str]]) -> int:
    """ceil(cameras / live instances that may take at least one of them); `instances` includes the one asking."""
    mine = set(cameras)
    sharing = sum(1 for theirs in instances.values() if mine & set(theirs))
    return math.ceil(len(mine) / max(1, sharing))


def plan(
    me: str,
    eligible: Collection[str],
    current: Mapping[str, Lease],
    instances: Mapping[str, Collection[str]],
    now: datetime,
    free_rounds: Mapping[str, int] | None = None,
    peers: int = 1,
) -> Plan:
    """Which cameras `me` claims, and which one it hands over, this round.

    1. Claim free cameras (never held, released or expired), in my order of
       preference, until I hold my fair share: ceil(my eligible cameras / live
       instances that may take some of them, or / `peers` if more: workers
       started together, not all registered yet, would otherwise each claim all
       and then hand the surplus over one camera per round).
    2. Claim any camera that has been free for STALE_ROUNDS rounds already,
       whatever my share: the instances below their share did not take it, so
       it must not stay unserved (e.g. another instance's street filter).
    3. Otherwise, above my share while a live instance that may take one of my
       cameras is below its own: hand that camera over, one per round.
    Cameras I hold that I may no longer take are always handed over.
    """
    free_rounds = free_rounds or {}
    allowed = set(eligible)
    everyone = {**{k: set(v) for k, v in instances.items()}, me: allowed}
    held = {cam for cam, lease in current.items() if lease.holder == me}
    free = sorted(
        (cam for cam in allowed - held if cam not in current or current[cam].free(now)), key=lambda cam: rank(me, cam)
    )
    share = min(fair_share(allowed, everyone), math.ceil(len(allowed) / max(1, peers)))
    room = max(0, share - len(held & allowed))
    claims = free[:room] + [cam for cam in free[room:] if free_rounds.get(cam, 0) >= STALE_ROUNDS]
    shed = sorted(held - allowed)
    if not claims and not shed and len(held) > share:
        load = Counter(lease.holder for lease in current.values() if not lease.free(now))
        for cam in sorted(held, key=lambda cam: rank(me, cam), reverse=True):  # the one I want least
            if any(
                other != me and cam in theirs and load[other] < fair_share(theirs, everyone)
                for other, theirs in everyone.items()
            ):
                shed = [cam]
                break
    return Plan(tuple(claims), tuple(shed))


# ---------------------------------------------------------------- the keeper


class LeaseKeeper:
    """This instance's leases: a thread renews them every `renew_s` and claims what `plan()` says.

    `held()` is what the instance may serve right now; the composition root
    follows it (starts and stops cameras) and calls `release` once it has
    stopped serving a camera that is being handed over.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        me: str,
        eligible: Iterable[str],
        lease_s: float,
        renew_s: float,
        peers: int = 1,  # instances expected to share the cameras (a supervisor's workers): see plan()
    ) -> None:
        self.sessions = sessions
        self.me = me
        self.peers = peers
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.margin = lease_s / 5  # stop serving this long before the lease could end
        self.failures = 0  # rounds that failed (database unreachable...)
        self._eligible = set(eligible)
        self._held: dict[str, tuple[int, float]] = {}  # camera -> (generation, good until: monotonic s)
        self._shedding: set[str] = set()
        self._free_rounds: dict[str, int] = {}
        self._claiming = True
        self._lock = threading.Lock()  # the fields above
        self._db = threading.Lock()  # one lease transaction at a time (a release never races a renewal)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)

    # ------------------------------------------------------------ what the app asks

    def held(self) -> dict[str, int]:
        """Cameras this instance may serve now (camera id → lease generation)."""
        now = time.monotonic()
        with self._lock:
            return {cam: gen for cam, (gen, _) in self._held.items() if self._serves(cam, now)}

    def may_serve(self, camera_id: str) -> bool:
        """`camera_id in held()`, for one camera (asked for every frame)."""
        now = time.monotonic()
        with self._lock:
            return self._serves(camera_id, now)

    def _serves(self, camera_id: str, now: float) -> bool:
        lease = self._held.get(camera_id)
        return (
            lease is not None
            and now < lease[1] - self.margin  # good by the local clock, with a margin
            and camera_id not in self._shedding
            and camera_id in self._eligible
        )

    def handing_over(self, camera_id: str) -> bool:
        """Still mine, but to be released (above my share, or no longer mine to take)."""
        now = time.monotonic()
        with self._lock:
            lease = self._held.get(camera_id)
            return (
                lease is not None
                and now < lease[1]
                and (camera_id in self._shedding or camera_id not in self._eligible)
            )

    def join(self) -> bool:
        """The first heartbeat; True when no other instance is alive.

        An instance of the same id still alive in the database is waited for (its
        heartbeat runs out within `lease_s` if it died); if it stays alive, it is
        another process with the same id, and serving its cameras too would
        analyse them twice.

        Raises:
            LeaseError: a live instance keeps renewing under this id.
        """
        deadline = time.monotonic() + self.lease_s + self.renew_s
        while True:
            with self._db, self.sessions.begin() as s:
                now = db_now(s)
                live = live_instances(s, now=now)
                if self.me not in live:
                    heartbeat(s, me=self.me, cameras=self._eligible, lease_s=self.lease_s, now=now)
                    return not live
            if time.monotonic() > deadline:
                raise LeaseError(f"instance id {self.me!r} is in use by another live instance (instance.id)")
            log.warning("waiting for an earlier instance of this id to expire", extra={"instance": self.me})
            time.sleep(self.renew_s)

    def release(self, camera_ids: Collection[str]) -> None:
        """After the app stopped serving them."""
        with self._db:
            try:
                with self.sessions.begin() as s:
                    release(s, camera_ids, me=self.me)
            except Exception as e:  # its lease runs out instead
                log.warning("lease release failed", extra={"cameras": sorted(camera_ids), "error": str(e)})
            with self._lock:
                for cam in camera_ids:
                    self._held.pop(cam, None)
                    self._shedding.discard(cam)

    def set_eligible(self, camera_ids: Iterable[str]) -> None:
        """A reloaded config: new cameras are claimed from the next round, those gone are handed over."""
        with self._lock:
            self._eligible = set(camera_ids)

    def give_up(self, camera_id: str) -> None:
        """This instance cannot serve the camera (broken entry): never claim it again, let others try."""
        with self._lock:
            self._eligible.discard(camera_id)
        self.release([camera_id])

    def freeze(self) -> None:
        """Stopping: keep renewing what is held, claim and hand over nothing more."""
        self._claiming = False

    # ------------------------------------------------------------ the thread

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def leave(self) -> None:
        """Clean stop: release everything so the other instances take over at once."""
        with self._db:
            try:
                with self.sessions.begin() as s:
                    n = leave(s, me=self.me)
                log.info("camera leases released", extra={"instance": self.me, "cameras": n})
            except Exception as e:
                log.warning("lease release failed", extra={"instance": self.me, "error": str(e)})
            with self._lock:
                self._held.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                self.tick()
            except Exception:  # the database may be briefly unreachable: the leases run out locally
                self.failures += 1
                log.exception("lease round failed", extra={"instance": self.me, "failures": self.failures})

    def tick(self) -> None:
        """One round: heartbeat + renew, then claim / hand over per `plan()`."""
        with self._db:
            self._tick()

    def _tick(self) -> None:
        sent = time.monotonic()
        with self._lock:
            eligible, free_rounds = set(self._eligible), dict(self._free_rounds)
        with self.sessions.begin() as s:
            now = db_now(s)
            heartbeat(s, me=self.me, cameras=eligible, lease_s=self.lease_s, now=now)
            mine = renew(s, me=self.me, lease_s=self.lease_s, now=now)
            current = leases(s)
            live = live_instances(s, now=now)
        with self._lock:
            lost = set(self._held) - set(mine)
            self._held = {cam: (gen, sent + self.lease_s) for cam, gen in mine.items()}
        for cam in sorted(lost):
            log.warning("camera lease lost", extra={"camera": cam, "instance": self.me})
        todo = plan(self.me, eligible, current, live, now, free_rounds, self.peers) if self._claiming else Plan()
        won: set[str] = set()
        for cam in todo.claim:
            t0 = time.monotonic()
            with self.sessions.begin() as s:
                lease = claim(s, cam, me=self.me, lease_s=self.lease_s)
            if lease is None:
                continue
            won.add(cam)
            with self._lock:
                self._held[cam] = (lease.generation, t0 + self.lease_s)
            before = current.get(cam)
            log.info(
                "camera lease claimed",
                extra={"camera": cam, "instance": self.me, "generation": lease.generation,
                       "from": before.holder if before else None},
            )  # fmt: skip
        stray = [cam for cam in todo.shed if cam not in eligible]  # never served (see held()): just release
        if stray:
            with self.sessions.begin() as s:
                release(s, stray, me=self.me)
            log.info("camera leases released: not this instance's to take", extra={"cameras": stray})
        balance = [cam for cam in todo.shed if cam in eligible]
        with self._lock:
            for cam in stray:
                self._held.pop(cam, None)
            self._shedding &= set(self._held)
            if balance and not self._shedding:  # one hand-over at a time: the next round sees its effect
                log.info("camera to hand over", extra={"camera": balance[0], "instance": self.me})
                self._shedding = {balance[0]}
            self._free_rounds = {
                cam: free_rounds.get(cam, 0) + 1
                for cam in eligible
                if cam not in won and (cam not in current or current[cam].free(now))
            }


class ServedQueues(FrameQueues):
    """FrameQueues that pass only frames of the cameras this instance serves now.

    A camera handed over (lease lost or shed) may still have frames queued, or a
    reader about to put one: they are dropped here, so the analysis thread never
    gets a frame of a camera that left the pipeline, and a camera served again
    later never sees frames from before (`Frame.arrived` < when it was served).
    `valid` (the keeper's `may_serve`) is asked too: a process that was paused
    past its lease (SIGSTOP, a VM migration) analyses nothing more of a camera
    from the moment it wakes, before the run loop even stops the camera.
    `wait_idle` waits until the analysis thread is done with a camera's frame
    (the one the last `get` handed out).
    """

    def __init__(self, valid: Callable[[str], bool] | None = None, depth: int = 2) -> None:
        super().__init__(depth)
        self._valid = valid
        self._since: dict[str, float] = {}  # camera -> monotonic time it was (re)served
        self._busy: str | None = None  # camera of the frame the analysis thread holds
        self._gate = threading.Condition()

    def serve(self, camera_id: str) -> None:
        with self._gate:
            self._since[camera_id] = time.monotonic()

    def refuse(self, camera_id: str) -> None:
        with self._gate:
            self._since.pop(camera_id, None)

    def _wanted(self, frame: Frame) -> bool:
        since = self._since.get(frame.camera_id)
        if since is None or frame.arrived < since:
            return False
        return self._valid is None or self._valid(frame.camera_id)

    def put(self, frame: Frame, *, block: bool, health: Any = None) -> None:
        if self._wanted(frame):
            super().put(frame, block=block, health=health)

    def get(self, timeout: float) -> Frame | None:
        end = time.monotonic() + timeout
        with self._gate:
            self._busy = None
            self._gate.notify_all()
        while True:
            frame = super().get(max(0.0, end - time.monotonic()))
            with self._gate:
                if frame is None or self._wanted(frame):
                    self._busy = frame.camera_id if frame is not None else None
                    return frame

    def wait_idle(self, camera_id: str, timeout: float) -> bool:
        """Waits until no frame of the (refused) camera is being analysed; False on timeout."""
        with self._gate:
            return self._gate.wait_for(lambda: self._busy != camera_id, timeout)
