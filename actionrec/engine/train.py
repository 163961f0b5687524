"""The training loop: one process, or one of many under ``torchrun`` (DistributedDataParallel).

Outputs in ``cfg.output_dir``: ``config.yaml`` (resolved), ``metrics.jsonl``/``metrics.csv``,
``checkpoints/epoch_XXXX.safetensors`` (full training states, last ``keep_last`` kept),
``best.safetensors`` (best validation video top-1), ``last.safetensors`` and ``curves.png``.
A training state also loads with :func:`actionrec.load_model`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from actionrec.checkpoint import CheckpointError, load_state, load_state_dict_checked, read_meta, save_model, save_state
from actionrec.config import Config, config_to_dict, save_config
from actionrec.engine import distributed as D
from actionrec.runtime import Runtime
from actionrec.engine.data import build_dataset, eval_loader, load_split, preprocess_changes, train_loader
from actionrec.engine.logger import MetricsLogger, read_records
from actionrec.engine.optim import LRSchedule, build_optimizer
from actionrec.engine.state import (
    epoch_checkpoints, get_rng_state, latest_checkpoint, prune_checkpoints, seed_everything, set_rng_state,
)
from actionrec.errors import LockedError, TrainingError, UsageError
from actionrec.io import output_lock, remove_stale_temporaries

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "build_model", "train", "run_eval_pass"]


@dataclass
class TrainResult:
    output_dir: Path
    epochs_done: int
    best_top1: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def build_model(cfg: Config, class_names: list[str]) -> nn.Module:
    """The model of ``cfg.model`` with a ``len(class_names)``-class head and complete ``model.meta``."""
    from actionrec.factory import create_model

    num_classes = cfg.model.num_classes or len(class_names)
    if num_classes != len(class_names):
        raise UsageError(f"model.num_classes is {num_classes} but the dataset has {len(class_names)} classes")
    kwargs: dict[str, Any] = {}
    if cfg.model.widths is not None:
        kwargs["widths"] = tuple(cfg.model.widths)
    if cfg.model.dropout is not None:
        kwargs["dropout"] = cfg.model.dropout
    if cfg.data.modality == "flow":
        kwargs["in_channels"] = 2
    model = create_model(cfg.model.arch, num_classes=num_classes, pretrained=cfg.model.pretrained, **kwargs)
    meta = copy.deepcopy(model.meta)
    if meta.modality != cfg.data.modality:
        raise UsageError(f"model {cfg.model.arch} ({cfg.model.pretrained or 'new'}) takes {meta.modality} input, data.modality is {cfg.data.modality}")
    meta.num_classes = num_classes
    meta.class_names = list(class_names)
    meta.preprocess = meta.preprocess.override(arch=meta.arch, warn=False, **preprocess_changes(cfg.data))
    if cfg.model.pretrained:
        meta.source = f"fine-tuned from {cfg.model.pretrained}"
    model.meta = meta
    if cfg.model.trainable:
        from actionrec.models.finetune import freeze

        names = freeze(model, list(cfg.model.trainable))
        log.info("fine-tuning %d parameter tensors (prefixes %s)", len(names), cfg.model.trainable)
    return model


@torch.no_grad()
def run_eval_pass(model: nn.Module, loader: Any, device: torch.device, *, channels_last: bool = False) -> tuple[list[int], list[Any], list[int]]:
    """Forward every eval batch ``(views (B,V,C,T,H,W), labels, indices)``; return indices, ``(V,K)`` logits, labels."""
    model.eval()
    idx_out, logit_out, label_out = [], [], []
    for batch in loader:
        batch, _ = batch
        if batch is None:
            continue
        views, labels, indices = batch
        b, v = views.shape[:2]
        x = views.flatten(0, 1).to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        logits = model(x).float().reshape(b, v, -1).cpu()
        idx_out += [int(i) for i in indices]
        logit_out += list(logits.numpy())
        label_out += [int(i) for i in labels]
    return idx_out, logit_out, label_out


def _evaluate(model: nn.Module, loader: Any, info: D.DistInfo, n_videos: int, num_classes: int, channels_last: bool) -> dict[str, float]:
    import numpy as np

    from actionrec.engine.metrics import summarize

    idx, logits, labels = run_eval_pass(model, loader, info.device, channels_last=channels_last)
    parts = D.all_gather_objects((idx, logits, labels))
    seen: dict[int, tuple[Any, int]] = {}
    for pidx, plog, plab in parts:
        for i, lg, lb in zip(pidx, plog, plab):
            seen[i] = (lg, lb)
    if not seen:
        return {}
    order = sorted(seen)
    m = summarize(np.stack([seen[i][0] for i in order]), np.array([seen[i][1] for i in order]), num_classes)
    skipped = n_videos - len(order)
    out = {"val_clip_top1": m.clip_top1, "val_video_top1": m.video_top1, "val_video_top5": m.video_top5, "val_mean_class_acc": m.mean_class_accuracy}
    if skipped:
        out["val_skipped"] = skipped
    return out


def _find_resume(cfg: Config, resume: str | bool) -> Path | None:
    if not resume:
        return None
    if resume is True or resume == "auto":
        path = latest_checkpoint(Path(cfg.output_dir) / "checkpoints")
        if path is None:
            raise CheckpointError(f"--resume: no checkpoint in {Path(cfg.output_dir) / 'checkpoints'}")
        return path
    path = Path(resume)
    if not path.is_file():
        raise CheckpointError(f"--resume: no such checkpoint {path}")
    return path


def train(cfg: Config, *, resume: str | bool = False, stop_after_epoch: int | None = None) -> TrainResult:
    """Train ``cfg``; ``resume`` is a training-state path or True for the newest in ``output_dir``.

    ``stop_after_epoch`` ends the run after that epoch (as if killed there, for tests).
    """
    info = D.init_distributed(cfg.train.device)
    try:
        with _own_output_dir(Path(cfg.output_dir), info):
            return _train(cfg, info, resume, stop_after_epoch)
    finally:
        D.shutdown()


@contextlib.contextmanager
def _own_output_dir(out: Path, info: D.DistInfo) -> Any:
    """Rank 0 locks ``out`` for the run (a second run, or ``--resume`` of a live one, stops naming the holder)
    and removes temporaries that a killed run left there; every rank stops if the lock is taken."""
    with contextlib.ExitStack() as stack:
        refused = None
        if info.is_main:
            try:
                stack.enter_context(output_lock(out, purpose="train"))
            except LockedError as e:
                refused = str(e)
        refused = D.all_gather_objects(refused)[0]  # rank 0's answer, so that no rank waits for the others
        if refused:
            raise LockedError(refused)
        if info.is_main:
            for path in remove_stale_temporaries(out):
                log.warning("removed %s: a temporary file left by an interrupted run", path)
        yield


def _diverged(what: str, ckpt_dir: Path) -> None:
    last = latest_checkpoint(ckpt_dir)
    keep = f"; the last good state is {last}" if last else ""
    raise TrainingError(f"training diverged ({what}): lower optimizer.lr or set train.grad_clip{keep}")


def _train(cfg: Config, info: D.DistInfo, resume: str | bool, stop_after_epoch: int | None) -> TrainResult:
    from tqdm import tqdm

    if cfg.train.threads:
        Runtime(device=str(info.device), threads=cfg.train.threads).apply()  # threads: the one owner is actionrec.runtime
    out = Path(cfg.output_dir)
    ckpt_dir = out / "checkpoints"
    resume_path = _find_resume(cfg, resume)
    seed_everything(cfg.seed + info.rank)

    train_samples, class_names = load_split(cfg.data, "train")
    val_samples: list[Any] = []
    if cfg.eval.every > 0:
        val_samples, val_names = load_split(cfg.data, "val")
        if val_names != class_names:
            raise UsageError(f"training and validation class lists differ ({len(class_names)} vs {len(val_names)} classes)")
    model = build_model(cfg, class_names)
    meta = model.meta
    if resume_path is not None:
        old = read_meta(resume_path)
        if (old.arch, old.num_classes) != (meta.arch, meta.num_classes):
            raise CheckpointError(f"{resume_path} holds a {old.arch} with {old.num_classes} classes; the config builds a {meta.arch} with {meta.num_classes}")
    if cfg.model.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    model.to(info.device)
    if info.distributed and cfg.model.sync_bn:
        if info.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            log.warning("model.sync_bn ignored: SyncBatchNorm needs CUDA")
    net: nn.Module = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[info.device.index] if info.device.type == "cuda" else None)

    train_ds = build_dataset(train_samples, meta.preprocess, cfg.data, train=True, seed=cfg.seed)
    val_dl = None
    if val_samples:
        val_ds = build_dataset(val_samples, meta.preprocess, cfg.data, train=False, num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops, seed=cfg.seed)
        val_dl = eval_loader(val_ds, batch_size=cfg.eval.batch_size or cfg.data.batch_size, num_workers=cfg.data.num_workers, rank=info.rank, world_size=info.world_size)
    accum = cfg.train.accumulate_steps
    batches = math.ceil(math.ceil(len(train_ds) / info.world_size) / cfg.data.batch_size)
    if cfg.train.max_steps_per_epoch:
        batches = min(batches, cfg.train.max_steps_per_epoch * accum)
    steps_per_epoch = math.ceil(batches / accum)
    optimizer = build_optimizer(list(model.parameters()), cfg.optimizer)
    schedule = LRSchedule(cfg.optimizer.lr, cfg.schedule, epochs=cfg.train.epochs, steps_per_epoch=steps_per_epoch)
    use_amp = cfg.train.amp and info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)

    start_epoch, best_top1, best_epoch = 0, None, None
    if resume_path is not None:
        try:
            state = load_state(resume_path)
            load_state_dict_checked(model, state["model"], source=str(resume_path))
            optimizer.load_state_dict(state["optimizer"])
            if use_amp and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch = int(state["epoch"])
            best_top1, best_epoch = state.get("best_top1"), state.get("best_epoch")
            rngs = state["rng"]
            set_rng_state(rngs[info.rank] if len(rngs) == info.world_size else rngs[0])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{resume_path}: not a complete training state ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from e
        if len(rngs) != info.world_size:
            log.warning("resuming with %d processes from a run with %d: RNG streams of ranks > 0 differ", info.world_size, len(rngs))
        if info.is_main:
            log.info("resumed from %s (epoch %d)", resume_path, start_epoch)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        # epoch checkpoints beyond the start belong to an abandoned run: pruning would keep them over
        # this run's and --resume would pick them, so they go now
        for e, path in epoch_checkpoints(ckpt_dir):
            if e > start_epoch:
                log.warning("removing %s: from a run past epoch %d, which this run replaces", path, start_epoch)
                path.unlink()
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log.info("training %s (%d classes, %.2fM trainable params) on %s x%d: %d train / %d val videos, %d steps/epoch",
                 meta.arch, meta.num_classes, n_train / 1e6, info.device, info.world_size, len(train_samples), len(val_samples), steps_per_epoch)
    logger = MetricsLogger(out, start_epoch=start_epoch, tensorboard=cfg.train.tensorboard) if info.is_main else None
    result = TrainResult(output_dir=out, epochs_done=start_epoch, best_top1=best_top1, best_epoch=best_epoch)
    try:
        for epoch in range(start_epoch, cfg.train.epochs):
            net.train()
            loader = train_loader(train_ds, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers, seed=cfg.seed, epoch=epoch, rank=info.rank, world_size=info.world_size)
            t0 = time.perf_counter()
            tot_loss = tot_correct = tot_n = 0.0
            skipped, step_time, lr = 0, 0.0, schedule(epoch * steps_per_epoch)
            bar = tqdm(total=batches, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not info.is_main, leave=False, dynamic_ncols=True)
            optimizer.zero_grad(set_to_none=True)
            prev, stepped = None, False  # the last readable batch; whether this window has run a backward
            for i, (batch, n_bad) in enumerate(loader):
                if i >= batches:
                    break
                skipped += n_bad
                step = epoch * steps_per_epoch + i // accum
                lr = schedule.apply(optimizer, step)
                last_micro = (i + 1) % accum == 0 or i + 1 == batches
                ts = time.perf_counter()
                if batch is None and info.distributed and prev is None:
                    raise RuntimeError(f"rank {info.rank}: no video of the epoch's first batch could be read ({n_bad} skipped)")
                # Under DDP or AMP, a batch whose videos all failed still runs a zero-weight pass over the last good
                # batch, so that every rank joins the same gradient reductions and the AMP scaler sees gradients.
                use = batch if batch is not None else (prev if info.distributed or use_amp else None)
                if use is not None:
                    prev = use
                    x, y = use
                    x, y = x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)
                    if cfg.model.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last_3d)
                    sync = contextlib.nullcontext() if (last_micro or not info.distributed) else net.no_sync()
                    with sync, torch.autocast(info.device.type, dtype=torch.float16, enabled=use_amp):
                        logits = net(x)
                        loss = criterion(logits.float(), y)
                    scaler.scale(loss * ((batch is not None) / accum)).backward()
                    stepped = True
                    if batch is not None:
                        if not use_amp and not info.distributed and not math.isfinite(loss.item()):
                            _diverged(f"epoch {epoch + 1}, step {i + 1}: the loss is {loss.item()}", ckpt_dir)
                        tot_loss += loss.item() * len(y)
                        tot_correct += (logits.argmax(1) == y).sum().item()
                        tot_n += len(y)
                if last_micro:
                    if stepped:
                        if cfg.train.grad_clip:
                            scaler.unscale_(optimizer)
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                        scaler.step(optimizer)
                        scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    stepped = False
                step_time += time.perf_counter() - ts
                if batch is not None:
                    bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
                    if logger and (i // accum) % cfg.train.log_every == 0 and last_micro:
                        logger.step(epoch=epoch + 1, step=step, loss=loss.item(), lr=lr)
                bar.update(1)
            bar.close()
            loss_avg, acc, n_all = D.all_reduce_mean([tot_loss, tot_correct, tot_n], info.device)
            if n_all == 0:
                raise RuntimeError(f"epoch {epoch + 1}: no training batch could be read ({skipped} videos skipped)")
            if not math.isfinite(loss_avg) and not use_amp:
                _diverged(f"epoch {epoch + 1}: the mean loss is {loss_avg / n_all}", ckpt_dir)
            bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
            if bad:
                _diverged(f"epoch {epoch + 1}: {len(bad)} weight tensors are non-finite (e.g. {bad[0]})", ckpt_dir)
            rec: dict[str, Any] = {
                "train_loss": loss_avg / n_all,
                "train_top1": acc / n_all,
                "lr": lr,
                "epoch_time": time.perf_counter() - t0,
                "step_time": step_time / max(batches, 1),
            }
            if skipped:
                rec["train_skipped"] = skipped
            e1 = epoch + 1
            if val_dl is not None and cfg.eval.every > 0 and e1 >= cfg.eval.start_epoch and (e1 - cfg.eval.start_epoch) % cfg.eval.every == 0:
                te = time.perf_counter()
                rec.update(_evaluate(model, val_dl, info, len(val_samples), meta.num_classes, cfg.model.channels_last))
                rec["eval_time"] = time.perf_counter() - te
                top1 = rec.get("val_video_top1")
                if top1 is not None and (best_top1 is None or top1 > best_top1):
                    best_top1, best_epoch = top1, e1
                    if info.is_main:
                        save_model(model, out / "best.safetensors", meta=meta)
            if info.is_main:
                logger.epoch(epoch=e1, **rec)
                val = f" | val clip top-1 {rec['val_clip_top1']:.3f} video top-1 {rec['val_video_top1']:.3f}" if "val_video_top1" in rec else ""
                log.info("epoch %d/%d: loss %.4f top-1 %.3f lr %.2e | %.1f s (%.2f s/step)%s", e1, cfg.train.epochs, rec["train_loss"], rec["train_top1"], lr, rec["epoch_time"], rec["step_time"], val)
            result.history.append({"epoch": e1, **rec})
            result.epochs_done, result.best_top1, result.best_epoch = e1, best_top1, best_epoch
            if e1 % cfg.train.checkpoint_every == 0 or e1 == cfg.train.epochs or e1 == stop_after_epoch:
                rngs = D.all_gather_objects(get_rng_state())
                if info.is_main:
                    state = {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict() if use_amp else None,
                        "epoch": e1,
                        "best_top1": best_top1,
                        "best_epoch": best_epoch,
                        "rng": rngs,
                        "config": config_to_dict(cfg),
                    }
                    save_state(state, ckpt_dir / f"epoch_{e1:04d}.safetensors", meta=meta)
                    prune_checkpoints(ckpt_dir, cfg.train.keep_last)
                D.barrier()
            if stop_after_epoch is not None and e1 >= stop_after_epoch and e1 < cfg.train.epochs:
                result.stopped_early = True
                return result
        if info.is_main:
            save_model(model, out / "last.safetensors", meta=meta)
            if best_top1 is None:  # no validation: the last model is the best we know
                save_model(model, out / "best.safetensors", meta=meta)
            try:
                from actionrec.engine.visualize import plot_curves

                logger.close()
                plot_curves(read_records(out / "metrics.jsonl"), out / "curves.png")
            except Exception as e:  # noqa: BLE001 - a plot must not fail a finished run
                log.warning("could not plot training curves: %s", e)
            log.info("done: %s (best val video top-1 %s at epoch %s)", out, f"{best_top1:.4f}" if best_top1 is not None else "n/a", best_epoch)
    finally:
        if logger:
            logger.close()
    return result
