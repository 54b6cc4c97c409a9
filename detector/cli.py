"""`gridsight` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from detector.config import DEFAULT_TZ, load_config

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


def cmd_incidents(args: argparse.Namespace) -> int:
    """Prints the newest incidents with the paths of their evidence files."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from detector.db import Incident, make_engine, session_factory

    loaded = load_config(args.config)
    s = loaded.settings
    engine = make_engine(s.database_url)
    with session_factory(engine)() as session:
        rows = session.scalars(
            select(Incident).options(selectinload(Incident.evidence)).order_by(Incident.id.desc()).limit(args.limit)
        ).all()
        if not rows:
            print("no incidents yet")
        for inc in rows:
            name = loaded.taxonomy[inc.problem_code].name_zh if inc.problem_code in loaded.taxonomy else ""
            opened, seen = (t.astimezone(ZoneInfo(DEFAULT_TZ)).isoformat() for t in (inc.opened_at, inc.last_seen_at))
            print(f"#{inc.id} {inc.state:9} {inc.problem_code} {name} camera={inc.camera_id} zone={inc.zone} "
                  f"opened={opened} last_seen={seen} recurrences={inc.recurrences}")  # fmt: skip
            for e in inc.evidence:
                print(f"    {e.kind:9} {(s.evidence_root / e.path).resolve()}")
    engine.dispose()
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

    incidents = sub.add_parser("incidents", help="list the newest incidents and their evidence files")
    incidents.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration directory")
    incidents.add_argument("--limit", type=int, default=10)
    incidents.set_defaults(func=cmd_incidents)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
