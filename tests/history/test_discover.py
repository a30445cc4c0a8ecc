"""Repository discovery (spec §11.2): a repository directory itself, or a project's ``.embfmt/``,
found walking up from a start directory, as git finds ``.git``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from embfmt.errors import NotFoundError
from embfmt.repo import Repo, find_repository


def test_discover_walks_up_to_a_project_repository(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "notes.txt").write_text("the project's own files stay")
    with Repo.init(project / ".embfmt") as r:  # Repo.init(path) is unchanged: path is the repository
        cid = r.commit({"t": np.ones((2, 2), np.float32)})
    for start in (project, project / "src", project / "src" / "deep"):
        assert find_repository(start) == str(project / ".embfmt")
        with Repo.discover(start) as r:
            assert r.resolve("HEAD") == cid
    assert sorted(os.listdir(project)) == [".embfmt", "notes.txt", "src"]


def test_a_repository_directory_and_the_nearest_one_win(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    Repo.init(project / ".embfmt").close()
    inner = project / "inner"
    Repo.init(inner).close()  # a repository directory nested in the project
    (inner / "objects" / "x").mkdir(parents=True, exist_ok=True)
    assert find_repository(inner) == str(inner)
    assert find_repository(inner / "objects" / "x") == str(inner)
    assert find_repository(project) == str(project / ".embfmt")


def test_not_found_and_symlinks_are_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    Repo.init(elsewhere).close()
    project = tmp_path / "proj"
    project.mkdir()
    os.symlink(elsewhere, project / ".embfmt")
    with pytest.raises(NotFoundError, match="not in an embfmt repository") as e:
        find_repository(project)
    assert e.value.kind == "not-a-repository" and str(project) in str(e.value)
    with pytest.raises(NotFoundError) as e:
        Repo.discover(tmp_path / "missing")
    assert e.value.kind == "not-a-repository"


def test_unknown_revision_suggests_refs(repo: Repo) -> None:
    repo.commit({"t": np.ones((2, 2), np.float32)})
    repo.tag("release-1")
    repo.branch("experiment")
    for typo, want in (("mian", "'main'"), ("release1", "'release-1'"), ("experimnet", "'experiment'"),
                       ("Head", "'HEAD'")):
        with pytest.raises(NotFoundError, match=f"did you mean {want}"):
            repo.resolve(typo)
    (Path(repo.path) / "refs" / "tags" / "broken").write_text("not a ref\n")
    with pytest.raises(NotFoundError, match="did you mean 'main'"):  # a damaged ref is skipped here
        repo.resolve("mian")
