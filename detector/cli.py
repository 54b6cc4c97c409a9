"""`gridsight` command line."""

from __future__ import annotations

import argparse
import os
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
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(loaded.cameras)} camera(s) valid, {len(loaded.errors)} error(s), {len(loaded.warnings)} warning(s)")
    if not loaded.cameras and not loaded.errors:
        print(f"{path}: no camera configured", file=sys.stderr)
        return 1
    return 1 if loaded.errors else 0


def cmd_run(args: argparse.Namespace) -> int:
    from detector.runtime.app import NoCameras, build
    from detector.runtime.supervisor import Supervisor

    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    worker = args.worker is not None  # started by a supervisor: cameras only, spread by the camera leases
    role = "worker" if worker else "supervisor" if workers > 1 else "all"
    try:
        app = build(args.config, role=role, peers=workers if worker else 1, demo=args.demo, log_format=args.log_format)
    except NoCameras as e:
        print(f"gridsight run: {e}", file=sys.stderr)
        return 2
    if worker:
        app.start()
        try:
            app.run(args.duration)
        finally:
            app.stop()
        return 0
    if args.port is not None:
        app.config.settings = app.config.settings.model_copy(update={"api_port": args.port})
    app.start()
    supervisor = None
    if workers > 1:
        s = app.config.settings
        supervisor = Supervisor(
            args.config, workers, max_rss_mb=s.worker_max_rss_mb, log_dir=s.cache_dir / "workers", demo=args.demo,
            log_format=args.log_format,
        )  # fmt: skip
        supervisor.start()
        print(f"GridSight: {workers} worker processes (logs in {s.cache_dir / 'workers'})", flush=True)
    if password := app.ensure_admin():
        print(f"First run: created user 'admin' with password {password} — log in and keep it safe.", flush=True)
    if app.api_port:
        base = f"http://{app.config.settings.api_host}:{app.api_port}"
        print(f"GridSight console: {base}/", flush=True)
        print(f"GridSight API: {base}/api/v1/ (OpenAPI: {base}/docs)", flush=True)
    try:
        app.run(args.duration)
    finally:
        if supervisor is not None:
            supervisor.stop()
        app.stop()
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    """Prints the newest incidents with the paths of their evidence files."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from detector.store.db import Incident, open_database

    loaded = load_config(args.config)
    s = loaded.settings
    engine, sessions = open_database(s.database_url)
    with sessions() as session:
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


def cmd_filer(args: argparse.Namespace) -> int:
    """Drains the filing outbox only (no cameras): for a separate filing process or after an outage."""
    import signal
    import threading
    import time

    from detector import logs
    from detector.filing.cases import CaseService
    from detector.incidents.evidence import EvidenceStore
    from detector.runtime.app import build_filer
    from detector.store.db import open_database

    loaded = load_config(args.config)
    s = loaded.settings
    logs.configure(s.log_level, s.log_format)
    engine, sessions = open_database(s.database_url)
    store = EvidenceStore(s.evidence_root)
    cases = CaseService(loaded.taxonomy, s, store, {c.id: c for c in loaded.cameras})
    filer = build_filer(loaded, sessions, store, cases)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    filer.start()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        if args.until_empty and filer.pending() == 0:
            break
        stop.wait(0.5)
    filer.stop()
    print(f"sent {filer.sent}, failed attempts {filer.failed}, still queued {filer.pending()}")
    engine.dispose()
    return 0


def cmd_cameras_snapshot(args: argparse.Namespace) -> int:
    """One full-resolution frame of a camera as JPEG: the picture to draw its zones on."""
    import cv2

    from detector.ingest.sources import SourceError, grab_frame, resolve_url

    loaded = load_config(args.config)
    cam = next((c for c in loaded.cameras if c.id == args.camera), None)
    if cam is None:
        broken = [str(e) for e in loaded.errors if e.camera == args.camera]
        known = ", ".join(c.id for c in loaded.cameras) or "none"
        why = "; ".join(broken) if broken else f"no such camera in {args.config} (known: {known})"
        print(f"gridsight cameras snapshot: camera {args.camera}: {why}", file=sys.stderr)
        return 2
    out: Path = args.out or Path(f"{cam.id}.jpg")
    try:
        image = grab_frame(cam.source, resolve_url(cam.source, loaded.settings.cache_dir), args.timeout)
    except SourceError as e:
        print(f"gridsight cameras snapshot: camera {cam.id}: {e}", file=sys.stderr)
        return 1
    if not cv2.imwrite(str(out), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        print(f"gridsight cameras snapshot: cannot write {out}", file=sys.stderr)
        return 1
    print(f"{out}: {image.shape[1]}x{image.shape[0]} frame of camera {cam.id}")
    return 0


def cmd_cameras_discover(args: argparse.Namespace) -> int:
    """ONVIF cameras at the given addresses: what each is, its stream and presets; --out writes a camera stub."""
    import yaml

    from detector.ingest import discover

    try:
        hosts, ports = discover.expand_hosts(args.hosts), discover.parse_ports(args.ports)
    except ValueError as e:
        print(f"gridsight cameras discover: {e}", file=sys.stderr)
        return 2
    user, password = os.environ.get(args.username_env), os.environ.get(args.password_env)
    if password is None:
        print(f"note: {args.password_env} is not set: asking without credentials", file=sys.stderr)
    print(f"probing {len(hosts)} host(s) x {len(ports)} port(s), {args.timeout:g} s each ...", file=sys.stderr)
    found = discover.discover(hosts, ports, user, password, args.timeout)
    for f in found:
        if f.info is None:
            print(f"{f.host}:{f.port}  ONVIF: {f.error}")
            continue
        i = f.info
        presets = ",".join(p.token for p in f.presets) or "none"
        print(f"{f.host}:{f.port}  {i.manufacturer} {i.model}  serial {i.serial or '-'}  firmware {i.firmware or '-'}"
              f"  stream {f.stream_uri or '-'}  presets {presets}" + (f"  ({f.error})" if f.error else ""))  # fmt: skip
    if not found:
        print("no ONVIF device answered", file=sys.stderr)
        return 1
    if args.out is not None:
        stubs = [discover.camera_stub(f, args.username_env, args.password_env) for f in found if f.info is not None]
        head = (
            f"# Written by gridsight cameras discover --hosts {args.hosts} --ports {args.ports}.\n"
            "# Fill in each camera's location, problems and the zones of each patrol stop; the\n"
            f"# credentials are read from ${args.username_env} and ${args.password_env} at run time.\n"
        )
        body = yaml.safe_dump({"cameras": stubs}, allow_unicode=True, sort_keys=False)
        args.out.write_text(head + body, encoding="utf-8")
        print(f"{args.out}: {len(stubs)} camera(s)")
    return 0


def cmd_cases_export(args: argparse.Namespace) -> int:
    from detector.filing.export import export_cases
    from detector.store.db import open_database

    s = load_config(args.config).settings
    engine, sessions = open_database(s.database_url)
    base = args.evidence_base or str(s.evidence_root.resolve())
    with sessions() as session:
        n = export_cases(session, args.out, base)
    engine.dispose()
    print(f"{n} case(s) written to {args.out}")
    return 0


def _accounts(args: argparse.Namespace):
    from detector.store.db import open_database

    engine, sessions = open_database(load_config(args.config).settings.database_url)
    return engine, sessions


def cmd_user_add(args: argparse.Namespace) -> int:
    from api.accounts import AccountError, add_user, audit, generate_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else generate_password()
    engine, sessions = _accounts(args)
    try:
        with sessions.begin() as s:
            add_user(s, args.name, password, args.role)
            audit(s, "cli", "user.add", f"user:{args.name}", None, {"role": args.role})
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"user {args.name} ({args.role}) added" + ("" if args.password_stdin else f"; password: {password}"))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from api.accounts import AccountError, audit, create_token

    engine, sessions = _accounts(args)
    try:
        with sessions.begin() as s:
            token = create_token(s, args.name, args.role)
            audit(s, "cli", "token.create", f"token:{args.name}", None, {"role": args.role})
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(token)
    return 0


def _account_change(args: argparse.Namespace, change) -> int:
    """Runs `change(session)` in one transaction; an AccountError is printed, exit 1."""
    from api.accounts import AccountError

    engine, sessions = _accounts(args)
    try:
        with sessions.begin() as s:
            message = change(s)
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(message)
    return 0


def _when(ts) -> str:
    return "-" if ts is None else ts.astimezone(ZoneInfo(DEFAULT_TZ)).isoformat(timespec="seconds")


def cmd_user_list(args: argparse.Namespace) -> int:
    from api.accounts import list_users

    def line(u) -> str:
        state = "disabled" if u.disabled else "active"
        return f"{u.username:24} {u.role:9} {state:9} created={_when(u.created_at)}"

    return _print_accounts(args, list_users, line, "no users yet (gridsight user add NAME)")


def _print_accounts(args: argparse.Namespace, rows_of, line, empty: str) -> int:
    engine, sessions = _accounts(args)
    with sessions() as s:
        lines = [line(row) for row in rows_of(s)]
    engine.dispose()
    print("\n".join(lines) if lines else empty)
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from api.accounts import audit, set_disabled

    def change(s) -> str:
        set_disabled(s, args.name, True)
        audit(s, "cli", "user.disable", f"user:{args.name}", {"disabled": False}, {"disabled": True})
        return f"user {args.name} disabled and logged out"

    return _account_change(args, change)


def cmd_user_reset_password(args: argparse.Namespace) -> int:
    from api.accounts import audit, generate_password, reset_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else generate_password()

    def change(s) -> str:
        reset_password(s, args.name, password)
        audit(s, "cli", "user.reset_password", f"user:{args.name}")
        return f"password of {args.name} reset" + ("" if args.password_stdin else f"; new password: {password}")

    return _account_change(args, change)


def cmd_token_list(args: argparse.Namespace) -> int:
    from api.accounts import list_tokens

    def line(t) -> str:  # never the secret: only its hash is stored anyway
        state = "revoked" if t.revoked else "active"
        return f"{t.name:24} {t.role:9} {state:8} created={_when(t.created_at)} last_used={_when(t.last_used_at)}"

    return _print_accounts(args, list_tokens, line, "no tokens yet (gridsight token create NAME)")


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from api.accounts import audit, revoke_token

    def change(s) -> str:
        revoke_token(s, args.name)
        audit(s, "cli", "token.revoke", f"token:{args.name}", {"revoked": False}, {"revoked": True})
        return f"token {args.name} revoked"

    return _account_change(args, change)


def cmd_model(args: argparse.Namespace) -> int:
    """Model deployments (the same operations as /api/v1/models, audited as 'cli')."""
    import json

    from detector.models.deployments import (
        DeploymentError,
        ModelStore,
        current_shadow,
        desired,
        promote,
        rollback,
        start_shadow,
        stop_shadow,
    )
    from detector.models.shadow import shadow_report
    from detector.store.db import open_database

    loaded = load_config(args.config)
    settings = loaded.settings
    store = ModelStore(settings.models_dir)
    engine, sessions = open_database(settings.database_url)
    try:
        with sessions.begin() as s:
            if args.model_command == "list":
                want = desired(s, store)
                for name in store.names():
                    run = want.shadows.get(name)
                    shadow = f" shadow={run.version} on {sorted(run.cameras) if run.cameras else 'all'}" if run else ""
                    print(f"{name}: active={want.active.get(name)} versions={store.versions(name)}{shadow}")
            elif args.model_command == "promote":
                promote(s, store, args.name, args.version, "cli", force=args.force)
                print(f"{args.name}: {args.version} is active (running cameras switch within seconds)")
            elif args.model_command == "rollback":
                print(f"{args.name}: {rollback(s, store, args.name, 'cli')} is active again")
            elif args.model_command == "shadow":
                if not args.stop and not args.version:
                    raise DeploymentError("shadow: give the version to run, or --stop")
                if args.stop:
                    stop_shadow(s, args.name, "cli")
                    print(f"{args.name}: shadow run stopped")
                else:
                    unknown = sorted(set(args.camera or ()) - {c.id for c in loaded.cameras})
                    if unknown:
                        known = ", ".join(c.id for c in loaded.cameras) or "none"
                        msg = f"--camera: unknown camera ids {unknown} in {args.config} (known: {known})"
                        raise DeploymentError(msg)
                    start_shadow(s, store, args.name, args.version, args.camera or None, "cli")
                    print(f"{args.name}: {args.version} runs in shadow on {args.camera or 'every camera'}")
            elif args.model_command == "report":
                run = current_shadow(s, args.name)
                if run is None:
                    raise DeploymentError(f"model {args.name!r} has no shadow run")
                print(json.dumps(shadow_report(s, run), indent=1, ensure_ascii=False))
    except DeploymentError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration directory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridsight", description="GridSight video channel")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline and the API")
    _config_option(run)
    run.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    run.add_argument("--port", type=int, default=None, help="API port (overrides settings.yaml)")
    run.add_argument(
        "--workers", default="1", metavar="N|auto",
        help="camera worker processes (auto: one per core); the cameras are spread over them by leases",
    )  # fmt: skip
    run.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # set by the supervisor for its workers
    run.add_argument("--demo", action="store_true", help="add the embedded demo camera (a generated street video)")
    run.add_argument("--log-format", choices=["json", "text"], help="override settings.yaml: json, or text for people")
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration directory or file")
    check.add_argument("path", type=Path)
    check.set_defaults(func=cmd_config_check)

    incidents = sub.add_parser("incidents", help="list the newest incidents and their evidence files")
    _config_option(incidents)
    incidents.add_argument("--limit", type=int, default=10)
    incidents.set_defaults(func=cmd_incidents)

    filer = sub.add_parser("filer", help="only drain the filing outbox to the platform")
    _config_option(filer)
    filer.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS")
    filer.add_argument("--until-empty", action="store_true", help="stop once nothing is left to send")
    filer.set_defaults(func=cmd_filer)

    cameras = sub.add_parser("cameras", help="camera tools")
    cameras_sub = cameras.add_subparsers(dest="cameras_command", required=True)
    snapshot = cameras_sub.add_parser("snapshot", help="write one full-resolution frame of a camera as JPEG")
    snapshot.add_argument("camera", help="camera id")
    snapshot.add_argument("--out", type=Path, help="JPEG file (default: <camera id>.jpg)")
    snapshot.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the source")
    _config_option(snapshot)
    snapshot.set_defaults(func=cmd_cameras_snapshot)
    find = cameras_sub.add_parser("discover", help="find ONVIF cameras at addresses (unicast) and write a YAML stub")
    find.add_argument("--hosts", required=True, help="addresses, networks and ranges: 10.0.0.5,10.0.1.0/24,10.0.2.1-40")
    find.add_argument("--ports", default="80,8000,8080,8899", help="ONVIF ports to try (default: 80,8000,8080,8899)")
    find.add_argument("--username-env", default="ONVIF_USERNAME", help="variable holding the ONVIF user name")
    find.add_argument("--password-env", default="ONVIF_PASSWORD", help="variable holding the ONVIF password")
    find.add_argument("--timeout", type=float, default=2.0, help="seconds per host and port")
    find.add_argument("--out", type=Path, help="write a camera YAML stub here (credentials only as *_env names)")
    find.set_defaults(func=cmd_cameras_discover)

    cases = sub.add_parser("cases", help="case register tools")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    export = cases_sub.add_parser("export", help="export all cases as CSV or XLSX (by the file suffix)")
    export.add_argument("out", type=Path)
    _config_option(export)
    export.add_argument("--evidence-base", help="URL prefix of evidence links (default: the evidence folder)")
    export.set_defaults(func=cmd_cases_export)

    from api.accounts import ROLES

    user = sub.add_parser("user", help="console users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="add a user (a password is generated unless --password-stdin)")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=ROLES, default="operator")
    user_add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _config_option(user_add)
    user_add.set_defaults(func=cmd_user_add)
    user_sub.add_parser("list", help="users with their role and state").set_defaults(func=cmd_user_list)
    user_sub.add_parser("disable", help="disable a user and end their sessions").set_defaults(func=cmd_user_disable)
    reset = user_sub.add_parser("reset-password", help="set a new password (generated unless --password-stdin)")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    reset.set_defaults(func=cmd_user_reset_password)
    for name in ("disable", "reset-password"):
        user_sub.choices[name].add_argument("name")
    for name in ("list", "disable", "reset-password"):
        _config_option(user_sub.choices[name])

    token = sub.add_parser("token", help="API tokens for machines")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    token_create = token_sub.add_parser("create", help="create a token; it is printed once")
    token_create.add_argument("name")
    token_create.add_argument("--role", choices=ROLES, default="viewer")
    _config_option(token_create)
    token_create.set_defaults(func=cmd_token_create)
    token_sub.add_parser("list", help="tokens with role, state and last use (never the secret)").set_defaults(
        func=cmd_token_list
    )
    revoke = token_sub.add_parser("revoke", help="revoke a token: it stops working at once")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_token_revoke)
    for name in ("list", "revoke"):
        _config_option(token_sub.choices[name])

    model = sub.add_parser("model", help="detector model deployments: list, promote, roll back, shadow runs")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_sub.add_parser("list", help="models, versions, the active one and shadow runs")
    promote = model_sub.add_parser("promote", help="make a version active (no restart needed)")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument(
        "--force", metavar="REASON", help="promote a version worse than the active one; the reason is audited"
    )
    rollback = model_sub.add_parser("rollback", help="go back to the version active before the last promotion")
    rollback.add_argument("name")
    shadow = model_sub.add_parser("shadow", help="run a version in shadow: findings stored, never filed")
    shadow.add_argument("name")
    shadow.add_argument("version", nargs="?")
    shadow.add_argument("--camera", action="append", help="camera id (repeat; default: every camera)")
    shadow.add_argument("--stop", action="store_true", help="end the shadow run")
    report = model_sub.add_parser("report", help="the shadow run against the active model and the verdicts")
    report.add_argument("name")
    for p in model_sub.choices.values():
        _config_option(p)
        p.set_defaults(func=cmd_model)

    from training.cli import add_parsers as add_train_parsers  # parsers only: torch loads in the handlers

    add_train_parsers(sub)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
