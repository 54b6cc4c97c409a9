"""Camera → frame: sources (RTSP, files, demo), the packet ring that keeps the recent clip, camera health,
and PTZ cameras steered over ONVIF on their preset patrol."""
