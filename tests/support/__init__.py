"""Test helpers shared by the test suite (e.g. a real RTSP server)."""
