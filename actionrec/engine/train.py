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
from actionrec.runtime import resolve_runtime
from actionrec.engine.data import build_dataset, eval_loader, load_split, preprocess_changes, train_loader
from actionrec.engine.logger import MetricsLogger, read_records
from actionrec.engine.optim import LRSchedule, build_optimizer, param_groups
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
    if cfg.model.freeze_backbone:
        from actionrec.models.finetune import freeze_backbone

        names = freeze_backbone(model)
        log.info("linear probe: training only the classifier (%s); the backbone and its BatchNorm statistics stay fixed",
                 ", ".join(names))
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

    ``stop_after_epoch`` ends the run after that epoch (as if killed there, for tests). With
    ``cfg.train.threads`` set, torch runs that many threads during the run and gets its own count back after.
    """
    info = D.init_distributed(cfg.train.device)
    try:
        with _runtime(cfg, info), _own_output_dir(Path(cfg.output_dir), info):
            return _train(cfg, info, resume, stop_after_epoch)
    finally:
        D.shutdown()


def _runtime(cfg: Config, info: D.DistInfo) -> contextlib.AbstractContextManager:
    """``cfg.train.threads`` torch threads while the run lasts (threads have one owner: :mod:`actionrec.runtime`)."""
    if not cfg.train.threads:
        return contextlib.nullcontext()
    return resolve_runtime(device=str(info.device), threads=cfg.train.threads).applied()


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


@dataclass
class _Run:
    """What one training run works with, built once by :func:`_setup`."""

    cfg: Config
    info: D.DistInfo
    model: nn.Module  # the network itself (its ``meta`` is the checkpoints' metadata)
    net: nn.Module  # ``model``, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: Any  # torch.amp.GradScaler (disabled without AMP)
    criterion: nn.Module
    train_ds: Any
    val_dl: Any  # None without validation
    n_train: int
    n_val: int
    batches: int  # micro-batches per epoch
    steps_per_epoch: int  # optimiser steps per epoch
    use_amp: bool

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    @property
    def meta(self) -> Any:
        return self.model.meta


def _train(cfg: Config, info: D.DistInfo, resume: str | bool, stop_after_epoch: int | None) -> TrainResult:
    resume_path = _find_resume(cfg, resume)
    seed_everything(cfg.seed + info.rank)
    run = _setup(cfg, info, resume_path)
    result = TrainResult(output_dir=run.out, epochs_done=0)
    if resume_path is not None:
        _restore(run, resume_path, result)
    if info.is_main:
        _prepare_output(run, result.epochs_done)
    logger = MetricsLogger(run.out, start_epoch=result.epochs_done, tensorboard=cfg.train.tensorboard) if info.is_main else None
    try:
        for epoch in range(result.epochs_done, cfg.train.epochs):
            rec = _train_epoch(run, epoch, logger)
            e1 = epoch + 1
            if run.val_dl is not None and _validates_after(cfg, e1):
                _validate(run, e1, rec, result)
            if logger:
                logger.epoch(epoch=e1, **rec)
                val = f" | val clip top-1 {rec['val_clip_top1']:.3f} video top-1 {rec['val_video_top1']:.3f}" if "val_video_top1" in rec else ""
                lrs = f"{rec['lr']:.2e}" + (f" (backbone {rec['lr_backbone']:.2e})" if "lr_backbone" in rec else "")
                log.info("epoch %d/%d: loss %.4f top-1 %.3f lr %s | %.1f s (%.2f s/step)%s", e1, cfg.train.epochs, rec["train_loss"],
                         rec["train_top1"], lrs, rec["epoch_time"], rec["step_time"], val)
            result.history.append({"epoch": e1, **rec})
            result.epochs_done = e1
            if e1 % cfg.train.checkpoint_every == 0 or e1 == cfg.train.epochs or e1 == stop_after_epoch:
                _save_training_state(run, result)
            if stop_after_epoch is not None and e1 >= stop_after_epoch and e1 < cfg.train.epochs:
                result.stopped_early = True
                return result
        if logger:
            _finish(run, logger, result)
    finally:
        if logger:
            logger.close()
    return result


def _setup(cfg: Config, info: D.DistInfo, resume_path: Path | None) -> _Run:
    """Model (checked against the state to resume), data, optimiser and schedule of the run."""
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
    model, net = _place(model, cfg, info)
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
    optimizer = build_optimizer(param_groups(model, cfg.optimizer.backbone_lr_mult), cfg.optimizer)
    schedule = LRSchedule(cfg.optimizer.lr, cfg.schedule, epochs=cfg.train.epochs, steps_per_epoch=steps_per_epoch)
    use_amp = cfg.train.amp and info.device.type == "cuda"
    return _Run(cfg=cfg, info=info, model=model, net=net, optimizer=optimizer, schedule=schedule,
                scaler=torch.amp.GradScaler("cuda", enabled=use_amp),
                criterion=nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing), train_ds=train_ds, val_dl=val_dl,
                n_train=len(train_samples), n_val=len(val_samples), batches=batches, steps_per_epoch=steps_per_epoch, use_amp=use_amp)


def _place(model: nn.Module, cfg: Config, info: D.DistInfo) -> tuple[nn.Module, nn.Module]:
    """``(model, net)``: the model on the run's device and layout; ``net`` wraps it in DDP under torchrun."""
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
    return model, net


def _restore(run: _Run, resume_path: Path, result: TrainResult) -> None:
    """Load weights, optimiser, scaler, epoch, best score and RNG streams of a training state into ``run``/``result``."""
    info = run.info
    try:
        state = load_state(resume_path)
        load_state_dict_checked(run.model, state["model"], source=str(resume_path))
        mults = [g.get("lr_mult", 1.0) for g in run.optimizer.param_groups]
        if len(state["optimizer"]["param_groups"]) != len(mults):
            raise CheckpointError(f"{resume_path}: its optimiser has {len(state['optimizer']['param_groups'])} parameter group(s), "
                                  f"the recipe makes {len(mults)} (optimizer.backbone_lr_mult 1 or not): resume with the run's settings")
        run.optimizer.load_state_dict(state["optimizer"])
        for group, mult in zip(run.optimizer.param_groups, mults):  # the recipe's multipliers, not the saved ones
            group["lr_mult"] = mult
        if run.use_amp and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
        result.epochs_done = int(state["epoch"])
        result.best_top1, result.best_epoch = state.get("best_top1"), state.get("best_epoch")
        rngs = state["rng"]
        set_rng_state(rngs[info.rank] if len(rngs) == info.world_size else rngs[0])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{resume_path}: not a complete training state ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})") from e
    if len(rngs) != info.world_size:
        log.warning("resuming with %d processes from a run with %d: RNG streams of ranks > 0 differ", info.world_size, len(rngs))
    if info.is_main:
        log.info("resumed from %s (epoch %d)", resume_path, result.epochs_done)


def _prepare_output(run: _Run, start_epoch: int) -> None:
    """Rank 0: the output folder and its ``config.yaml``; epoch checkpoints of an abandoned later run removed."""
    run.out.mkdir(parents=True, exist_ok=True)
    save_config(run.cfg, run.out / "config.yaml")
    # epoch checkpoints beyond the start belong to an abandoned run: pruning would keep them over
    # this run's and --resume would pick them, so they go now
    for e, path in epoch_checkpoints(run.ckpt_dir):
        if e > start_epoch:
            log.warning("removing %s: from a run past epoch %d, which this run replaces", path, start_epoch)
            path.unlink()
    n_params = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    log.info("training %s (%d classes, %.2fM trainable params) on %s x%d: %d train / %d val videos, %d steps/epoch", run.meta.arch,
             run.meta.num_classes, n_params / 1e6, run.info.device, run.info.world_size, run.n_train, run.n_val, run.steps_per_epoch)
    if "lr_backbone" in _group_lrs(run.optimizer, 1.0):
        log.info("learning rates: classifier %.2e, backbone %.2e (optimizer.backbone_lr_mult %g), both following the schedule",
                 run.cfg.optimizer.lr, run.cfg.optimizer.lr * run.cfg.optimizer.backbone_lr_mult, run.cfg.optimizer.backbone_lr_mult)


def _train_epoch(run: _Run, epoch: int, logger: MetricsLogger | None) -> dict[str, Any]:
    """One pass over the training set (``epoch`` counts from 0); returns the epoch's record (loss, top-1, lr, times)."""
    from tqdm import tqdm

    cfg, info, accum = run.cfg, run.info, run.cfg.train.accumulate_steps
    _train_mode(run)
    loader = train_loader(run.train_ds, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers, seed=cfg.seed, epoch=epoch,
                          rank=info.rank, world_size=info.world_size)
    t0 = time.perf_counter()
    totals = [0.0, 0.0, 0.0]  # summed loss, correct predictions, clips
    skipped, step_time, lr = 0, 0.0, run.schedule(epoch * run.steps_per_epoch)
    bar = tqdm(total=run.batches, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not info.is_main, leave=False, dynamic_ncols=True)
    run.optimizer.zero_grad(set_to_none=True)
    prev, stepped = None, False  # the last readable batch; whether this window has run a backward
    for i, (batch, n_bad) in enumerate(loader):
        if i >= run.batches:
            break
        skipped += n_bad
        step = epoch * run.steps_per_epoch + i // accum
        lr = run.schedule.apply(run.optimizer, step)
        last_micro = (i + 1) % accum == 0 or i + 1 == run.batches
        ts = time.perf_counter()
        if batch is None and info.distributed and prev is None:
            raise RuntimeError(f"rank {info.rank}: no video of the epoch's first batch could be read ({n_bad} skipped)")
        # Under DDP or AMP, a batch whose videos all failed still runs a zero-weight pass over the last good
        # batch, so that every rank joins the same gradient reductions and the AMP scaler sees gradients.
        use = batch if batch is not None else (prev if info.distributed or run.use_amp else None)
        if use is not None:
            prev, stepped = use, True
            loss = _forward_backward(run, use, counted=batch is not None, last_micro=last_micro, totals=totals,
                                     where=f"epoch {epoch + 1}, step {i + 1}")
        if last_micro:
            _optimizer_step(run, stepped)
            stepped = False
        step_time += time.perf_counter() - ts
        if batch is not None:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
            if logger and (i // accum) % cfg.train.log_every == 0 and last_micro:
                logger.step(epoch=epoch + 1, step=step, loss=loss.item(), lr=lr, **_group_lrs(run.optimizer, lr))
        bar.update(1)
    bar.close()
    loss, top1 = _epoch_scores(run, epoch, totals, skipped)
    rec: dict[str, Any] = {"train_loss": loss, "train_top1": top1, "lr": lr, **_group_lrs(run.optimizer, lr),
                           "epoch_time": time.perf_counter() - t0, "step_time": step_time / max(run.batches, 1)}
    if skipped:
        rec["train_skipped"] = skipped
    return rec


def _train_mode(run: _Run) -> None:
    """The network in training mode; with ``model.freeze_backbone`` (a linear probe) its BatchNorm layers stay in
    eval mode: the frozen backbone normalises with its stored statistics, which do not move."""
    run.net.train()
    if run.cfg.model.freeze_backbone:
        from actionrec.models.finetune import batchnorm_eval

        batchnorm_eval(run.model)


def _group_lrs(optimizer: torch.optim.Optimizer, lr: float) -> dict[str, float]:
    """``{"lr_backbone": ...}`` for a schedule value ``lr`` when the backbone has its own group (else empty)."""
    return {"lr_backbone": lr * g["lr_mult"] for g in optimizer.param_groups if g.get("name") == "backbone"}


def _forward_backward(run: _Run, batch: tuple[torch.Tensor, torch.Tensor], *, counted: bool, last_micro: bool,
                      totals: list[float], where: str) -> torch.Tensor:
    """Forward and backward one micro-batch ``(clips (B,C,T,H,W), labels (B,))``; a batch that is not ``counted``
    (a stand-in for an unreadable one) runs with weight 0 and adds nothing to ``totals``. Returns the loss."""
    cfg, info = run.cfg, run.info
    x, y = batch
    x, y = x.to(info.device, non_blocking=True), y.to(info.device, non_blocking=True)
    if cfg.model.channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    sync = contextlib.nullcontext() if (last_micro or not info.distributed) else run.net.no_sync()
    with sync, torch.autocast(info.device.type, dtype=torch.float16, enabled=run.use_amp):
        logits = run.net(x)
        loss = run.criterion(logits.float(), y)
    run.scaler.scale(loss * (counted / cfg.train.accumulate_steps)).backward()
    if counted:
        if not run.use_amp and not info.distributed and not math.isfinite(loss.item()):
            _diverged(f"{where}: the loss is {loss.item()}", run.ckpt_dir)
        totals[0] += loss.item() * len(y)
        totals[1] += (logits.argmax(1) == y).sum().item()
        totals[2] += len(y)
    return loss


def _optimizer_step(run: _Run, stepped: bool) -> None:
    """End of an accumulation window: clip, step (if any backward ran), zero the gradients."""
    if stepped:
        if run.cfg.train.grad_clip:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.train.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)


def _epoch_scores(run: _Run, epoch: int, totals: list[float], skipped: int) -> tuple[float, float]:
    """Mean loss and top-1 over all ranks; stops the run if nothing was read or the loss or weights are not finite."""
    loss_sum, correct, n_all = D.all_reduce_mean(totals, run.info.device)
    if n_all == 0:
        raise RuntimeError(f"epoch {epoch + 1}: no training batch could be read ({skipped} videos skipped)")
    if not math.isfinite(loss_sum) and not run.use_amp:
        _diverged(f"epoch {epoch + 1}: the mean loss is {loss_sum / n_all}", run.ckpt_dir)
    bad = [name for name, t in run.model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        _diverged(f"epoch {epoch + 1}: {len(bad)} weight tensors are non-finite (e.g. {bad[0]})", run.ckpt_dir)
    return loss_sum / n_all, correct / n_all


def _validates_after(cfg: Config, e1: int) -> bool:
    """Whether the recipe validates after epoch ``e1`` (counted from 1)."""
    return cfg.eval.every > 0 and e1 >= cfg.eval.start_epoch and (e1 - cfg.eval.start_epoch) % cfg.eval.every == 0


def _validate(run: _Run, e1: int, rec: dict[str, Any], result: TrainResult) -> None:
    """Score the validation set into ``rec``; a new best video top-1 is saved as ``best.safetensors``."""
    te = time.perf_counter()
    rec.update(_evaluate(run.model, run.val_dl, run.info, run.n_val, run.meta.num_classes, run.cfg.model.channels_last))
    rec["eval_time"] = time.perf_counter() - te
    top1 = rec.get("val_video_top1")
    if top1 is not None and (result.best_top1 is None or top1 > result.best_top1):
        result.best_top1, result.best_epoch = top1, e1
        if run.info.is_main:
            save_model(run.model, run.out / "best.safetensors", meta=run.meta)


def _save_training_state(run: _Run, result: TrainResult) -> None:
    """``checkpoints/epoch_XXXX.safetensors``: weights, optimiser, scaler, best score and every rank's RNG streams."""
    rngs = D.all_gather_objects(get_rng_state())
    if run.info.is_main:
        state = {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict() if run.use_amp else None,
            "epoch": result.epochs_done,
            "best_top1": result.best_top1,
            "best_epoch": result.best_epoch,
            "rng": rngs,
            "config": config_to_dict(run.cfg),
        }
        save_state(state, run.ckpt_dir / f"epoch_{result.epochs_done:04d}.safetensors", meta=run.meta)
        prune_checkpoints(run.ckpt_dir, run.cfg.train.keep_last)
    D.barrier()


def _finish(run: _Run, logger: MetricsLogger, result: TrainResult) -> None:
    """Rank 0, after the last epoch: ``last.safetensors`` (and ``best`` without validation) and ``curves.png``."""
    save_model(run.model, run.out / "last.safetensors", meta=run.meta)
    if result.best_top1 is None:  # no validation: the last model is the best we know
        save_model(run.model, run.out / "best.safetensors", meta=run.meta)
    try:
        from actionrec.engine.visualize import plot_curves

        logger.close()
        plot_curves(read_records(run.out / "metrics.jsonl"), run.out / "curves.png")
    except Exception as e:  # noqa: BLE001 - a plot must not fail a finished run
        log.warning("could not plot training curves: %s", e)
    best = f"{result.best_top1:.4f}" if result.best_top1 is not None else "n/a"
    log.info("done: %s (best val video top-1 %s at epoch %s)", run.out, best, result.best_epoch)
