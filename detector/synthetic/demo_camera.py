"""The embedded demo camera: a generated street video with a stall in a no-vending zone.

`camera_config/demo.yaml` holds the same camera for people to read and copy;
a test keeps the two equal.
"""

from __future__ import annotations

from detector.config import Camera
from detector.synthetic.demo import DEMO_NO_VENDING_ZONE

DEMO_CAMERA = {
    "id": "demo-street-01",
    "name": "示范街东段 演示摄像头",
    "source": {"url": "demo://street", "loop": False, "start_time": "2026-01-05T09:00:00+08:00"},
    "location": {
        "address": "示范区示范街道 幸福路 12 号门前",
        "lon": 116.2230,
        "lat": 39.9060,
        "crs": "EPSG:4490",
        "division_code": "110107",
        "street": "示范街道",
        "community": "幸福社区",
        "grid_code": "110107001002003",
    },
    "cadence_s": 5,
    "zones": [{"name": "sidewalk-east", "purpose": "no_vending", "polygon": [list(p) for p in DEMO_NO_VENDING_ZONE]}],
    "problems": ["09006"],
    "evidence": {"pre_s": 5, "post_s": 5},
}


def demo_camera() -> Camera:
    return Camera.model_validate(DEMO_CAMERA)
