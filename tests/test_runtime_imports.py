"""The runtime never imports torch or ultralytics (inference is ONNX Runtime), even where they are installed."""

from __future__ import annotations

import subprocess
import sys


def test_runtime_and_cli_import_neither_torch_nor_ultralytics() -> None:
    code = (
        "import sys, detector.runtime.app, detector.cli, api.app, training.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ultralytics', 'torchvision'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
