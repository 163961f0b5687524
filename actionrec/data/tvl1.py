"""TV-L1 optical flow in PyTorch, step for step the algorithm of OpenCV's ``cv2.optflow.DualTVL1OpticalFlow``.

Zach, Pock and Bischof's duality-based TV-L1 (with Sánchez, Meinhardt-Llopis and Facciolo's
details, as OpenCV implements it), over a **batch** of same-size frame pairs on any device:

- pyramid: each level is the previous one resized by ``scale_step`` (bilinear, no blur; OpenCV's
  ``resize(..., fx=scale_step, INTER_LINEAR)`` sizes and sampling positions); levels narrower or
  shorter than 16 px are dropped; coarse to fine, the flow is resized bilinearly to the next level
  and divided by ``scale_step``;
- per level, ``warps`` times: warp the second frame and its centred gradient by the flow
  (bicubic, a = −0.75, zero outside the image, as ``remap(..., INTER_CUBIC)``), then up to
  ``outer_iterations`` × (5×5 median of the flow, up to ``inner_iterations`` × (thresholding,
  primal and dual steps)). Iterations stop when the squared flow update summed over the level
  falls to ``epsilon² × pixels``, for every pair on its own (a finished pair is frozen while the
  rest of its batch goes on);
- the dual variables start at zero on every level; ``gamma > 0`` adds the illumination term.

Two things differ from OpenCV by floating-point rounding only: sums are reduced in a different
order, and bicubic weights are applied row by row. See ``docs/data.md`` for the measured agreement.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from actionrec.errors import UsageError

__all__ = ["TVL1Params", "tvl1_flow"]

_FLT_EPSILON = float(torch.finfo(torch.float32).eps)
_MIN_LEVEL_SIZE = 16  # OpenCV stops the pyramid at levels smaller than this
# steps between looks at which pairs have finished (a look stops a GPU's queue); other devices: 10
_CHECK_EVERY = {"cpu": 1}


@dataclasses.dataclass(frozen=True)
class TVL1Params:
    """OpenCV's ``DualTVL1OpticalFlow`` settings under their OpenCV names (``lambda_`` for ``lambda``).

    ``TVL1Params.opencv()`` reads them from a created OpenCV object (the defaults, or any
    configured object); change fields with :func:`dataclasses.replace`.
    """

    tau: float
    lambda_: float
    theta: float
    gamma: float
    scales_number: int
    warpings_number: int
    epsilon: float
    inner_iterations: int
    outer_iterations: int
    scale_step: float
    median_filtering: int

    @classmethod
    def opencv(cls, tv: object | None = None) -> TVL1Params:
        """The settings of ``tv`` (a ``cv2.optflow.DualTVL1OpticalFlow``), default: a newly created one."""
        if tv is None:
            return _opencv_defaults()
        return cls(tau=tv.getTau(), lambda_=tv.getLambda(), theta=tv.getTheta(), gamma=tv.getGamma(),
                   scales_number=tv.getScalesNumber(), warpings_number=tv.getWarpingsNumber(),
                   epsilon=tv.getEpsilon(), inner_iterations=tv.getInnerIterations(),
                   outer_iterations=tv.getOuterIterations(), scale_step=tv.getScaleStep(),
                   median_filtering=tv.getMedianFiltering())

    def validate(self) -> None:
        for name in ("scales_number", "warpings_number", "inner_iterations", "outer_iterations"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"TV-L1 {name} must be ≥ 1, got {getattr(self, name)}")
        if not 0 < self.scale_step < 1 and self.scales_number > 1:
            raise UsageError(f"TV-L1 scale_step must be in (0, 1), got {self.scale_step}")
        if self.theta <= 0 or self.tau <= 0:
            raise UsageError(f"TV-L1 theta and tau must be > 0, got theta={self.theta}, tau={self.tau}")
        if self.median_filtering > 1 and self.median_filtering % 2 == 0:
            raise UsageError(f"TV-L1 median_filtering must be odd (or ≤ 1: off), got {self.median_filtering}")


@functools.lru_cache(maxsize=1)
def _opencv_defaults() -> TVL1Params:
    import cv2

    if not hasattr(cv2, "optflow"):
        raise RuntimeError("TV-L1 defaults are read from OpenCV contrib: install opencv-contrib-python-headless")
    return TVL1Params.opencv(cv2.optflow.DualTVL1OpticalFlow_create())


# --- image operations, each as OpenCV computes it; tensors are (N, C, H, W) float32 -------------------------------


def _linear_taps(n_out: int, n_in: int, scale: float, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Source indices and weight of the second tap for OpenCV's INTER_LINEAR resize along one axis."""
    f = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5
    i0 = torch.floor(f)
    w = f - i0
    i0 = i0.long()
    w[i0 < 0] = 0.0  # outside on the left: the first pixel
    i0.clamp_(min=0)
    w[i0 >= n_in - 1] = 0.0  # outside on the right: the last pixel
    i0.clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    return i0.to(device), i1.to(device), w.to(device=device, dtype=torch.float32)


def _resize_linear(x: Tensor, size: tuple[int, int], scale: tuple[float, float]) -> Tensor:
    """``cv2.resize(x, size, INTER_LINEAR)`` with source step ``scale`` = (y, x) source pixels per output pixel."""
    (h, w), (sy, sx) = size, scale
    x0, x1, wx = _linear_taps(w, x.shape[-1], sx, x.device)
    y0, y1, wy = _linear_taps(h, x.shape[-2], sy, x.device)
    rows = torch.lerp(x[..., x0], x[..., x1], wx)  # horizontal pass first, as OpenCV
    return torch.lerp(rows[..., y0, :], rows[..., y1, :], wy[:, None])


def _downscale(x: Tensor, step: float) -> Tensor:
    """``cv2.resize(x, None, fx=step, fy=step, INTER_LINEAR)``: size rounded, sampling step exactly 1/step."""
    h, w = x.shape[-2:]
    return _resize_linear(x, (round(h * step), round(w * step)), (1.0 / step, 1.0 / step))


def _resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``cv2.resize(x, (w, h), INTER_LINEAR)``: the sampling step is the ratio of the sizes."""
    (h, w), (hi, wi) = size, x.shape[-2:]
    return _resize_linear(x, size, (1.0 / (h / hi), 1.0 / (w / wi)))


def _centered_gradient(x: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences ÷ 2, one-sided (still ÷ 2) on the border rows and columns."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])


def _forward_gradient(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences, zero on the last column (x) and the last row (y)."""
    return F.pad(x[..., 1:] - x[..., :-1], (0, 1)), F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))


def _divergence(px: Tensor, py: Tensor) -> Tensor:
    """Backward differences with zero before the first column/row (the adjoint of :func:`_forward_gradient`)."""
    return (px - F.pad(px[..., :-1], (1, 0))) + (py - F.pad(py[..., :-1, :], (0, 0, 1, 0)))


def _batcher(n: int, sorted_block: int) -> list[tuple[int, int]]:
    """Comparators (lo, hi) of Batcher's odd-even merge sort of ``n`` lanes (a power of two) whose blocks of
    ``sorted_block`` lanes are sorted already."""
    out, p = [], sorted_block
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


def _selection_plan(lanes: list[int | None], sorted_block: int, ranks: list[int]) -> tuple[list[tuple], list[int]]:
    """A min/max program that puts the ``ranks`` of sorted order of the real inputs out of a Batcher network.

    ``lanes[i]`` is the input on lane i, or None for +inf padding. Returns ``(ops, outputs)``: each op
    ``(value, is_min, a, b)`` defines value ``value`` from values a, b (inputs are ``0..``); only
    the ops that the wanted ranks depend on are kept.
    """
    lanes = list(lanes)
    nodes, next_id = [], sum(v is not None for v in lanes)
    for i, j in _batcher(len(lanes), sorted_block):
        a, b = lanes[i], lanes[j]
        if b is None:  # compared with +inf: nothing moves
            continue
        if a is None:  # the real value moves down, +inf up
            lanes[i], lanes[j] = b, None
            continue
        nodes += [(next_id, True, a, b), (next_id + 1, False, a, b)]
        lanes[i], lanes[j] = next_id, next_id + 1
        next_id += 2
    outputs = [lanes[r] for r in ranks]
    needed, ops = set(outputs), []
    for node in reversed(nodes):
        if node[0] in needed:
            needed |= {node[2], node[3]}
            ops.append(node)
    return ops[::-1], outputs


def _run_plan(ops: list[tuple], outputs: list[int], values: dict[int, Tensor]) -> list[Tensor]:
    last_use = {}
    for k, (_, _, a, b) in enumerate(ops):
        last_use[a] = last_use[b] = k
    for k, (v, is_min, a, b) in enumerate(ops):
        values[v] = torch.minimum(values[a], values[b]) if is_min else torch.maximum(values[a], values[b])
        for x in (a, b):
            if last_use[x] == k and x not in outputs:
                del values[x]
    return [values[o] for o in outputs]


@functools.lru_cache(maxsize=4)
def _median_plans(k: int) -> tuple[tuple, tuple]:
    """Plans for a k×k median: sort each column of k (shared by k neighbouring windows), then merge the k
    sorted columns of a window just far enough to find its middle value."""
    block = 1 << (k - 1).bit_length()
    col = _selection_plan(list(range(k)) + [None] * (block - k), 1, list(range(k)))
    lanes: list[int | None] = [None] * (1 << (k * block - 1).bit_length())
    for c in range(k):
        for r in range(k):
            lanes[c * block + r] = c * k + r
    return col, _selection_plan(lanes, block, [k * k // 2])


def _median(x: Tensor, k: int) -> Tensor:
    """``cv2.medianBlur(x, k)`` (replicated border) of every channel, with min/max only (fast on any device).

    Works on the padded image flattened row after row, so that every shifted window is one contiguous
    run of memory; the values that wrap around a row end land in the padding columns, which are cut off.
    """
    r, (h, w) = k // 2, x.shape[-2:]
    (col_ops, col_out), (merge_ops, merge_out) = _median_plans(k)
    wp = w + 2 * r
    flat = F.pad(x, (r, r, r, r), mode="replicate").flatten(-2)  # (..., (h + 2r) * wp)
    n = h * wp
    cols = _run_plan(col_ops, col_out, {i: flat[..., i * wp:i * wp + n] for i in range(k)})  # sorted columns
    med = _run_plan(merge_ops, merge_out, {c * k + i: cols[i][..., c:n - 2 * r + c] for c in range(k) for i in range(k)})[0]
    return F.pad(med, (0, 2 * r)).unflatten(-1, (h, wp))[..., :w]


def _warp_cubic(img: Tensor, flow: Tensor, base: Tensor) -> Tensor:
    """``cv2.remap(img, x + u, y + v, INTER_CUBIC)`` (zero outside): img (N, C, H, W), flow (N, 2, H, W)."""
    h, w = img.shape[-2:]
    # grid_sample's bicubic is OpenCV's (a = -0.75) and reads zeros outside; align_corners maps -1/1 to pixel centres
    norm = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=img.device).view(1, 2, 1, 1)
    grid = ((base + flow) * norm - 1.0).permute(0, 2, 3, 1)
    return F.grid_sample(img, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


# --- the solver ----------------------------------------------------------------------------------------------------


class _Level:
    """The warp-independent data of one pyramid level: (N, 1, H, W) frames and the second frame's gradient."""

    def __init__(self, i0: Tensor, i1: Tensor) -> None:
        self.i0, self.i1 = i0, i1
        self.i1_grad = torch.cat(_centered_gradient(i1), dim=1)  # (N, 2, H, W)
        h, w = i0.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(h, device=i0.device, dtype=torch.float32),
                                torch.arange(w, device=i0.device, dtype=torch.float32), indexing="ij")
        self.base = torch.stack([xs, ys])[None]  # (1, 2, H, W): pixel coordinates


def _solve_level(lv: _Level, u: Tensor, p: TVL1Params) -> Tensor:
    """Refine the flow ``u`` (N, C, H, W), C = 2 (x, y) or 3 (with the illumination term), on one level."""
    n, c, h, w = u.shape
    dual = torch.zeros(n, c, 2, h, w, device=u.device)  # (p_x, p_y) of each flow component
    for _ in range(p.warpings_number):
        warped = _warp_cubic(torch.cat([lv.i1, lv.i1_grad], dim=1), u[:, :2], lv.base)
        i1w, ig = warped[:, :1], warped[:, 1:]
        grad = (ig * ig).sum(1, keepdim=True)  # |∇I1(x + u0)|²
        rho_c = i1w - (ig * u[:, :2]).sum(1, keepdim=True) - lv.i0
        if c == 3:
            ig = torch.cat([ig, torch.full_like(i1w, p.gamma)], dim=1)
        # OpenCV's thresholding divides by grad only where grad > FLT_EPSILON; elsewhere a tiny divisor
        # gives its ±lambda·theta (|rho| > 0) or 0 (rho = 0) through the clamp in _step
        g_den = torch.where(grad > _FLT_EPSILON, grad, 1e-30)
        u, dual = _iterate(u, dual, ig, g_den, rho_c, p=p, eps=p.epsilon * p.epsilon * h * w)
    return u


def _step(u: Tensor, dual: Tensor, g: Tensor, ig: Tensor, g_den: Tensor, rho_c: Tensor, keep: Tensor | None, *,
          l_t: float, taut: float, theta: float) -> tuple[Tensor, Tensor]:
    """One inner iteration; returns the new flow and each pair's squared update, updates ``dual`` in place.

    ``g`` (N, C, 2, H, W) is scratch space for the flow's forward gradient whose last column (x) and
    row (y) stay zero. Pairs where ``keep`` is False are left unchanged.
    """
    # thresholding: v = u + fi·∇I1w, fi = -rho/|∇I1w|² clamped to ±lambda·theta
    rho = ig[:, :1] * u[:, :1]
    for i in range(1, u.shape[1]):
        rho.addcmul_(ig[:, i:i + 1], u[:, i:i + 1])
    rho.add_(rho_c)
    fi = torch.div(rho, g_den).neg_().clamp_(-l_t, l_t)
    u_new = torch.addcmul(u, fi, ig)
    # primal step: u = v + theta·div(p)
    px, py = dual[:, :, 0], dual[:, :, 1]
    div = px + py
    div[..., 1:] -= px[..., :-1]
    div[..., 1:, :] -= py[..., :-1, :]
    u_new.add_(div, alpha=theta)
    d = u_new - u
    err = d.mul_(d).flatten(1).sum(1)
    if keep is not None:
        u_new = torch.where(keep, u_new, u)
    # dual step: p = (p + taut·∇u) / (1 + taut·|∇u|)
    torch.sub(u_new[..., 1:], u_new[..., :-1], out=g[:, :, 0, :, :-1])
    torch.sub(u_new[..., 1:, :], u_new[..., :-1, :], out=g[:, :, 1, :-1, :])
    if keep is not None:
        g.mul_(keep[..., None])  # no step for finished pairs: p = (p + 0) / 1
    ng = (g[:, :, 0] * g[:, :, 0]).addcmul_(g[:, :, 1], g[:, :, 1]).sqrt_().mul_(taut).add_(1.0)
    dual.add_(g, alpha=taut).div_(ng[:, :, None])
    return u_new, err


def _iterate(u: Tensor, dual: Tensor, ig: Tensor, g_den: Tensor, rho_c: Tensor, *, p: TVL1Params,
             eps: float) -> tuple[Tensor, Tensor]:
    """The outer (median filter) and inner iterations of one warp; each pair stops on its own once its
    squared update is ≤ ``eps``. On the CPU finished pairs leave the batch at once; a GPU is not stopped
    to look at every step, so it masks them and compacts the batch every few steps."""
    n = u.shape[0]
    check_every = _CHECK_EVERY.get(u.device.type, 10)
    l_t, taut = p.lambda_ * p.theta, p.tau / p.theta
    idx = torch.arange(n, device=u.device)  # the pairs in the working batch
    out_u, out_dual = u, dual
    u, dual = u.clone(), dual.clone()
    g = torch.zeros_like(dual)
    active = torch.ones(n, 1, 1, 1, dtype=torch.bool, device=u.device)
    masked = False  # whether some pairs of the working batch have finished
    steps = p.outer_iterations * p.inner_iterations
    for k in range(steps):
        if k % p.inner_iterations == 0 and p.median_filtering > 1:
            med = _median(u[:, :2], p.median_filtering)
            u[:, :2] = torch.where(active, med, u[:, :2]) if masked else med
        u, err = _step(u, dual, g, ig, g_den, rho_c, active if masked else None, l_t=l_t, taut=taut, theta=p.theta)
        active = active & (err > eps).view(-1, 1, 1, 1)
        masked = True
        if (k + 1) % check_every and (k + 1) % p.inner_iterations:
            continue
        n_active = int(active.sum())
        if n_active == 0:
            break
        if n_active < len(idx):  # drop the finished pairs from the work
            out_u, out_dual = out_u.index_copy(0, idx, u), out_dual.index_copy(0, idx, dual)
            sel = active.view(-1).nonzero().squeeze(1)
            idx, u, dual, g, ig, g_den, rho_c = (t[sel] for t in (idx, u, dual, g, ig, g_den, rho_c))
            active = active[sel]
        masked = False
    return out_u.index_copy(0, idx, u), out_dual.index_copy(0, idx, dual)


def _as_frames(x: Tensor, name: str) -> Tensor:
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise UsageError(f"{name} must be grayscale frames (N, H, W) or one frame (H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float()
    if x.is_floating_point():
        return x.float() * 255.0  # OpenCV takes float frames in [0, 1]
    raise UsageError(f"{name} must be uint8 (0..255) or float (0..1), got {x.dtype}")


@torch.no_grad()
def tvl1_flow(prev: Tensor, nxt: Tensor, *, params: TVL1Params | None = None, init_flow: Tensor | None = None) -> Tensor:
    """Flow from ``prev`` to ``nxt``: (N, H, W) grayscale frames (uint8, or float in [0, 1]) → (N, H, W, 2) float32.

    ``flow[n, y, x] = (dx, dy)`` such that ``nxt[n, y + dy, x + dx] ≈ prev[n, y, x]``, as
    ``cv2.optflow.DualTVL1OpticalFlow.calc(prev, nxt)``; computed on the frames' device.
    ``params``: default OpenCV's defaults. ``init_flow`` (N, H, W, 2): start from this flow
    (OpenCV's ``useInitialFlow``).
    """
    p = params or TVL1Params.opencv()
    p.validate()
    i0, i1 = _as_frames(prev, "prev"), _as_frames(nxt, "nxt")
    if i0.shape != i1.shape:
        raise UsageError(f"prev and nxt must have the same shape, got {tuple(i0.shape)} and {tuple(i1.shape)}")
    n, h, w = i0.shape
    if h < 3 or w < 3:
        raise UsageError(f"TV-L1 needs frames of at least 3×3 pixels, got {h}×{w}")
    if init_flow is not None and tuple(init_flow.shape) != (n, h, w, 2):
        raise UsageError(f"init_flow must have shape {(n, h, w, 2)}, got {tuple(init_flow.shape)}")

    levels = [(i0[:, None], i1[:, None])]
    for _ in range(1, p.scales_number):
        a, b = (_downscale(x, p.scale_step) for x in levels[-1])
        if min(a.shape[-2:]) < _MIN_LEVEL_SIZE:
            break
        levels.append((a, b))

    c = 3 if p.gamma != 0 else 2
    coarse = levels[-1][0].shape[-2:]
    if init_flow is None:
        u = torch.zeros(n, c, *coarse, device=i0.device)
    else:
        u = init_flow.to(device=i0.device, dtype=torch.float32).permute(0, 3, 1, 2)
        for _ in range(1, len(levels)):  # the initial flow is downscaled level by level, as the frames
            u = _downscale(u, p.scale_step) * p.scale_step
        if c == 3:
            u = torch.cat([u, torch.zeros_like(u[:, :1])], dim=1)

    for s in range(len(levels) - 1, -1, -1):
        u = _solve_level(_Level(*levels[s]), u, p)
        if s > 0:
            u = _resize_to(u, levels[s - 1][0].shape[-2:])
            u = torch.cat([u[:, :2] * (1.0 / p.scale_step), u[:, 2:]], dim=1)  # the illumination term is not scaled
    return u[:, :2].permute(0, 2, 3, 1).contiguous()
