"""The exact fast CPU path for PyTorch inference: Conv+BN folding, oneDNN everywhere, channels-last-3d.

Measured on 2 cores (``benchmarks/bench_cpu_inference.py``; see ``docs/deploy.md``): eager
NCTHW leaves much of the machine unused because BatchNorm is a separate memory pass and
oneDNN's NCTHW convolutions are slow. Folding every BatchNorm into the convolution before
it, forcing oneDNN for every 3-D convolution (PyTorch's batch-1 heuristic otherwise
picks a slow native kernel) and running the network in ``channels_last_3d`` is exact (max |Δlogit| ~1e-6) and takes
a second to set up. ``torch.compile`` with inductor freezing is offered as ``mode="compile"``
(it costs tens of seconds of compilation per input shape, so it is not the default).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
import torch.nn as nn

from actionrec.errors import UsageError

__all__ = ["fold_batchnorm", "use_onednn_convs", "OneDNNConv3d", "optimize_for_cpu", "max_abs_diff", "OptimizeError", "ChannelsLast3d", "EXACT_TOL"]

log = logging.getLogger(__name__)

EXACT_TOL = 1e-3  # largest max |Δlogit| that we still call "exact"

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class OptimizeError(RuntimeError):
    """The optimised model does not reproduce the eager model's logits."""


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| as a Python float (float64 arithmetic)."""
    return float((a.detach().double() - b.detach().double()).abs().max())


@dataclass
class _Pair:
    conv_name: str
    bn_name: str


def _find_pairs(model: nn.Module, example: torch.Tensor) -> list[_Pair]:
    """Conv → BatchNorm pairs in which the BN's input *is* the conv's output tensor (one traced forward)."""
    names = {m: n for n, m in model.named_modules()}
    conv_out: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    calls: dict[nn.Module, int] = {}
    found: list[tuple[nn.Module, nn.Module]] = []
    handles = []

    def conv_hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        calls[mod] = calls.get(mod, 0) + 1
        conv_out[id(out)] = (mod, out)  # keep ``out`` alive so ids stay unique

    def bn_pre_hook(mod: nn.Module, inp: tuple) -> None:
        calls[mod] = calls.get(mod, 0) + 1
        hit = conv_out.get(id(inp[0]))
        if hit is not None and hit[1] is inp[0]:
            found.append((hit[0], mod))

    for m in model.modules():
        if isinstance(m, _CONVS):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, _BNS):
            handles.append(m.register_forward_pre_hook(bn_pre_hook))
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for conv, bn in found:
        # A module called twice (weight sharing) or a BN without running statistics cannot be folded.
        if calls.get(conv) != 1 or calls.get(bn) != 1 or bn.running_mean is None:
            continue
        pairs.append(_Pair(names[conv], names[bn]))
    return pairs


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


@torch.no_grad()
def _fold_into(conv: nn.Module, bn: nn.Module) -> None:
    scale = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    inv = scale.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = conv.weight.double() * inv.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    b = conv.bias.double() if conv.bias is not None else torch.zeros_like(inv)
    b = (b - bn.running_mean.double()) * inv + shift.double()
    conv.weight.copy_(w.to(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(b.to(conv.weight.dtype), requires_grad=False)
    else:
        conv.bias.copy_(b.to(conv.bias.dtype))


def fold_batchnorm(model: nn.Module, *, example: torch.Tensor) -> tuple[nn.Module, int]:
    """Return an eval-mode copy of ``model`` with every foldable BatchNorm merged into its convolution.

    Pairs are found by running ``example`` (N, C, T, H, W) once: a BN is folded when its input is
    the very tensor its convolution returned. Folded BNs become ``nn.Identity``. Returns the new
    model and the number of folded BNs. The caller should check exactness (``optimize_for_cpu`` does).
    """
    model = copy.deepcopy(model).eval()
    pairs = _find_pairs(model, example)
    for p in pairs:
        _fold_into(model.get_submodule(p.conv_name), model.get_submodule(p.bn_name))
        _set_submodule(model, p.bn_name, nn.Identity())
    left = sum(isinstance(m, _BNS) for m in model.modules())
    log.debug("folded %d BatchNorm layers into convolutions (%d left)", len(pairs), left)
    return model, len(pairs)


class OneDNNConv3d(nn.Module):
    """A Conv3d that always runs oneDNN (``aten.mkldnn_convolution``).

    PyTorch picks its native ``slow_conv3d`` for small inputs at batch 1 (a heuristic tuned for 2-D:
    N·C·T·H ≤ 20480 and a kernel not larger than 3×3), which is 1.5–60× slower than oneDNN for
    the same 3-D convolution. Same arithmetic as the batch > 1 path.
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu" or self.weight.dtype != torch.float32:
            return nn.functional.conv3d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return torch.ops.aten.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups)


def use_onednn_convs(model: nn.Module) -> int:
    """Replace every plain zero-padded ``nn.Conv3d`` of ``model`` (in place) by :class:`OneDNNConv3d`; returns the count."""
    if not torch.backends.mkldnn.is_available():
        return 0
    targets = [
        name for name, m in model.named_modules()
        if type(m) is nn.Conv3d and m.padding_mode == "zeros" and not isinstance(m.padding, str)
    ]
    for name in targets:
        _set_submodule(model, name, OneDNNConv3d(model.get_submodule(name)))
    return len(targets)


class ChannelsLast3d(nn.Module):
    """Runs ``model`` (already converted) on a ``channels_last_3d`` input; returns contiguous output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        if hasattr(model, "meta"):
            self.meta = model.meta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.model(x).contiguous()


def _compile_frozen(model: nn.Module) -> nn.Module:
    import torch._inductor.config as inductor_config

    compiled = torch.compile(model, dynamic=False)

    class _Frozen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # Freezing must be on while dynamo compiles (``options={"freezing": True}`` is ignored).
            with inductor_config.patch(freezing=True), torch.no_grad():
                return compiled(x)

    out = _Frozen()
    if hasattr(model, "meta"):
        out.meta = model.meta
    return out


def optimize_for_cpu(
    model: nn.Module,
    *,
    example: torch.Tensor | None = None,
    check: bool = True,
    mode: str = "fold_cl",
    tol: float = EXACT_TOL,
) -> nn.Module:
    """The exact fast CPU path for inference.

    Args:
        model: an (N, C, T, H, W) → (N, K) network; it is not modified.
        example: an input used to find Conv+BN pairs and to check exactness; default: a seeded
            N(0, 1) tensor of ``model.meta.input_shape(1)``.
        check: compare against the eager model on ``example``; raise :class:`OptimizeError`
            if max |Δlogit| > ``tol``.
        mode: ``"fold_cl"`` (default: Conv+BN folding + channels_last_3d, set up in about a second),
            ``"fold"`` (folding only) or ``"compile"`` (folding + channels_last + ``torch.compile``
            with inductor freezing; tens of seconds to compile, per input shape).

    Returns:
        a module in eval mode with the same ``meta``, mapping (N, C, T, H, W) float32 → (N, K).
    """
    if mode not in ("fold", "fold_cl", "compile"):
        raise UsageError(f"optimize mode must be 'fold', 'fold_cl' or 'compile', not {mode!r}")
    model = model.eval()
    if example is None:
        meta = getattr(model, "meta", None)
        if meta is None:
            raise UsageError("optimize_for_cpu needs example= for a model without .meta")
        gen = torch.Generator().manual_seed(0)
        example = torch.randn(meta.input_shape(1), generator=gen)
    fast, n_folded = fold_batchnorm(model, example=example)
    n_onednn = use_onednn_convs(fast) if mode != "compile" else 0
    if mode in ("fold_cl", "compile"):
        fast = ChannelsLast3d(fast.to(memory_format=torch.channels_last_3d))
    if mode == "compile":
        fast = _compile_frozen(fast)
    if hasattr(model, "meta"):
        fast.meta = model.meta
    if check:
        with torch.inference_mode():
            ref = model(example)
        with torch.no_grad():
            got = fast(example)
        diff = max_abs_diff(ref, got)
        log.debug("optimize_for_cpu(%s): %d BN folded, max |Δlogit| %.2e", mode, n_folded, diff)
        if not diff <= tol:
            raise OptimizeError(f"optimised model differs from eager by max |Δlogit| {diff:.3g} > {tol:g}")
    fast.optimize_info = {"mode": mode, "bn_folded": n_folded, "onednn_convs": n_onednn}
    return fast
