"""embfmt.Tracker commits tables from a training loop; the examples/ training script runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import embfmt
from embfmt.errors import ErrorKind, InputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_commits_every_n_steps_with_step_metadata(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    emb = np.zeros((50, 4), np.float32)
    t = embfmt.Tracker(repo, {"emb": emb}, every=5, metadata={"run": "r1"},
                       message="step {step} loss={loss:.2f}")
    made = []
    for step in range(1, 16):
        emb[step] = step  # row `step` changes at each step
        made.append(t.step(step, loss=np.float32(1 / step), lr=0.1, ok=True, note="x"))
    assert [m is not None for m in made] == [s % 5 == 0 for s in range(1, 16)]
    assert [s for s, _ in t.commits] == [5, 10, 15] and t.last_commit == repo.resolve("HEAD")
    head = repo.log()[0]
    assert head.message == "step 15 loss=0.07"
    assert head.metadata["step"] == 15 and head.metadata["run"] == "r1"
    assert head.metadata["metrics"] == {"loss": pytest.approx(1 / 15), "lr": 0.1, "ok": True, "note": "x"}
    # exactly the rows written between two commits changed
    assert repo.changed_rows("emb", "HEAD~1", "HEAD").changed.tolist() == [11, 12, 13, 14, 15]
    assert np.array_equal(repo.read("emb"), emb)


def test_values_read_at_commit_time_and_callables(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    box = {"w": np.zeros((3, 2), np.float32)}
    t = embfmt.Tracker(repo, {"w": lambda: box["w"]}, every=1)
    t.step(1)
    box["w"] = np.ones((3, 2), np.float32)  # the model replaced its tensor
    t.step(2)
    assert repo.read("w").sum() == 6 and repo.read("w", "HEAD~1").sum() == 0
    assert t.commit(2) == t.last_commit  # same step: no second commit
    assert len(repo.log()) == 2


def test_non_finite_metrics_are_recorded_as_strings(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    t = embfmt.Tracker(repo, {"w": np.zeros((2, 2), np.float32)}, every=1)
    t.step(1, loss=float("nan"), grad=float("inf"))
    assert repo.log()[0].metadata["metrics"] == {"grad": "inf", "loss": "nan"}


def test_bad_arguments(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    for kw in ({"every": 0}, {"every": 1.5}, {"metadata": {"step": 1}}):
        with pytest.raises(InputError) as ei:
            embfmt.Tracker(repo, {"w": np.zeros((2, 2), np.float32)}, **kw)
        assert ei.value.kind is ErrorKind.BAD_ARGUMENT
    with pytest.raises(InputError):
        embfmt.Tracker(repo, {})
    t = embfmt.Tracker(repo, {"w": np.zeros((2, 2), np.float32)}, every=1)
    with pytest.raises(InputError, match="metric 'm'"):
        t.step(1, m=object())
    assert repo.refs.read("heads", "main") is None  # nothing committed by the failed step


def test_torch_parameters_cpu_and_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    repo = embfmt.Repo.init(tmp_path)
    emb = torch.nn.Embedding(300, 16)
    half = torch.randn(300, 8).to(torch.bfloat16)
    t = embfmt.Tracker(repo, {"emb": emb.weight, "half": half}, every=2)
    opt = torch.optim.SGD(emb.parameters(), lr=0.5)
    for step in range(1, 5):
        emb(torch.tensor([step])).sum().backward()
        opt.step()
        opt.zero_grad()
        t.step(step)
    assert np.array_equal(repo.read("emb"), emb.weight.detach().numpy())
    assert repo.changed_rows("emb", "HEAD~1", "HEAD").changed.tolist() == [3, 4]
    assert repo.table_version("half").dtype.name == "bfloat16"
    assert repo.read("half").view(np.uint16).tobytes() == half.view(torch.int16).numpy().tobytes()


@pytest.mark.gpu
def test_torch_cuda_parameter(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device for torch")
    repo = embfmt.Repo.init(tmp_path)
    w = torch.randn(5000, 64, device="cuda")
    embfmt.Tracker(repo, {"w": w}, every=1).step(1)
    assert np.array_equal(repo.read("w"), w.cpu().numpy())


def test_example_trains_and_tracks(tmp_path):
    pytest.importorskip("torch")
    repo_dir = tmp_path / "mf"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_tracked.py"),
                           "--repo", str(repo_dir), "--steps", "300", "--every", "100",
                           "--items", "3000", "--batch", "64", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    repo = embfmt.Repo(repo_dir)
    log = repo.log()
    assert [c.metadata["step"] for c in log] == [300, 200, 100]
    assert [cid for _, cid in out["commits"]] == [c.id for c in reversed(log)]
    losses = [c.metadata["metrics"]["loss"] for c in reversed(log)]
    assert losses[-1] < losses[0]  # it trained
    assert repo.verify().ok
    # sparse updates: between two tracked versions only the items seen in batches moved
    ch = repo.changed_rows("item_emb", "HEAD~1", "HEAD")
    assert 0 < len(ch.changed) < 3000
    assert repo.keys("item_emb")[0] == "item-0"
    assert repo.resolve(out["item_emb_stamp"]) == log[0].id  # lineage: the stamp names HEAD
    assert repo.resolve_stamp(out["item_emb_stamp"]).table == "item_emb"
