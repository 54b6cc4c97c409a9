"""Generated scenes and videos: the demo camera and the scenarios that tests and benches replay (not the runtime)."""
