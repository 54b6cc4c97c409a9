"""The filer: drains the outbox to the platform and keeps case statuses in sync.

At-least-once: a message is claimed with a lease (a crashed filer's claims
return to the queue when the lease runs out) and marked done only after the
platform answered. Once while every filer is alive: a claim has a token, and a
filer renews the lease under its token just before each send, so a message whose
claim ran out while it waited in a batch is sent by whoever took it over, not by
both. Effectively once even then: every attempt carries the message's idempotency
key. Any number of filers may drain the same database.
"""

from __future__ import annotations

import logging
import mimetypes
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from detector.config import FilingSettings
from detector.filing.case_flow import TERMINAL, TransitionRefused
from detector.filing.cases import CaseService
from detector.filing.platform import Attachment, PlatformAdapter, PlatformError
from detector.incidents.evidence import EvidenceStore
from detector.store.db import Case, EvidenceFile, Outbox, VerificationFile

log = logging.getLogger(__name__)

BATCH = 20


class Filer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        adapter: PlatformAdapter,
        store: EvidenceStore,
        cases: CaseService,
        settings: FilingSettings,
        poll_every_s: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.adapter = adapter
        self.store = store
        self.cases = cases
        self.cfg = settings
        self.poll_every_s = poll_every_s
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="filer", daemon=True)
        self.sent = 0
        self.failed = 0

    # ------------------------------------------------------------ loop

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.adapter.close()

    def run(self) -> None:
        next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                worked = self.drain_once()
                if self.poll_every_s and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_every_s
                    self.poll_statuses()
            except Exception:  # the database may be briefly unavailable; keep the loop alive
                log.exception("filer loop failed")
                worked = 0
            if not worked:
                self._stop.wait(0.5)

    def drain_once(self) -> int:
        """Claims and sends one batch of due messages; returns how many were attempted."""
        token, ids = self._claim()
        for msg_id in ids:
            # The batch's tail waits for its head: under load its claim can run out meanwhile and
            # another filer take the message over. Renewing just before the send says which.
            if self._renew(msg_id, token):
                self._send(msg_id)
        return len(ids)

    def pending(self) -> int:
        with self.sessions() as s:
            return len(s.scalars(select(Outbox.id).where(Outbox.state.in_(("pending", "sending")))).all())

    # ------------------------------------------------------------ claiming

    def _claim(self) -> tuple[str, list[int]]:
        """Claims up to BATCH due messages under one new token; returns the token and their ids."""
        now = datetime.now(UTC)
        due = or_(
            and_(Outbox.state == "pending", Outbox.next_attempt_at <= now),
            and_(Outbox.state == "sending", Outbox.lease_until < now),  # a dead or slow filer's claim
        )
        token = uuid.uuid4().hex
        held = {"state": "sending", "lease_until": now + timedelta(seconds=self.cfg.lease_s), "claim": token}
        query = select(Outbox.id).where(due).order_by(Outbox.id).limit(BATCH)
        with self.sessions.begin() as s:
            if s.get_bind().dialect.name == "postgresql":
                # Many filers share the database: rows another one holds are skipped, not waited for.
                claimed = list(s.scalars(query.with_for_update(skip_locked=True)))
                s.execute(update(Outbox).where(Outbox.id.in_(claimed)).values(**held))
                return token, claimed
            claimed = []
            for msg_id in s.scalars(query).all():
                # SQLite has one writer at a time; compare-and-set makes each claim exclusive anyway.
                if s.execute(update(Outbox).where(Outbox.id == msg_id, due).values(**held)).rowcount == 1:
                    claimed.append(msg_id)
        return token, claimed

    def _renew(self, msg_id: int, token: str) -> bool:
        """A fresh lease on a message this claim still holds; False when another filer took it."""
        lease = datetime.now(UTC) + timedelta(seconds=self.cfg.lease_s)
        with self.sessions.begin() as s:
            mine = and_(Outbox.id == msg_id, Outbox.state == "sending", Outbox.claim == token)
            return s.execute(update(Outbox).where(mine).values(lease_until=lease)).rowcount == 1

    # ------------------------------------------------------------ sending

    def _send(self, msg_id: int) -> None:
        with self.sessions() as s:
            msg = s.get(Outbox, msg_id)
            if msg is not None and msg.kind == "verification":
                self._send_answer(s, msg)
                return
            case = s.get(Case, msg.case_id) if msg else None
            if msg is None or case is None:
                return
            if msg.kind == "update" and not case.platform_case_id:
                self._later(s, msg, "waiting for the case to be filed first", retry=True)
                return
            files = self._attachments(s, msg.payload.get("evidence", []))
            try:
                if msg.kind == "file":
                    body = dict(case.payload)
                    if case.recurrence_of:
                        prev = s.get(Case, case.recurrence_of)
                        body["recurrence_of"] = prev.platform_case_id if prev else None
                    receipt = self.adapter.file_case(body, files, msg.idempotency_key)
                else:
                    update_body = {k: v for k, v in msg.payload.items() if k != "evidence"}
                    self.adapter.send_update(case.platform_case_id, update_body, files, msg.idempotency_key)
                    receipt = None
            except PlatformError as e:
                self.failed += 1
                self._later(s, msg, str(e), retry=e.retryable)
                return
            self._delivered(msg)
            if receipt is not None:
                case.platform_case_id = receipt.case_id
                try:
                    self.cases.apply_status(s, case, receipt.status, source="platform")
                except TransitionRefused as e:  # filed all the same: the status sync goes on
                    log.warning("filing receipt status not applied", extra={"case": case.id, "error": str(e)})
            s.commit()
            extra = {"case": case.id, "kind": msg.kind, "platform_case": case.platform_case_id}
            log.info("sent to platform", extra=extra)

    def _send_answer(self, s: Session, msg: Outbox) -> None:
        """The answer to a 核实 request: no case behind it, retried and dead-lettered like the others."""
        rows = s.scalars(select(VerificationFile).where(VerificationFile.id.in_(msg.payload.get("evidence", [])))).all()
        files = [self._attachment(r.kind, r.path, r.sha256, r.bytes) for r in sorted(rows, key=lambda r: r.id)]
        try:
            body = {k: v for k, v in msg.payload.items() if k != "evidence"}
            self.adapter.send_verification(body, files, msg.idempotency_key)
        except PlatformError as e:
            self.failed += 1
            self._later(s, msg, str(e), retry=e.retryable)
            return
        self._delivered(msg)
        s.commit()
        log.info("sent to platform", extra={"verification": msg.verification_id, "kind": msg.kind})

    def _delivered(self, msg: Outbox) -> None:
        msg.state, msg.lease_until, msg.updated_at, msg.last_error = "done", None, datetime.now(UTC), None
        msg.attempts += 1
        self.sent += 1

    def _later(self, s: Session, msg: Outbox, error: str, *, retry: bool) -> None:
        """Schedules a retry with exponential backoff and jitter, or dead-letters the message."""
        now = datetime.now(UTC)
        msg.attempts += 1
        msg.last_error = error
        msg.lease_until = None
        msg.updated_at = now
        too_old = now - msg.created_at > timedelta(hours=self.cfg.dead_after_hours)
        if not retry or too_old:
            msg.state = "dead"
            log.error("filing dead-lettered", extra={"outbox": msg.id, "case": msg.case_id, "error": error})
        else:
            ceiling = min(self.cfg.retry_max_s, self.cfg.retry_min_s * 2 ** min(msg.attempts - 1, 20))
            msg.state = "pending"
            msg.next_attempt_at = now + timedelta(seconds=self._rng.uniform(ceiling / 2, ceiling))
            log.warning("filing failed, will retry", extra={"outbox": msg.id, "case": msg.case_id, "error": error})
        s.commit()

    def _attachments(self, s: Session, evidence_ids: list[int]) -> list[Attachment]:
        out = []
        for row in s.scalars(select(EvidenceFile).where(EvidenceFile.id.in_(evidence_ids)).order_by(EvidenceFile.id)):
            out.append(self._attachment(row.kind, row.path, row.sha256, row.bytes))
        return out

    def _attachment(self, kind: str, rel: str, sha256: str, size: int) -> Attachment:
        path = self.store.resolve(rel)
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Attachment(kind, path, rel, f"{kind}-{sha256[:16]}{Path(rel).suffix}", sha256, size, ctype)

    # ------------------------------------------------------------ status sync

    def poll_statuses(self) -> int:
        """Asks the platform about every filed, unfinished case; returns how many changed."""
        changed = 0
        with self.sessions() as s:
            open_cases = s.scalars(
                select(Case).where(Case.platform_case_id.is_not(None), Case.status.not_in(TERMINAL))
            ).all()
            for case in open_cases:
                try:
                    report = self.adapter.get_status(case.platform_case_id)
                except PlatformError as e:
                    log.warning("status poll failed", extra={"case": case.id, "error": str(e)})
                    continue
                if report is None:
                    continue
                try:
                    moved = self.cases.apply_status(
                        s, case, report.status, source="poll", note=report.note, at=report.at
                    )
                except TransitionRefused as e:
                    log.warning("platform status refused", extra={"case": case.id, "error": str(e)})
                    continue
                changed += moved
                s.commit()  # a move, or a stale report kept in the history
        return changed


def retry_dead(s: Session, outbox_id: int | None = None, case_id: int | None = None) -> int:
    """Puts dead-lettered messages back in the queue (all of a case, or one); returns how many.

    The dead-letter age limit starts again from now.
    """
    cond = [Outbox.state == "dead"]
    if outbox_id is not None:
        cond.append(Outbox.id == outbox_id)
    if case_id is not None:
        cond.append(Outbox.case_id == case_id)
    now = datetime.now(UTC)
    res = s.execute(
        update(Outbox).where(*cond).values(state="pending", next_attempt_at=now, created_at=now, updated_at=now)
    )
    return res.rowcount
