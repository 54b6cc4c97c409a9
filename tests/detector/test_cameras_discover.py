"""`gridsight cameras discover`: unicast ONVIF probing of addresses, against the simulator on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detector.cli import main
from detector.config import load_config
from detector.ingest.discover import expand_hosts, parse_ports
from tests.detector.test_ptz import PASSWORD, free_port, preset_videos, sim  # noqa: F401 - fixtures


def test_discover_lists_the_camera_and_writes_a_stub_that_loads(sim, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("CITY_ONVIF_USER", "admin")
    monkeypatch.setenv("CITY_ONVIF_PASS", PASSWORD)
    out = tmp_path / "config" / "found.yaml"
    out.parent.mkdir()
    closed = free_port()
    args = ["--ports", f"{closed},{sim.port}", "--out", str(out), "--timeout", "2"]
    code = main(["cameras", "discover", "--hosts", "127.0.0.1", *args,
                 "--username-env", "CITY_ONVIF_USER", "--password-env", "CITY_ONVIF_PASS"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    [line] = [x for x in printed.splitlines() if x.startswith("127.0.0.1:")]
    assert line.startswith(f"127.0.0.1:{sim.port}  GridSim PTZ-Dome 8  serial GS-SIM-0008")
    assert "/live/34020000001320000008.live.flv" in line and "presets 1,2,3,4,5,6,7,8" in line

    text = out.read_text(encoding="utf-8")
    assert PASSWORD not in text and "$CITY_ONVIF_PASS" in text
    loaded = load_config(out.parent)
    assert loaded.errors == []  # review only until it has a place: a warning, not an error
    [cam] = loaded.cameras
    assert cam.id == "ptz-GS-SIM-0008" and cam.source.url == sim.gateway.url("flv", "34020000001320000008")
    assert cam.ptz is not None and (cam.ptz.host, cam.ptz.port) == ("127.0.0.1", sim.port)
    assert (cam.ptz.username_env, cam.ptz.password_env) == ("CITY_ONVIF_USER", "CITY_ONVIF_PASS")
    assert [(s.preset, s.dwell_s) for s in cam.patrol] == [(str(i), 60.0) for i in range(1, 9)]
    assert yaml.safe_load(text)["cameras"][0]["patrol"][0]["preset"] == "1"  # text, as the camera names it


def test_discover_with_wrong_credentials_still_finds_the_device_and_says_why(sim, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("ONVIF_USERNAME", "admin")
    monkeypatch.setenv("ONVIF_PASSWORD", "not-it")
    assert main(["cameras", "discover", "--hosts", "127.0.0.1", "--ports", str(sim.port)]) == 0
    refused = f"127.0.0.1:{sim.port}  ONVIF: answers ONVIF but refused the user name and password"
    assert refused in capsys.readouterr().out


def test_nothing_answering_is_exit_1(capsys) -> None:
    assert main(["cameras", "discover", "--hosts", "127.0.0.1", "--ports", str(free_port()), "--timeout", "1"]) == 1
    assert "no ONVIF device answered" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "hosts"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("10.0.0.0/30", ["10.0.0.1", "10.0.0.2"]),
        ("10.0.1.5-10.0.1.7,10.0.1.6", ["10.0.1.5", "10.0.1.6", "10.0.1.7"]),
        ("10.0.2.254-255", ["10.0.2.254", "10.0.2.255"]),
        ("10.0.3.9/32", ["10.0.3.9"]),
    ],
)
def test_hosts_are_addresses_networks_and_ranges(spec: str, hosts: list[str]) -> None:
    assert expand_hosts(spec) == hosts


@pytest.mark.parametrize(
    ("spec", "words"),
    [("10.0.0.300", "'10.0.0.300' is not an address"), ("10.0.0.0/8", "more than 4096"),
     ("10.0.0.9-3", "runs backwards"), ("", "no address")],
)  # fmt: skip
def test_a_bad_host_list_is_refused_naming_the_part(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        expand_hosts(spec)


def test_a_bad_port_is_refused_with_exit_2(capsys) -> None:
    assert main(["cameras", "discover", "--hosts", "127.0.0.1", "--ports", "80,http"]) == 2
    assert "--ports: 'http' is not a port number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="65536"):
        parse_ports("65536")
