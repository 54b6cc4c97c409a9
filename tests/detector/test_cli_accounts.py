"""`gridsight user …` and `gridsight token …` on a real SQLite database, and the configuration's
relative paths: every command given the same --config finds the same database, wherever it runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from api.accounts import check_password, principal_for_token
from detector.cli import main
from detector.store.db import open_database


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder whose settings name a relative database; the tests run from elsewhere."""
    cfg = tmp_path / "site" / "config"
    cfg.mkdir(parents=True)
    (cfg / "settings.yaml").write_text("database_url: sqlite:///var/gs.db\nevidence_root: var/evidence\n")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    return cfg


def gs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def password_ok(cfg: Path, user: str, password: str) -> bool:
    engine, sessions = open_database(f"sqlite:///{cfg / 'var' / 'gs.db'}")
    try:
        with sessions() as s:
            return check_password(s, user, password) is not None
    finally:
        engine.dispose()


def test_commands_run_from_other_folders_share_the_configs_database(site: Path, capsys, monkeypatch) -> None:
    rc, out, _ = gs(capsys, "user", "add", "alice", "--role", "operator", "--config", str(site))
    assert rc == 0 and "user alice (operator) added" in out
    monkeypatch.chdir(site.parents[1] / "b")
    assert "alice" in gs(capsys, "user", "list", "--config", str(site))[1]
    assert gs(capsys, "incidents", "--config", str(site))[1].strip() == "no incidents yet"
    monkeypatch.chdir(site.parents[1])  # a relative --config works the same
    assert "alice" in gs(capsys, "user", "list", "--config", "site/config")[1]
    assert (site / "var" / "gs.db").is_file()
    for cwd in ("a", "b", "."):  # no second, empty database anywhere else
        assert not (site.parents[1] / cwd / "var").exists()


def test_user_list_disable_and_reset_password(site: Path, capsys, monkeypatch) -> None:
    assert gs(capsys, "user", "add", "root", "--role", "admin", "--config", str(site))[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("first-password\n"))
    assert gs(capsys, "user", "add", "bob", "--role", "viewer", "--password-stdin", "--config", str(site))[0] == 0

    monkeypatch.setattr("sys.stdin", io.StringIO("second-password\n"))
    rc, out, _ = gs(capsys, "user", "reset-password", "bob", "--password-stdin", "--config", str(site))
    assert rc == 0 and "second-password" not in out  # a password given on stdin is not echoed
    assert password_ok(site, "bob", "second-password") and not password_ok(site, "bob", "first-password")
    rc, out, _ = gs(capsys, "user", "reset-password", "bob", "--config", str(site))
    generated = out.rsplit("new password: ", 1)[1].strip()
    assert rc == 0 and password_ok(site, "bob", generated)

    assert gs(capsys, "user", "disable", "bob", "--config", str(site))[0] == 0
    assert not password_ok(site, "bob", generated)  # a disabled user cannot log in
    listing = gs(capsys, "user", "list", "--config", str(site))[1].splitlines()
    assert [line.split()[:3] for line in listing] == [["bob", "viewer", "disabled"], ["root", "admin", "active"]]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["user", "disable", "nobody"], "no user 'nobody'"),
        (["user", "reset-password", "nobody"], "no user 'nobody'"),
        (["user", "disable", "root"], "last enabled admin"),
        (["token", "revoke", "nothing"], "no token 'nothing'"),
    ],
)
def test_bad_account_changes_say_why(site: Path, capsys, argv: list[str], words: str) -> None:
    assert gs(capsys, "user", "add", "root", "--role", "admin", "--config", str(site))[0] == 0
    rc, _, err = gs(capsys, *argv, "--config", str(site))
    assert rc == 1 and words in err


def test_token_list_hides_the_secret_and_revoke_stops_it(site: Path, capsys) -> None:
    secret = gs(capsys, "token", "create", "platform-bot", "--role", "viewer", "--config", str(site))[1].strip()
    rc, out, _ = gs(capsys, "token", "list", "--config", str(site))
    assert rc == 0 and out.split()[:3] == ["platform-bot", "viewer", "active"]
    assert secret not in out and "gst_" not in out
    assert gs(capsys, "token", "revoke", "platform-bot", "--config", str(site))[0] == 0
    assert gs(capsys, "token", "list", "--config", str(site))[1].split()[2] == "revoked"
    engine, sessions = open_database(f"sqlite:///{site / 'var' / 'gs.db'}")
    with sessions() as s:
        assert principal_for_token(s, secret) is None
    engine.dispose()
    rc, _, err = gs(capsys, "token", "revoke", "platform-bot", "--config", str(site))
    assert rc == 1 and "revoked already" in err
