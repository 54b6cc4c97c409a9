"""Model versions and deployment decisions: the store, promote / roll back history, shadow runs, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from detector.cli import main
from detector.models.deployments import (
    DeploymentError,
    ModelStore,
    desired,
    promote,
    rollback,
    start_shadow,
    stop_shadow,
)
from detector.store.db import AuditLog, open_database
from tests.conftest import write_config
from tests.detector.test_onnx_detector import write_manifest


def evaluated(car: float, litter: float, dataset: str = "val/data.yaml") -> dict:
    """Manifest metrics as `gridsight train register` records them."""
    return {"dataset": dataset, "per_class": {"car": {"AP50": car}, "litter": {"AP50": litter}}}


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    for v in ("1.2", "1.10", "1.9"):
        write_manifest(tmp_path / "models" / "det" / v, name="det", version=v, metrics=evaluated(0.6, 0.5))
    write_manifest(tmp_path / "models" / "flat", name="flat", version="7")  # unversioned layout
    return ModelStore(tmp_path / "models")


@pytest.fixture
def sessions(tmp_path: Path):
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield sessions
    engine.dispose()


def test_versions_sort_naturally_and_the_newest_is_the_default(store: ModelStore) -> None:
    assert store.names() == ["det", "flat"]
    assert store.versions("det") == ["1.2", "1.9", "1.10"]
    assert store.default_version("det") == "1.10"
    assert store.path("flat", "7") == store.root / "flat"
    (store.root / "det" / "default_version").write_text("1.9\n")
    assert store.default_version("det") == "1.9"
    with pytest.raises(DeploymentError, match="no version '2'"):
        store.path("det", "2")


def test_promote_and_roll_back_walk_the_history(store: ModelStore, sessions) -> None:
    with sessions.begin() as s:
        assert desired(s, store).active == {"det": "1.10", "flat": "7"}
        with pytest.raises(DeploymentError, match="nothing to roll back"):
            rollback(s, store, "det", "tester")
        promote(s, store, "det", "1.2", "tester")
        promote(s, store, "det", "1.9", "tester")
        assert desired(s, store).active["det"] == "1.9"
        assert rollback(s, store, "det", "tester") == "1.2"
        assert desired(s, store).active["det"] == "1.2"
        with pytest.raises(DeploymentError):
            promote(s, store, "det", "3.0", "tester")
    with sessions() as s:
        log = [(a.action, a.before, a.after) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert log == [
        ("model.promote", {"version": "1.10"}, {"version": "1.2"}),
        ("model.promote", {"version": "1.2"}, {"version": "1.9"}),
        ("model.rollback", {"version": "1.9"}, {"version": "1.2"}),
    ]


def test_a_shadow_run_names_its_cameras_and_ends_on_promotion(store: ModelStore, sessions) -> None:
    with sessions.begin() as s:
        start_shadow(s, store, "det", "1.9", ["cam-1"], "tester")
        want = desired(s, store)
        assert want.shadow_for("det", "cam-1").version == "1.9"
        assert want.shadow_for("det", "cam-2") is None
        promote(s, store, "det", "1.9", "tester")
        assert desired(s, store).shadows == {}
        with pytest.raises(DeploymentError, match="no shadow run"):
            stop_shadow(s, "det", "tester")


def test_cli_promote_shadow_and_errors(store: ModelStore, tmp_path: Path, capsys) -> None:
    cam = {"id": "c1", "name": "c1", "source": {"url": "/x.mp4"}, "problems": ["09006"]}
    cfg = write_config(tmp_path, [cam], models_dir=str(store.root))
    assert main(["model", "shadow", "det", "1.2", "--camera", "c9", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "unknown camera ids ['c9']" in err and "(known: c1)" in err
    assert main(["model", "shadow", "det", "1.2", "--camera", "c1", "--config", str(cfg)]) == 0
    assert main(["model", "promote", "det", "1.9", "--config", str(cfg)]) == 0
    assert main(["model", "list", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "det: active=1.9" in out and "shadow=1.2 on ['c1']" in out
    assert main(["model", "promote", "det", "8", "--config", str(cfg)]) == 1
    assert "no version '8'" in capsys.readouterr().err
    assert main(["model", "rollback", "det", "--config", str(cfg)]) == 0
    assert "1.10 is active again" in capsys.readouterr().out  # back to the shipped default


def test_shadow_report_compares_models_and_verdicts(sessions) -> None:
    from datetime import UTC, datetime, timedelta

    from detector.models.shadow import shadow_report
    from detector.store.db import Incident, ModelDeployment, ModelFinding

    t0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    pile, ghost = [0.1, 0.1, 0.3, 0.3], [0.6, 0.6, 0.8, 0.8]

    def finding(role: str, minute: int, box: list[float], label: str = "garbage") -> ModelFinding:
        return ModelFinding(run_id=1, model="det", version="2" if role == "shadow" else "1", role=role,
                            camera_id="c1", ts=t0 + timedelta(minutes=minute), label=label, score=0.8, box=box)

    def incident(key: str, verdict: str, box: list[float]) -> Incident:
        return Incident(case_key=key, camera_id="c1", zone="z", problem_code="06010", state="open",
                        opened_at=t0, first_seen_at=t0, last_seen_at=t0 + timedelta(minutes=5), score=0.8,
                        box=box, details={}, review_state=verdict)

    with sessions.begin() as s:
        s.add(ModelDeployment(id=1, model="det", version="2", role="shadow", cameras=["c1"], actor="t",
                              started_at=datetime.now(UTC)))
        s.add_all([
            finding("active", 1, pile), finding("shadow", 1, [0.11, 0.1, 0.31, 0.3]),  # both see the pile
            finding("active", 2, ghost),                                                # only the active model
            finding("shadow", 3, pile), finding("shadow", 3, [0.5, 0.0, 0.6, 0.1], "smoke"),
        ])  # fmt: skip
        s.add_all([incident("a", "confirmed", pile), incident("b", "rejected", ghost)])
    with sessions() as s:
        report = shadow_report(s, s.get(ModelDeployment, 1))
    assert report["classes"]["garbage"] == {"active": 2, "shadow": 2, "both": 1, "active_only": 1, "shadow_only": 1}
    assert report["classes"]["smoke"]["shadow_only"] == 1
    # the candidate finds the confirmed pile and stays quiet where the operators rejected the active model
    assert report["verdicts"]["confirmed"] == {"incidents": 1, "found_by_active": 1, "found_by_shadow": 1}
    assert report["verdicts"]["rejected"] == {"incidents": 1, "found_by_active": 1, "found_by_shadow": 0}


def test_a_worse_model_is_not_promoted_unless_forced_with_a_reason(store: ModelStore, sessions, tmp_path) -> None:
    det = tmp_path / "models" / "det"
    write_manifest(det / "2.0", name="det", version="2.0", metrics=evaluated(0.61, 0.0))  # forgot litter
    write_manifest(det / "2.1", name="det", version="2.1", metrics=evaluated(0.62, 0.43))  # litter 0.07 worse
    write_manifest(det / "2.2", name="det", version="2.2", metrics=evaluated(0.58, 0.47))  # within 0.05: fine
    write_manifest(det / "2.3", name="det", version="2.3", metrics=evaluated(0.9, 0.9, dataset="other.yaml"))
    write_manifest(det / "2.4", name="det", version="2.4", metrics={"mAP50": 0.7})  # never evaluated per class
    (det / "default_version").write_text("1.10\n")  # what ships: the newer ones are candidates
    with sessions.begin() as s:
        with pytest.raises(DeploymentError, match=r"litter: AP50 0\.000"):
            promote(s, store, "det", "2.0", "tester")
        with pytest.raises(DeploymentError, match=r"litter: AP50 0\.430, 0\.070 below the active 1\.10 \(0\.500\)"):
            promote(s, store, "det", "2.1", "tester")
        with pytest.raises(DeploymentError, match="not comparable"):
            promote(s, store, "det", "2.3", "tester")
        with pytest.raises(DeploymentError, match="no evaluation"):
            promote(s, store, "det", "2.4", "tester")
        assert desired(s, store).active["det"] == "1.10"  # nothing changed
        promote(s, store, "det", "2.1", "tester", force="街道要求先上线，下周补数据")
        assert desired(s, store).active["det"] == "2.1"
        promote(s, store, "det", "2.2", "tester")  # over 2.1: within 0.05 on both classes
    with sessions() as s:
        forced, fine = s.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(2)).all()[::-1]
    assert fine.after == {"version": "2.2"}
    assert forced.after["forced"] == "街道要求先上线，下周补数据" and "litter" in forced.after["problems"][0]


def test_cli_refuses_a_zero_ap_model_and_names_the_class(store: ModelStore, tmp_path: Path, capsys) -> None:
    write_manifest(tmp_path / "models" / "det" / "2.0", name="det", version="2.0", metrics=evaluated(0.0, 0.0))
    cfg = write_config(tmp_path, [], models_dir=str(store.root))
    assert main(["model", "promote", "det", "2.0", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "car: AP50 0.000" in err and "litter: AP50 0.000" in err and "force" in err
    assert main(["model", "promote", "det", "2.0", "--force", "demo day", "--config", str(cfg)]) == 0
