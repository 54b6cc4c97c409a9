"""An ONVIF PTZ camera on 127.0.0.1: SOAP 1.2 over HTTP, as a dome camera answers it.

Device service (GetSystemDateAndTime, GetServices, GetCapabilities, GetDeviceInformation),
media (GetProfiles, GetStreamUri, GetSnapshotUri) and PTZ (GetPresets, GotoPreset, GetStatus,
Stop, ContinuousMove, AbsoluteMove). Every call but the pre-auth ones of the ONVIF core spec
needs a WS-Security UsernameToken whose digest matches the password; otherwise it answers
the fault a camera sends (env:Sender / ter:NotAuthorized, HTTP 400).

The motor is a timeline of moves: GotoPreset takes `move_s` and reports MOVING until then;
ContinuousMove turns at its velocity until Stop or its Timeout; AbsoluteMove is a timed move
off every preset. The picture (a `PresetGateway` channel, the URI of GetStreamUri and
GetSnapshotUri) is that of the preset the camera is at, a pan between views while it turns,
and lags the motor by `picture_lag_s` as an encoder and network do: IDLE comes before the
picture stops moving.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from tests.support import ptz_views
from tests.support.ptz_views import FPS, Image, PresetGateway

ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS = {
    "env": ENV,
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
}
PRE_AUTH = {"GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetServiceCapabilities", "GetWsdlUrl"}
PROFILE = "prof_main"
CHANNEL = "34020000001320000008"  # the camera's channel on the gateway
PAN_SPACE = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ZOOM_SPACE = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"


@dataclass(frozen=True, slots=True)
class Pos:
    pan: float
    tilt: float = 0.0
    zoom: float = 0.0

    def toward(self, other: Pos, f: float) -> Pos:
        return Pos(*(a + (b - a) * f for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[float, float, float]:
        return (self.pan, self.tilt, self.zoom)


@dataclass(frozen=True, slots=True)
class _Move:
    """One motion of the motor: timed toward `end`, or continuous at `velocity` until t1."""

    t0: float
    t1: float
    start: Pos
    anchor: str  # the preset whose picture the camera turned away from
    end: Pos | None = None
    velocity: Pos | None = None
    preset: str | None = None  # GotoPreset's target: the camera is there once t1 has passed

    def position(self, t: float) -> Pos:
        if self.velocity is not None:
            dt = min(max(t, self.t0), self.t1) - self.t0
            v = self.velocity
            clip = lambda x, lo: min(max(x, lo), 1.0)  # noqa: E731
            return Pos(clip(self.start.pan + v.pan * dt, -1), clip(self.start.tilt + v.tilt * dt, -1),
                       clip(self.start.zoom + v.zoom * dt, 0))  # fmt: skip
        assert self.end is not None
        if t >= self.t1:
            return self.end
        return self.start.toward(self.end, max(0.0, (t - self.t0) / (self.t1 - self.t0)))


class SoapFault(Exception):
    def __init__(self, code: str, subcode: str, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.status = code, subcode, reason, status


class OnvifSimulator:
    """One PTZ camera: `views` maps each preset token (in order) to the video of its view."""

    def __init__(
        self, views: dict[str, Path], work: Path, username: str = "admin", password: str = "Grid-2026",
        move_s: float = 0.5, picture_lag_s: float = 0.0, serial: str = "GS-SIM-0008",
    ) -> None:  # fmt: skip
        self.username, self.password = username, password
        self.move_s, self.picture_lag_s = move_s, picture_lag_s
        self.device = {"Manufacturer": "GridSim", "Model": "PTZ-Dome 8", "FirmwareVersion": "V5.7.3",
                       "SerialNumber": serial, "HardwareId": "sim-1"}  # fmt: skip
        self.frames = {token: ptz_views.decode(path) for token, path in views.items()}
        self.positions = {token: Pos(round(-0.7 + 0.2 * i, 3), 0.1 * (i % 2)) for i, token in enumerate(views)}
        first = next(iter(views))
        self._moves = [_Move(-math.inf, -math.inf, self.positions[first], first, end=self.positions[first],
                             preset=first)]  # fmt: skip
        self._lock = threading.Lock()
        self.calls: list[str] = []  # operation names, in order
        self.auth_failures = 0
        self.gateway = PresetGateway(CHANNEL, self.picture, work / "gateway")
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> OnvifSimulator:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = sim.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.gateway.start()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.gateway.stop()

    def __enter__(self) -> OnvifSimulator:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ the motor and the picture

    def _now(self, t: float | None = None) -> _Move:
        t = time.monotonic() if t is None else t
        with self._lock:
            return next(m for m in reversed(self._moves) if m.t0 <= t)

    def _begin(self, now: float, **move: object) -> None:
        with self._lock:
            last = next(m for m in reversed(self._moves) if m.t0 <= now)
            anchor = last.preset if last.preset is not None and now >= last.t1 else last.anchor
            if now < last.t1:  # a new command cuts the running move short where it is
                self._moves[-1] = replace(last, t1=now, end=last.position(now), velocity=None, preset=None)
            self._moves.append(_Move(t0=now, start=last.position(now), anchor=anchor, **move))  # type: ignore[arg-type]
            del self._moves[:-50]

    @property
    def preset(self) -> str | None:
        """The preset the motor is at now (None while it turns or after a manual move)."""
        t = time.monotonic()
        m = self._now(t)
        return m.preset if t >= m.t1 else None

    @property
    def moving(self) -> bool:
        return time.monotonic() < self._now().t1

    def picture(self) -> Image:
        """What the stream shows now: the motor's state `picture_lag_s` ago."""
        t = time.monotonic() - self.picture_lag_s
        m = self._now(t)
        src = self._frame(m.anchor, t)
        if m.preset is not None:
            dst = self._frame(m.preset, t)
            return dst if t >= m.t1 else ptz_views.pan(src, dst, (t - m.t0) / (m.t1 - m.t0))
        return ptz_views.shifted(src, 1.5 * (m.position(t).pan - self.positions[m.anchor].pan))

    def _frame(self, token: str, t: float) -> Image:
        frames = self.frames[token]
        return frames[int(t * FPS) % len(frames)]

    # ------------------------------------------------------------ SOAP

    def answer(self, body: bytes) -> tuple[int, bytes]:
        try:
            env = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
            request = next(iter(env.find(f"{{{ENV}}}Body")))
            op = etree.QName(request).localname
            self.calls.append(op)
            if op not in PRE_AUTH and not self._authorised(env.find(f"{{{ENV}}}Header")):
                self.auth_failures += 1
                raise SoapFault("env:Sender", "ter:NotAuthorized", "Sender not Authorized")
            handler = getattr(self, f"_op_{op}", None)
            if handler is None:
                raise SoapFault("env:Receiver", "ter:ActionNotSupported", f"{op} is not supported", 500)
            return 200, _envelope(handler(request))
        except SoapFault as f:
            return f.status, _envelope(_fault(f))
        except (etree.XMLSyntaxError, StopIteration, TypeError):
            return 400, _envelope(_fault(SoapFault("env:Sender", "ter:WellFormed", "not a SOAP request")))

    def _authorised(self, header: etree._Element | None) -> bool:
        token = None if header is None else header.find(f".//{{{WSSE}}}UsernameToken")
        if token is None or token.findtext(f"{{{WSSE}}}Username") != self.username:
            return False
        password = token.find(f"{{{WSSE}}}Password")
        given = (password.text or "") if password is not None else ""
        if password is not None and password.get("Type", "").endswith("#PasswordDigest"):
            # the UsernameToken profile: Base64(SHA-1(nonce + created + password))
            nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
            created = token.findtext(f"{{{WSU}}}Created") or ""
            digest = hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()
            return hmac.compare_digest(base64.b64encode(digest).decode(), given)
        return hmac.compare_digest(given, self.password)

    # device service

    def _op_GetSystemDateAndTime(self, _req: etree._Element) -> str:
        n = datetime.now(UTC)
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{n.hour}</tt:Hour><tt:Minute>{n.minute}</tt:Minute>"
            f"<tt:Second>{n.second}</tt:Second></tt:Time><tt:Date><tt:Year>{n.year}</tt:Year>"
            f"<tt:Month>{n.month}</tt:Month><tt:Day>{n.day}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _xaddr(self, service: str) -> str:
        return f"{self.base}/onvif/{service}_service"

    def _op_GetServices(self, _req: etree._Element) -> str:
        services = [("device", NS["tds"], 2, 60), ("media", NS["trt"], 2, 60), ("ptz", NS["tptz"], 2, 60)]
        items = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{self._xaddr(name)}</tds:XAddr>"
            f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
            for name, ns, major, minor in services
        )
        return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"

    def _op_GetCapabilities(self, _req: etree._Element) -> str:
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self._xaddr('device')}</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self._xaddr('media')}</tt:XAddr></tt:Media>"
            f"<tt:PTZ><tt:XAddr>{self._xaddr('ptz')}</tt:XAddr></tt:PTZ>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _op_GetDeviceInformation(self, _req: etree._Element) -> str:
        fields = "".join(f"<tds:{k}>{escape(v)}</tds:{k}>" for k, v in self.device.items())
        return f"<tds:GetDeviceInformationResponse>{fields}</tds:GetDeviceInformationResponse>"

    # media

    def _profile(self, req: etree._Element) -> None:
        if _text(req, "ProfileToken") != PROFILE:
            raise SoapFault("env:Sender", "ter:InvalidArgVal", f"no profile {_text(req, 'ProfileToken')!r}")

    def _op_GetProfiles(self, _req: etree._Element) -> str:
        return (
            f'<trt:GetProfilesResponse><trt:Profiles token="{PROFILE}" fixed="true"><tt:Name>main</tt:Name>'
            '<tt:PTZConfiguration token="ptz0"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount>'
            "<tt:NodeToken>node0</tt:NodeToken></tt:PTZConfiguration></trt:Profiles></trt:GetProfilesResponse>"
        )

    def _media_uri(self, tag: str, uri: str) -> str:
        return (
            f"<trt:{tag}><trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri><tt:InvalidAfterConnect>false"
            "</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
            f"<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{tag}>"
        )

    def _op_GetStreamUri(self, req: etree._Element) -> str:
        self._profile(req)
        return self._media_uri("GetStreamUriResponse", self.gateway.url("flv", CHANNEL))

    def _op_GetSnapshotUri(self, req: etree._Element) -> str:
        self._profile(req)
        return self._media_uri("GetSnapshotUriResponse", self.gateway.url("snap", CHANNEL))

    # PTZ

    def _op_GetPresets(self, req: etree._Element) -> str:
        self._profile(req)
        items = "".join(
            f'<tptz:Preset token="{t}"><tt:Name>preset {t}</tt:Name><tt:PTZPosition>{_vector(p)}</tt:PTZPosition>'
            "</tptz:Preset>"
            for t, p in self.positions.items()
        )
        return f"<tptz:GetPresetsResponse>{items}</tptz:GetPresetsResponse>"

    def _op_GotoPreset(self, req: etree._Element) -> str:
        self._profile(req)
        token = _text(req, "PresetToken")
        if token not in self.positions:
            raise SoapFault("env:Sender", "ter:NoToken", f"no preset {token!r}")
        now = time.monotonic()
        self._begin(now, t1=now + self.move_s, end=self.positions[token], preset=token)
        return "<tptz:GotoPresetResponse/>"

    def _op_ContinuousMove(self, req: etree._Element) -> str:
        self._profile(req)
        pt, zoom = req.find(".//{*}Velocity/{*}PanTilt"), req.find(".//{*}Velocity/{*}Zoom")
        v = Pos(float(pt.get("x", 0)) if pt is not None else 0.0, float(pt.get("y", 0)) if pt is not None else 0.0,
                float(zoom.get("x", 0)) if zoom is not None else 0.0)  # fmt: skip
        now = time.monotonic()
        self._begin(now, t1=now + _seconds(_text(req, "Timeout")), velocity=v)
        return "<tptz:ContinuousMoveResponse/>"

    def _op_AbsoluteMove(self, req: etree._Element) -> str:
        self._profile(req)
        pt, zoom = req.find(".//{*}Position/{*}PanTilt"), req.find(".//{*}Position/{*}Zoom")
        current = self._now().position(time.monotonic())
        end = Pos(float(pt.get("x")) if pt is not None else current.pan,
                  float(pt.get("y")) if pt is not None else current.tilt,
                  float(zoom.get("x")) if zoom is not None else current.zoom)  # fmt: skip
        now = time.monotonic()
        self._begin(now, t1=now + self.move_s, end=end)
        return "<tptz:AbsoluteMoveResponse/>"

    def _op_Stop(self, req: etree._Element) -> str:
        self._profile(req)
        now = time.monotonic()
        with self._lock:
            m = self._moves[-1]
            if now < m.t1:
                self._moves[-1] = replace(m, t1=now, end=m.position(now), velocity=None, preset=None)
        return "<tptz:StopResponse/>"

    def _op_GetStatus(self, req: etree._Element) -> str:
        self._profile(req)
        now = time.monotonic()
        m = self._now(now)
        state = "MOVING" if now < m.t1 else "IDLE"
        utc = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>{_vector(m.position(now))}</tt:Position>"
            f"<tt:MoveStatus><tt:PanTilt>{state}</tt:PanTilt><tt:Zoom>{state}</tt:Zoom></tt:MoveStatus>"
            f"<tt:UtcTime>{utc}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>"
        )


def _text(req: etree._Element, name: str) -> str | None:
    el = req.find(f"{{*}}{name}")
    return None if el is None or el.text is None else el.text.strip()


def _seconds(duration: str | None) -> float:
    """An xs:duration such as PT1.5S or PT1M (unset: until Stop)."""
    if not duration:
        return math.inf
    m = re.fullmatch(r"PT(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", duration)
    if m is None:
        raise SoapFault("env:Sender", "ter:InvalidArgVal", f"Timeout {duration!r} is not a duration")
    return float(m[1] or 0) * 60 + float(m[2] or 0)


def _vector(p: Pos) -> str:
    return (
        f'<tt:PanTilt x="{p.pan:.4f}" y="{p.tilt:.4f}" space="{PAN_SPACE}"/>'
        f'<tt:Zoom x="{p.zoom:.4f}" space="{ZOOM_SPACE}"/>'
    )


def _fault(f: SoapFault) -> str:
    return (
        f"<env:Fault><env:Code><env:Value>{f.code}</env:Value><env:Subcode><env:Value>{f.subcode}</env:Value>"
        f'</env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(f.reason)}</env:Text>'
        "</env:Reason></env:Fault>"
    )


def _envelope(body: str) -> bytes:
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f"{head}<env:Envelope {ns}><env:Body>{body}</env:Body></env:Envelope>".encode()
