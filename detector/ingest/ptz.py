"""ONVIF PTZ control of one camera: its presets, GotoPreset, and whether it is moving.

onvif-zeep-async speaks asyncio; the ingest room runs on threads. `OnvifPtz` is the async
core (discovery drives many at once on one loop); `PtzCamera` is the synchronous handle the
patrol uses: it runs the core on its own event loop in a daemon thread and waits for each
answer, so a slow camera blocks only its own patrol.

Every failure is a `PtzError` that names the camera: unreachable, credentials refused, a
preset the camera does not have.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from detector.config import PtzSettings

T = TypeVar("T")
_PROXY_VARS = ("http_proxy", "https_proxy")


class PtzError(Exception):
    """The camera's PTZ control failed; the message names the camera and is safe to log (no password)."""


class PtzUnreachable(PtzError):
    """Nothing answers ONVIF at the camera's address, or not in time."""


class PtzAuthError(PtzError):
    """The camera refused the user name and password."""


class UnknownPreset(PtzError):
    """The camera has no preset with that token."""


@dataclass(frozen=True, slots=True)
class Position:
    """Pan and tilt in -1..1, zoom in 0..1 (ONVIF's generic position spaces)."""

    pan: float
    tilt: float
    zoom: float = 0.0

    def distance(self, other: Position) -> float:
        return max(abs(self.pan - other.pan), abs(self.tilt - other.tilt), abs(self.zoom - other.zoom))


@dataclass(frozen=True, slots=True)
class Preset:
    token: str
    name: str
    position: Position | None


@dataclass(frozen=True, slots=True)
class PtzStatus:
    moving: bool
    position: Position | None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str


def moved_by_someone_else(home: Position | None, status: PtzStatus, tolerance: float) -> bool:
    """While GridSight commands nothing, a moving motor or a position off `home` is someone else's hand."""
    if status.moving:
        return True
    return home is not None and status.position is not None and home.distance(status.position) > tolerance


def credentials(camera_id: str, username_env: str | None, password_env: str | None) -> tuple[str | None, str | None]:
    """User name and password from the environment variables the config names.

    Raises:
        PtzError: a named variable is not set.
    """
    out: list[str | None] = []
    for var in (username_env, password_env):
        if var is not None and var not in os.environ:
            raise PtzError(f"camera {camera_id}: environment variable {var} (ONVIF credentials) is not set")
        out.append(None if var is None else os.environ[var])
    return out[0], out[1]


def _import_onvif() -> Any:
    """onvif.client calls logging.basicConfig at import; undo it so GridSight's handlers stay the only ones."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import onvif

    root.handlers[:], root.level = handlers, level
    return onvif


def _position(vector: Any) -> Position | None:
    if vector is None or getattr(vector, "PanTilt", None) is None:
        return None
    zoom = getattr(vector, "Zoom", None)
    return Position(float(vector.PanTilt.x), float(vector.PanTilt.y), float(zoom.x) if zoom is not None else 0.0)


class OnvifPtz:
    """The async core: one camera over onvif-zeep-async; errors become `PtzError`s naming `camera_id`."""

    def __init__(
        self, camera_id: str, host: str, port: int, username: str | None, password: str | None,
        profile: str | None = None, timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.camera_id, self.host, self.port = camera_id, host, port
        self._user, self._password = username, password
        self.profile = profile
        self.timeout_s = timeout_s
        self._cam: Any = None
        self._ptz: Any = None
        self._media: Any = None
        self._presets: dict[str, Preset] | None = None

    @property
    def where(self) -> str:
        return f"camera {self.camera_id}: ONVIF at {self.host}:{self.port}"

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        from aiohttp import ClientError
        from zeep.exceptions import Fault, TransportError

        onvif = _import_onvif()
        try:
            return await asyncio.wait_for(call(), self.timeout_s)
        except TimeoutError as e:
            raise PtzUnreachable(f"{self.where} did not answer {what} within {self.timeout_s:g} s") from e
        except (ClientError, OSError) as e:
            raise PtzUnreachable(f"{self.where} unreachable ({what}): {type(e).__name__}: {e}") from e
        except Fault as e:
            subcodes = {getattr(s, "localname", str(s)) for s in e.subcodes or ()}
            if subcodes & {"NotAuthorized", "FailedAuthentication"} or "not authorized" in str(e).lower():
                raise PtzAuthError(f"{self.where} refused the user name and password ({what}): {e}") from e
            if "NoToken" in subcodes:
                raise UnknownPreset(f"{self.where}: {what}: {e}") from e
            raise PtzError(f"{self.where}: {what} failed: {e} ({', '.join(sorted(subcodes)) or 'no subcode'})") from e
        except TransportError as e:
            if e.status_code == 401:
                raise PtzAuthError(f"{self.where} refused the user name and password ({what})") from e
            raise PtzError(f"{self.where}: {what}: HTTP {e.status_code}") from e
        except onvif.ONVIFError as e:
            raise PtzError(f"{self.where}: {what}: {e}") from e

    async def connect(self) -> DeviceInfo:
        """Finds the services and the profile to steer; GetDeviceInformation proves the credentials.

        Raises:
            PtzUnreachable, PtzAuthError, PtzError.
        """
        onvif = _import_onvif()
        await self.close()  # a reconnect after a fault: the old sessions go first
        saved = {k: os.environ[k] for k in _PROXY_VARS if k in os.environ}
        try:  # the constructor pops the proxy variables from the whole process: put them back
            self._cam = onvif.ONVIFCamera(self.host, self.port, self._user, self._password, no_cache=True)
        finally:
            os.environ.update(saved)
        await self._call("GetServices", self._cam.update_xaddrs)
        device = await self._cam.create_devicemgmt_service()
        info = await self._call("GetDeviceInformation", device.GetDeviceInformation)
        self._media = await self._call("media service", self._cam.create_media_service)
        profiles = await self._call("GetProfiles", self._media.GetProfiles)
        tokens = [p.token for p in profiles]
        if self.profile is None:
            with_ptz = [p.token for p in profiles if getattr(p, "PTZConfiguration", None) is not None]
            if not with_ptz:
                raise PtzError(f"{self.where}: no media profile has a PTZ configuration (profiles: {tokens})")
            self.profile = with_ptz[0]
        elif self.profile not in tokens:
            raise PtzError(f"{self.where}: no media profile {self.profile!r} (profiles: {tokens})")
        self._ptz = await self._call("PTZ service", self._cam.create_ptz_service)
        return DeviceInfo(
            str(info.Manufacturer or ""), str(info.Model or ""), str(info.FirmwareVersion or ""),
            str(info.SerialNumber or ""),
        )  # fmt: skip

    def _connected(self) -> None:
        if self._ptz is None:
            raise PtzError(f"{self.where}: not connected")

    async def presets(self) -> list[Preset]:
        self._connected()
        answer = await self._call("GetPresets", lambda: self._ptz.GetPresets({"ProfileToken": self.profile}))
        presets = [Preset(str(p.token), str(p.Name or p.token), _position(p.PTZPosition)) for p in answer or []]
        self._presets = {p.token: p for p in presets}
        return presets

    async def preset(self, token: str) -> Preset:
        """The camera's preset `token` (the list is read again once if it is not known yet).

        Raises:
            UnknownPreset: the camera has no such preset.
        """
        if self._presets is None or token not in self._presets:
            await self.presets()
        assert self._presets is not None
        if token not in self._presets:
            have = ", ".join(self._presets) or "none"
            raise UnknownPreset(f"{self.where}: no preset {token!r} (the camera has: {have})")
        return self._presets[token]

    async def goto(self, token: str) -> Preset:
        """Sends the camera to preset `token`; returns at once (see `status` for the motor)."""
        preset = await self.preset(token)
        req = {"ProfileToken": self.profile, "PresetToken": token}
        await self._call(f"GotoPreset {token}", lambda: self._ptz.GotoPreset(req))
        return preset

    async def status(self) -> PtzStatus:
        self._connected()
        st = await self._call("GetStatus", lambda: self._ptz.GetStatus({"ProfileToken": self.profile}))
        move = getattr(st, "MoveStatus", None)
        states = {str(getattr(move, axis, None) or "IDLE").upper() for axis in ("PanTilt", "Zoom")} if move else set()
        return PtzStatus(moving="MOVING" in states, position=_position(getattr(st, "Position", None)))

    async def stop(self) -> None:
        self._connected()
        await self._call("Stop", lambda: self._ptz.Stop({"ProfileToken": self.profile}))

    async def stream_uri(self) -> str:
        self._connected()
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        req = {"StreamSetup": setup, "ProfileToken": self.profile}
        answer = await self._call("GetStreamUri", lambda: self._media.GetStreamUri(req))
        return str(answer.Uri)

    async def snapshot_uri(self) -> str | None:
        self._connected()
        answer = await self._call("GetSnapshotUri", lambda: self._media.GetSnapshotUri({"ProfileToken": self.profile}))
        return None if answer is None or not answer.Uri else str(answer.Uri)

    async def close(self) -> None:
        if self._cam is not None:
            await self._cam.close()
            self._cam = self._ptz = self._media = None


class PtzCamera:
    """Synchronous PTZ control of one camera (the patrol's): `OnvifPtz` on a private event loop.

    >>> cam = PtzCamera.from_settings("xc-0101", camera.ptz)  # reads the credentials from the environment
    >>> cam.connect(); cam.goto("3"); cam.wait_idle()
    """

    def __init__(self, core: OnvifPtz) -> None:
        self.core = core
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"ptz-{core.camera_id}", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, camera_id: str, settings: PtzSettings) -> PtzCamera:
        """Raises: PtzError: a credential variable is not set."""
        user, password = credentials(camera_id, settings.username_env, settings.password_env)
        return cls(OnvifPtz(camera_id, settings.host, settings.port, user, password, settings.profile,
                            settings.timeout_s))  # fmt: skip

    @property
    def camera_id(self) -> str:
        return self.core.camera_id

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coro.close()
            raise PtzError(f"{self.core.where}: closed")
        # the core's own timeout ends each call; this one only guards against a wedged loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.core.timeout_s * 4 + 30)

    def connect(self) -> DeviceInfo:
        return self._run(self.core.connect())

    def presets(self) -> list[Preset]:
        return self._run(self.core.presets())

    def goto(self, token: str) -> Preset:
        return self._run(self.core.goto(token))

    def status(self) -> PtzStatus:
        return self._run(self.core.status())

    def stop(self) -> None:
        self._run(self.core.stop())

    def stream_uri(self) -> str:
        return self._run(self.core.stream_uri())

    def wait_idle(self, timeout_s: float = 30.0, poll_s: float = 0.2) -> PtzStatus:
        """Polls GetStatus until the motor reports IDLE.

        Raises:
            PtzError: still moving after `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while (status := self.status()).moving:
            if time.monotonic() >= deadline:
                raise PtzError(f"{self.core.where}: still moving after {timeout_s:g} s")
            time.sleep(poll_s)
        return status

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.core.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> PtzCamera:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
