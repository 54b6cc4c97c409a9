"""Which cameras can answer a 核实 request: pure functions over the camera config, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.config import Camera, View

EARTH_M = 6_371_008.8  # mean radius


@dataclass(frozen=True, slots=True)
class Where:
    """The place of a request: exactly one of a grid code, a point (lon, lat) or a camera id."""

    grid_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    camera_id: str | None = None

    def describe(self) -> str:
        if self.grid_code:
            return f"grid {self.grid_code}"
        if self.camera_id:
            return f"camera {self.camera_id}"
        return f"({self.lon}, {self.lat})"


@dataclass(frozen=True, slots=True)
class Pick:
    """A camera that answers, and the preset it must look from (a patrolling PTZ camera; else its own, or None)."""

    camera: Camera
    preset: str | None


class NotCovered(ValueError):
    """No running camera that watches the problem sees the place; the message says which step failed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def watches(camera: Camera, code: str, where: Where | None = None) -> tuple[bool, str | None]:
    """Whether the camera watches `code` (at a place it sees), and from which preset: its ptz_preset, or the first
    patrol stop that watches it and sees the place (the patrol must go there: `VerificationDesk.wanted_preset`).

    A stop sees a point through its own `view` (the camera's when unset); a grid or a camera id, every stop."""
    if camera.patrol:
        stop = next((s.preset for s in camera.patrol
                     if code in (s.problems or camera.problems) and (where is None or sees(camera, where, s.view))),
                    None)  # fmt: skip
        return stop is not None, stop
    return code in camera.problems, camera.ptz_preset


def sees(camera: Camera, where: Where, view: View | None = None) -> bool:
    """Whether the place is in the camera's view, or `view` (a patrol stop's) if given (a grid code: the camera
    stands in that grid)."""
    if where.camera_id is not None:
        return camera.id == where.camera_id
    if where.grid_code is not None:
        return camera.location.grid_code == where.grid_code
    assert where.lon is not None and where.lat is not None
    view, loc = view or camera.view, camera.location
    if view is None:
        return False
    if view.polygon is not None:
        return inside(where.lon, where.lat, view.polygon)
    assert view.radius_m is not None and loc.lon is not None and loc.lat is not None
    return distance_m(loc.lon, loc.lat, where.lon, where.lat) <= view.radius_m


def seen_by_any(camera: Camera, where: Where) -> bool:
    """Whether the camera, or one of its patrol stops, sees the place."""
    return sees(camera, where) or any(sees(camera, where, s.view) for s in camera.patrol if s.view is not None)


def covering(cameras: list[Camera], where: Where, code: str) -> list[Pick]:
    """The enabled cameras that see the place and watch the problem, by id; a patrolling camera from the stop
    whose view holds the place.

    Raises:
        NotCovered: an unknown camera id, no camera seeing the place, or none of them watching the problem.
    """
    field = "location.camera_id" if where.camera_id else "location.grid_code" if where.grid_code else "location"
    if where.camera_id and not any(c.id == where.camera_id for c in cameras):
        raise NotCovered(field, f"no running camera {where.camera_id!r}")
    seeing = [c for c in cameras if c.enabled and seen_by_any(c, where)]
    if not seeing:
        raise NotCovered(field, f"no running camera covers {where.describe()} (view footprints: camera view.polygon "
                                "or view.radius_m, or a patrol stop's view; grids: location.grid_code)")  # fmt: skip
    picks = [Pick(c, preset) for c in sorted(seeing, key=lambda c: c.id) for ok, preset in [watches(c, code, where)]
             if ok]  # fmt: skip
    if not picks:
        ids = ", ".join(c.id for c in seeing)
        raise NotCovered("problem_code", f"the cameras covering {where.describe()} ({ids}) do not watch {code}")
    return picks


def inside(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting; lon/lat as a plane is fine at the size of a camera's view."""
    hit = False
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            hit = not hit
    return hit


def distance_m(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Great-circle distance (haversine)."""
    p0, p1 = math.radians(lat0), math.radians(lat1)
    a = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(a))
