"""PTZ control over ONVIF: the real onvif-zeep-async client against a SOAP simulator on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.config import Source
from detector.ingest.ptz import (
    OnvifPtz,
    Position,
    PtzAuthError,
    PtzCamera,
    PtzError,
    PtzStatus,
    PtzUnreachable,
    UnknownPreset,
    moved_by_someone_else,
)
from detector.ingest.sources import grab_frame
from tests.support import ptz_views
from tests.support.onvif_sim import OnvifSimulator

PASSWORD = "Grid-2026"


@pytest.fixture(scope="session")
def preset_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Eight presets, each with a view of its own."""
    folder = tmp_path_factory.mktemp("preset-views")
    return {str(i): ptz_views.view_video(folder / f"preset-{i}.mp4", i) for i in range(1, 9)}


@pytest.fixture
def sim(preset_videos: dict[str, Path], tmp_path: Path) -> Iterator[OnvifSimulator]:
    with OnvifSimulator(preset_videos, tmp_path, move_s=0.4) as s:
        yield s


def ptz(sim: OnvifSimulator, password: str = PASSWORD, camera_id: str = "xc-dome-1", port: int | None = None):
    return PtzCamera(OnvifPtz(camera_id, "127.0.0.1", port or sim.port, "admin", password, timeout_s=3))


def nearest_view(sim: OnvifSimulator, image: np.ndarray) -> tuple[str, float]:
    """The preset whose view `image` is, and how far it is from it (mean abs difference, 0-255)."""
    img = cv2.resize(image, ptz_views.SIZE).astype(np.int16)
    scores = {t: min(float(np.mean(np.abs(img - f))) for f in frames) for t, frames in sim.frames.items()}
    best = min(scores, key=scores.__getitem__)
    return best, scores[best]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_client_lists_the_presets_sends_the_camera_to_one_and_sees_it_move_then_stop(sim) -> None:
    with ptz(sim) as cam:
        info = cam.connect()
        assert (info.manufacturer, info.model, info.serial) == ("GridSim", "PTZ-Dome 8", "GS-SIM-0008")
        presets = cam.presets()
        assert [p.token for p in presets] == [str(i) for i in range(1, 9)]
        five = next(p for p in presets if p.token == "5")
        assert five.position is not None and five.position.distance(cam.status().position) > 0.5  # at preset 1 now
        cam.goto("5")
        assert cam.status().moving
        started = time.monotonic()
        status = cam.wait_idle(timeout_s=5, poll_s=0.05)
        assert 0.25 < time.monotonic() - started < 2  # the motor's 0.4 s, seen through GetStatus
        assert status.position is not None and status.position.distance(five.position) < 1e-3
        assert sim.preset == "5"


def test_the_stream_and_the_snapshot_show_the_preset_the_camera_is_at(sim) -> None:
    with ptz(sim) as cam:
        cam.connect()
        uri = cam.stream_uri()
        snap = cam._run(cam.core.snapshot_uri())
        for token in ("3", "6"):
            cam.goto(token)
            cam.wait_idle(timeout_s=5, poll_s=0.05)
            for source in (Source(url=uri), Source(url=snap, snapshot=True)):
                view, diff = nearest_view(sim, grab_frame(source, source.url, timeout_s=10))
                assert (view, source.snapshot) == (token, source.snapshot) and diff < 12, (source.url, diff)


def test_a_wrong_password_is_refused_with_a_message_naming_the_camera_not_the_password(sim) -> None:
    with ptz(sim, password="guess-1234") as cam, pytest.raises(PtzAuthError) as e:
        cam.connect()
    msg = str(e.value)
    assert "camera xc-dome-1" in msg and f"127.0.0.1:{sim.port}" in msg and "refused" in msg
    assert "guess-1234" not in msg and PASSWORD not in msg
    assert sim.auth_failures == 1 and "GotoPreset" not in sim.calls


def test_an_unknown_preset_names_the_camera_and_the_presets_it_has(sim) -> None:
    with ptz(sim) as cam:
        cam.connect()
        with pytest.raises(UnknownPreset, match=r"camera xc-dome-1.*no preset '9'.*1, 2, 3, 4, 5, 6, 7, 8"):
            cam.goto("9")
    assert "GotoPreset" not in sim.calls  # refused before the camera was asked


def test_nothing_listening_is_unreachable_and_says_so_quickly(sim) -> None:
    started = time.monotonic()
    with ptz(sim, camera_id="xc-dome-9", port=free_port()) as cam, pytest.raises(PtzUnreachable) as e:
        cam.connect()
    assert "camera xc-dome-9" in str(e.value) and "unreachable" in str(e.value)
    assert time.monotonic() - started < 5


def test_credentials_come_from_the_environment_and_a_missing_variable_is_named(sim, monkeypatch) -> None:
    from detector.config import PtzSettings

    settings = PtzSettings(host="127.0.0.1", port=sim.port, username_env="DOME_USER", password_env="DOME_PASS")
    monkeypatch.setenv("DOME_USER", "admin")
    monkeypatch.delenv("DOME_PASS", raising=False)
    with pytest.raises(PtzError, match="camera xc-dome-1: environment variable DOME_PASS"):
        PtzCamera.from_settings("xc-dome-1", settings)
    monkeypatch.setenv("DOME_PASS", PASSWORD)
    with PtzCamera.from_settings("xc-dome-1", settings) as cam:
        assert cam.connect().serial == "GS-SIM-0008"


HOME = Position(0.1, 0.2, 0.0)


@pytest.mark.parametrize(
    ("status", "moved"),
    [
        (PtzStatus(False, Position(0.1, 0.2, 0.0)), False),
        (PtzStatus(False, Position(0.105, 0.2, 0.0)), False),  # within the tolerance: motor jitter
        (PtzStatus(True, Position(0.1, 0.2, 0.0)), True),  # someone has it moving
        (PtzStatus(False, Position(0.4, 0.2, 0.0)), True),  # turned and stopped between two polls
        (PtzStatus(False, Position(0.1, 0.2, 0.5)), True),  # zoomed
        (PtzStatus(False, None), False),  # a camera that does not report its position
    ],
)
def test_a_move_is_someone_elses_when_the_motor_runs_or_the_position_drifted(status, moved) -> None:
    assert moved_by_someone_else(HOME, status, tolerance=0.02) is moved
