"""GridSight's events on MQTT: camera health, incidents, case statuses and PTZ patrols (topics: docs/mqtt.md).

`MqttPublisher` owns one paho-mqtt client with its network loop in a background
thread (automatic reconnect with backoff) and a sender thread that feeds it from
a bounded queue: while the broker is unreachable messages wait there, and when
it is full the oldest are dropped and counted. Publishing never blocks and never
raises, so the pipeline, the filer and the API can call it inside their work.

`Events` turns GridSight's hooks (IncidentManager.on_event, CaseService.on_status,
the health loop, a Patrol's on_event) into the documented JSON messages. A message about a database
change is sent only once that change commits; a rolled-back change sends nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from detector.config import MqttSettings
from detector.ingest.health import HealthSnapshot
from detector.ingest.patrol import PatrolEvent, PatrolState
from detector.rules.taxonomy import Taxonomy
from detector.store.db import Case, Incident

log = logging.getLogger(__name__)

INCIDENT_EVENTS = ("opened", "present", "cleared", "recurred")
PATROL_EVENTS = ("arrived", "paused", "resumed")
ONLINE, OFFLINE = b"1", b"0"


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset (naive values are taken as UTC)."""
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def encode(payload: dict[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class MqttPublisher:
    """A resilient, non-blocking MQTT publisher (start, publish, stop)."""

    def __init__(
        self,
        cfg: MqttSettings,
        *,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.prefix = cfg.topic_prefix
        self.client_id = cfg.client_id or f"gridsight-{socket.gethostname()[:32]}-{uuid.uuid4().hex[:6]}"
        self.online_topic = self.topic("gridsight/online")
        self._queue: deque[Message] = deque()
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        self._sender: threading.Thread | None = None
        self._outage_logged = False
        self._drop_logged = False
        self.sent = 0  # handed to the broker connection
        self.acked = 0  # acknowledged by the broker (QoS ≥ 1) or written (QoS 0)
        self.dropped = 0  # oldest messages dropped because the queue was full
        self.connects = 0

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311)
        env = os.environ if environ is None else environ
        user = env.get(cfg.username_env) if cfg.username_env else None
        password = env.get(cfg.password_env) if cfg.password_env else None
        for name, value in ((cfg.username_env, user), (cfg.password_env, password)):
            if name and value is None:  # the variable's name only, never a value
                log.warning("mqtt credential variable not set", extra={"variable": name})
        if user is not None or password is not None:
            c.username_pw_set(user, password)
        if cfg.tls:
            c.tls_set()
        c.will_set(self.online_topic, OFFLINE, qos=cfg.qos, retain=True)
        c.reconnect_delay_set(min_delay=max(1, round(reconnect_min_s)), max_delay=max(1, round(reconnect_max_s)))
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(1000)  # paho's own queue stays small: ours is the buffer
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self._client = c

    # ------------------------------------------------------------ public

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}"

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Starts connecting in the background; returns at once (the broker may be down)."""
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()
        self._client.connect_async(self.cfg.host, self.cfg.effective_port, keepalive=self.cfg.keepalive_s)
        self._client.loop_start()
        log.info(
            "mqtt publisher started",
            extra={"host": self.cfg.host, "port": self.cfg.effective_port, "client_id": self.client_id,
                   "tls": self.cfg.tls, "prefix": self.prefix},
        )  # fmt: skip

    def publish(self, suffix: str, payload: dict[str, Any] | bytes, *, retain: bool = False) -> None:
        """Queues a message for `{prefix}/{suffix}`; never blocks (drops the oldest when full)."""
        self.enqueue(Message(self.topic(suffix), encode(payload), retain))

    def enqueue(self, msg: Message) -> None:
        with self._cond:
            if self._closing and self._sender is None:
                return
            while len(self._queue) >= self.cfg.queue_size:
                self._queue.popleft()
                self.dropped += 1
                if not self._drop_logged:
                    self._drop_logged = True
                    log.warning("mqtt queue full: dropping the oldest", extra={"queue_size": self.cfg.queue_size})
            self._queue.append(msg)
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"connected": self._connected, "queued": len(self._queue), "sent": self.sent, "acked": self.acked,
                    "dropped": self.dropped, "connects": self.connects}  # fmt: skip

    def flush(self, timeout: float) -> bool:
        """Waits until the queue is empty and the broker has acknowledged what was sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue and self.acked >= self.sent:
                    return True
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Says "offline" (retained), sends what it can within `timeout`, then disconnects cleanly."""
        if self._sender is None:
            return
        self.publish("gridsight/online", OFFLINE, retain=True)
        flushed = self._connected and self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._sender.join(timeout)
        self._sender = None
        self._client.disconnect()
        # loop_stop waits for paho's thread, which waits for unacknowledged messages: bounded here
        # (a hung broker must not hold up the shutdown; paho's thread is a daemon).
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)
        log.info("mqtt publisher stopped", extra={**self.stats(), "flushed": flushed})

    # ------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:  # e.g. bad credentials: paho retries with its backoff
            self._outage("mqtt connection refused", level=logging.ERROR, reason=str(reason))
            return
        # First, so that a broker that published our will after an outage hears we are back.
        info = client.publish(self.online_topic, ONLINE, qos=self.cfg.qos, retain=True)
        with self._cond:
            self.sent += info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            self._connected = True
            self.connects += 1
            self._outage_logged = self._drop_logged = False
            queued, dropped = len(self._queue), self.dropped
            self._cond.notify_all()
        log.info("mqtt connected", extra={"host": self.cfg.host, "port": self.cfg.effective_port,
                                          "queued": queued, "dropped": dropped})  # fmt: skip

    def _on_connect_fail(self, _client: mqtt.Client, _ud: Any) -> None:
        self._outage("mqtt broker unreachable, retrying")

    def _on_disconnect(self, _client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._cond:
            self._connected = False
        if not self._closing:
            self._outage("mqtt disconnected, reconnecting", reason=str(reason))

    def _on_publish(self, _client: mqtt.Client, _ud: Any, _mid: int, _reason: Any, _props: Any) -> None:
        with self._cond:
            self.acked += 1

    def _outage(self, message: str, level: int = logging.WARNING, **extra: Any) -> None:
        if not self._outage_logged:  # once per outage, not once per retry
            self._outage_logged = True
            log.log(level, message, extra={"host": self.cfg.host, "port": self.cfg.effective_port, **extra})

    # ------------------------------------------------------------ sender thread

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not (self._connected and self._queue):
                    self._cond.wait()
                if self._closing and not (self._connected and self._queue):
                    return
                msg = self._queue.popleft()
            rc = self._client.publish(msg.topic, msg.payload, qos=self.cfg.qos, retain=msg.retain).rc
            # NO_CONN with QoS ≥ 1: paho keeps the message and sends it on reconnect.
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self.cfg.qos):
                with self._cond:
                    self.sent += 1
                continue
            with self._cond:  # paho's queue full, or lost with QoS 0: try again shortly, in order
                self._queue.appendleft(msg)
                if rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                    self._connected = False
                else:
                    self._cond.wait(0.05)


# ---------------------------------------------------------------- payloads


def camera_status_payload(camera_id: str, name: str, snap: HealthSnapshot) -> dict[str, Any]:
    return {
        "camera_id": camera_id,
        "name": name,
        "state": snap.state.value,
        "last_error": snap.last_error,
        "last_frame_at": iso(snap.last_frame_at),
        "ts": now_iso(),
    }


def incident_payload(inc: Incident, taxonomy: Taxonomy) -> dict[str, Any]:
    problem = taxonomy[inc.problem_code] if inc.problem_code in taxonomy else None
    return {
        "incident_id": inc.id,
        "case_key": inc.case_key,
        "camera_id": inc.camera_id,
        "problem_code": inc.problem_code,
        "problem_name": problem.name_zh if problem else None,
        "zone": inc.zone,
        "state": inc.state,
        "opened_at": iso(inc.opened_at),
        "last_seen_at": iso(inc.last_seen_at),
        "score": round(float(inc.score), 4),
        "box": [round(float(v), 4) for v in inc.box] if inc.box else None,
        "ts": now_iso(),
    }


def patrol_event(before: PatrolState | None, e: PatrolEvent) -> str | None:
    """Which patrol message a state change makes (pure): "arrived" (settled at a preset: its frames count from
    now), "paused" (locked: an operator's lock or a manual move), "resumed" (out of the lock, on its way again);
    None for the others (moving, settling, a fault or retry: the camera's status tells those)."""
    if e.state is PatrolState.DWELLING:
        return "arrived"
    if e.state is PatrolState.LOCKED and before is not PatrolState.LOCKED:
        return "paused"
    if before is PatrolState.LOCKED and e.state not in (PatrolState.LOCKED, PatrolState.STOPPED):
        return "resumed"
    return None


def patrol_payload(e: PatrolEvent, event: str, name: str) -> dict[str, Any]:
    return {"camera_id": e.camera_id, "name": name, "event": event, "preset": e.preset, "state": e.state.value,
            "reason": e.reason or None, "ts": now_iso()}  # fmt: skip


def case_status_payload(case: Case, old: str | None, new: str, source: str) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "incident_id": case.incident_id,
        "platform_case_id": case.platform_case_id,
        "problem_code": case.problem_code,
        "from": old,
        "to": new,
        "source": source,
        "ts": now_iso(),
    }


# ---------------------------------------------------------------- after commit

_PENDING = "gridsight.events.pending"


def after_commit(obj: object, send: Callable[[], None]) -> None:
    """Runs `send` once the transaction holding `obj` commits (at once if it holds none)."""
    sess = object_session(obj)
    if sess is None or not sess.in_transaction():
        send()
        return
    pending: list[Callable[[], None]] | None = sess.info.get(_PENDING)
    if pending is None:
        pending = sess.info[_PENDING] = []
        event.listen(sess, "after_commit", _run_pending)
        event.listen(sess, "after_rollback", _drop_pending)
    pending.append(send)


def _run_pending(sess: Session) -> None:
    pending = sess.info.get(_PENDING) or []
    todo, pending[:] = list(pending), []
    for send in todo:
        try:  # the commit is done: nothing here may reach the committer
            send()
        except Exception:
            log.exception("mqtt event after commit failed")


def _drop_pending(sess: Session) -> None:
    pending = sess.info.get(_PENDING)
    if pending:
        pending.clear()


# ---------------------------------------------------------------- the hooks


class Events:
    """GridSight's hooks → documented messages. Every hook swallows and logs its own errors."""

    def __init__(self, publisher: MqttPublisher, taxonomy: Taxonomy, camera_names: dict[str, str]) -> None:
        self.publisher = publisher
        self.taxonomy = taxonomy
        self.camera_names = camera_names
        self._camera_seen: dict[str, tuple[str, str | None]] = {}
        self._patrol_state: dict[str, PatrolState] = {}  # camera id → the last state its patrol reported
        self._patrol_lock = threading.Lock()  # a patrol reports from its own thread and from the API's lock calls

    def start(self) -> None:
        self.publisher.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.publisher.stop(timeout)

    def incident(self, action: str, inc: Incident) -> None:
        """IncidentManager.on_event: opened | present (on the transition only) | cleared | recurred."""
        try:
            if action not in INCIDENT_EVENTS:
                return
            suffix = f"incidents/{inc.camera_id}/{action}"
            body = encode(incident_payload(inc, self.taxonomy))  # now: the row may change or expire later
            after_commit(inc, lambda: self.publisher.publish(suffix, body))
        except Exception:
            log.exception("mqtt incident event failed", extra={"action": action})

    def case_status(self, case: Case, old: str | None, new: str, source: str) -> None:
        """CaseService.on_status."""
        try:
            body = encode(case_status_payload(case, old, new, source))
            suffix = f"cases/{case.id}/status"
            after_commit(case, lambda: self.publisher.publish(suffix, body))
        except Exception:
            log.exception("mqtt case event failed", extra={"case": getattr(case, "id", None)})

    def patrol(self, e: PatrolEvent) -> None:
        """A Patrol's on_event (its thread): arrived at a preset, paused by a lock, resumed."""
        try:
            with self._patrol_lock:
                before, self._patrol_state[e.camera_id] = self._patrol_state.get(e.camera_id), e.state
            if (event := patrol_event(before, e)) is None:
                return
            name = self.camera_names.get(e.camera_id, e.camera_id)
            self.publisher.publish(f"patrol/{e.camera_id}/{event}", patrol_payload(e, event, name))
        except Exception:
            log.exception("mqtt patrol event failed", extra={"camera": e.camera_id})

    def camera_status(self, snap: HealthSnapshot, *, force: bool = False) -> bool:
        """A camera's health, retained, when its state or error changed (or `force`); True when sent."""
        try:
            key = (snap.state.value, snap.last_error)
            if not force and self._camera_seen.get(snap.camera_id) == key:
                return False
            self._camera_seen[snap.camera_id] = key
            name = self.camera_names.get(snap.camera_id, snap.camera_id)
            payload = camera_status_payload(snap.camera_id, name, snap)
            self.publisher.publish(f"cameras/{snap.camera_id}/status", payload, retain=True)
            return True
        except Exception:
            log.exception("mqtt camera event failed", extra={"camera": snap.camera_id})
            return False


def build_events(cfg: MqttSettings, taxonomy: Taxonomy, camera_names: dict[str, str]) -> Events:
    return Events(MqttPublisher(cfg), taxonomy, camera_names)
