"""Settings (spec §11.3): repository and global files, the author precedence, the CLI verb."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from embfmt.history import config
from embfmt.errors import FormatError, InputError
from embfmt.repo import Repo

from ..cli.test_cli_repo import fails, ok, run


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("EMBFMT_AUTHOR", raising=False)
    return xdg


def test_author_precedence(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.ones((2, 2), np.float32)
    with Repo.init(tmp_path / "r") as repo:
        default = repo.author()
        assert "@" in default  # user@host
        config.set_value(config.global_path(), "user.name", "Gil")
        assert repo.author() == "Gil"
        config.set_value(config.global_path(), "user.email", "gil@example.org")
        assert repo.author() == "Gil <gil@example.org>"
        rc = os.path.join(repo.path, config.REPO_CONFIG)
        config.set_value(rc, "user.name", "Rita")  # the repository's name and e-mail go together
        assert repo.author() == "Rita"
        config.set_value(rc, "author", "Repo Bot <bot@example.org>")
        assert repo.author() == "Repo Bot <bot@example.org>"
        monkeypatch.setenv("EMBFMT_AUTHOR", "env")
        assert repo.author() == "env"
        c = repo.commit({"t": x})
        assert repo.get_commit(c).author == "env"
        c = repo.commit({"t": x + 1}, author="explicit")
        assert repo.get_commit(c).author == "explicit"
        monkeypatch.delenv("EMBFMT_AUTHOR")
        r = repo.restore(c)
        assert repo.get_commit(r).author == "Repo Bot <bot@example.org>"
        assert config.unset_value(rc, "author") and not config.unset_value(rc, "author")
        assert repo.author() == "Rita"


def test_bad_files_and_values(home: Path, tmp_path: Path) -> None:
    p = tmp_path / "config"
    with pytest.raises(InputError, match="did you mean 'user.name'"):
        config.set_value(str(p), "user.nam", "x")
    with pytest.raises(InputError, match="core.progress"):
        config.set_value(str(p), "core.progress", "sometimes")
    assert not p.exists()
    config.set_value(str(p), "core.progress", "OFF")
    assert json.loads(p.read_text()) == {"core.progress": "false"}
    for bad in (b"[1]", b"{", b'{"user.name": 3}', b'{"colour": "x"}', b"{" * 100000):
        p.write_bytes(bad)
        with pytest.raises(FormatError) as e:
            config.read(str(p))
        assert str(p) in str(e.value) and e.value.kind == "bad-file"


def test_cli_config(home: Path, tmp_path: Path) -> None:
    env_repo = tmp_path / "proj"
    env_repo.mkdir()
    np.save(tmp_path / "a.npy", np.zeros((3, 2), np.float32))
    ok(run("init", cwd=env_repo))
    objects = sorted(p.name for p in (env_repo / ".embfmt" / "objects").rglob("*"))
    C = ("-C", str(env_repo))
    r = run(*C, "config", "user.name")
    assert r.returncode == 1 and r.stdout == ""  # not set: exit 1, as git config
    ok(run(*C, "config", "--global", "user.name", "Gil"))
    ok(run(*C, "config", "--global", "user.email", "gil@example.org"))
    ok(run(*C, "config", "author", "Repo Bot"))
    assert ok(run(*C, "config", "user.name")).stdout == "Gil\n"
    lst = json.loads(ok(run(*C, "config", "--list", "--json")).stdout)["settings"]
    assert lst == {"author": {"scope": "repository", "value": "Repo Bot"},
                   "user.email": {"scope": "global", "value": "gil@example.org"},
                   "user.name": {"scope": "global", "value": "Gil"}}
    assert ok(run(*C, "config", "--list", "--global")).stdout == "user.email=gil@example.org\nuser.name=Gil\n"
    # settings are no object: setting them wrote none
    assert sorted(p.name for p in (env_repo / ".embfmt" / "objects").rglob("*")) == objects
    assert json.loads((env_repo / ".embfmt" / "config").read_text()) == {"author": "Repo Bot"}
    ok(run(*C, "commit", f"t={tmp_path / 'a.npy'}", "-m", "one"))
    log = json.loads(ok(run(*C, "log", "--json")).stdout)
    assert log[0]["author"] == "Repo Bot"
    ok(run(*C, "config", "--unset", "author"))
    assert run(*C, "config", "--unset", "author").returncode == 1
    ok(run(*C, "commit", f"t={tmp_path / 'a.npy'}", "-m", "two"))
    assert json.loads(ok(run(*C, "log", "-n", "1", "--json")).stdout)[0]["author"] == "Gil <gil@example.org>"
    fails(run(*C, "config", "user.nme", "x"), "bad-argument", "'user.nme'", "did you mean 'user.name'")
    fails(run("config", "author", "x", cwd=tmp_path), "not-a-repository", str(tmp_path))
    ok(run("config", "--global", "init.defaultBranch", "trunk", cwd=tmp_path))
    assert json.loads(ok(run("init", str(tmp_path / "new"), "--json")).stdout)["branch"] == "trunk"
    (env_repo / ".embfmt" / "config").write_text("{oops")
    fails(run(*C, "log"), "bad-file", str(env_repo / ".embfmt" / "config"))
    ok(run(*C, "config", "--global", "--list"))  # the config verb still runs to let you fix it
    assert "core.progress" in ok(run("config", "--help")).stdout
