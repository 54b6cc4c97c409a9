"""GB/T 28181 device ids: a camera behind a city's video platform is known by its channel id.

A 20-digit id (GB/T 28181-2016, appendix D) reads: 中心编码 (8: 6-digit administrative
division + 2-digit grassroots unit), 行业编码 (2), 类型编码 (3), 网络标识 (1), 序号 (6).
GridSight takes a channel id as the camera id as it is; when an id has 20 digits it must be
one of a video channel's types, so that a NVR's, a platform's or a user's id pasted by
mistake is refused with what it is instead of a camera that never shows a picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: 类型编码 of the devices whose id is a channel GridSight can watch
CHANNEL_TYPES = {"131": "摄像机 camera", "132": "网络摄像机 IP camera"}
#: the other types a pasted id is most often
OTHER_TYPES = {
    "111": "DVR", "112": "视频服务器 video server", "113": "编码器 encoder", "118": "NVR", "119": "HVR",
    "200": "中心信令控制服务器 SIP server", "202": "媒体分发服务器 media server", "209": "接入网关 access gateway",
    "215": "业务分组 business group", "216": "虚拟组织 virtual organisation",
}  # fmt: skip
_ID = re.compile(r"^\d{20}$")


@dataclass(frozen=True)
class DeviceId:
    division: str  # 6-digit administrative division (行政区划)
    unit: str
    industry: str
    type: str
    network: str
    serial: str


def parse(device_id: str) -> DeviceId | None:
    """The parts of a 20-digit id; None for an id of another shape (GridSight's own names)."""
    if not _ID.match(device_id):
        return None
    d = device_id
    return DeviceId(d[:6], d[6:8], d[8:10], d[10:13], d[13], d[14:])


def channel_problem(device_id: str) -> str | None:
    """Why a 20-digit id cannot be a camera's channel, or None when it can (or is not such an id)."""
    parsed = parse(device_id)
    if parsed is None or parsed.type in CHANNEL_TYPES:
        return None
    what = OTHER_TYPES.get(parsed.type, "not a video channel")
    kinds = ", ".join(f"{k} ({v})" for k, v in CHANNEL_TYPES.items())
    return (
        f"{device_id} is a GB/T 28181 id of type {parsed.type} ({what}); a camera's channel id has type {kinds} "
        "in digits 11-13: take the channel's id from the platform's device tree"
    )
