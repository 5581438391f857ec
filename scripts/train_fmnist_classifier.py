#!/usr/bin/env python
"""Train the Fashion-MNIST classifier behind ``ganzoo eval --extractor fmnist``.

    .venv/bin/python scripts/train_fmnist_classifier.py [--data ../shared/datasets/fashion-mnist]
        [--epochs 4] [--out ganzoo/assets/fmnist_classifier.safetensors]

Data come through ganzoo's own loader (``ganzoo.data.load_dataset``, 28 px, gray);
the model is :class:`ganzoo.metrics.fmnist.FmnistClassifier`. Augmentation: random
horizontal flips and +-2 px shifts. Adam with a one-cycle schedule, seeded. Prints
the test accuracy on the 10,000-image test split and stores it (and the recipe) in
the safetensors metadata. A few CPU minutes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganzoo.data import load_dataset  # noqa: E402
from ganzoo.io import atomic_path  # noqa: E402
from ganzoo.metrics.fmnist import WEIGHTS, FmnistClassifier  # noqa: E402


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()  # one shift per batch: cheap
    return pad[:, :, dy:dy + 28, dx:dx + 28]


@torch.no_grad()
def evaluate(model, ds, batch=1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(ds), batch):
        x, y = ds.batch(torch.arange(i, min(i + batch, len(ds))))
        correct += int((model(x)[1].argmax(1) == y).sum())
    return correct / len(ds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "fashion-mnist"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(WEIGHTS))
    ap.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a busy machine)")
    ap.add_argument("--max-steps", type=int, help="stop each epoch early (a smoke test of the script)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = load_dataset(f"fashion-mnist:{args.data}", image_size=28, channels=1, split="train")
    test = load_dataset(f"fashion-mnist:{args.data}", image_size=28, channels=1, split="test")
    model = FmnistClassifier()
    steps_per_epoch = len(train) // args.batch_size
    if args.max_steps:
        steps_per_epoch = min(steps_per_epoch, args.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            x, y = train.batch(perm[s * args.batch_size:(s + 1) * args.batch_size])
            loss = F.cross_entropy(model(augment(x, gen))[1], y, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc = evaluate(model, test)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / steps_per_epoch:.4f}, test accuracy {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = evaluate(model, test)
    train_acc = evaluate(model, train.subset(torch.arange(10000)))
    from safetensors.torch import save_file

    meta = {
        "test_accuracy": f"{acc:.4f}",
        "train_accuracy_first10k": f"{train_acc:.4f}",
        "recipe": json.dumps({"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                              "seed": args.seed, "optimizer": "AdamW+OneCycle", "augment": "flip, +-2px shift",
                              "label_smoothing": 0.05, "threads": torch.get_num_threads()}),
        "command": "python scripts/train_fmnist_classifier.py " + " ".join(sys.argv[1:]),
        "data": "Fashion-MNIST train (60,000) via ganzoo.data.load_dataset, 28x28 gray; "
                "accuracy on the 10,000-image test split",
        "torch": torch.__version__,
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(args.out) as tmp:
        save_file(state, str(tmp), metadata=meta)
    size = Path(args.out).stat().st_size
    print(f"test accuracy {acc:.4f} (10,000 test images); train accuracy (first 10k) {train_acc:.4f}; "
          f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.time() - t0:.0f} s")
    return 0 if acc >= 0.90 else 1


if __name__ == "__main__":
    sys.exit(main())
