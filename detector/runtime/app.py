"""The composition root: everything is wired here, started in order, stopped in mirror order."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import numpy as np
import uvicorn
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from api.accounts import add_user, audit, generate_password, user_count
from api.app import create_app
from api.deps import ApiContext
from detector import logs
from detector.analysis.base import Analyzer, Stateful, pack_states, restore_states
from detector.analysis.gate import SceneGate
from detector.analysis.haze import HazeAnalyzer, construction_zones
from detector.analysis.occupancy import PERSON, VENDING, OccupancyAnalyzer, OccupancyParams
from detector.analysis.onnx_detector import ObjectDetector, OnnxModel, OnnxModelError
from detector.analysis.tamper import TamperDetector
from detector.analysis.text import TextDetector
from detector.config import Analyzers, Camera, HttpJsonPlatform, LoadedConfig, LocalPlatform, load_config
from detector.filing.cases import CaseService
from detector.filing.filer import Filer
from detector.filing.platform import make_adapter
from detector.incidents.evidence import EvidenceStore
from detector.incidents.manager import IncidentManager
from detector.ingest.health import CameraHealth, CameraState, HealthSnapshot
from detector.ingest.patrol import Patrol, PatrolEvent, PatrolState
from detector.ingest.ptz import PtzError
from detector.ingest.ring import PacketRing
from detector.ingest.sources import (
    Reader,
    ReaderOptions,
    SnapshotReader,
    SourceError,
    StreamReader,
    is_file_source,
    resolve_url,
)
from detector.models.deployments import DeploymentError, Desired, ModelStore, desired
from detector.models.manifest import ModelManifestError
from detector.models.shadow import ShadowTap
from detector.rules.engine import CameraRules
from detector.runtime.events import Events, build_events
from detector.runtime.leases import LeaseKeeper, ServedQueues, default_instance_id
from detector.runtime.pipeline import CameraRuntime, FrameQueues, Pipeline, jpeg, stateful
from detector.runtime.reload import ConfigWatch, ReloadResult, plan
from detector.store.db import CameraHealthEvent, CameraLease, CameraRow, ModelFinding, open_database
from detector.synthetic.demo_camera import demo_camera
from detector.verification.desk import VerificationDesk

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 5.0
FOLLOW_LEASES_EVERY_S = 0.5  # with leases: how often the run loop starts and stops cameras to match them
WATCH_CONFIG_EVERY_S = 1.0  # how often the config files' modification times are compared
HANDOVER_WAIT_S = 15.0  # a camera handed over: how long to wait for its in-flight frame and openings
RETENTION_EVERY_S = 3600.0


@dataclass
class GridSight:
    config: LoadedConfig
    healths: dict[str, CameraHealth] = field(default_factory=dict)
    readers: list[Reader] = field(default_factory=list)
    patrols: dict[str, Patrol] = field(default_factory=dict)  # camera id → its patrol (started after its readers)
    _stop: threading.Event = field(default_factory=threading.Event)
    _models: dict[tuple[str, str], OnnxModel | None] = field(default_factory=dict)  # None: could not be loaded
    _detectors: list[tuple[str, str, ObjectDetector]] = field(default_factory=list)  # camera, model, detector
    _desired: Desired = field(default_factory=lambda: Desired({}, {}))  # model versions the cameras run
    _health_logged: dict[str, bool] = field(default_factory=dict)
    api_port: int | None = None
    # "all": one process does everything. With `gridsight run --workers N`: the "supervisor"
    # runs the API, the filer and the worker processes, each "worker" runs cameras only.
    role: Literal["all", "supervisor", "worker"] = "all"
    peers: int = 1  # a worker: how many workers its supervisor runs
    events: Events | None = None  # MQTT (settings.mqtt), None when not configured
    config_dir: Path | None = None  # where the config was loaded from: reloaded on a change (None: never)
    demo: bool = False  # the demo camera is added to every load of the config
    watch_config: bool = True  # reload on a change of the config files (else only by the API)
    _cameras_lock: threading.RLock = field(default_factory=threading.RLock)  # a reload, the leases' follower
    _watch: ConfigWatch | None = None
    _ctx: ApiContext | None = None

    # ------------------------------------------------------------ start

    def start(self) -> None:
        self._catch_signals()  # first: a SIGTERM while cameras are claimed and built is a clean stop, not a kill
        s = self.config.settings
        if s.mqtt is not None:  # first, so every later part can report; connects in the background
            self.events = build_events(s.mqtt, self.config.taxonomy, {c.id: c.name for c in self.config.cameras})
            self.events.start()
        self.engine, self.sessions = open_database(s.database_url)
        self.store = EvidenceStore(s.evidence_root)
        self.model_store = ModelStore(s.models_dir)
        self.leases = self._lease_keeper()  # None: this process serves every camera (no other instance)
        if self.leases is not None:
            self.leases.join()
        with self.sessions() as sess:
            # Other live instances on the same evidence root are safe: files young enough to be
            # waiting for their rows are spared (evidence.GRACE_S).
            self.store.sweep_orphans(sess)
            self._desired = desired(sess, self.model_store)
        self._apply_retention()
        cameras = {c.id: c for c in self.config.cameras}
        self.cases = CaseService(self.config.taxonomy, s, self.store, cameras)
        self.cases.on_status = self.events.case_status if self.events else None
        recur = timedelta(hours=s.filing.recurrence_window_hours)
        self.incidents = IncidentManager(
            self.sessions, self.store, self.config.taxonomy, recur,
            on_event=self.events.incident if self.events else None, cases=self.cases,
        )  # fmt: skip
        self.filer = build_filer(self.config, self.sessions, self.store, self.cases)
        self.queues = FrameQueues() if self.leases is None else ServedQueues(self.leases.may_serve)
        self.pipeline = Pipeline(self.incidents, self.queues, self._save_analyzer_state)
        self.desk = VerificationDesk(
            self.sessions, self.store, self.config.taxonomy, served=lambda: list(self.pipeline.cameras),
            health=self.health,
        )  # fmt: skip
        self.pipeline.watch = lambda rt, frame, obs: self.desk.seen(
            rt.camera, rt.rules, rt.health.view, frame, obs, visit=rt.visit if rt.incident_key is not None else None
        )  # a patrol stop's runtime (keyed camera|preset): its frames answer by visit
        if self.leases is not None:  # only the cameras this instance holds a lease on; run() follows the leases
            self.leases.tick()
            self.leases.start()  # renewing from now on: building the cameras may take a while (models, demo video)
            for camera_id in sorted(self.leases.held()):
                self._serve(camera_id)
        elif self.role == "all":  # (a supervisor serves no camera: its workers do)
            for cam in self.config.cameras:
                if not cam.enabled:
                    continue
                try:
                    self._add_camera(cam)
                except (SourceError, ValueError, OSError) as e:
                    self._drop_patrol(cam.id)
                    log.error("camera skipped", extra={"camera": cam.id, "error": str(e)})
        if self.role != "worker":  # workers leave the API and the filer to their supervisor
            self._start_api()
            self.filer.start()
        self.pipeline.start()
        self.desk.start()
        for r in self.readers:
            r.start()
        for p in self.patrols.values():
            p.start()
        if self.watch_config and self.config_dir is not None and self.config_dir.is_dir():
            self._watch = ConfigWatch(self.config_dir)
        log.info("gridsight started", extra={"cameras": len(self.pipeline.cameras), "api_port": self.api_port})

    def _add_camera(self, cam: Camera) -> None:
        s = self.config.settings
        health = CameraHealth(cam.id)
        rules = CameraRules.build(cam, self.config.taxonomy)
        if cam.patrol:  # each preset analysed as a view of its own; the camera itself only routes frames
            rt = CameraRuntime(cam, rules, health, [], None, patrol=self._patrol(cam, health))
            self.patrols[cam.id] = rt.patrol  # (registered at once: a camera that fails below drops it)
            for stop in cam.patrol:
                view = cam.at_stop(stop)
                view_rules = CameraRules.build(view, self.config.taxonomy)
                rt.stops[stop.preset] = CameraRuntime(
                    view, view_rules, health, self._analyzers(view, view_rules), self._gate(view, view_rules),
                    TamperDetector(), incident_key=f"{cam.id}|{stop.preset}",
                )  # fmt: skip
        else:
            tamper = TamperDetector()  # a moved/covered/blurred view pauses the camera's rules
            rt = CameraRuntime(cam, rules, health, self._analyzers(cam, rules), self._gate(cam, rules), tamper)
        resume = self._restore(cam, stateful(rt))
        file_src = is_file_source(cam.source.url)
        opts = ReaderOptions(  # the ring's most: a file reader may run a queue's depth (+1 in analysis) ahead
            cadence_s=cam.cadence_s,
            ring_s=cam.evidence.pre_s + cam.evidence.post_s + 3 * cam.cadence_s,
        )
        ring = None if cam.source.snapshot else PacketRing(opts.ring_s, pre_s=cam.evidence.pre_s)

        def sink(frame, _h=health, _block=file_src):  # files wait for the analysis; live cameras drop the oldest
            if ring is not None:
                ring.expect(frame.ts)
            self.queues.put(frame, block=_block, health=_h)

        if ring is None:
            self.readers.append(SnapshotReader(cam.id, resolve_url(cam.source, s.cache_dir), sink, health, opts))
        else:
            detect_ring = ring if cam.record is None else None
            url = resolve_url(cam.source, s.cache_dir)
            self.readers.append(
                StreamReader(cam.id, cam.source, url, sink, health, opts, detect_ring, resume_from=resume)
            )
            if cam.record is not None:
                rec_health = CameraHealth(cam.id + ":record")
                self.readers.append(
                    StreamReader(
                        cam.id,
                        cam.record,
                        resolve_url(cam.record, s.cache_dir),
                        sink,
                        rec_health,
                        opts,
                        ring,
                        decode=False,
                        resume_from=resume,
                    )
                )
        self.healths[cam.id] = health
        if rt.patrol is None:
            self.incidents.attach(rules, ring)
        for stop_rt in rt.stops.values():
            self.incidents.attach(stop_rt.rules, ring, key=stop_rt.incident_key)
        if rt.patrol is not None:
            rt.patrol.wanted = partial(self.desk.wanted_preset, cam.id)  # a 核实 request's preset goes first
        self.pipeline.add(rt)

    @staticmethod
    def _gate(cam: Camera, rules: CameraRules) -> SceneGate | None:
        if not cam.gate.enabled:
            return None
        return SceneGate(cam.gate.threshold, timedelta(minutes=cam.gate.max_skip_minutes), rules.zones)

    def _patrol(self, cam: Camera, health: CameraHealth) -> Patrol:
        """The camera's patrol, reporting into its health; without credentials one that only says so."""

        def on_event(e: PatrolEvent) -> None:
            if e.state is PatrolState.FAULT:
                health.set_ptz_error(f"patrol: {e.reason}")
            elif e.state is not PatrolState.STARTING:  # (a retry is not yet a success)
                health.set_ptz_error(None)
            if self.events is not None:  # arrived at a preset, paused by a lock, resumed (docs/mqtt.md)
                self.events.patrol(e)

        try:
            return Patrol.from_camera(cam, on_event=on_event)
        except PtzError as e:
            log.error("camera cannot patrol", extra={"camera": cam.id, "error": str(e)})
            health.set_ptz_error(f"patrol: {e}")
            return Patrol.failing(cam, e, on_event=on_event)

    def _analyzers(self, cam: Camera, rules: CameraRules) -> list[Analyzer]:
        """The analyzers the camera's problems need (or its config forces)."""
        needed = rules.labels
        detectors = self._object_detectors(cam, needed)
        out: list[Analyzer] = []
        occ = cam.analyzers.occupancy
        if occ.enabled or (occ.enabled is None and any(lbl.startswith("occupancy:") for lbl in needed)):
            polys = [z.polygon for z in cam.zones if z.purpose.value != "ignore"] or None
            params = OccupancyParams(work_width=occ.width, min_area=occ.min_area, people=VENDING in needed)
            finder = next((d for d in detectors if PERSON in (d.classes or d.model.classes)), None)
            people = None if finder is None or not params.people else partial(finder.boxes, label=f"detector:{PERSON}")
            out.append(OccupancyAnalyzer(params, mask=polys, people=people))
        if any(lbl.startswith("text:") for lbl in needed):
            walls = [z.polygon for z in cam.zones if z.purpose.value in ("wall", "pole")]
            if walls:
                out.append(TextDetector(walls, intra_op_num_threads=self.config.settings.inference_threads))
            else:
                log.warning("small-ad problems need a wall or pole zone", extra={"camera": cam.id})
        if any(lbl.startswith(("haze:", "activity:")) for lbl in needed):
            sites = construction_zones(cam.zones)
            if sites:
                out.append(HazeAnalyzer(sites))
            else:
                log.warning(
                    "dust / night-construction problems need a construction_site zone", extra={"camera": cam.id}
                )
        return out + detectors

    def _object_detectors(self, cam: Camera, needed: frozenset[str]) -> list[ObjectDetector]:
        """One detector per model with work to do: the trained model takes the detector classes
        it knows, the people-and-vehicles model the rest (and the person cue of vending)."""
        wanted = {lbl.split(":", 1)[1] for lbl in needed if lbl.startswith("detector:")}
        if VENDING in needed:
            wanted.add(PERSON)
        out = []
        for role, settings in (("detector", cam.analyzers.detector), ("objects", cam.analyzers.objects)):
            if not (settings.enabled or (settings.enabled is None and wanted)):
                continue
            version = self._desired.active.get(settings.model)
            model = self._model(settings.model, version) if version else None
            if model is None:
                log.warning(
                    "detector model not found; the camera runs without it",
                    extra={"camera": cam.id, "model": settings.model},
                )
                continue
            mine = wanted & set(model.classes)
            if settings.enabled is None and not mine:
                continue
            wanted -= mine
            detector = ObjectDetector(model, classes=mine or None, name=role)
            self._tap(detector, settings.model, cam.id, self._desired)
            self._detectors.append((cam.id, settings.model, detector))
            out.append(detector)
        return out

    def _people_finder(self) -> Callable[[NDArray[np.uint8]], NDArray[np.float32]] | None:
        """Person boxes in a picture from the people-and-vehicles model, for the public copies."""
        name = Analyzers().objects.model
        version = self._desired.active.get(name)
        model = self._model(name, version) if version else None
        if model is None or PERSON not in model.classes:
            return None
        return lambda image: model.predict([image], classes=[PERSON])[0].xyxy

    def _model(self, name: str, version: str) -> OnnxModel | None:
        """One session per model version, shared by every camera; None (said once) if it cannot load."""
        key = (name, version)
        if key not in self._models:
            try:
                path = self.model_store.path(name, version)
                self._models[key] = OnnxModel(path, intra_op_num_threads=self.config.settings.inference_threads)
            except (DeploymentError, ModelManifestError, OnnxModelError) as e:
                log.warning("detector model not loaded", extra={"model": name, "version": version, "error": str(e)})
                self._models[key] = None
        return self._models[key]

    def _tap(self, detector: ObjectDetector, name: str, camera_id: str, want: Desired) -> None:
        """Starts, changes or stops the camera's shadow run to match `want`."""
        run = want.shadow_for(name, camera_id)
        candidate = self._model(name, run.version) if run else None
        if run is None or candidate is None:
            detector.shadow = None
        elif detector.shadow is None or detector.shadow.run_id != run.run_id:
            detector.shadow = ShadowTap(run.run_id, name, candidate, self._store_findings)

    def _store_findings(self, rows: list[ModelFinding]) -> None:
        with self.sessions.begin() as s:
            s.add_all(rows)

    def _sync_models(self) -> None:
        """Applies promotions, rollbacks and shadow runs recorded in the database, without a restart."""
        with self.sessions() as s:
            want = desired(s, self.model_store)
        if want == self._desired:
            return
        for camera_id, name, detector in self._detectors:
            version = want.active.get(name)
            model = self._model(name, version) if version else None
            if model is not None and model is not detector.model:
                detector.swap(model)
                log.info("detector model swapped", extra={"camera": camera_id, "model": name, "version": version})
            self._tap(detector, name, camera_id, want)
        self._desired = want

    def _start_api(self) -> None:
        s = self.config.settings
        ctx = ApiContext(
            sessions=self.sessions,
            store=self.store,
            taxonomy=self.config.taxonomy,
            cameras=self._shown_cameras(),
            health=self.health if self._serves_all else self._health_anywhere,
            cases=self.cases,
            latest_frame=self._latest_frame,
            latest_picture=self._latest_picture,
            config_dir=self.config_dir,
            reload=self.reload_config if self.config_dir is not None else None,
            model_store=self.model_store,
            runtime_stats=self._runtime_stats,
            people=self._people_finder(),
            cookie_secure=s.api_cookie_secure,
            verification_timeout_s=s.verification_timeout_s,
            patrol=self.patrols.get,
            **platform_callbacks(s.platform),
        )
        self._ctx = ctx
        config = uvicorn.Config(create_app(ctx), host=s.api_host, port=s.api_port, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._api_thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._api_thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._api_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._server.started:
            self.api_port = self._server.servers[0].sockets[0].getsockname()[1]
        else:
            log.error("API did not start", extra={"host": s.api_host, "port": s.api_port})

    # ------------------------------------------------------------ state

    def health(self, camera_id: str) -> HealthSnapshot | None:
        h = self.healths.get(camera_id)
        return h.snapshot() if h else None

    def _save_analyzer_state(self, camera_id: str, blob: bytes) -> None:
        with self.sessions.begin() as s:
            row = s.get(CameraRow, camera_id)
            if row is not None:
                row.analyzer_state = blob

    def _restore(self, cam: Camera, analyzers: list[Stateful]) -> datetime | None:
        """Reloads what the camera's analyzers learned; returns where its clock stopped."""
        with self.sessions() as s:
            row = s.get(CameraRow, cam.id)
            if row is None:
                return None
            if row.analyzer_state:
                restore_states(analyzers, row.analyzer_state)
            return row.last_frame_at

    def _apply_retention(self) -> None:
        with self.sessions() as sess:
            removed = self.store.apply_retention(sess, datetime.now(UTC), self.config.settings.retention_days)
        if removed:
            log.info("evidence past retention deleted", extra={"files": removed})

    def _save_health(self) -> None:
        """Current health into the camera rows; state changes into the health history."""
        now = datetime.now(UTC)
        snaps: list[HealthSnapshot] = []
        with self.sessions.begin() as s:
            for cam_id, h in list(self.healths.items()):  # (a reload may add or remove one meanwhile)
                snap = h.snapshot()
                row = s.get(CameraRow, cam_id)
                if row is None:
                    continue
                if row.state != snap.state.value or not self._health_logged.get(cam_id):
                    s.add(CameraHealthEvent(camera_id=cam_id, ts=now, state=snap.state.value, error=snap.last_error))
                    self._health_logged[cam_id] = True
                row.state, row.last_error, row.updated_at = snap.state.value, snap.last_error, now
                snaps.append(snap)
        if self.events is not None:  # retained, on a change of state or error (Events remembers the last)
            for snap in snaps:
                self.events.camera_status(snap)

    def _shown_cameras(self) -> dict[str, Camera]:
        """The API's cameras; with leases every instance shows every camera (the database is shared)."""
        if self._serves_all:
            return {c.camera.id: c.camera for c in self.pipeline.runtimes()}
        return {c.id: c for c in self.config.cameras if c.enabled}

    def _latest_frame(self, camera_id: str) -> NDArray[np.uint8] | None:
        rt = self.pipeline.cameras.get(camera_id)
        return rt.last_image if rt else None

    def _latest_picture(self, camera_id: str) -> bytes | None:
        """A recent frame at full resolution as JPEG (the preview is the full frame when it is small)."""
        rt = self.pipeline.cameras.get(camera_id)
        if rt is None:
            return None
        if rt.full_jpeg is not None:
            return rt.full_jpeg
        return jpeg(rt.last_image) if rt.last_image is not None else None

    def _runtime_stats(self) -> dict[str, dict[str, float]]:
        return {
            rt.camera.id: {"frames": rt.frames, "analyses": rt.analyses, "errors": rt.errors,
                           "analysis_seconds": rt.analysis_seconds, "lag_s": rt.lag_s}
            for rt in self.pipeline.runtimes()
        }  # fmt: skip

    def ensure_admin(self) -> str | None:
        """First run: creates user 'admin' with a generated password and returns it (None otherwise)."""
        with self.sessions.begin() as s:
            if user_count(s):
                return None
            password = generate_password()
            add_user(s, "admin", password, "admin")
            audit(s, "gridsight", "user.add", "user:admin", None, {"role": "admin", "first_run": True})
            return password

    # ------------------------------------------------------------ leases (several instances on one database)

    @property
    def _serves_all(self) -> bool:
        """True: this process serves every camera it shows (no other instance or worker does)."""
        return self.leases is None and self.role == "all"

    def _lease_keeper(self) -> LeaseKeeper | None:
        s = self.config.settings
        inst = s.instance
        if self.role == "supervisor" or (self.role == "all" and not inst.leases_on(s.database_url)):
            return None
        eligible = [c.id for c in self.config.cameras if c.enabled and inst.cameras.allows(c)]
        me = inst.id or default_instance_id()
        if self.role == "worker":  # several on one machine: each its own instance
            me = f"{inst.id or socket.gethostname()}-worker-{os.getpid()}"
        log.info("camera leases on", extra={"instance": me, "cameras": len(eligible), "lease_s": inst.lease_s})
        return LeaseKeeper(self.sessions, me, eligible, inst.lease_s, inst.renew_every_s, peers=self.peers)

    def _follow_leases(self) -> None:
        """Serves exactly the cameras whose lease this instance holds: first stops the others, then starts new ones."""
        assert self.leases is not None
        try:
            with self._cameras_lock:  # (a reload changes the cameras to follow)
                self._follow_held()
        except Exception:  # a database blip must not end the run loop; the next round tries again
            log.exception("following the camera leases failed")

    def _follow_held(self) -> None:
        assert self.leases is not None
        held = self.leases.held()
        for camera_id in [c for c in self.pipeline.cameras if c not in held]:
            self._unserve(camera_id)
        for camera_id in sorted(held.keys() - self.pipeline.cameras.keys()):
            for r in self._serve(camera_id):
                r.start()  # a reader may start late: its frames join the running pipeline
            if (patrol := self.patrols.get(camera_id)) is not None:
                patrol.start()

    def _serve(self, camera_id: str) -> list[Reader]:
        """Adds a camera this instance just got the lease of; returns its readers (not started)."""
        assert self.leases is not None and isinstance(self.queues, ServedQueues)
        cam = next(c for c in self.config.cameras if c.id == camera_id)
        before = len(self.readers)
        self.queues.serve(camera_id)
        # copy on write: the API may be iterating the pipeline's cameras while one is added
        self.pipeline.cameras = dict(self.pipeline.cameras)
        try:
            self._add_camera(cam)
        except Exception as e:
            del self.readers[before:]
            self._drop_patrol(camera_id)
            self.queues.refuse(camera_id)
            self.healths.pop(camera_id, None)
            self.pipeline.cameras = {k: v for k, v in self.pipeline.cameras.items() if k != camera_id}
            self._detectors = [d for d in self._detectors if d[0] != camera_id]
            if not isinstance(e, SourceError | ValueError | OSError):
                raise
            log.error("camera skipped", extra={"camera": camera_id, "error": str(e)})
            self.leases.give_up(camera_id)  # broken here: let another instance try it
            return []
        log.info("camera served", extra={"camera": camera_id, "instance": self.leases.me})
        return self.readers[before:]

    def _drop_patrol(self, camera_id: str) -> None:
        """Stops the camera's patrol (or, one not started, lets its ONVIF sessions go)."""
        if (patrol := self.patrols.pop(camera_id, None)) is not None:
            patrol.stop()

    def _stop_readers(self, camera_id: str) -> None:
        """Stops the camera's patrol, then its readers (the mirror of their start)."""
        self._drop_patrol(camera_id)
        mine = [r for r in self.readers if r.camera_id == camera_id]
        for r in mine:  # all asked first, then waited for: they stop in parallel
            r.stop()
        for r in mine:
            r.join(15)
        self.readers = [r for r in self.readers if r.camera_id != camera_id]

    def _unserve(self, camera_id: str) -> None:
        """Stops serving a camera whose lease was lost, or that is handed over (then: state saved, lease released)."""
        assert self.leases is not None and isinstance(self.queues, ServedQueues)
        handover = self.leases.handing_over(camera_id)
        self.queues.refuse(camera_id)  # from now on no frame of it reaches the analysis
        self._stop_readers(camera_id)
        if not self.queues.wait_idle(camera_id, HANDOVER_WAIT_S):
            log.warning("analysis still busy with a camera given up", extra={"camera": camera_id})
        rt = self.pipeline.cameras.get(camera_id)
        self.pipeline.cameras = {k: v for k, v in self.pipeline.cameras.items() if k != camera_id}
        self.healths.pop(camera_id, None)
        self._health_logged.pop(camera_id, None)
        self._detectors = [d for d in self._detectors if d[0] != camera_id]
        if not handover:  # lost: another instance may already write this camera's rows
            log.warning("camera no longer served: lease lost", extra={"camera": camera_id})
            self.leases.release([camera_id])  # if it is still mine after all (ran out locally): claim it afresh
            return
        # Handed over: its readers are stopped, so its clips are done; wait for the openings to commit.
        end = time.monotonic() + HANDOVER_WAIT_S
        while any(k.startswith(camera_id + "|") for k in list(self.incidents.pending)) and time.monotonic() < end:
            time.sleep(0.1)
        if rt is not None and self.leases.handing_over(camera_id):  # still ours after the waits: so is its state
            blob = pack_states(stateful(rt))
            if blob is not None:
                self._save_analyzer_state(camera_id, blob)
        self.leases.release([camera_id])  # (only if still mine)
        log.info("camera handed over", extra={"camera": camera_id, "instance": self.leases.me})

    def _health_anywhere(self, camera_id: str) -> HealthSnapshot | None:
        """This instance's health of the camera, or what its lease holder last saved in the camera's row."""
        snap = self.health(camera_id)
        if snap is not None:
            return snap
        with self.sessions() as s:
            row = s.get(CameraRow, camera_id)
            lease = s.get(CameraLease, camera_id)
        if row is None:
            return None
        served = lease is not None and lease.holder is not None and lease.expires_at > datetime.now(UTC)
        states = {st.value: st for st in CameraState}
        return HealthSnapshot(
            camera_id=camera_id,
            state=states.get(row.state, CameraState.CONNECTING) if served else CameraState.STOPPED,
            last_error=row.last_error if served else "no instance holds this camera's lease",
            last_frame_at=row.last_frame_at,
            frames_received_per_min=0,
            frames_analysed_per_min=0,
            frames_dropped=0,
            reconnects=0,
            since=row.updated_at.timestamp(),
        )

    # ------------------------------------------------------------ reload (no restart)

    def reload_config(self) -> ReloadResult:
        """Loads the config folder again and applies its camera changes (detector/runtime/reload.py).

        A folder with any error is refused whole: the errors are returned and logged, and the
        running config stays. Settings changes are only reported: they need a restart.
        """
        assert self.config_dir is not None
        with self._cameras_lock:
            if self._watch is not None:
                self._watch.mark()
            new = load_config(self.config_dir)
            errors = [str(e) for e in new.errors]
            if not new.cameras and not errors and not self.demo:
                errors.append(f"{self.config_dir}: no camera configured")
            if errors:
                for err in errors:
                    log.error("config reload refused: the running config stays", extra={"error": err})
                return ReloadResult(errors=errors)
            cameras = [*new.cameras, *([demo_camera()] if self.demo else [])]
            warnings = [str(w) for w in new.warnings]
            if new.settings.model_dump(exclude={"api_port"}) != self.config.settings.model_dump(exclude={"api_port"}):
                warnings.append(f"{self.config_dir}: settings changed: restart gridsight to apply them")
            todo = plan(self.config.cameras, cameras)
            self.config.cameras = cameras
            self.cases.cameras = {**self.cases.cameras, **{c.id: c for c in cameras}}  # open cases keep theirs
            if self.leases is not None:  # the run loop starts and stops cameras as the leases follow
                inst = self.config.settings.instance
                self.leases.set_eligible([c.id for c in cameras if c.enabled and inst.cameras.allows(c)])
                for cam in todo.restarted:
                    if cam.id in self.pipeline.cameras:
                        self._unserve(cam.id)  # claimed afresh, with the new settings, at a later round
            elif self.role == "all":
                for camera_id in [*todo.removed, *(c.id for c in todo.restarted)]:
                    self._drop_camera(camera_id)
                for cam in [*todo.added, *todo.restarted]:
                    if problem := self._start_camera(cam):
                        warnings.append(problem)
            for cam in todo.updated:
                if problem := self._update_camera(cam):
                    warnings.append(problem)
            if self._ctx is not None:
                self._ctx.cameras = self._shown_cameras()
            result = ReloadResult(
                warnings=warnings,
                added=[c.id for c in todo.added],
                removed=todo.removed,
                restarted=[c.id for c in todo.restarted],
                updated=[c.id for c in todo.updated],
            )
        extra = {k: v for k, v in asdict(result).items() if v}
        log.info("config reloaded" if todo else "config reloaded: no camera changed", extra=extra)
        return result

    def _watch_config(self) -> None:
        if self._watch is None or not self._watch.changed():
            return
        try:
            self.reload_config()
        except Exception:  # the run loop must survive whatever the new files hold
            log.exception("config reload failed: the running config stays")

    def _drop_camera(self, camera_id: str) -> None:
        """Stops a camera this process serves alone: readers first, then its analysis (state saved)."""
        self._stop_readers(camera_id)
        self.pipeline.remove(camera_id)
        self.healths.pop(camera_id, None)
        self._health_logged.pop(camera_id, None)
        self._detectors = [d for d in self._detectors if d[0] != camera_id]
        log.info("camera stopped by a config reload", extra={"camera": camera_id})

    def _start_camera(self, cam: Camera) -> str | None:
        """Adds and starts a camera; a camera that cannot start is skipped: returns why."""
        before = len(self.readers)
        self.pipeline.cameras = dict(self.pipeline.cameras)  # copy on write: the API iterates it
        try:
            self._add_camera(cam)
        except (SourceError, ValueError, OSError) as e:
            del self.readers[before:]
            self._drop_patrol(cam.id)
            self.pipeline.cameras = {k: v for k, v in self.pipeline.cameras.items() if k != cam.id}
            self.healths.pop(cam.id, None)
            self._detectors = [d for d in self._detectors if d[0] != cam.id]
            log.error("camera skipped", extra={"camera": cam.id, "error": str(e)})
            return f"camera {cam.id} skipped: {e}"
        for r in self.readers[before:]:
            r.start()
        if (patrol := self.patrols.get(cam.id)) is not None:
            patrol.start()
        log.info("camera started by a config reload", extra={"camera": cam.id})
        return None

    def _update_camera(self, cam: Camera) -> str | None:
        """New zones, rules or problems from the camera's next frame on; readers and learned state kept."""
        old = self.pipeline.cameras.get(cam.id)
        if old is None:  # not served here
            return None
        rules = CameraRules.build(cam, self.config.taxonomy)
        kept = self._detectors
        self._detectors = [d for d in kept if d[0] != cam.id]
        try:
            analyzers = self._analyzers(cam, rules)
        except (ValueError, OSError) as e:
            self._detectors = kept
            log.error("camera update skipped: it runs on as before", extra={"camera": cam.id, "error": str(e)})
            return f"camera {cam.id} not updated: {e}"
        if blob := pack_states(old.analyzers):
            restore_states(analyzers, blob)
        gate = None
        if cam.gate.enabled:
            gate = SceneGate(cam.gate.threshold, timedelta(minutes=cam.gate.max_skip_minutes), rules.zones)
        with self.pipeline.paused():
            rt = replace(old, camera=cam, rules=rules, analyzers=analyzers, gate=gate, last_obs={})
            self.pipeline.cameras = {**self.pipeline.cameras, cam.id: rt}
            state = self.incidents.cameras.get(cam.id)
            if state is not None:  # open incidents and candidates stay; their rules are the new ones
                state.rules = state.tracker.rules = rules
        log.info("camera updated by a config reload", extra={"camera": cam.id, "zones": [z.name for z in cam.zones]})
        return None

    # ------------------------------------------------------------ run / stop

    def run(self, duration_s: float | None = None) -> None:
        """Blocks until `duration_s` passes, SIGINT/SIGTERM arrives (also one during `start`), or `request_stop()`."""
        self._catch_signals()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        retention_due = time.monotonic() + RETENTION_EVERY_S
        step = WATCH_CONFIG_EVERY_S if self.leases is None else FOLLOW_LEASES_EVERY_S  # leases: follow them closely
        health_due = time.monotonic() + HEALTH_EVERY_S
        while not self._stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._stop.wait(step if left is None else min(step, left))
            if not self._stop.is_set():  # (stopping: start no camera now)
                self._watch_config()
                if self.leases is not None:
                    self._follow_leases()
            if time.monotonic() < health_due:
                continue
            health_due = time.monotonic() + HEALTH_EVERY_S
            self._save_health()
            self._sync_models()
            if time.monotonic() >= retention_due:
                retention_due += RETENTION_EVERY_S
                self._apply_retention()

    def _catch_signals(self) -> None:
        """SIGINT/SIGTERM ask for a stop (from the main thread only; elsewhere the caller stops the app)."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping on signal", extra={"signal": signal.Signals(signum).name})
            self._stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        if self.leases is not None:  # keep renewing while stopping (state is saved below), claim nothing more
            self.leases.freeze()
            held = self.leases.held()
            for camera_id in [c for c in self.pipeline.cameras if c not in held]:
                self._unserve(camera_id)  # lost just now: its state is no longer ours to save
        for patrol in self.patrols.values():  # before the readers: the mirror of the start
            patrol.stop()
        self.patrols.clear()
        for r in self.readers:
            r.stop()
        for r in self.readers:
            r.join(15)
        self.pipeline.stop()
        self.desk.stop()
        if self.role != "worker":
            self.filer.stop()
        self._save_health()
        if self.leases is not None:  # released: the other instances take these cameras at their next round
            self.leases.stop()
            self.leases.leave()
        if self.role != "worker":
            self._server.should_exit = True
            self._api_thread.join(10)
        self.engine.dispose()
        if self.events is not None:  # last: the final health and case changes above still go out
            self.events.stop()
        log.info("gridsight stopped")


def build_filer(
    config: LoadedConfig, sessions: sessionmaker[Session], store: EvidenceStore, cases: CaseService
) -> Filer:
    """The filer for the configured platform (the local register by default)."""
    platform = config.settings.platform
    poll = platform.poll_every_s if isinstance(platform, HttpJsonPlatform) else None
    adapter = make_adapter(platform, sessions)
    return Filer(sessions, adapter, store, cases, config.settings.filing, poll_every_s=poll)


def platform_callbacks(platform: LocalPlatform | HttpJsonPlatform) -> dict[str, Any]:
    if not isinstance(platform, HttpJsonPlatform) or not platform.callback_secret_env:
        return {}
    return {"callback_secret": os.environ.get(platform.callback_secret_env), "status_map": platform.status_map}


class NoCameras(ValueError):
    """The configuration names no camera: a missing or empty folder is an error, never a silent demo."""


def build(
    config_dir: Path,
    role: Literal["all", "supervisor", "worker"] = "all",
    peers: int = 1,
    *,
    demo: bool = False,
    log_format: str | None = None,
) -> GridSight:
    """Loads the configuration (reporting and skipping broken cameras) and sets up logging.

    `demo` adds the embedded demo camera (`gridsight run --demo`); `log_format` overrides the
    settings' (`--log-format`).

    Raises:
        NoCameras: `demo` is off and `config_dir` does not exist or holds no camera.
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir() and not demo:
        raise NoCameras(f"{config_dir}: no such configuration folder (give --config, or --demo for the demo camera)")
    loaded = load_config(config_dir)
    logs.configure(loaded.settings.log_level, log_format or loaded.settings.log_format)
    for err in loaded.errors:
        log.error(
            "config error", extra={"file": err.file, "camera": err.camera, "field": err.field, "error": err.message}
        )
    for w in loaded.warnings:
        extra = {"file": w.file, "camera": w.camera, "field": w.field, "warning": w.message}
        log.warning("config warning", extra=extra)
    if demo:
        loaded.cameras.append(demo_camera())
    if not loaded.cameras and not loaded.errors:
        raise NoCameras(f"{config_dir}: no camera configured (add a camera YAML, or run with --demo)")
    return GridSight(loaded, role=role, peers=peers, config_dir=config_dir, demo=demo)
