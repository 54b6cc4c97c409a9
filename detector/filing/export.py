"""Export of the local register (CSV or XLSX) for manual entry into a platform without an API."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.store.db import Case, EvidenceFile

COLUMNS = [
    ("case_no", "案件编号"), ("status", "状态"), ("sxdm", "事项代码"), ("sxmc", "事项名称"), ("source", "问题来源"),
    ("description", "问题描述"), ("address", "事发位置"), ("lon", "经度"), ("lat", "纬度"), ("crs", "坐标系"),
    ("grid_code", "单元网格"), ("street", "街道"), ("community", "社区"), ("department", "主管部门"),
    ("co_dispatch_street", "双派街道"), ("deadline", "处置时限"), ("detected_at", "发现时间"),
    ("camera_id", "摄像头"), ("evidence", "证据"),
]  # fmt: skip


def rows(s: Session, evidence_base: str) -> Iterator[dict[str, Any]]:
    """One dict per case, evidence as links (`evidence_base` + the file's path)."""
    for case in s.scalars(select(Case).order_by(Case.id)):
        p = case.payload
        files = s.scalars(
            select(EvidenceFile).where(EvidenceFile.incident_id == case.incident_id).order_by(EvidenceFile.id)
        )
        yield {
            **{k: p.get(k) for k, _ in COLUMNS},
            "case_no": case.platform_case_id or f"(未编号 #{case.id})",
            "status": case.status,
            "department": (p.get("department") or {}).get("name"),
            "co_dispatch_street": p.get("street") if p.get("co_dispatch_street") else "",
            "evidence": " ".join(f"{evidence_base.rstrip('/')}/{f.path}" for f in files),
        }


def export_cases(s: Session, out: Path, evidence_base: str) -> int:
    """Writes the register to `out` (.csv or .xlsx, by suffix); returns the number of cases.

    Raises:
        ValueError: an unsupported file suffix.
    """
    data = list(rows(s, evidence_base))
    header = [zh for _, zh in COLUMNS]
    if out.suffix == ".csv":
        with out.open("w", newline="", encoding="utf-8-sig") as f:  # the BOM lets Excel read UTF-8
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([r[k] for k, _ in COLUMNS] for r in data)
    elif out.suffix == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "案件"
        ws.append(header)
        for r in data:
            ws.append([r[k] for k, _ in COLUMNS])
        wb.save(out)
    else:
        raise ValueError(f"export format must be .csv or .xlsx, got {out.suffix!r}")
    return len(data)
