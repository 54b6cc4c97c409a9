"""Finding ONVIF cameras by address (`gridsight cameras discover`) and writing their camera YAML stub.

Unicast only: each host:port is asked GetDeviceInformation directly, many at once on one event
loop, each with a short timeout; WS-Discovery multicast rarely crosses the VLANs between a
city's cameras and the machine that runs GridSight. A port that refuses or does not accept a
TCP connection within the timeout is skipped before any SOAP is built.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from detector.ingest.ptz import DeviceInfo, OnvifPtz, Preset, PtzAuthError, PtzError

MAX_HOSTS = 4096  # a typo such as 10.0.0.0/8 should not start a day-long scan
DEFAULT_DWELL_S = 60.0
STUB_PROBLEM = "09006"  # 占道经营: reviewed by an operator until the camera is given a place and its problems


@dataclass
class Found:
    """An ONVIF device that answered; `error` when it answered but would not say more (credentials)."""

    host: str
    port: int
    info: DeviceInfo | None = None
    stream_uri: str | None = None
    presets: list[Preset] = field(default_factory=list)
    error: str | None = None


def expand_hosts(spec: str) -> list[str]:
    """`127.0.0.1,10.0.0.0/30,10.0.1.5-10.0.1.9,10.0.2.1-4` as addresses, in order, each once.

    Raises:
        ValueError: a part is not an address, network or range (named), or there are more than MAX_HOSTS.
    """
    out: dict[str, None] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            if "/" in part:
                net = ipaddress.ip_network(part, strict=False)
                if net.num_addresses > MAX_HOSTS + 2:  # before listing it: a /8 is 16 million
                    raise ValueError(f"more than {MAX_HOSTS} addresses; scan a smaller range at a time")
                addresses = list(net.hosts()) if net.num_addresses > 2 else list(net)
            elif "-" in part:
                first, last = part.split("-", 1)
                start = ipaddress.ip_address(first)
                end = ipaddress.ip_address(last if "." in last or ":" in last else first.rsplit(".", 1)[0] + "." + last)
                if int(end) < int(start) or int(end) - int(start) >= MAX_HOSTS:
                    raise ValueError("the range runs backwards or is too long")
                addresses = [ipaddress.ip_address(int(start) + i) for i in range(int(end) - int(start) + 1)]
            else:
                addresses = [ipaddress.ip_address(part)]
        except ValueError as e:
            raise ValueError(f"--hosts: {part!r} is not an address, a network (10.0.0.0/24) or a range: {e}") from e
        out.update((str(a), None) for a in addresses)
        if len(out) > MAX_HOSTS:
            raise ValueError(f"--hosts: more than {MAX_HOSTS} addresses; scan a smaller range at a time")
    if not out:
        raise ValueError("--hosts: no address given")
    return list(out)


def parse_ports(spec: str) -> list[int]:
    """Raises: ValueError: a port is not a number in 1..65535."""
    ports = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise ValueError(f"--ports: {part!r} is not a port number (1-65535)")
        ports.append(int(part))
    if not ports:
        raise ValueError("--ports: no port given")
    return ports


async def _open(host: str, port: int, timeout_s: float) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def probe(host: str, port: int, username: str | None, password: str | None, timeout_s: float) -> Found | None:
    """What the device at host:port says about itself; None when nothing speaks ONVIF there."""
    if not await _open(host, port, timeout_s):
        return None
    core = OnvifPtz(f"{host}:{port}", host, port, username, password, timeout_s=timeout_s)
    found = Found(host, port)
    try:
        found.info = await core.connect()
        found.stream_uri = await core.stream_uri()
        found.presets = await core.presets()
    except PtzAuthError:
        found.error = "answers ONVIF but refused the user name and password"
    except PtzError as e:
        if found.info is None:
            return None  # an open port that is no ONVIF device (a web server, an RTSP port)
        found.error = str(e).removeprefix(f"{core.where}: ")
    finally:
        await core.close()
    return found


def discover(
    hosts: list[str], ports: list[int], username: str | None, password: str | None, timeout_s: float = 2.0,
    concurrency: int = 64,
) -> list[Found]:  # fmt: skip
    """Every host × port probed, `concurrency` at a time; the devices that answered, in the order asked."""

    async def run() -> list[Found | None]:
        gate = asyncio.Semaphore(concurrency)

        async def one(host: str, port: int) -> Found | None:
            async with gate:
                return await probe(host, port, username, password, timeout_s)

        return await asyncio.gather(*(one(h, p) for h in hosts for p in ports))

    return [f for f in asyncio.run(run()) if f is not None]


def _camera_id(found: Found) -> str:
    serial = found.info.serial if found.info else ""
    base = f"ptz-{serial}" if serial else f"ptz-{found.host.replace('.', '-').replace(':', '-')}-{found.port}"
    return re.sub(r"[^A-Za-z0-9_\-]", "-", base)[:64]


def _without_userinfo(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def camera_stub(found: Found, username_env: str, password_env: str) -> dict:
    """A camera entry for found device: its stream, its ONVIF block and a patrol over all its presets.
    Credentials only as the names of environment variables; location and problems are left to fill in."""
    info = found.info
    name = " ".join(x for x in (info.manufacturer, info.model) if x) if info else ""
    creds = {"username_env": username_env, "password_env": password_env}
    source: dict = {"url": _without_userinfo(found.stream_uri or f"rtsp://{found.host}/")}
    if source["url"].startswith("rtsp://"):  # the camera's own RTSP wants the account; a gateway's URL does not
        source.update(creds)
    cam: dict = {
        "id": _camera_id(found),
        "name": f"{name or 'ONVIF camera'} {found.host}",
        "source": source,
        "problems": [STUB_PROBLEM],
        "ptz": {"host": found.host, "port": found.port, **creds},
    }
    if found.presets:
        cam["patrol"] = [{"preset": p.token, "dwell_s": DEFAULT_DWELL_S} for p in found.presets]
    return cam
