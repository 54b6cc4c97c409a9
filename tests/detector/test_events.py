"""Events on MQTT (docs/mqtt.md), against the real local Mosquitto broker.

The end-to-end test runs the real `gridsight run` on a generated street video and
listens as another city system would; the publisher tests put a TCP relay in
front of the broker so "the broker is down" is a closed port that later opens.
"""

from __future__ import annotations

import itertools
import json
import selectors
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from detector.config import MqttSettings, Settings
from detector.ingest.patrol import PatrolEvent, PatrolState
from detector.runtime.events import Events, MqttPublisher, patrol_event
from tests.conftest import street_camera, write_config
from tests.test_run import api_token, api_url, start

BROKER = ("127.0.0.1", 1883)
MQTT_SECRET = "mqtt-pa55-秘密"

CAMERA_KEYS = {"camera_id", "name", "state", "last_error", "last_frame_at", "ts"}
INCIDENT_KEYS = {"incident_id", "case_key", "camera_id", "problem_code", "problem_name", "zone", "state",
                 "opened_at", "last_seen_at", "score", "box", "ts"}  # fmt: skip
CASE_KEYS = {"case_id", "incident_id", "platform_case_id", "problem_code", "from", "to", "source", "ts"}
PATROL_KEYS = {"camera_id", "name", "event", "preset", "state", "reason", "ts"}


# ---------------------------------------------------------------- helpers


@pytest.fixture
def broker() -> None:
    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError as e:
        pytest.skip(
            f"no MQTT broker at {BROKER[0]}:{BROKER[1]} ({e}); "
            "scripts/test starts it as root: mosquitto -d -c /etc/mosquitto/mosquitto.conf"
        )


@pytest.fixture
def prefix(broker: None) -> Iterator[str]:
    """A topic prefix of this test alone; its retained messages are cleared afterwards."""
    p = f"gstest/{uuid.uuid4().hex[:10]}"
    yield p
    late = Subscriber(p)
    time.sleep(0.5)  # retained messages arrive right after the subscription
    for m in late.messages():
        if m.retain:
            late.client.publish(m.topic, b"", qos=1, retain=True).wait_for_publish(2)
    late.close()


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict:
        return json.loads(self.payload.decode("utf-8"))


class Subscriber:
    """A paho subscriber to `prefix/#` that keeps every message in arrival order."""

    def __init__(self, prefix: str, pattern: str = "#") -> None:
        self._got: list[Msg] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gstest-sub-{uuid.uuid4().hex[:8]}")
        c.on_message = self._on_message
        c.on_subscribe = lambda *_: subscribed.set()
        c.connect(*BROKER)
        c.subscribe(f"{prefix}/{pattern}", qos=1)
        c.loop_start()
        assert subscribed.wait(5), "subscription not acknowledged"
        self.client = c

    def _on_message(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._got.append(Msg(m.topic, m.payload, bool(m.retain)))
            self._cond.notify_all()

    def messages(self) -> list[Msg]:
        with self._cond:
            return list(self._got)

    def wait_for(self, pred: Callable[[list[Msg]], bool], timeout: float, what: str) -> list[Msg]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self._got):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}; got {[(m.topic, m.payload) for m in self._got]}"
                self._cond.wait(left)
            return list(self._got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Relay:
    """A TCP relay from a local port to the broker: closed (refused) until `open()`, `close()` cuts it."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen()
        srv.setblocking(False)
        self._server, self._stop = srv, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(srv, self._stop), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Like a broker that dies: the port refuses and live connections drop without a word."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None

    @staticmethod
    def _run(srv: socket.socket, stop: threading.Event) -> None:
        sel = selectors.DefaultSelector()
        sel.register(srv, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                sock = key.fileobj
                if sock is srv:
                    client, _addr = srv.accept()
                    upstream = socket.create_connection(BROKER)
                    peers[client], peers[upstream] = upstream, client
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(upstream, selectors.EVENT_READ)
                    continue
                if sock not in peers:
                    continue  # its pair closed earlier in this round
                try:
                    data = sock.recv(65536)
                    if data:
                        peers[sock].sendall(data)
                        continue
                except OSError:
                    pass
                other = peers.pop(sock)
                peers.pop(other, None)
                for s in (sock, other):
                    sel.unregister(s)
                    s.close()
        for s in [*peers, srv]:
            s.close()
        sel.close()


def publisher(prefix: str, port: int, **over: object) -> MqttPublisher:
    cfg = MqttSettings(host="127.0.0.1", port=port, topic_prefix=prefix, keepalive_s=5, **over)
    return MqttPublisher(cfg, reconnect_min_s=1, reconnect_max_s=1)


def payloads(msgs: list[Msg], topic: str) -> list[bytes]:
    return [m.payload for m in msgs if m.topic == topic]


# ---------------------------------------------------------------- end to end


@pytest.mark.mqtt
@pytest.mark.slow
def test_gridsight_run_publishes_camera_incident_and_case_events(
    prefix: str, short_street: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = street_camera(
        short_street,
        # seen from ~36 s of video, opened 30 s later, present until 100 s; the video ends before it clears
        rules={"09006": {"persistence": {"k": 4, "n": 6, "minutes": 0.5}, "clear_minutes": 0.5}},
        filing={"09006": {"mode": "auto", "min_score": 0.0, "min_minutes": 0}},
    )
    mqtt_cfg = {"host": "127.0.0.1", "port": 1883, "topic_prefix": prefix,
                "username_env": "GS_MQTT_USER", "password_env": "GS_MQTT_PASS"}  # fmt: skip
    cfg = write_config(tmp_path, [cam], mqtt=mqtt_cfg)
    monkeypatch.setenv("GS_MQTT_USER", "gridsight")
    monkeypatch.setenv("GS_MQTT_PASS", MQTT_SECRET)  # the broker allows anyone; it must not leak anyway
    headers = api_token(cfg, "operator")
    sub = Subscriber(prefix)
    online, cam_topic = f"{prefix}/gridsight/online", f"{prefix}/cameras/street-1/status"
    proc = start(cfg, 60, tmp_path)
    try:
        base = api_url(proc)
        # The stall: opened, then present (once, on the transition); the case filed by the local register.
        got = sub.wait_for(
            lambda ms: any(m.topic.endswith("/incidents/street-1/present") for m in ms)
            and any(m.topic.startswith(f"{prefix}/cases/") for m in ms),
            30, "incident opened/present and the case filed",
        )  # fmt: skip
        case_msg = next(m for m in got if m.topic.startswith(f"{prefix}/cases/"))
        case_id = case_msg.json()["case_id"]
        with httpx.Client(base_url=base, timeout=10, headers=headers) as http:
            r = http.post(f"/api/v1/cases/{case_id}/status", json={"status": "dispatched", "note": "派遣"})
            assert r.status_code == 200, r.text
        sub.wait_for(
            lambda ms: any(m.topic.startswith(f"{prefix}/cases/") and m.json()["to"] == "dispatched" for m in ms),
            10, "the operator's status change",
        )  # fmt: skip
        sub.wait_for(  # under load the file may still be playing: stop only once it has ended
            lambda ms: any(m.topic == cam_topic and m.json()["state"] == "ended" for m in ms), 60, "the file's end"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    got = sub.wait_for(lambda ms: payloads(ms, online)[-1:] == [b"0"], 10, "offline on stop")
    sub.close()

    # Online first, offline last; every payload is documented JSON (UTF-8, not \u-escaped).
    assert got[0].topic == online and got[0].payload == b"1"
    assert got[-1].topic == online and got[-1].payload == b"0"
    assert payloads(got, online) == [b"1", b"0"]

    cam_msgs = [m for m in got if m.topic == cam_topic]
    assert cam_msgs, "no camera status"
    for m in cam_msgs:
        assert set(m.json()) == CAMERA_KEYS
        assert "测试街".encode() in m.payload  # ensure_ascii=False
    seen = [(m.json()["state"], m.json()["last_error"]) for m in cam_msgs]
    assert all(a != b for a, b in itertools.pairwise(seen)), seen  # changes only
    assert seen[-1][0] == "ended"  # a file that does not loop ends (and stays so on stop)

    inc_msgs = [m for m in got if "/incidents/" in m.topic]
    events = [m.topic.rsplit("/", 1)[1] for m in inc_msgs]
    assert events == ["opened", "present"], events  # "present" once: on the transition, not per analysis
    opened, present = inc_msgs[0].json(), inc_msgs[1].json()
    assert set(opened) == set(present) == INCIDENT_KEYS
    assert opened["incident_id"] == present["incident_id"]
    assert (opened["camera_id"], opened["problem_code"], opened["problem_name"], opened["zone"]) == (
        "street-1", "09006", "占道经营", "walk",
    )  # fmt: skip
    assert opened["state"] == "open" and present["state"] == "present"
    assert present["last_seen_at"] > opened["opened_at"] and len(opened["box"]) == 4

    case_msgs = [m for m in got if m.topic.startswith(f"{prefix}/cases/")]
    assert {m.topic for m in case_msgs} == {f"{prefix}/cases/{case_id}/status"}
    changes = [(c["from"], c["to"], c["source"]) for c in (m.json() for m in case_msgs)]
    assert changes == [("queued", "filed", "platform"), ("filed", "dispatched", "operator")]
    for m in case_msgs:
        c = m.json()
        assert set(c) == CASE_KEYS
        assert c["incident_id"] == opened["incident_id"] and c["platform_case_id"].startswith("E09006")
    # In order: the incident is published before its case moves.
    assert got.index(inc_msgs[0]) < got.index(case_msgs[0])

    # A late subscriber still learns the camera's state and that GridSight is offline (retained).
    late = Subscriber(prefix)
    retained = late.wait_for(lambda ms: {m.topic for m in ms} >= {cam_topic, online}, 5, "retained messages")
    time.sleep(0.3)
    retained = late.messages()
    late.close()
    by_topic = {m.topic: m for m in retained}
    assert by_topic[cam_topic].retain and by_topic[cam_topic].json()["state"] == "ended"
    assert by_topic[online].retain and by_topic[online].payload == b"0"
    assert not any("/incidents/" in m.topic or "/cases/" in m.topic for m in retained)  # events are not retained

    log = (tmp_path / "log.txt").read_text()
    assert '"message": "mqtt connected"' in log
    assert MQTT_SECRET not in log


# ---------------------------------------------------------------- the publisher


@pytest.mark.mqtt
def test_publisher_buffers_while_the_broker_is_unreachable_and_delivers_in_order(prefix: str) -> None:
    relay = Relay()  # its port refuses connections until it opens
    sub = Subscriber(prefix)
    pub = publisher(prefix, relay.port, queue_size=5)
    pub.start()
    try:
        for i in range(7):
            pub.publish("test/seq", {"i": i, "text": "离线"})
        time.sleep(1.5)  # a couple of refused attempts
        stats = pub.stats()
        assert (stats["connected"], stats["queued"], stats["dropped"]) == (False, 5, 2)
        assert sub.messages() == []

        relay.open()  # the broker comes back: buffered messages arrive, oldest dropped, in order
        got = sub.wait_for(lambda ms: len(payloads(ms, f"{prefix}/test/seq")) == 5, 10, "the buffered messages")
        assert [json.loads(p)["i"] for p in payloads(got, f"{prefix}/test/seq")] == [2, 3, 4, 5, 6]
        assert got[0].topic == pub.online_topic and got[0].payload == b"1"  # "online" first

        # The broker "dies" (connections cut, port refused): its Last Will says offline;
        # what is published meanwhile is kept and sent after the reconnect.
        relay.close()
        sub.wait_for(lambda ms: payloads(ms, pub.online_topic)[-1:] == [b"0"], 15, "the last will")
        for i in range(7, 10):
            pub.publish("test/seq", {"i": i})
        assert pub.stats()["queued"] == 3
        relay.open()

        # QoS 1 is at least once: a message whose PUBACK the cut lost is sent again after the
        # reconnect (seen on a loaded machine); what counts is that each arrives, in order
        def firsts(ms: list[Msg]) -> list[int]:
            return list(dict.fromkeys(json.loads(p)["i"] for p in payloads(ms, f"{prefix}/test/seq")))

        got = sub.wait_for(lambda ms: len(firsts(ms)) == 8, 10, "messages after reconnect")
        assert firsts(got) == [2, 3, 4, 5, 6, 7, 8, 9]
        assert payloads(got, pub.online_topic) == [b"1", b"0", b"1"]
        assert pub.stats()["connects"] == 2
    finally:
        pub.stop(2)
        relay.close()
    got = sub.wait_for(lambda ms: payloads(ms, pub.online_topic)[-1:] == [b"0"], 5, "offline on stop")
    sub.close()


@pytest.mark.mqtt
def test_publisher_stop_without_a_broker_returns_promptly(broker: None) -> None:
    relay = Relay()  # never opens
    pub = publisher("gstest/none", relay.port)
    pub.start()
    pub.publish("x", {"a": 1})
    t0 = time.monotonic()
    pub.stop(2)
    assert time.monotonic() - t0 < 5
    assert pub.stats()["queued"] >= 1 and pub.stats()["connected"] is False


# ---------------------------------------------------------------- hooks (no broker needed)


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, bool]] = []

    def publish(self, suffix: str, payload: dict | bytes, *, retain: bool = False) -> None:
        self.sent.append((suffix, json.loads(payload) if isinstance(payload, bytes) else payload, retain))


def test_case_status_is_sent_only_after_the_change_commits(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from detector.filing.cases import CaseService
    from detector.incidents.evidence import EvidenceStore
    from detector.rules.taxonomy import load_taxonomy
    from detector.store.db import Case, Incident, open_database

    engine, sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    tax = load_taxonomy(None)
    fake = FakePublisher()
    events = Events(fake, tax, {})  # type: ignore[arg-type]
    cases = CaseService(tax, Settings(), EvidenceStore(tmp_path / "ev"), {})
    cases.on_status = events.case_status
    now = datetime.now(UTC)
    with sessions.begin() as s:
        s.add(Incident(id=1, case_key="k", camera_id="c", zone="z", problem_code="09006", state="open",
                       opened_at=now, first_seen_at=now, last_seen_at=now, score=0.9, box=[0, 0, 1, 1]))  # fmt: skip
        s.flush()
        s.add(Case(id=1, incident_id=1, idempotency_key="k1", problem_code="09006", payload={}, status="filed",
                   platform_case_id="E1", deadline=now, created_at=now, updated_at=now))  # fmt: skip
    with sessions() as s:
        case = s.get(Case, 1)
        assert cases.apply_status(s, case, "dispatched", source="operator")
        assert fake.sent == []  # not before the commit
        s.rollback()
    assert fake.sent == []  # a rolled-back change says nothing
    with sessions() as s:
        case = s.get(Case, 1)
        cases.apply_status(s, case, "dispatched", source="operator")
        assert fake.sent == []
        s.commit()
    assert [(sfx, p["from"], p["to"], p["source"], p["platform_case_id"]) for sfx, p, _ in fake.sent] == [
        ("cases/1/status", "filed", "dispatched", "operator", "E1")
    ]
    engine.dispose()


def test_mqtt_settings_validate_the_topic_prefix_and_default_ports() -> None:
    assert MqttSettings(host="h").effective_port == 1883
    assert MqttSettings(host="h", tls=True).effective_port == 8883
    assert MqttSettings(host="h").topic_prefix == "gridsight" and MqttSettings(host="h").qos == 1
    for bad in ("a/#", "+/x", "/a", "a/", "a//b", "$SYS", ""):
        with pytest.raises(ValueError):
            MqttSettings(host="h", topic_prefix=bad)
    with pytest.raises(ValueError):
        Settings.model_validate({"mqtt": {"host": "h", "password": "inline"}})  # extra="forbid": by env var only


# ---------------------------------------------------------------- patrol events

P = PatrolState


@pytest.mark.parametrize(
    ("before", "state", "expected"),
    [
        (P.SETTLING, P.DWELLING, "arrived"),
        (P.DWELLING, P.MOVING, None),  # on its way: the arrival says the rest
        (P.MOVING, P.SETTLING, None),
        (P.DWELLING, P.LOCKED, "paused"),
        (P.LOCKED, P.LOCKED, None),  # the lock pushed out: still the same pause
        (P.LOCKED, P.MOVING, "resumed"),
        (P.LOCKED, P.STOPPED, None),  # shut down while locked: the camera's status says so
        (P.MOVING, P.FAULT, None),
        (None, P.STARTING, None),
    ],
)
def test_which_patrol_changes_are_events(before: PatrolState | None, state: PatrolState, expected: str | None) -> None:
    assert patrol_event(before, PatrolEvent("dome-1", state, "3", 0.0)) == expected


@pytest.mark.mqtt
def test_patrol_arrivals_pauses_and_resumes_are_published(prefix: str) -> None:
    sub = Subscriber(prefix, "patrol/#")
    pub = publisher(prefix, BROKER[1])
    events = Events(pub, None, {"dome-1": "十字路口球机"})  # type: ignore[arg-type]
    events.start()
    try:
        for state, preset, reason in [
            (P.STARTING, None, ""), (P.MOVING, "1", ""), (P.SETTLING, "1", ""), (P.DWELLING, "1", ""),
            (P.MOVING, "2", ""), (P.LOCKED, None, "locked by an operator for 300 s"),
            (P.LOCKED, None, "moved by someone else"), (P.MOVING, "2", "lock over"), (P.SETTLING, "2", ""),
            (P.DWELLING, "2", ""),
        ]:  # fmt: skip
            events.patrol(PatrolEvent("dome-1", state, preset, time.monotonic(), reason))
        got = sub.wait_for(lambda ms: len(ms) >= 4, 10, "four patrol messages")
    finally:
        events.stop(2)
        sub.close()
    assert [m.topic.removeprefix(prefix + "/") for m in got] == [
        "patrol/dome-1/arrived", "patrol/dome-1/paused", "patrol/dome-1/resumed", "patrol/dome-1/arrived"
    ]  # fmt: skip
    bodies = [m.json() for m in got]
    assert all(set(b) == PATROL_KEYS and b["camera_id"] == "dome-1" and b["name"] == "十字路口球机" for b in bodies)
    assert [(b["event"], b["preset"], b["state"]) for b in bodies] == [
        ("arrived", "1", "dwelling"), ("paused", None, "locked"), ("resumed", "2", "moving"),
        ("arrived", "2", "dwelling"),
    ]  # fmt: skip
    assert bodies[1]["reason"] == "locked by an operator for 300 s" and not any(m.retain for m in got)
