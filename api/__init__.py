"""GridSight HTTP API (FastAPI)."""
