"""Train a small PyTorch recommender and track its embedding tables with embfmt.

A matrix-factorization model (user and item embeddings, dot-product score) learns synthetic
implicit feedback with Zipf-distributed item popularity. Sparse gradients update only the rows
a batch touches, as in production recommenders, so each tracked version changes only part of
the item table, and ``embfmt diff`` / ``embfmt blame`` show which rows moved and by how much.

Run::

    python examples/train_tracked.py --repo /tmp/mf-repo --steps 600 --every 200
    embfmt -C /tmp/mf-repo log
    embfmt -C /tmp/mf-repo diff HEAD~2 HEAD --table item_emb

Needs PyTorch (CPU or CUDA): ``pip install torch``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="repository directory (created if missing)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200, help="commit the tables every N steps")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    args = ap.parse_args(argv)

    import torch

    import embfmt

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    dev = torch.device(args.device)

    # Ground truth: low-rank preferences; item popularity follows Zipf(1.1), so tail items
    # appear in few batches and most of the item table stays unchanged between commits.
    true_u = rng.standard_normal((args.users, 8)).astype(np.float32)
    true_i = rng.standard_normal((args.items, 8)).astype(np.float32)
    popularity = 1.0 / np.arange(1, args.items + 1) ** 1.1
    popularity /= popularity.sum()

    class MF(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user_emb = torch.nn.Embedding(args.users, args.dim, sparse=True)
            self.item_emb = torch.nn.Embedding(args.items, args.dim, sparse=True)
            torch.nn.init.normal_(self.user_emb.weight, std=0.1)
            torch.nn.init.normal_(self.item_emb.weight, std=0.1)

        def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
            return (self.user_emb(u) * self.item_emb(i)).sum(-1)

    model = MF().to(dev)
    opt = torch.optim.SparseAdam(model.parameters(), lr=0.01)
    repo = embfmt.Repo(args.repo) if os.path.isdir(args.repo) else embfmt.Repo.init(args.repo)
    identity = {"model": "mf-example", "dim": args.dim, "seed": args.seed}
    item_keys = [f"item-{k}" for k in range(args.items)]
    tracker = embfmt.Tracker(
        repo, {"item_emb": model.item_emb.weight, "user_emb": model.user_emb.weight},
        every=args.every, message="step {step}: loss {loss:.4f}",
        metadata={"run": f"mf-seed{args.seed}", "device": str(dev)},
        identity={"item_emb": identity, "user_emb": identity}, keys={"item_emb": item_keys})

    loss_avg = None
    for step in range(1, args.steps + 1):
        u = rng.integers(0, args.users, args.batch)
        i = rng.choice(args.items, args.batch, p=popularity)
        target = (np.einsum("bk,bk->b", true_u[u], true_i[i]) > 0).astype(np.float32)
        ut, it = torch.from_numpy(u).to(dev), torch.from_numpy(i).to(dev)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(ut, it), torch.from_numpy(target).to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_avg = loss.item() if loss_avg is None else 0.9 * loss_avg + 0.1 * loss.item()
        tracker.step(step, loss=loss_avg)

    # Lineage: the stamp names the exact table version this "model" was trained into.
    summary = {"repo": os.path.abspath(args.repo), "commits": tracker.commits,
               "final_loss": loss_avg}
    if tracker.last_commit is not None:
        summary["item_emb_stamp"] = repo.stamp("item_emb", tracker.last_commit)
    json.dump(summary, sys.stdout)
    print()
    return 0


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


if __name__ == "__main__":
    raise SystemExit(main())
