"""Few-shot adaptation of DeepMind's I3D to labelled footage: zero-shot vs linear probe vs fine-tuning the last block.

From the pretrained I3D (``i3d_kinetics400``) and a folder of clips with a CSV ``file,label`` (a header row and
extra columns are fine; ``../shared/data/realclips`` by default), it keeps the classes with at least
``--min-per-class`` clips, splits each class into train/test clips and compares, on the same test clips:

(a) zero-shot: the Kinetics head restricted to the kept classes (labels matched to Kinetics class names as
    ``actionrec eval --list labels.csv`` matches them; not possible for a class Kinetics lacks);
(b) a linear probe: a new logistic-regression head on frozen pooled I3D features (1024-d), trained with LBFGS;
(c) a fine-tune of the last Inception block (``Mixed_5c``) and a new head (random, as ``replace_head`` makes it), a
    few epochs of Adam (1e-4 for the block, 1e-3 for the head).

Every clip is decoded and preprocessed once with the model's own pipeline (``model.meta.preprocess``, the sampling of
``actionrec predict``), and run once through the frozen layers up to ``Mixed_5b`` (the expensive part, cached); (b)
and (c) then train on the cache: (c) with the BatchNorm statistics of ``Mixed_5c`` kept (batches of a few clips), no
augmentation but the views of each clip (``--mirror`` adds mirrored views). Splits (``--split``): ``halves`` trains on
the first half of each class (in CSV order, rounded up) and tests on the rest, then the reverse (two trainings);
``loo`` trains once per clip on every other clip and tests on it. Every kept clip is a test clip exactly once.

    python examples/finetune_realclips.py                                   # realclips, halves both ways
    python examples/finetune_realclips.py --clips my/videos --manifest my/labels.csv --split halves --save mine.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
REALCLIPS = ROOT.parent / "shared" / "data" / "realclips"
TUNE = "Mixed_5c"  # the last Inception block: fine-tuned in (c); everything before it is frozen and cached

log = logging.getLogger("finetune_realclips")


@dataclass
class Clip:
    """One labelled clip and what the frozen layers made of it."""

    file: str
    label: str
    path: Path
    target: int = -1  # index among the kept classes
    cached: list[torch.Tensor] = field(default_factory=list)  # Mixed_5b outputs, one per view (mirrored views after)
    n_views: int = 0  # unflipped views (the test views)


def read_clips(manifest: Path, folder: Path, min_per_class: int) -> tuple[list[Clip], list[str]]:
    """Clips of the classes with at least ``min_per_class`` rows, and those classes (in order of first appearance)."""
    from actionrec.data.annotations import read_label_csv

    rows = read_label_csv(manifest)
    counts = Counter(label for _, label, _ in rows)
    classes = [c for c in dict.fromkeys(label for _, label, _ in rows) if counts[c] >= min_per_class]
    if len(classes) < 2:
        sys.exit(f"{manifest}: fewer than 2 classes with >= {min_per_class} clips ({dict(counts)})")
    clips = []
    for file, label, _ in rows:
        if label in classes:
            path = folder / file if (folder / file).exists() else manifest.parent / file
            clips.append(Clip(file, label, path, classes.index(label)))
    return clips, classes


def pool(f: torch.Tensor) -> torch.Tensor:
    """I3D's pooling before its 1×1×1 classifier: a 2×7×7 average (stride 1, valid), then the mean over positions."""
    kernel = (min(2, f.shape[2]), min(7, f.shape[3]), min(7, f.shape[4]))
    return F.avg_pool3d(f, kernel, stride=1).mean(dim=(2, 3, 4))


def classify(head: nn.Conv3d, pooled: torch.Tensor) -> torch.Tensor:
    """The 1×1×1 classifier convolution on pooled ``(N, 1024)`` features (I3D averages its logits linearly)."""
    return F.linear(pooled, head.weight.flatten(1), head.bias)


def trunk_of(model: nn.Module) -> nn.Sequential:
    """The frozen layers: the model's stages before :data:`TUNE`, in order."""
    layers = []
    for name, child in model.named_children():
        if name == TUNE:
            return nn.Sequential(*layers)
        layers.append(child)
    raise SystemExit(f"{type(model).__name__} has no {TUNE} block (this example fine-tunes I3D)")


def cache_views(model: nn.Module, clips: list[Clip], args: argparse.Namespace) -> float:
    """Decode every clip with the model's pipeline and run its views (``--mirror``: and their mirror images) through the trunk."""
    from actionrec.data.pipeline import ClipPipeline

    overrides = {"clip_len": args.frames} if args.frames else {}
    pipeline = ClipPipeline.from_meta(model.meta, num_clips=args.views or None, **overrides)
    log.info("preprocessing: %s", pipeline)
    trunk, t0 = trunk_of(model), time.perf_counter()
    with torch.inference_mode():
        for i, clip in enumerate(clips):
            views = pipeline.load(clip.path).tensor  # (V, C, T, H, W)
            if i == 0:  # the cached path gives the model's own logits
                ref = model(views[:1])
                got = classify(model.get_classifier(), pool(getattr(model, TUNE)(trunk(views[:1]))))
                if not torch.allclose(ref, got, atol=1e-3, rtol=1e-3):
                    raise SystemExit(f"cached path differs from the model by {float((ref - got).abs().max()):.3g}")
            batch = torch.cat([views, views.flip(-1)]) if args.mirror else views
            clip.cached = list(torch.cat([trunk(batch[j : j + 2]) for j in range(0, len(batch), 2)]))
            clip.n_views = len(views)
            log.info("%2d/%d %s: %d views%s (%.0f s)", i + 1, len(clips), clip.file, len(views),
                     " + mirrored" if args.mirror else "", time.perf_counter() - t0)
    return time.perf_counter() - t0


def folds(clips: list[Clip], split: str) -> list[tuple[list[int], list[int]]]:
    """(train, test) clip indices: leave-one-out, or each class's first half / second half and the reverse."""
    if split == "loo":
        return [([j for j in range(len(clips)) if j != i], [i]) for i in range(len(clips))]
    first, second = [], []
    for c in sorted({clip.target for clip in clips}):
        members = [i for i, clip in enumerate(clips) if clip.target == c]
        half = (len(members) + 1) // 2
        first += members[:half]
        second += members[half:]
    return [(first, second), (second, first)]


def stack(clips: list[Clip], idx: list[int], *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached views of ``clips[idx]`` (train: with the mirrored views) and their targets."""
    xs, ys = [], []
    for i in idx:
        views = clips[i].cached if train else clips[i].cached[: clips[i].n_views]
        xs += views
        ys += [clips[i].target] * len(views)
    return torch.stack(xs), torch.tensor(ys)


def video_scores(logits: torch.Tensor, clips: list[Clip], idx: list[int]) -> torch.Tensor:
    """Mean softmax over each test clip's views (as ``predict`` and ``eval`` score a video)."""
    probs, out, k = logits.softmax(-1), [], 0
    for i in idx:
        out.append(probs[k : k + clips[i].n_views].mean(0))
        k += clips[i].n_views
    return torch.stack(out)


def train_probe(x: torch.Tensor, y: torch.Tensor, n: int, l2: float) -> nn.Linear:
    """A logistic-regression head (L2-regularised) fitted with LBFGS."""
    torch.manual_seed(0)
    head = nn.Linear(x.shape[1], n)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(x), y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def train_block(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, args: argparse.Namespace) -> nn.Module:
    """A copy of the model with a new ``n``-class head, :data:`TUNE` and the head trained on cached views."""
    from actionrec.models.finetune import freeze, replace_head

    torch.manual_seed(0)
    ft = replace_head(copy.deepcopy(model), n)
    freeze(ft, [TUNE, "logits"])
    ft.eval()  # BatchNorm statistics kept: batches of a few clips would only add noise to them
    block, head = getattr(ft, TUNE), ft.get_classifier()
    opt = torch.optim.Adam([{"params": block.parameters(), "lr": args.block_lr}, {"params": head.parameters(), "lr": args.lr}])
    for _ in range(args.epochs):
        for b in torch.randperm(len(x)).split(args.batch_size):
            opt.zero_grad()
            F.cross_entropy(classify(head, pool(block(x[b]))), y[b]).backward()
            opt.step()
    return ft


def run_fold(model: nn.Module, clips: list[Clip], train: list[int], test: list[int], kinetics_idx: list[int] | None,
             n: int, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """Video scores ``(len(test), n)`` of each method (``zero-shot-400``: argmax index over Kinetics) for one fold."""
    block, head = getattr(model, TUNE), model.get_classifier()
    x_test, _ = stack(clips, test, train=False)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        f_test = pool(block(x_test))
        if kinetics_idx is not None:
            logits = classify(head, f_test)
            out["zero-shot"] = video_scores(logits[:, kinetics_idx], clips, test)
            out["zero-shot-400"] = video_scores(logits, clips, test)
        x_train, y_train = stack(clips, train, train=True)
        f_train = pool(block(x_train))
    probe = train_probe(f_train, y_train, n, args.l2)
    with torch.no_grad():
        out["linear probe"] = video_scores(probe(f_test), clips, test)
    ft = train_block(model, x_train, y_train, n, args)
    with torch.no_grad():
        out["fine-tune"] = video_scores(classify(ft.get_classifier(), pool(getattr(ft, TUNE)(x_test))), clips, test)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="i3d_kinetics400", help="pretrained I3D: weight-set name or checkpoint")
    ap.add_argument("--clips", type=Path, default=REALCLIPS / "clips", help="folder of the clips (default realclips/clips)")
    ap.add_argument("--manifest", type=Path, default=REALCLIPS / "manifest.csv", help="CSV file,label (default realclips)")
    ap.add_argument("--min-per-class", type=int, default=2, help="keep classes with at least this many clips (default 2)")
    ap.add_argument("--split", choices=["halves", "loo"], default="halves",
                    help="halves: 2 trainings (default); loo: one per clip (~7x the training time)")
    ap.add_argument("--frames", type=int, default=None, help="clip length (default: the model's, 64)")
    ap.add_argument("--views", type=int, default=0, help="clips per video (0: from its length, up to 10, as predict)")
    ap.add_argument("--mirror", action="store_true", help="also train on mirrored views (twice the frozen-layer time)")
    ap.add_argument("--epochs", type=int, default=8, help="fine-tune epochs (default 8)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the new head (default 1e-3)")
    ap.add_argument("--block-lr", type=float, default=1e-4, help=f"Adam learning rate of {TUNE} (default 1e-4)")
    ap.add_argument("--l2", type=float, default=1e-3, help="linear probe: L2 penalty on the weights (default 1e-3)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    ap.add_argument("--save", type=Path, help="also fine-tune on every kept clip and save the model here (.safetensors)")
    ap.add_argument("--json", type=Path, help="write the results here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from actionrec.data.annotations import label_matcher
    from actionrec.factory import load_model
    from actionrec.runtime import host_info, resolve_runtime

    runtime = resolve_runtime(threads=args.threads).apply()
    t_start = time.perf_counter()
    clips, classes = read_clips(args.manifest, args.clips, args.min_per_class)
    model = load_model(args.model)
    match = label_matcher(model.meta.class_names or [])
    kinetics = [match(c) for c in classes]
    kinetics_idx = kinetics if None not in kinetics else None
    print(f"{len(clips)} clips of {len(classes)} classes: " + ", ".join(f"{c} ×{sum(k.label == c for k in clips)}" for c in classes))
    if kinetics_idx is None:
        print("zero-shot: n/a (not a class of the model: " + ", ".join(c for c, k in zip(classes, kinetics) if k is None) + ")")
    t_cache = cache_views(model, clips, args)
    t0 = time.perf_counter()
    results: dict[str, list[tuple[Clip, str, bool]]] = {}  # method -> (clip, predicted class, right)
    for train, test in folds(clips, args.split):
        for method, scores in run_fold(model, clips, train, test, kinetics_idx, len(classes), args).items():
            names = model.meta.class_names if method == "zero-shot-400" else classes
            for i, s in zip(test, scores):
                truth = names[kinetics_idx[clips[i].target]] if method == "zero-shot-400" else clips[i].label
                guess = names[int(s.argmax())]
                results.setdefault(method, []).append((clips[i], guess, guess == truth))
    t_train = time.perf_counter() - t0
    report(args, classes, results, runtime.threads, host_info(), (t_cache, t_train, time.perf_counter() - t_start))
    if args.save:
        save_all(model, clips, classes, args)
    return 0


METHODS = {
    "zero-shot": "(a) zero-shot: Kinetics head restricted to the {n} classes",
    "zero-shot-400": "(a') zero-shot: all Kinetics classes (for reference)",
    "linear probe": "(b) linear probe: new head on frozen pooled features (LBFGS)",
    "fine-tune": "(c) fine-tune " + TUNE + " + new head ({epochs} epochs, Adam)",
}


def report(args: argparse.Namespace, classes: list[str], results: dict[str, list[tuple[Clip, str, bool]]], threads: int,
           host: dict, seconds: tuple[float, float, float]) -> None:
    """The table, each method's misses, the timings; ``--json`` with every prediction."""
    split = {"loo": "leave-one-out", "halves": "first half of each class / second half, both ways"}[args.split]
    split += "; mirrored views in training" if args.mirror else ""
    n = len(next(iter(results.values())))
    print(f"\nsplit: {split}; each of the {n} clips is a test clip once\n\n| method | top-1 |\n|---|---|")
    for method, rows in results.items():
        k = sum(ok for _, _, ok in rows)
        print(f"| {METHODS[method].format(n=len(classes), epochs=args.epochs)} | {k}/{n} ({100 * k / n:.0f}%) |")
    for method, rows in results.items():
        misses = [f"{c.file} -> {guess!r}" for c, guess, ok in rows if not ok]
        print(f"{method} misses: {'; '.join(misses) or 'none'}")
    t_cache, t_train, total = seconds
    print(f"\ntime: {t_cache:.0f} s decoding + frozen layers (once), {t_train:.0f} s training and scoring, {total:.0f} s in all; "
          f"{host['cpu']}, {threads} threads, torch {host['torch']}")
    if args.json:
        record = {"command": " ".join(["python", *sys.argv]), "classes": classes, "split": args.split, "host": host,
                  "threads": threads, "seconds": dict(zip(("cache", "train", "total"), seconds)),
                  "methods": {m: [{"file": c.file, "label": c.label, "predicted": g, "right": ok} for c, g, ok in rows]
                              for m, rows in results.items()}}
        args.json.write_text(json.dumps(record, indent=1) + "\n")


def save_all(model: nn.Module, clips: list[Clip], classes: list[str], args: argparse.Namespace) -> None:
    """Fine-tune on every kept clip and save a checkpoint ``actionrec predict`` can use."""
    from actionrec.checkpoint import save_model

    x, y = stack(clips, list(range(len(clips))), train=True)
    ft = train_block(model, x, y, len(classes), args)
    ft.meta.class_names = list(classes)
    if args.frames:
        ft.meta.preprocess.clip_len = args.frames
    print(f"saved {save_model(ft, args.save)} ({len(classes)} classes; try `actionrec predict {args.save} VIDEO`)")


if __name__ == "__main__":
    sys.exit(main())
