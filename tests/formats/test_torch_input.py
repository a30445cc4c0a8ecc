"""`.pt` input through torch's safe loader (`weights_only=True`), in real processes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import formats
from embfmt.errors import ErrorKind, FormatError, InputError

from ..cli.test_cli_repo import fails, ok, run, run_all
from ._util import read_all, same_bits

torch = pytest.importorskip("torch")


class _Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("pt")
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(50, 8, generator=g)
    emb[0, 0] = -0.0
    emb[1, :3] = torch.tensor([float("inf"), float("-inf"), float("nan")])
    lin = torch.randn(4, 8, generator=g).to(torch.bfloat16)
    ckpt = {"model": {"emb.weight": emb, "lin.weight": lin, "lin.bias": torch.randn(4, generator=g),
                      "ids": torch.arange(6, dtype=torch.int32).reshape(2, 3)},
            "epoch": 3, "history": [torch.ones(2, 2, dtype=torch.float16)]}
    torch.save(ckpt, d / "ckpt.pt")
    torch.save(emb.t().contiguous().t(), d / "one.pt")  # a single (non-contiguous) tensor
    torch.save(torch.nn.Parameter(emb.double()), d / "param.pth")
    torch.save({"x": _Evil(d / "pwned_zip")}, d / "evil.pt")
    with open(d / "evil_legacy.pt", "wb") as f:  # the pre-1.6 (non-zip) format: a bare pickle
        pickle.dump(_Evil(d / "pwned_legacy"), f)
    (d / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip archive")
    with zipfile.ZipFile(d / "empty.pt", "w"):
        pass
    return {"dir": d, "emb": emb.numpy(), "lin": lin, "epoch_list": ckpt["history"][0].numpy()}


def test_commit_and_fingerprint_read_tensors_by_name(files: dict[str, Any]) -> None:
    d = files["dir"]
    r = d / "repo"
    ok(run("init", str(r)))
    lin_np = files["lin"].view(torch.int16).numpy().view(formats_bf16())
    res = run_all({
        "commit": ("-C", str(r), "commit", f"emb={d / 'ckpt.pt'}:model.emb.weight",
                   f"lin={d / 'ckpt.pt'}:model.lin.weight", f"one={d / 'one.pt'}",
                   f"p={d / 'param.pth'}", f"h={d / 'ckpt.pt'}:history.0", "-m", "pt", "--json"),
        "fp": ("fingerprint", f"{d / 'ckpt.pt'}:model.lin.weight"),
        "fp_ds": ("fingerprint", str(d / "ckpt.pt"), "--dataset", "model.emb.weight"),
        "fp_one": ("fingerprint", str(d / "one.pt")),
    })
    tables = json.loads(ok(res["commit"]).stdout)["tables"]
    assert tables["emb"]["fingerprint"] == embfmt.fingerprint(files["emb"]).root
    assert tables["one"]["fingerprint"] == embfmt.fingerprint(files["emb"]).root
    assert tables["p"]["dtype"] == "float64"
    assert tables["lin"]["dtype"] == "bfloat16" and tables["h"]["dtype"] == "float16"
    assert ok(res["fp"]).stdout.strip() == embfmt.fingerprint(lin_np).root
    assert ok(res["fp_ds"]).stdout.strip() == embfmt.fingerprint(files["emb"]).root
    assert ok(res["fp_one"]).stdout.strip() == embfmt.fingerprint(files["emb"]).root
    with formats.read(d / "ckpt.pt", "model.emb.weight") as src:
        assert src.format == "torch" and same_bits(read_all(src.matrix), files["emb"])


def formats_bf16() -> Any:
    import ml_dtypes

    return ml_dtypes.bfloat16


def test_typed_errors(files: dict[str, Any]) -> None:
    d = files["dir"]
    res = run_all({
        "no_name": ("fingerprint", str(d / "ckpt.pt")),
        "wrong_name": ("fingerprint", f"{d / 'ckpt.pt'}:model.nope"),
        "name_on_single": ("fingerprint", f"{d / 'one.pt'}:x"),
        "one_d": ("fingerprint", f"{d / 'ckpt.pt'}:model.lin.bias"),
        "int32": ("fingerprint", f"{d / 'ckpt.pt'}:model.ids"),
        "evil": ("fingerprint", str(d / "evil.pt")),
        "evil_legacy": ("fingerprint", str(d / "evil_legacy.pt")),
        "junk": ("fingerprint", str(d / "junk.pt")),
        "empty": ("fingerprint", str(d / "empty.pt")),
        "write": ("-C", str(d), "checkout", "HEAD", "emb", "-o", str(d / "out.pt")),
    })
    fails(res["no_name"], "bad-argument", "ckpt.pt", "model.emb.weight", "model.lin.weight",
          "history.0", "FILE:NAME")
    fails(res["wrong_name"], "not-found", "ckpt.pt", "'model.nope'", "model.lin.bias")
    fails(res["name_on_single"], "not-found", "one.pt", "single tensor")
    fails(res["one_d"], "not-a-matrix", "ckpt.pt", "model.lin.bias")
    fails(res["int32"], "unsupported-dtype", "ckpt.pt", "int32")
    fails(res["evil"], "bad-file", "evil.pt", "weights_only=True")
    fails(res["evil_legacy"], "bad-file", "evil_legacy.pt", "weights_only=True")
    fails(res["junk"], "bad-file", "junk.pt")
    fails(res["empty"], "bad-file", "empty.pt")
    fails(res["write"], "bad-argument", "out.pt", ".safetensors")
    assert not (d / "pwned_zip").exists() and not (d / "pwned_legacy").exists()
    assert not (d / "out.pt").exists()


def test_api_errors_are_typed(files: dict[str, Any]) -> None:
    d = files["dir"]
    with pytest.raises(FormatError) as ei:
        with formats.read(d / "evil.pt"):
            pass
    assert ei.value.kind == ErrorKind.BAD_FILE
    assert not (d / "pwned_zip").exists()
    with pytest.raises(InputError) as ei2:
        formats.write(d / "x.pt", np.zeros((2, 2), np.float32))
    assert ei2.value.kind == ErrorKind.BAD_ARGUMENT and not (d / "x.pt").exists()


def test_without_torch_a_typed_error_says_to_install_it(files: dict[str, Any]) -> None:
    """In a process where torch cannot be imported (sys.modules["torch"] = None makes the
    import fail as a missing package does)."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from embfmt.cli import main\n"
            f"sys.exit(main(['fingerprint', {str(files['dir'] / 'one.pt')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    fails(r, "missing-extra", "one.pt", "torch", "pip install torch")
