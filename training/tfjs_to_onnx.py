"""Converts a TensorFlow.js graph model (model.json + .bin shards) to ONNX with tf2onnx.

Run by the conversion environment that `scripts/build-coco-objects` creates (tensorflow-cpu
and tf2onnx), not by GridSight's own: it imports nothing of the project.

    python training/tfjs_to_onnx.py MODEL.json OUT.onnx
"""

from __future__ import annotations

import sys

import numpy as np

OPSET = 17  # ONNX Runtime's static quantizer takes opsets below 21


def main() -> None:
    src, out = sys.argv[1:3]
    # tf2onnx 1.17's tfjs reader still calls numpy aliases that numpy 2 removed
    np.product = np.prod  # type: ignore[attr-defined]
    from tf2onnx import convert

    sys.argv = ["tf2onnx", "--tfjs", src, "--output", out, "--opset", str(OPSET)]
    convert.main()


if __name__ == "__main__":
    main()
