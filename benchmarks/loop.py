"""A full active-learning run with activebatch's training loop against the BADGE authors' loop.

Each workload runs the paper's protocol (Ash et al., ICLR 2020, section 4: retrain from scratch
every round with Adam, mini-batches of 64, until the training accuracy of an epoch reaches 99%;
evaluate on the test set; select the next batch by margin) three ways, each in a fresh process
on one thread, the two loops interleaved over ``--repeats``:

* ``ours``: ``ab.run`` with ``ab.Learner`` (tensors on the device, mini-batches drawn by index,
  fused Adam, training accuracy counted on the device from the training pass, one forward
  pass for probabilities and embeddings);
* ``authors``: a plain PyTorch implementation of the authors' loop (their ``Strategy.train``,
  ``_train`` and ``predict_prob``): a ``Dataset`` returning one row at a time, a shuffling
  ``DataLoader`` of 64 for training, the epoch's accuracy summed batch by batch with ``.item()``,
  and a ``DataLoader`` of 1,000 for the test set and the unlabeled pool; the same model classes,
  learning rate, seeds and margin selection;
* ``as written``: the same loop as the authors wrote it: for images their MNIST handler, which
  passes every uint8 image through PIL, then ``ToTensor`` and ``Normalize`` (written out here
  without torchvision) once per row per epoch, and for every workload their clamp of each
  gradient to [-0.1, 0.1] after every backward pass. The clamp changes what is trained (so the
  epochs differ more), which is why the plain variant above leaves both out.
* ``bound``: the compute bound of *our* run: its forward and backward FLOPs (counted by
  ``torch.utils.flop_counter`` for one training step and one inference row, times the steps and
  rows the run performed) at the float32 matrix-multiply rate of this machine, measured in the
  same process on 1024 x 1024 products.
* ``bare loop``: the same steps and inference rows priced at what the barest eager PyTorch loop
  takes on the same model (a batch drawn by index, forward, loss, backward, fused Adam step:
  nothing else; convolution weights channels-last), measured in the same process; for the MLPs
  also with the forward and loss compiled by ``torch.compile``. It is what PyTorch itself costs
  per step, the floor for any loop written with it.

The one-time import that PyTorch's optimisers trigger on first use (about 1.5 s) is paid before
the clock starts in every process, so neither loop carries it. Per round means the run's wall
time divided by its rounds (round 0 included); training epochs differ between the loops (their
mini-batch orders differ), so seconds per training epoch are printed too.

Usage::

    python benchmarks/loop.py                       # the three workloads, 2 repeats
    python benchmarks/loop.py --workloads letter-mlp --repeats 1 --json /tmp/loop.json
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import in_child, set_threads, write_json  # noqa: E402

#: name -> (data set, model, initial labels, batch size, rounds)
WORKLOADS: dict[str, tuple[str, str, int, int, int]] = {
    "mnist-mlp": ("mnist-5k", "mlp", 100, 100, 5),
    "letter-mlp": ("letter", "mlp", 100, 100, 3),
    "mnist-cnn": ("mnist-5k", "cnn", 100, 100, 1),
}
TRAIN_BATCH, EVAL_BATCH, TARGET, MAX_EPOCHS = 64, 1000, 0.99, 200


def _setup(workload: str):
    import numpy as np
    import torch

    import activebatch as ab
    from activebatch.learning import models

    set_threads(1)
    name, arch, initial, batch, rounds = WORKLOADS[workload]
    data = ab.datasets.load(name)
    lr = 1e-3 if data.kind == "image" else 1e-4   # the paper's rates, as the grid's lr = "auto"
    # the optimiser's one-time import, paid before any clock starts
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return np, torch, ab, models, data, lr, arch, initial, batch, rounds


def _ours(workload: str, q) -> None:
    np, torch, ab, models, data, lr, arch, initial, batch, rounds = _setup(workload)
    pool = ab.Pool(data.X_train, data.y_train, n_classes=data.n_classes)
    learner = ab.Learner(models.for_dataset(data, arch), lr=lr, batch_size=TRAIN_BATCH, max_epochs=MAX_EPOCHS,
                         target_accuracy=TARGET, device="cpu", eval_batch_size=EVAL_BATCH)
    start = time.perf_counter()
    hist = ab.run(pool, learner, "margin", initial=initial, batch_size=batch, rounds=rounds,
                  test=(data.X_test, data.y_test), seed=0)
    wall = time.perf_counter() - start
    frame = hist.to_frame()
    q.put({"wall": wall, "rounds": len(frame), "epochs": [int(e) for e in frame["train_epochs"]],
           "train_s": float(frame["train_seconds"].sum()), "n_labeled": [int(n) for n in frame["n_labeled"]],
           "accuracy": float(frame["test_accuracy"].iloc[-1]), "n_pool": len(pool), "n_test": len(data.y_test)})


def _authors(workload: str, handler: str, q) -> None:
    np, torch, ab, models, data, lr, arch, initial, batch, rounds = _setup(workload)
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, Dataset

    class Rows(Dataset):
        """One row at a time, as the authors' data handlers give them."""

        def __init__(self, X, Y):
            self.X, self.Y = X, Y

        def __len__(self):
            return len(self.X)

        def __getitem__(self, index):
            return torch.as_tensor(self.X[index]), self.Y[index], index

    class Images(Rows):
        """The authors' MNIST handler: each uint8 image through PIL, then ToTensor and Normalize
        with MNIST's mean and std (written out here without torchvision)."""

        def __getitem__(self, index):
            from PIL import Image

            img = Image.fromarray(self.X[index], mode="L")
            x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)
            return (x - 0.1307) / 0.3081, self.Y[index], index

    as_written = handler == "as_written"
    images = as_written and data.kind == "image"
    Handler = Images if images else Rows
    X, Y = data.X_train, torch.as_tensor(data.y_train).long()
    X_test, Y_test = data.X_test, torch.as_tensor(data.y_test).long()
    if images:   # the images as the authors store them: uint8, 28 x 28
        X, X_test = ((np.round(a * 255.0).astype(np.uint8).reshape(-1, *data.image_shape[1:])) for a in (X, X_test))
    n_pool = len(Y)
    rng = np.random.default_rng(0)
    idxs_lb = np.zeros(n_pool, dtype=bool)
    idxs_lb[rng.choice(n_pool, initial, replace=False)] = True
    net = models.for_dataset(data, arch)

    def predict_prob(Xs, Ys):
        loader = DataLoader(Handler(Xs, Ys), shuffle=False, batch_size=EVAL_BATCH)
        net.eval()
        probs = torch.zeros(len(Ys), data.n_classes)
        with torch.no_grad():
            for x, _y, idxs in loader:
                probs[idxs] = F.softmax(net(x), dim=1)
        return probs

    def train(seed):
        torch.manual_seed(seed)
        for m in net.modules():
            if m is not net and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=0)
        lb = np.flatnonzero(idxs_lb)
        loader = DataLoader(Handler(X[lb], Y[lb]), shuffle=True, batch_size=TRAIN_BATCH)
        acc, epoch = 0.0, 0
        while acc < TARGET and epoch < MAX_EPOCHS:
            net.train()
            correct = 0.0
            for x, y, _idxs in loader:
                opt.zero_grad()
                out = net(x)
                loss = F.cross_entropy(out, y)
                correct += torch.sum((torch.max(out, 1)[1] == y).float()).data.item()
                loss.backward()
                if as_written:   # "clamp gradients, just in case"
                    for p in filter(lambda p: p.grad is not None, net.parameters()):
                        p.grad.data.clamp_(min=-.1, max=.1)
                opt.step()
            acc = correct / len(lb)
            epoch += 1
        return epoch

    start = time.perf_counter()
    epochs, train_s, labeled = [], 0.0, []
    for t in range(rounds + 1):
        if t > 0:   # margin: the smallest gap between the two most likely classes
            ul = np.flatnonzero(~idxs_lb)
            probs = predict_prob(X[ul], Y[ul])
            top2 = probs.sort(dim=1, descending=True)[0][:, :2]
            idxs_lb[ul[(top2[:, 0] - top2[:, 1]).numpy().argsort()[:batch]]] = True
        t0 = time.perf_counter()
        epochs.append(train(t))
        train_s += time.perf_counter() - t0
        labeled.append(int(idxs_lb.sum()))
        accuracy = float((predict_prob(X_test, Y_test).argmax(1) == Y_test).float().mean())
    wall = time.perf_counter() - start
    q.put({"wall": wall, "rounds": rounds + 1, "epochs": epochs, "train_s": train_s, "n_labeled": labeled,
           "accuracy": accuracy})


def _bound(workload: str, ours: dict, q) -> None:
    np, torch, ab, models, data, lr, arch, initial, batch, rounds = _setup(workload)
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    net = models.for_dataset(data, arch)
    x = torch.as_tensor(data.X_train[:TRAIN_BATCH]).float()
    y = torch.as_tensor(data.y_train[:TRAIN_BATCH]).long()
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(net(x), y).backward()
    step_flops = fc.get_total_flops() / TRAIN_BATCH   # per training row
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x)
    row_flops = fc.get_total_flops() / TRAIN_BATCH    # per inference row
    trained_rows = sum(e * n for e, n in zip(ours["epochs"], ours["n_labeled"]))
    # every round scores the unlabeled pool (not round 0) and the test set
    inferred = sum(ours["n_pool"] - n for n in ours["n_labeled"][:-1]) + ours["rounds"] * ours["n_test"]
    flops = trained_rows * step_flops + inferred * row_flops
    a = torch.randn(1024, 1024)
    a @ a
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    rate = 2 * 1024 ** 3 / best
    steps = sum(e * math.ceil(n / TRAIN_BATCH) for e, n in zip(ours["epochs"], ours["n_labeled"]))
    bare = _bare_seconds(torch, net, data, lr)
    out = {"flops": flops, "gemm_gflops": rate / 1e9, "seconds": flops / rate, "steps": steps,
           "bare_step_s": bare["step"], "bare_row_s": bare["row"],
           "bare_seconds": steps * bare["step"] + inferred * bare["row"]}
    if arch == "mlp":   # compiling the CNN's step takes minutes on one core
        out["compiled_step_s"] = _bare_seconds(torch, net, data, lr, compiled=True)["step"]
    q.put(out)


def _bare_seconds(torch, net, data, lr, *, compiled: bool = False, steps: int = 1000) -> dict[str, float]:
    """Seconds per training step and per inference row of the bare PyTorch loop on the same model:
    a mini-batch drawn by index, forward, cross-entropy, backward and a fused Adam step, nothing
    else (no epochs, no accuracy, no bookkeeping); the least of three timings. ``compiled`` runs
    the forward and loss through ``torch.compile`` (its compilation is paid before the clock)."""
    from torch.nn import functional as F

    X = torch.as_tensor(data.X_train[:1000]).float()
    y = torch.as_tensor(data.y_train[:1000]).long()
    if any(p.dim() == 4 for p in net.parameters()):   # convolutions: the faster NHWC layout, as ours uses
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)

    def loss_of(xb, yb):
        return F.cross_entropy(net(xb), yb)

    f = torch.compile(loss_of) if compiled else loss_of
    gen = torch.Generator().manual_seed(0)

    def train(n: int) -> float:
        idx = torch.randint(0, X.shape[0], (n, TRAIN_BATCH), generator=gen)
        t0 = time.perf_counter()
        for b in idx:
            loss = f(X[b], y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) / n

    train(50)
    step = min(train(steps) for _ in range(3))
    with torch.inference_mode():
        net(X)
        t_rows = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            net(X)
            t_rows = min(t_rows, time.perf_counter() - t0)
    return {"step": step, "row": t_rows / X.shape[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: " + ", ".join(WORKLOADS))
    ap.add_argument("--repeats", type=int, default=2, help="interleaved runs of each loop (median reported)")
    ap.add_argument("--json", default=str(Path(__file__).with_suffix(".json")), help="where to write the results")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    print(f"{'workload':<11} {'ours s/round':>12} {'authors s/round':>15} {'ratio':>6} {'ours s/epoch':>12} "
          f"{'authors s/epoch':>15} {'ratio':>6} {'bound s/round':>13} {'ours/bound':>10}")
    for w in args.workloads.split(","):
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
        ours, authors, written = [], [], []
        for _ in range(args.repeats):
            ours.append(in_child(_ours, w))
            authors.append(in_child(_authors, w, "plain"))
            written.append(in_child(_authors, w, "as_written"))
        bound = in_child(_bound, w, ours[0])

        def per_round(rs):
            return statistics.median(r["wall"] / r["rounds"] for r in rs)

        def per_epoch(rs):
            return statistics.median(r["train_s"] / sum(e * n for e, n in zip(r["epochs"], r["n_labeled"]))
                                     * statistics.mean(r["n_labeled"]) for r in rs)

        row = {"workload": w, "data": WORKLOADS[w][0], "model": WORKLOADS[w][1], "rounds": ours[0]["rounds"],
               "ours_s_per_round": per_round(ours), "authors_s_per_round": per_round(authors),
               "ours_s_per_epoch": per_epoch(ours), "authors_s_per_epoch": per_epoch(authors),
               "ours_epochs": ours[0]["epochs"], "authors_epochs": authors[0]["epochs"],
               "ours_accuracy": ours[0]["accuracy"], "authors_accuracy": authors[0]["accuracy"],
               "bound_s_per_round": bound["seconds"] / ours[0]["rounds"], "gemm_gflops": bound["gemm_gflops"]}
        row["ratio_round"] = row["authors_s_per_round"] / row["ours_s_per_round"]
        row["ratio_epoch"] = row["authors_s_per_epoch"] / row["ours_s_per_epoch"]
        row["ours_over_bound"] = ours[0]["wall"] / bound["seconds"]
        row["steps"] = bound["steps"]
        row["ours_s_per_step"] = ours[0]["train_s"] / bound["steps"]
        row["bare_s_per_step"] = bound["bare_step_s"]
        row["bare_s_per_round"] = bound["bare_seconds"] / ours[0]["rounds"]
        row["ours_over_bare"] = ours[0]["wall"] / bound["bare_seconds"]
        row["compiled_s_per_step"] = bound.get("compiled_step_s")
        row["written_s_per_round"] = per_round(written)
        row["written_s_per_epoch"] = per_epoch(written)
        row["written_epochs"] = written[0]["epochs"]
        row["ratio_round_written"] = row["written_s_per_round"] / row["ours_s_per_round"]
        row["ratio_epoch_written"] = row["written_s_per_epoch"] / row["ours_s_per_epoch"]
        rows.append(row)
        print(f"{w:<11} {row['ours_s_per_round']:>12.2f} {row['authors_s_per_round']:>15.2f} "
              f"{row['ratio_round']:>5.2f}x {row['ours_s_per_epoch']:>12.3f} {row['authors_s_per_epoch']:>15.3f} "
              f"{row['ratio_epoch']:>5.2f}x {row['bound_s_per_round']:>13.2f} {row['ours_over_bound']:>9.2f}x"
              + f"   as written: {row['written_s_per_round']:.2f} s/round ({row['ratio_round_written']:.2f}x), "
                f"{row['written_s_per_epoch']:.3f} s/epoch ({row['ratio_epoch_written']:.2f}x)"
              + f"   per step: ours {row['ours_s_per_step'] * 1e6:.0f} us, bare loop {row['bare_s_per_step'] * 1e6:.0f}"
                f" us" + (f", compiled {row['compiled_s_per_step'] * 1e6:.0f} us" if row["compiled_s_per_step"] else "")
              + f"; ours / bare loop per round {row['ours_over_bare']:.2f}x", flush=True)
    write_json(args.json, {"threads": 1, "repeats": args.repeats, "rows": rows})
    print("\n" + markdown(rows))
    return 0


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README's table of these measurements."""
    lines = ["| workload | ours s/round | plain authors' loop s/round (speed-up) | as written s/round (speed-up) "
             "| ours s/epoch | plain s/epoch (speed-up) | as written s/epoch (speed-up) | compute bound s/round "
             "| ours / bound | µs per step: ours, bare loop, bare compiled | ours / bare loop, per round |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} {r['model'].upper()}, {r['rounds']} rounds | {r['ours_s_per_round']:.2f} | "
                     f"{r['authors_s_per_round']:.2f} ({r['ratio_round']:.1f}x) | "
                     f"{r['written_s_per_round']:.2f} ({r['ratio_round_written']:.1f}x) | "
                     f"{r['ours_s_per_epoch']:.4f} | {r['authors_s_per_epoch']:.4f} ({r['ratio_epoch']:.1f}x) | "
                     f"{r['written_s_per_epoch']:.4f} ({r['ratio_epoch_written']:.1f}x) | "
                     f"{r['bound_s_per_round']:.2f} | {r['ours_over_bound']:.1f}x | "
                     f"{r['ours_s_per_step'] * 1e6:.0f}, {r['bare_s_per_step'] * 1e6:.0f}, "
                     + (f"{r['compiled_s_per_step'] * 1e6:.0f}" if r.get("compiled_s_per_step") else "-")
                     + f" | {r['ours_over_bare']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
