"""Camera and settings configuration: pydantic models and a loader that keeps going.

A configuration directory holds `settings.yaml` (optional) and any number of
camera files (`*.yaml` with a top-level `cameras:` list). Each camera entry is
validated on its own, so one broken camera is reported — file, camera id, field
path — and skipped while the others run. Validation never does I/O beyond
reading the YAML files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from detector.filing.case_flow import check_edges
from detector.filing.workcal import TimeZoneName, WorkCalendar
from detector.ingest import gb28181
from detector.rules.taxonomy import FilingPolicy, Persistence, RuleSpec, Taxonomy, load_taxonomy
from detector.yamlpos import Document, parse

DEFAULT_TZ = "Asia/Shanghai"
SETTINGS_FILE = "settings.yaml"
#: the models shipped with GridSight: the default models_dir wherever the configuration lives
BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "models"
CADENCE_S = (0.5, 3600.0)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- settings


class LocalPlatform(Strict):
    """Stand-alone: cases stay in GridSight with their own numbers and can be exported."""

    type: Literal["local"] = "local"
    case_prefix: str = Field("E", max_length=4, description="Case number = prefix + 大类 + 小类 + yyyyMMdd + seq.")


class HttpJsonPlatform(Strict):
    """The generic HTTP/JSON contract of docs/platform-api.md."""

    type: Literal["http_json"]
    base_url: str = Field(pattern=r"^https?://", description="e.g. https://platform.example/gridsight/v1")
    token_env: str | None = Field(None, description="Environment variable with the bearer token.")
    evidence: Literal["multipart", "links"] = Field("multipart", description="Upload files, or send signed links.")
    public_url: str | None = Field(None, description="GridSight's own base URL, for evidence links.")
    link_secret_env: str | None = Field(None, description="Environment variable with the link-signing secret.")
    link_ttl_hours: float = Field(72, gt=0)
    timeout_s: float = Field(10, gt=0, description="Per-request timeout.")
    field_map: dict[str, str] = Field(default_factory=dict, description="Rename case fields, e.g. sxdm: eventCode.")
    status_map: dict[str, str] = Field(default_factory=dict, description="Platform status names → GridSight's.")
    callback_secret_env: str | None = Field(None, description="Environment variable with the callback HMAC secret.")
    poll_every_s: float = Field(300, gt=0, description="Status polling interval for open cases.")
    verification_path: str = Field(
        "/verifications", pattern=r"^/[A-Za-z0-9_\-/.]*$", description="Where answers to 核实 requests are POSTed, "
        "relative to base_url.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _links_need_url(self) -> HttpJsonPlatform:
        if self.evidence == "links" and not (self.public_url and self.link_secret_env):
            raise ValueError("evidence: links needs public_url and link_secret_env")
        return self


class FilingSettings(Strict):
    retry_min_s: float = Field(2, gt=0, description="First retry delay; doubles per attempt, with jitter.")
    retry_max_s: float = Field(300, gt=0)
    dead_after_hours: float = Field(24, gt=0, description="Undelivered this long → dead letter (manual retry).")
    lease_s: float = Field(
        60, gt=0, description="A claimed message returns to the queue after this long; keep it above one send."
    )
    recurrence_window_hours: float = Field(72, ge=0, description="A problem back within this window is a recurrence.")
    escalate_every_minutes: float = Field(60, gt=0, description="Fresh evidence interval for overdue cases.")
    verify_grace_minutes: float = Field(2, ge=0, description="After 'handled', sightings this early do not count.")
    transitions: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="Status changes a city allows beyond detector/filing/case_flow.yaml: {source: {from: [to, ...]}}.",
    )

    @field_validator("transitions")
    @classmethod
    def _known_statuses(cls, v: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        check_edges(v)
        return v


class MqttSettings(Strict):
    """Publish GridSight's events to an MQTT broker (topics and payloads: docs/mqtt.md)."""

    host: str = Field(min_length=1, description="Broker host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port; unset = 1883, or 8883 with tls.")
    username_env: str | None = Field(None, description="Environment variable holding the broker user name.")
    password_env: str | None = Field(None, description="Environment variable holding the broker password.")
    topic_prefix: str = Field("gridsight", description="First topic level(s) of every message, e.g. city/xc.")
    client_id: str | None = Field(
        None, max_length=64, description="MQTT client id; unset = gridsight-<host name>-<random>. Unique per broker."
    )
    tls: bool = Field(False, description="Connect with TLS, verifying the broker against the system CAs.")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of every message (1: at least once).")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive; a dead link is noticed within ~1.5x.")
    queue_size: int = Field(
        10000, ge=1, le=1_000_000, description="Messages kept while the broker is unreachable; the oldest are dropped."
    )

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, v: str) -> str:
        if not v or v.startswith(("/", "$")) or v.endswith("/") or "//" in v or any(c in v for c in "#+\0"):
            raise ValueError("topic_prefix: non-empty topic levels, no wildcards (+ #), no leading $ or /")
        return v

    @property
    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)


class CameraFilter(Strict):
    """Which cameras an instance may take: a camera matching any id glob *or* any street; both empty = all."""

    ids: list[str] = Field(default_factory=list, description="Camera id globs (fnmatch), e.g. xc-02*.")
    streets: list[str] = Field(default_factory=list, description="Camera location.street values, e.g. 示范街道.")

    def allows(self, camera: Camera) -> bool:
        if not self.ids and not self.streets:
            return True
        return camera.location.street in self.streets or any(fnmatchcase(camera.id, g) for g in self.ids)


class InstanceSettings(Strict):
    """This process among several sharing one database: cameras are assigned by leases (detector/runtime/leases.py)."""

    id: str | None = Field(
        None, min_length=1, max_length=128, description="Name in the lease tables, unique per database; "
        "unset = <host name>-<pid> (a new name at every start).",
    )  # fmt: skip
    leases: bool | None = Field(
        None, description="Camera leases: unset = on with PostgreSQL, off with SQLite (one process serves all)."
    )
    lease_s: float = Field(
        30, ge=3, le=3600, description="A lease not renewed for this long expires: another instance takes the camera."
    )
    renew_s: float | None = Field(None, gt=0, description="Renew (and claim) this often; unset = lease_s / 3.")
    cameras: CameraFilter = Field(default_factory=CameraFilter, description="Cameras this instance may take.")

    @model_validator(mode="after")
    def _renew_in_time(self) -> InstanceSettings:
        if self.renew_s is not None and self.renew_s > self.lease_s / 2:
            raise ValueError(f"renew_s ({self.renew_s}) must be at most lease_s / 2 ({self.lease_s / 2})")
        return self

    @property
    def renew_every_s(self) -> float:
        return self.renew_s if self.renew_s is not None else self.lease_s / 3

    def leases_on(self, database_url: str) -> bool:
        return self.leases if self.leases is not None else database_url.startswith("postgresql")


class Settings(Strict):
    """Deployment-wide settings (`settings.yaml`).

    Relative paths (and a relative SQLite file) are relative to the configuration folder, not the
    working directory, so every command given the same `--config` finds the same database.
    """

    database_url: str = Field(
        "sqlite:///var/gridsight.db",
        description="SQLAlchemy URL; SQLite (WAL) by default, postgresql+psycopg://... in production.",
    )
    evidence_root: Path = Field(Path("var/evidence"), description="Where evidence files are written.")
    retention_days: float = Field(
        90, gt=0, description="Evidence of incidents cleared longer ago than this is deleted."
    )
    cache_dir: Path = Field(Path("var/cache"), description="Generated demo videos and other caches.")
    models_dir: Path = Field(
        BUNDLED_MODELS, description="Folder of model folders (model.onnx + manifest.yaml); default: the bundled ones."
    )
    taxonomy: Path | None = Field(
        None, description="Taxonomy YAML replacing the bundled one (e.g. local legacy codes)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field("json", description="json: one structured line per event.")
    api_host: str = Field("127.0.0.1", description="Address the HTTP API binds.")
    api_port: int = Field(8080, ge=0, le=65535, description="0 picks a free port.")
    api_cookie_secure: bool = Field(False, description="Send the console's session cookie over HTTPS only.")
    inference_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads.")
    worker_max_rss_mb: float | None = Field(
        None, gt=0, description="`gridsight run --workers N`: a worker above this resident memory is restarted."
    )
    platform: Annotated[LocalPlatform | HttpJsonPlatform, Field(discriminator="type")] = LocalPlatform()
    filing: FilingSettings = FilingSettings()
    calendar: WorkCalendar = Field(default_factory=WorkCalendar, description="Working hours and holidays (时限).")
    mqtt: MqttSettings | None = Field(None, description="Publish events to an MQTT broker; unset = off.")
    instance: InstanceSettings = Field(
        default_factory=InstanceSettings, description="Several instances on one database: id, leases, camera filter."
    )
    verification_timeout_s: float = Field(
        120, ge=5, le=3600, description="核实 on request: a camera with no analysed frame this long (or two cadences, "
        "if longer) answers cannot_see.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _claim_outlasts_a_send(self) -> Settings:
        # A filer's claim on a message must outlast one send, or another filer sends it again.
        timeout = getattr(self.platform, "timeout_s", None)
        if timeout is not None and self.filing.lease_s <= timeout:
            raise ValueError(
                f"filing.lease_s: {self.filing.lease_s:g} s must be above platform.timeout_s ({timeout:g} s): "
                "a send that outlasts its claim may be sent again by another filer"
            )
        return self


# ---------------------------------------------------------------- cameras


class ZonePurpose(StrEnum):
    NO_VENDING = "no_vending"
    SHOP_FRONT = "shop_front"
    WALL = "wall"
    POLE = "pole"
    CONSTRUCTION_SITE = "construction_site"
    ROAD = "road"
    SIDEWALK = "sidewalk"
    GARBAGE_POINT = "garbage_point"
    NO_PARKING = "no_parking"
    IGNORE = "ignore"


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class Zone(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,40}$", description="Unique per camera; part of the case key.")
    display_name: str | None = Field(
        None, min_length=1, max_length=40, description="What people call it, e.g. 东门口 (captions, the console)."
    )
    purpose: ZonePurpose = Field(description="What the zone is for; rules select zones by purpose.")
    polygon: list[Point] = Field(min_length=3, description="Normalised (x, y) vertices, 0..1.")


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(_DAYS), description="Days on which the window *starts*."
    )
    start: time = Field(description="HH:MM local time.")
    end: time = Field(description="HH:MM; earlier than start means the window crosses midnight.")


class Schedule(Strict):
    windows: list[TimeWindow] = Field(min_length=1)
    timezone: TimeZoneName = Field(DEFAULT_TZ, description="IANA zone of the windows.")

    def active(self, ts: datetime) -> bool:
        """True when `ts` (aware) falls inside any window."""
        local = ts.astimezone(ZoneInfo(self.timezone))
        t = local.time()
        for w in self.windows:
            if w.start <= w.end:
                if _DAYS[local.weekday()] in w.days and w.start <= t < w.end:
                    return True
            else:  # crosses midnight: the early part belongs to the previous day's window
                if _DAYS[local.weekday()] in w.days and t >= w.start:
                    return True
                if _DAYS[(local - timedelta(days=1)).weekday()] in w.days and t < w.end:
                    return True
        return False


class Location(Strict):
    address: str = Field("", max_length=256, description="事发位置 text.")
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    crs: str = Field("EPSG:4490", pattern=r"^EPSG:\d{4,5}$", description="CGCS2000 by default; WGS84 is EPSG:4326.")
    division_code: str = Field("000000", pattern=r"^\d{6}$", description="6-digit GB/T 2260 行政区划 code.")
    street: str = Field("", description="街道 (also the co-dispatch target).")
    community: str = Field("", description="社区.")
    grid_code: str | None = Field(None, pattern=r"^[0-9A-Z]{15}$", description="15-char 单元网格标识码.")
    area_class: str = Field("一般区", description="Area class for time limits, e.g. 核心区, 一般区.")


LonLat = tuple[Annotated[float, Field(ge=-180, le=180)], Annotated[float, Field(ge=-90, le=90)]]


class View(Strict):
    """What ground the camera sees (in location.crs), for 核实 on request: a polygon, or a radius around location."""

    polygon: list[LonLat] | None = Field(None, min_length=3, description="[[lon, lat], ...] of the area in view.")
    radius_m: float | None = Field(None, gt=0, le=5000, description="Metres around location.lon/lat in view.")

    @model_validator(mode="after")
    def _one(self) -> View:
        if (self.polygon is None) == (self.radius_m is None):
            raise ValueError("view: give either polygon or radius_m")
        return self


class Source(Strict):
    """Where frames come from. The URL scheme decides the reader."""

    url: str = Field(
        description="rtsp://, http(s):// stream, file path or file://, a snapshot image URL, or demo://street."
    )
    snapshot: bool = Field(False, description="Poll the URL as a still image at the cadence.")
    username_env: str | None = Field(None, description="Environment variable holding the user name.")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    loop: bool = Field(True, description="File sources: start again at the end.")
    speed: float | None = Field(
        None,
        gt=0,
        description="File sources: pace at this multiple of real time (1 = like a live camera); "
        "unset = as fast as analysis allows.",
    )
    start_time: datetime | None = Field(
        None, description="File sources: pipeline time of PTS 0 (default: 2026-01-05 09:00 Asia/Shanghai)."
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")

    @field_validator("url")
    @classmethod
    def _no_inline_password(cls, v: str) -> str:
        if re.match(r"^[a-z]+://[^/@]*:[^/@]*@", v):
            raise ValueError("put credentials in username_env/password_env, not in the URL")
        return v

    @field_validator("start_time")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=ZoneInfo(DEFAULT_TZ))
        return v


class RuleOverride(Strict):
    """Per-camera changes to a problem type's default rule; unset fields keep the default."""

    zones: list[str] | None = Field(None, description="Zone purposes or zone names where the problem counts.")
    anchor: Literal["bottom_center", "overlap"] | None = None
    min_overlap: float | None = Field(None, gt=0, le=1)
    min_score: float | None = Field(None, ge=0, le=1)
    min_area: float | None = Field(None, ge=0, le=1)
    max_area: float | None = Field(None, gt=0, le=1)
    schedule: str | None = Field(None, description="Name of one of the camera's schedules.")
    persistence: Persistence | None = None
    clear_minutes: float | None = Field(None, gt=0)


class Gate(Strict):
    enabled: bool = True
    threshold: float = Field(2.0, ge=0, description="Mean abs grey difference (0-255) that counts as a change.")
    max_skip_minutes: float = Field(2.0, gt=0, description="Re-analyse at least this often.")


class Evidence(Strict):
    pre_s: float = Field(5.0, ge=0, le=60, description="Clip seconds before the opening frame.")
    post_s: float = Field(5.0, ge=0, le=60, description="Clip seconds after it.")


class OccupancySettings(Strict):
    enabled: bool | None = Field(None, description="None: on when a watched problem needs it.")
    width: int = Field(320, ge=64, le=1920, description="Analysis width in pixels.")
    min_area: float = Field(0.002, gt=0, lt=1)


class DetectorSettings(Strict):
    enabled: bool | None = Field(None, description="None: on when a watched problem needs it.")
    model: str = Field("gridsight-detector", description="Folder name under models_dir.")


class Analyzers(Strict):
    occupancy: OccupancySettings = OccupancySettings()
    detector: DetectorSettings = DetectorSettings()
    objects: DetectorSettings = Field(
        DetectorSettings(model="coco-objects"),
        description=(
            "People and vehicles (COCO classes): detector:<class> outputs that `detector` does not know,"
            " and the person cue of vending (a vendor is a person beside new stationary goods)."
        ),
    )


def _preset_text(v: Any, field: str = "ptz_preset") -> Any:
    # Presets are numbered on the cameras, so `ptz_preset: 3` is what people write and mean "3".
    # Other numbers are refused: YAML has already turned 1.10 into 1.1 and a bool is never a preset.
    if isinstance(v, bool | float):
        raise ValueError(f'YAML read this as {v!r}, not a preset name: quote it, e.g. {field}: "{v}"')
    return str(v) if isinstance(v, int) else v


DWELL_S = (1.0, 3600.0)


class PtzSettings(Strict):
    """ONVIF control of a PTZ camera, for its patrol (轮巡) over presets (detector/ingest/patrol.py)."""

    host: str = Field(min_length=1, description="The camera's address for ONVIF (its device service), not the stream.")
    port: int = Field(80, ge=1, le=65535, description="ONVIF HTTP port; 80, 8000, 8080 and 8899 are common.")
    username_env: str | None = Field(None, description="Environment variable holding the ONVIF user name.")
    password_env: str | None = Field(None, description="Environment variable holding the ONVIF password.")
    profile: str | None = Field(None, description="Media profile token to steer; unset = the first with PTZ.")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds to wait for each ONVIF answer.")
    move_timeout_s: float = Field(30.0, gt=0, le=300, description="A preset not reached in this long is an error.")
    settle_s: float = Field(
        2.0, ge=0, le=60, description="Seconds after the motor stops before frames may count as settled "
        "(focus, exposure and the stream's delay).",
    )  # fmt: skip
    settle_threshold: float = Field(
        8.0, gt=0, le=255, description="Mean absolute grey difference (0-255) between frames below which "
        "the picture counts as still.",
    )  # fmt: skip
    settle_frames: int = Field(2, ge=1, le=20, description="Still frame differences in a row that settle the view.")
    settle_timeout_s: float = Field(
        20.0, gt=0, le=600, description="A view still changing after this long (rain, a busy road) counts as settled."
    )
    poll_s: float = Field(1.0, ge=0.05, le=60, description="GetStatus interval while dwelling (notices manual moves).")
    position_tolerance: float = Field(
        0.02, gt=0, le=1, description="Pan/tilt/zoom drift (generic space, -1..1) that counts as a move."
    )
    manual_quiet_s: float = Field(
        300.0, ge=1, le=86400, description="After a move GridSight did not make (an operator took the camera), "
        "the patrol resumes once the camera has been still this long.",
    )  # fmt: skip


class PatrolStop(Strict):
    """One preset of a patrol; zones, problems and rules given here replace the camera's at this preset."""

    preset: str = Field(min_length=1, max_length=64, description="Preset token on the camera; part of the case key.")
    dwell_s: float = Field(60.0, description="Seconds of settled picture at this preset, 1 to 3600.")
    zones: list[Zone] | None = Field(None, description="This view's zones; unset = the camera's.")
    problems: list[str] | None = Field(None, min_length=1, description="Problems watched here; unset = the camera's.")
    rules: dict[str, RuleOverride] | None = Field(
        None, description="Rule overrides here, by problem code, on top of the camera's."
    )
    view: View | None = Field(
        None, description="Ground in view from this preset, for 核实 requests by coordinates (a polygon, or radius_m "
        "around the camera's location); unset = the camera's view.",
    )  # fmt: skip

    @field_validator("preset", mode="before")
    @classmethod
    def _preset(cls, v: Any) -> Any:
        return _preset_text(v, "preset")

    @field_validator("dwell_s")
    @classmethod
    def _dwell(cls, v: float) -> float:
        low, high = DWELL_S
        if not low <= v <= high:  # NaN too
            raise ValueError(f"dwell_s is the seconds the camera stays at the preset: {low:g} to {high:g}, got {v:g}")
        return v


class Camera(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="Stable id; part of every case key.")
    name: str = Field(min_length=1, max_length=100)
    source: Source = Field(description="Detect stream (low resolution is fine).")
    record: Source | None = Field(None, description="Main stream for evidence clips (default: the detect stream).")
    location: Location = Location()
    ptz_preset: str | None = Field(
        None, max_length=64, description="Preset this view belongs to (text; a whole number is taken as its digits); "
        "part of the case key.",
    )  # fmt: skip
    cadence_s: float = Field(10.0, description="Seconds of video time between analyses, 0.5 to 3600.")
    zones: list[Zone] = Field(default_factory=list)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    problems: list[str] = Field(min_length=1, description="GB/T 47678.5 codes of the problems watched.")
    rules: dict[str, RuleOverride] = Field(default_factory=dict, description="Overrides keyed by problem code.")
    filing: dict[str, FilingPolicy] = Field(default_factory=dict, description="Filing policy overrides by code.")
    urgency: str = Field("一般", description="Urgency of this camera's cases: 紧急, 重大, 一般.")
    analyzers: Analyzers = Analyzers()
    gate: Gate = Gate()
    evidence: Evidence = Evidence()
    enabled: bool = True
    ptz: PtzSettings | None = Field(None, description="ONVIF control of a PTZ camera; needed by patrol.")
    view: View | None = Field(None, description="Ground in view, for 核实 requests by coordinates; unset = none.")
    patrol: list[PatrolStop] = Field(
        default_factory=list, description="Presets visited in turn (轮巡); empty = the camera stays where it is."
    )

    @field_validator("id")
    @classmethod
    def _channel_id(cls, v: str) -> str:
        if problem := gb28181.channel_problem(v):  # a 20-digit id is a GB/T 28181 channel's
            raise ValueError(problem)
        return v

    @field_validator("ptz_preset", mode="before")
    @classmethod
    def _preset_text(cls, v: Any) -> Any:
        return _preset_text(v)

    @field_validator("cadence_s")
    @classmethod
    def _cadence(cls, v: float) -> float:
        low, high = CADENCE_S
        if not low <= v <= high:  # NaN too
            raise ValueError(
                f"cadence_s is the seconds of video time between analyses: from {low:g} (twice a second) "
                f"to {high:g} (once an hour), got {v:g}"
            )
        return v

    @model_validator(mode="after")
    def _references(self) -> Camera:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"zone names must be unique, got {names}")
        for code in self.filing:
            if code not in self.problems:
                raise ValueError(f"filing.{code}: problem {code} is not in problems")
        for code, rule in self.rules.items():
            if code not in self.problems:
                raise ValueError(f"rules.{code}: problem {code} is not in problems")
            if rule.schedule and rule.schedule not in self.schedules:
                raise ValueError(f"rules.{code}.schedule: no schedule named {rule.schedule!r}")
        self._check_patrol()
        if self.view and self.view.radius_m and (self.location.lon is None or self.location.lat is None):
            raise ValueError("view.radius_m: needs location.lon and location.lat (the centre of the circle)")
        return self

    def _check_patrol(self) -> None:
        if not self.patrol:
            return
        if self.ptz is None:
            raise ValueError("patrol: needs a ptz block (the camera's ONVIF host and port) to steer the camera")
        if self.ptz_preset is not None:
            raise ValueError("ptz_preset: a patrolling camera takes each stop's preset; remove ptz_preset")
        first: dict[str, int] = {}
        for m, stop in enumerate(self.patrol):
            at = f"patrol.{m}"
            if stop.preset in first:
                raise ValueError(f"{at}.preset: preset {stop.preset!r} is already stop {first[stop.preset]}")
            first[stop.preset] = m
            if stop.dwell_s < self.cadence_s:
                raise ValueError(
                    f"{at}.dwell_s: {stop.dwell_s:g} s is less than cadence_s ({self.cadence_s:g} s): "
                    f"no frame would be analysed at preset {stop.preset!r}"
                )
            names = [z.name for z in stop.zones or ()]
            if len(set(names)) != len(names):
                raise ValueError(f"{at}.zones: zone names must be unique, got {names}")
            if stop.view and stop.view.radius_m and (self.location.lon is None or self.location.lat is None):
                raise ValueError(f"{at}.view.radius_m: needs location.lon and location.lat (the centre of the circle)")
            problems = stop.problems or self.problems
            for code, rule in (stop.rules or {}).items():
                if code not in problems:
                    raise ValueError(f"{at}.rules.{code}: problem {code} is not watched at this preset")
                if rule.schedule and rule.schedule not in self.schedules:
                    raise ValueError(f"{at}.rules.{code}.schedule: no schedule named {rule.schedule!r}")

    def at_stop(self, stop: PatrolStop) -> Camera:
        """This camera as seen from one patrol stop: `ptz_preset` set (so its cases are keyed by preset), and
        the stop's zones, problems and rules in place of the camera's. The runtime keeps per-preset state
        (background, gate, persistence, incidents) under it."""
        problems = stop.problems or self.problems
        rules = {c: r for c, r in self.rules.items() if c in problems}
        for code, rule in (stop.rules or {}).items():  # field by field over the camera's override
            base = rules[code].model_dump(exclude_none=True) if code in rules else {}
            rules[code] = RuleOverride.model_validate({**base, **rule.model_dump(exclude_none=True)})
        return self.model_copy(
            update={
                "ptz_preset": stop.preset,
                "zones": self.zones if stop.zones is None else stop.zones,
                "problems": problems,
                "rules": rules,
                "filing": {c: f for c, f in self.filing.items() if c in problems},
                "patrol": [],
            }
        )


# ---------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    camera: str | None  # id, or "#<index>" when the id itself is missing
    field: str
    message: str
    line: int | None = None  # 1-based, where the field (or the mapping lacking it) is written
    column: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}:{self.column}" if self.line is not None else "")
        return f"{where}:{f' camera {self.camera}:' if self.camera else ''} {self.field}: {self.message}"


@dataclass
class LoadedConfig:
    settings: Settings
    taxonomy: Taxonomy
    cameras: list[Camera]
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)  # valid, but worth saying


@dataclass(frozen=True, slots=True)
class _File:
    """One YAML file being checked: errors made here carry its name and the position of the field."""

    path: Path
    doc: Document

    def error(self, camera: str | None, loc: tuple[Any, ...], message: str, key: bool = False) -> ConfigError:
        pos = self.doc.position(loc, key=key)
        return ConfigError(
            str(self.path), camera, _loc(loc), message, pos.line if pos else None, pos.column if pos else None
        )

    def pydantic(self, e: ValidationError, camera: str | None, prefix: tuple[Any, ...] = ()) -> list[ConfigError]:
        out = []
        for err in e.errors(include_url=False):
            loc, msg = prefix + tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
            # a model-level check names its field first ("rules.09006.schedule: ..."): point there
            named = re.match(r"([\w\-]+(?:\.[\w\-]+)*): ", msg)
            if named and not err["loc"] and self.doc.has(inner := loc + _path_parts(named[1])):
                loc = inner
            out.append(self.error(camera, loc, msg, key=err["type"] == "extra_forbidden"))
        return out


def _path_parts(path: str) -> tuple[str | int, ...]:
    """patrol.0.dwell_s as a location: list indexes as numbers (a mapping finds 0 as "0"; "09006" stays text)."""
    return tuple(int(p) if p.isdigit() and str(int(p)) == p else p for p in path.split("."))


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"


def _read_yaml(path: Path, errors: list[ConfigError]) -> _File | None:
    try:
        return _File(path, parse(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as e:
        errors.append(ConfigError(str(path), None, "(file)", str(e)))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        errors.append(ConfigError(str(path), None, "(file)", str(e).replace("\n", " "), line, col))
    return None


def resolve_rule(taxonomy: Taxonomy, camera: Camera, code: str) -> RuleSpec:
    """The camera's effective rule for one problem: taxonomy default + override."""
    base = taxonomy[code].rule
    override = camera.rules.get(code)
    if override is None:
        return base
    return RuleSpec.model_validate({**base.model_dump(), **override.model_dump(exclude_none=True)})


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _sqlite_under(base: Path, url: str) -> str:
    from sqlalchemy.engine import make_url  # parses only: no driver, no connection

    parsed = make_url(url)
    db = parsed.database
    if not parsed.drivername.startswith("sqlite") or not db or db == ":memory:" or db.startswith("file:"):
        return url
    return parsed.set(database=str(_under(base, Path(db)))).render_as_string(hide_password=False)


def _settings_under(base: Path, s: Settings) -> Settings:
    """Relative paths of the settings made absolute against the folder of the file that names them."""
    return s.model_copy(
        update={
            "database_url": _sqlite_under(base, s.database_url),
            "evidence_root": _under(base, s.evidence_root),
            "cache_dir": _under(base, s.cache_dir),
            "models_dir": _under(base, s.models_dir),
            "taxonomy": None if s.taxonomy is None else _under(base, s.taxonomy),
        }
    )


def _source_under(base: Path, src: Source) -> Source:
    url = src.url
    if url.startswith("file://") and not url.startswith("file:///"):
        url = "file://" + str(_under(base, Path(url.removeprefix("file://"))))
    elif "://" not in url:
        url = str(_under(base, Path(url)))
    return src.model_copy(update={"url": url})


def _camera_under(base: Path, cam: Camera) -> Camera:
    record = None if cam.record is None else _source_under(base, cam.record)
    return cam.model_copy(update={"source": _source_under(base, cam.source), "record": record})


def _load_settings(doc: _File, errors: list[ConfigError]) -> Settings:
    raw = doc.doc.data
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        errors.append(doc.error(None, (), "must be a mapping of setting: value"))
        return Settings()
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        errors += doc.pydantic(e, None)
        # keep the settings that are right (a custom taxonomy, say), so the cameras are checked against them
        bad = {err["loc"][0] for err in e.errors() if err["loc"]}
        try:
            return Settings.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            return Settings()


def load_config(config_dir: Path, settings_file: Path | None = None, only: Path | None = None) -> LoadedConfig:
    """Loads everything it can; problems go to `errors` instead of raising.

    Every error of every file comes in one pass, each with its file, line and column. Relative
    paths resolve against the folder of the YAML file that holds them (see `Settings`).
    `only`: check just this camera file (with the directory's settings).
    A missing directory or one without cameras is not an error: the caller
    decides (`gridsight run` refuses it unless --demo).
    """
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    settings = Settings()
    settings_path = settings_file or config_dir / SETTINGS_FILE
    settings_doc = _read_yaml(settings_path, errors) if settings_path.is_file() else None
    if settings_doc is not None:
        settings = _load_settings(settings_doc, errors)
    settings = _settings_under(settings_path.parent.absolute(), settings)

    try:
        taxonomy = load_taxonomy(settings.taxonomy)
    except ValueError as e:
        if settings_doc is not None:
            errors.append(settings_doc.error(None, ("taxonomy",), str(e)))
        else:
            errors.append(ConfigError(str(settings.taxonomy), None, "taxonomy", str(e)))
        taxonomy = load_taxonomy(None)

    cameras: list[Camera] = []
    seen: dict[str, str] = {}
    files = sorted(config_dir.glob("*.y*ml")) if only is None else [only]
    files = [p for p in files if p.absolute() != settings_path.absolute()]
    for path in files:
        doc = _read_yaml(path, errors)
        if doc is None:
            continue
        raw = doc.doc.data
        entries = raw.get("cameras") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            errors.append(doc.error(None, ("cameras",), "expected a list of cameras"))
            continue
        base = path.parent.absolute()
        for i, entry in enumerate(entries):
            cam = _load_camera(doc, i, entry, taxonomy, seen, errors, warnings)
            if cam is not None:
                cameras.append(_camera_under(base, cam))
    return LoadedConfig(settings=settings, taxonomy=taxonomy, cameras=cameras, errors=errors, warnings=warnings)


def _load_camera(
    doc: _File, i: int, entry: Any, taxonomy: Taxonomy, seen: dict[str, str], errors: list[ConfigError],
    warnings: list[ConfigError],
) -> Camera | None:  # fmt: skip
    """One camera entry, or None; every check runs, so one pass reports all that is wrong with it."""
    raw = entry if isinstance(entry, dict) else {}
    label = str(raw["id"]) if raw.get("id") else f"#{i}"
    at = ("cameras", i)
    before = len(errors)
    try:
        cam: Camera | None = Camera.model_validate(entry)
    except ValidationError as e:
        errors += doc.pydantic(e, label, at)
        cam = None
    problems = cam.problems if cam else raw.get("problems")
    stops = raw.get("patrol") if isinstance(raw.get("patrol"), list) else []
    for where, codes in [(("problems",), problems)] + [
        (("patrol", m, "problems"), stop.get("problems")) for m, stop in enumerate(stops) if isinstance(stop, dict)
    ]:
        bad = [c for c in codes if isinstance(c, str) and c not in taxonomy] if isinstance(codes, list) else []
        if bad:
            errors.append(doc.error(label, (*at, *where), f"unknown problem codes {bad}"))
    cam_id = cam.id if cam else raw.get("id")
    if isinstance(cam_id, str) and cam_id:
        if cam_id in seen:
            errors.append(doc.error(label, (*at, "id"), f"duplicate id, also in {seen[cam_id]}"))
        else:
            seen[cam_id] = str(doc.path)
    if cam is None or len(errors) > before:
        return None
    if problem := _unlocated(cam, taxonomy):
        (errors if problem[0] else warnings).append(doc.error(label, (*at, "location"), problem[1]))
        if problem[0]:
            return None
    return cam


def _unlocated(cam: Camera, taxonomy: Taxonomy) -> tuple[bool, str] | None:
    """(is it an error, why) for a camera whose cases would carry no place: the platform routes
    a case by its division code (the first six digits of 事项代码) and its 单元网格 code."""
    missing = [f for f, unset in (("division_code", cam.location.division_code == "000000"),
                                  ("grid_code", cam.location.grid_code is None)) if unset]  # fmt: skip
    if not missing:
        return None
    need = " and ".join(f"location.{f}" for f in missing)
    auto = [c for c in cam.problems if (cam.filing.get(c) or taxonomy[c].filing).mode == "auto"]
    if auto:
        return True, (
            f"files cases without an operator ({', '.join(auto)}) but has no {need}: the cases would carry "
            f"事项代码 000000{auto[0]} and no grid; add them, or set filing: {{{auto[0]}: {{mode: review}}}}"
        )
    return False, f"no {need}: review only — an operator must confirm each case, which then carries no grid code"
