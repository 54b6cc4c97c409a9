"""The public feed: closed cases only, nothing internal, pictures pixelated outside the problem."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from detector.store.db import Case, EvidenceFile


def test_only_closed_cases_are_public_without_internal_ids(api) -> None:
    with api.sessions() as s:
        first = s.scalars(select(Case).order_by(Case.id)).first()
        first.platform_case_id = "PC-20260306-000001"
        api.cases.apply_status(s, first, "accepted", source="platform")
        for status in ("dispatched", "handled", "closed"):
            api.cases.apply_status(s, first, status, source="callback", note="operator user-admin")
        s.commit()
        clean = s.scalars(
            select(EvidenceFile).where(EvidenceFile.incident_id == first.incident_id, EvidenceFile.kind == "clean")
        ).one()
        other = s.scalars(
            select(EvidenceFile).where(EvidenceFile.incident_id != first.incident_id, EvidenceFile.kind == "clean")
        ).first()
    public = TestClient(api.app)  # no credentials at all
    feed = public.get("/public/cases")
    assert feed.status_code == 200
    [item] = feed.json()
    assert item["case_no"] == "PC-20260306-000001" and item["problem"] == "占道经营" and item["closed_on"]
    text = feed.text
    for secret in ("c1", "rtsp", "10.0.0.9", "user-", "t-operator", "gridsight_case_id", "idempotency", '"id"'):
        assert secret not in text, secret
    original = api.store.resolve(clean.path).read_bytes()
    pic = public.get(item["pictures"][0])
    assert pic.status_code == 200 and pic.headers["content-type"] == "image/jpeg"
    assert pic.content != original and hashlib.sha256(original).hexdigest() == clean.sha256  # original untouched
    img = cv2.imdecode(np.frombuffer(pic.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (36, 64)
    # a picture of a case that is not closed is not public, nor is a made-up name
    assert public.get(f"/public/evidence/{other.sha256}.jpg").status_code == 404
    assert public.get(f"/public/evidence/{'0' * 64}.jpg").status_code == 404
