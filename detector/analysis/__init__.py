"""Frame → observations: the motion gate, zones, and the analyzers (ONNX detector, occupancy, haze, text, tamper)."""
