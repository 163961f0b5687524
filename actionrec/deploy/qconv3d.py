"""Int8 3-D convolutions through PT2E: what torchao's x86 quantiser and Inductor leave out.

torchao's ``X86InductorQuantizer`` annotates 1-D/2-D convolutions and linear layers only, and
Inductor lowers ``dequantize → conv → quantize`` to oneDNN's int8 ``qconv_pointwise`` for 3- and
4-D tensors only. oneDNN itself runs int8 3-D convolutions (VNNI/AMX), without the ReLU or
residual-sum post-ops it has for 2-D. So, for our (N, C, T, H, W) networks:

1. :func:`make_quantizer` — the x86 quantiser plus Conv3d: per-channel s8 weights, u8 inputs;
   the output of every ``Conv3d → ReLU`` quantised (u8, zero point 0) like the quantiser's 2-D
   conv-ReLU patterns, and a residual block's end too (the conv before the add, and the
   ``add → ReLU`` output), so blocks hand each other u8 tensors, not fp32 ones.
2. :func:`lower_conv3d` — on the converted graph, every ``dequantize → conv3d`` becomes
   ``onednn.qconv_prepack`` + ``onednn.qconv_pointwise``:

   * ``conv3d [→ relu] → quantize`` → one qconv with a u8 output (after a ReLU the zero point is
     0, and saturating at 0 *is* the ReLU), its weights prepacked for the layer's input shape;
   * ``conv3d`` followed by anything else → qconv with an fp32 output;
   * ``conv3d → relu`` whose ReLU output is not quantised → left as it is (fp32), since Inductor
     would fuse the ReLU into a post-op oneDNN refuses for 3-D.

   Two kinds of convolution are not quantised at all (:func:`stays_fp32`):

   * depthwise (X3D's 3×3×3 ``conv_b``): oneDNN has no fast int8 3-D depthwise kernel; on an AVX2
     host X3D-XS ran 7× *slower* than eager with them in int8, 1.9× faster with them in fp32 (and
     in int8 they need a lowering of their swish: Inductor fuses it into a post-op oneDNN refuses
     for 3-D);
   * over one position (squeeze-excitation, the head's projection: input ``T·H·W`` = 1): nothing
     to gain, and int8 error there goes straight into a gate or the logits.

   Freezing then folds the prepack into a constant, and Inductor lowers ``qconv_pointwise``
   itself. Readers of a u8 output that need fp32 get the dequantisation written as arithmetic,
   so Inductor's "qconv + dequantised add" fusion (a 2-D-only oneDNN post-op) does not match;
   the residual ``dequantize, add, ReLU, quantize`` becomes one Inductor loop over u8 tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

__all__ = ["ConvCounts", "make_quantizer", "lower_conv3d", "stays_fp32"]

_ops = torch.ops
_ANNOTATION = "quantization_annotation"  # torchao's node.meta key
_RELU = (_ops.aten.relu.default, _ops.aten.relu_.default)
_ADD = (_ops.aten.add.Tensor, _ops.aten.add_.Tensor)


def stays_fp32(conv: torch.fx.Node) -> bool:
    """Whether a ``conv3d`` node is depthwise or reads one position (see the module docstring).

    Uses torch.export's fake-tensor metadata (``meta["val"]``) of the input and the weight.
    """
    x, w = (getattr(a, "meta", {}).get("val") for a in conv.args[:2])
    groups = conv.args[6] if len(conv.args) > 6 else 1
    depthwise = w is not None and groups > 1 and int(w.shape[1]) == 1
    one_position = x is not None and x.dim() == 5 and all(int(d) == 1 for d in x.shape[2:])
    return depthwise or one_position


@dataclass
class ConvCounts:
    """Convolutions of a lowered graph: int8 with u8 output, int8 with fp32 output, left fp32."""

    int8_u8: int = 0
    int8_fp32: int = 0
    fp32: int = 0

    @property
    def int8(self) -> int:
        return self.int8_u8 + self.int8_fp32


def _register_prepack_fake() -> None:
    """torch.export traces ``onednn.qconv_prepack`` with fake tensors; torch ships no fake kernel for it."""
    try:
        torch.library.register_fake("onednn::qconv_prepack")(
            lambda w, w_scales, x_scale, x_zp, stride, padding, dilation, groups, x_shape=None: torch.empty_like(w))
    except RuntimeError:  # already registered (by us earlier, or by a newer torch)
        pass


def make_quantizer(xiq: Any, *, keep_fp32: tuple[str, ...] = ()) -> Any:
    """An ``X86InductorQuantizer`` (module ``xiq``) that also quantises Conv3d; ``keep_fp32`` module names stay fp32."""

    class Conv3dX86InductorQuantizer(xiq.X86InductorQuantizer):
        kept_fp32 = 0  # convolutions left fp32 by the stays_fp32 rule at the last annotate (keep_fp32 not counted)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            super().annotate(model)
            config = self.global_config
            out_spec = xiq.get_input_act_qspec(config)
            skip = [xiq._create_module_name_filter(name) for name in keep_fp32]

            def _quantise_output(node: torch.fx.Node) -> None:
                if _ANNOTATION not in node.meta:
                    node.meta[_ANNOTATION] = xiq._X86InductorQuantizationAnnotation(
                        output_qspec=out_spec, _annotated=True, _is_output_of_quantized_pattern=True)

            quantised = set()
            self.kept_fp32 = 0
            for node in model.graph.nodes:
                if node.target is not _ops.aten.conv3d.default or _ANNOTATION in node.meta:
                    continue
                if any(f([node]) for f in skip):
                    continue
                if stays_fp32(node):
                    self.kept_fp32 += 1
                    continue
                self._annotate_conv_node_helper(node, False, config)
                quantised.add(node)
                users = list(node.users)
                if len(users) == 1 and users[0].target in _RELU:
                    _quantise_output(users[0])
                elif len(users) == 1 and users[0].target in _ADD:  # conv → add (→ relu): a residual block's end
                    node.meta[_ANNOTATION].output_qspec = out_spec
            # the block's output (add → relu) in u8 too: the next block's conv and its shortcut read u8
            for node in model.graph.nodes:
                if node.target in _ADD and any(a in quantised for a in node.args):
                    users = list(node.users)
                    if len(users) == 1 and users[0].target in _RELU:
                        _quantise_output(users[0])
            return model

    quantizer = Conv3dX86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    for name in keep_fp32:
        quantizer.set_module_name_qconfig(name, None)
    return quantizer


def _quantized_output(conv: torch.fx.Node) -> tuple[torch.fx.Node | None, torch.fx.Node] | None:
    """(relu or None, quantize) when all of ``conv``'s output goes to a u8 ``quantize_per_tensor``.

    Either directly (any zero point: the output zero point of the int8 kernel) or through a ReLU
    with zero point 0 (then saturation at 0 is the ReLU).
    """
    users = list(conv.users)
    if len(users) != 1:
        return None
    relu = users[0] if users[0].target in _RELU else None
    if relu is not None:
        users = list(relu.users)
        if len(users) != 1:
            return None
    quant = users[0]
    if quant.target is not _ops.quantized_decomposed.quantize_per_tensor.default:
        return None
    _, _, zero_point, _, _, dtype = quant.args[:6]
    if dtype != torch.uint8 or (relu is not None and zero_point != 0):
        return None
    return relu, quant


def _prepack_shape(x: torch.fx.Node) -> list[int] | None:
    """The convolution's input shape at batch 1, if known (from :class:`ShapeProp`).

    oneDNN picks the int8 weight blocking from the input shape and the output type. Prepacked
    without a shape, the weights of some layers do not match what the u8-output kernel picks, and
    oneDNN reorders them on *every* call with a slow reference reorder (R(2+1)D-18's 256→576
    (1,3,3) convolution on 4×14×14: 37 ms at batch 1 and 2, 52–60 ms at batch 8, instead of 2.2,
    4.4 and 18 ms). Prepacked for batch 1, every layer of R(2+1)D-18 matched at batch 1, 2 and 8;
    one of I3D's 57 still does not (Mixed_5b's 192→384 3×3×3, 59–70 ms per call): the prepack op
    cannot be told the output type.
    """
    meta = x.meta.get("tensor_meta")
    return None if meta is None else [1, *(int(d) for d in meta.shape[1:])]


def lower_conv3d(gm: torch.fx.GraphModule, *, example: torch.Tensor | None = None) -> ConvCounts:
    """Rewrite the quantised Conv3d of a ``convert_pt2e`` graph into oneDNN int8 convolutions, in place.

    ``example`` (an input of the graph) gives each convolution's input shape, for the weight prepack
    (see :func:`_prepack_shape`). Returns how the convolutions now run.
    """
    _register_prepack_fake()
    q = _ops.quantized_decomposed
    graph = gm.graph
    counts = ConvCounts()
    if example is not None:
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    for conv in list(graph.nodes):
        if conv.target is not _ops.aten.conv3d.default:
            continue
        dq_x, dq_w = conv.args[0], conv.args[1]
        if (getattr(dq_x, "target", None) is not q.dequantize_per_tensor.default
                or getattr(dq_w, "target", None) is not q.dequantize_per_channel.default):
            counts.fp32 += 1
            continue
        relu_quant = _quantized_output(conv)
        if relu_quant is None and any(u.target in _RELU for u in conv.users):
            counts.fp32 += 1
            continue
        x_q, x_scale, x_zp = dq_x.args[:3]
        w_q, w_scales, w_zps = dq_w.args[:3]
        args = list(conv.args) + [None] * (7 - len(conv.args))
        bias, stride, padding, dilation, groups = args[2], args[3] or [1, 1, 1], args[4] or [0, 0, 0], args[5] or [1, 1, 1], args[6] or 1
        geometry = (stride, padding, dilation, groups)
        x_shape = _prepack_shape(dq_x)  # (not x_q: it may be a convolution rewritten above, without shape metadata)
        with graph.inserting_before(conv):
            packed = graph.call_function(_ops.onednn.qconv_prepack.default, (w_q, w_scales, x_scale, x_zp, *geometry, x_shape))
            head = (x_q, x_scale, x_zp, packed, w_scales, w_zps, bias, *geometry)
            if relu_quant is not None:
                relu, quant = relu_quant
                out_scale, out_zp = quant.args[1:3]
                out = graph.call_function(_ops.onednn.qconv_pointwise.default, (*head, out_scale, out_zp, torch.uint8, "none", [], ""))
                quant.replace_all_uses_with(out)
                for dead in (quant, relu, conv):  # relu_ is in place: dead-code elimination would keep it
                    if dead is not None:
                        graph.erase_node(dead)
                counts.int8_u8 += 1
            else:
                out = graph.call_function(_ops.onednn.qconv_pointwise.default, (*head, 1.0, 0, torch.float32, "none", [], ""))
                conv.replace_all_uses_with(out)
                graph.erase_node(conv)
                counts.int8_fp32 += 1
    graph.eliminate_dead_code()
    for node in list(graph.nodes):
        if node.target is q.dequantize_per_tensor.default and getattr(node.args[0], "target", None) is _ops.onednn.qconv_pointwise.default:
            src, scale, zero_point = node.args[:3]
            with graph.inserting_before(node):
                value = graph.call_function(_ops.aten._to_copy.default, (src,), {"dtype": torch.float32})
                if zero_point:
                    value = graph.call_function(_ops.aten.sub.Tensor, (value, zero_point))
                value = graph.call_function(_ops.aten.mul.Tensor, (value, scale))
            node.replace_all_uses_with(value)
            graph.erase_node(node)
    gm.recompile()
    return counts

