"""`gridsight` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detector.config import load_config

DEFAULT_CONFIG = Path("camera_config")


def cmd_config_check(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        print(f"{path}: no such file or directory", file=sys.stderr)
        return 1
    loaded = load_config(path) if path.is_dir() else load_config(path.parent, only=path)
    for err in loaded.errors:
        print(err, file=sys.stderr)
    print(f"{len(loaded.cameras)} camera(s) valid, {len(loaded.errors)} error(s)")
    return 1 if loaded.errors else 0


def cmd_run(args: argparse.Namespace) -> int:
    from detector.app import build

    app = build(args.config)
    if args.port is not None:
        app.config.settings = app.config.settings.model_copy(update={"api_port": args.port})
    app.start()
    if app.api_port:
        print(f"GridSight API: http://{app.config.settings.api_host}:{app.api_port}/api/v1/incidents", flush=True)
    try:
        app.run(args.duration)
    finally:
        app.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridsight", description="GridSight video channel")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline and the API")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration directory")
    run.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    run.add_argument("--port", type=int, default=None, help="API port (overrides settings.yaml)")
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration directory or file")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_config_check)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
