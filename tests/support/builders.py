"""Small builders of test data shared by several test files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.store.db import EvidenceFile, Incident

T0 = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)


def queue_cases(
    sessions: sessionmaker[Session], store: EvidenceStore, cases: CaseService, n: int, start: int = 0
) -> None:
    """n incidents, each with a distinct first-seen, clean and annotated JPEG, each filed as a case."""
    with sessions.begin() as s:
        for i in range(start, start + n):
            img = np.full((36, 64, 3), i % 256, np.uint8)
            cv2.putText(img, str(i), (2, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 1)
            inc = Incident(
                case_key=f"c1|-|walk|09006|{i}", active_key=f"c1|-|walk|09006|{i}", camera_id="c1", zone="walk",
                problem_code="09006", state="open", opened_at=T0, first_seen_at=T0 - timedelta(minutes=6),
                last_seen_at=T0, recurrences=0, score=0.9, box=[0.5, 0.4, 0.6, 0.7], details={},
            )  # fmt: skip
            s.add(inc)
            s.flush()
            for kind, image in (("first_seen", img // 2), ("clean", img), ("annotated", 255 - img)):
                f = store.put_jpeg(kind, image)
                s.add(
                    EvidenceFile(
                        incident_id=inc.id, kind=kind, path=f.path, sha256=f.sha256, bytes=f.bytes, created_at=T0
                    )
                )
            s.flush()
            cases.create(s, inc)
