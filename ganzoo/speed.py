"""The library's fast paths: sampling and training settings that pay on the machine at hand.

Sampling (:func:`fast_sampler`, used by ``Generator.sample(..., fast=True)``)
works on a private copy of the generator, in eval mode, rewritten into an
equivalent but cheaper network:

* **BatchNorm folded** into the convolution / linear layer before it (or, for a
  BatchNorm1d feeding a Linear, into the Linear after it): one pass over the
  activations fewer per BatchNorm;
* **nearest 2x up-sampling + 3x3 'same' convolution** computed as one 4x4
  stride-2 transposed convolution with a derived kernel: the same function with
  2.25x fewer multiply-adds (the up-sampled map is never built);
* **asymmetric zero padding + convolution** as one symmetric-padded convolution
  and a crop (no padded copy of the activations);
* **transposed convolutions with few output channels** (image heads with 1-4
  channels) as one matrix product and a col2im (``F.fold``), which runs at GEMM
  speed where oneDNN's direct kernel leaves most vector lanes idle; and of a
  1x1 input (DCGAN's projection of z) as one matrix product;
* activations made in place where their input is a fresh tensor;
* **channels_last** weights (oneDNN / cuDNN's fast layout);
* **bf16 autocast** where the hardware computes in bf16 natively (CUDA with
  bf16 support; CPUs with AVX-512 BF16 or AMX), never where it is emulated:
  on an AVX2-only CPU a bf16 matmul is about 30x slower than fp32;
* optional ``torch.compile`` (opt-in: on a 2-core CPU it costs 10-60 s per
  shape and gains less than the rewrites above; falls back to eager on failure);
* **CUDA graphs** for fixed-shape sampling on a GPU (captured per batch shape;
  falls back to eager launches when capture fails).

Every rewrite is checked numerically against the original network on random
inputs when the sampler is built (fp32, max abs difference 1e-3 on the
[-1, 1] output); a rewrite that does not reproduce the network is dropped.

None of this is assumed to pay: the sampler **measures** (:class:`Variant`,
:func:`sampler_candidates`, :func:`time_candidates`). On the first call of a
batch-size bucket it times the candidates -- the original network in eager
fp32 NCHW (the baseline) and the rewritten one in NCHW / channels_last, fp32 /
bf16 (bf16 only where native) -- a few calls each after a warm-up, keeps the
fastest, and caches the decision in ``$GANZOO_CACHE/speed/choices.json``
(:func:`choice_cache_path`; keyed by the model's architecture and size, the
batch bucket, device and CPU/GPU model, bf16 capability, torch version and
thread count; written atomically; a corrupt file is ignored with a warning
and rewritten), so that later samplers and processes do not time again. An
option the caller gives (``bf16``, ``channels_last``, ``rewrite``) is not
second-guessed; ``measure=False`` or ``GANZOO_SPEED_MEASURE=0`` uses the
defaults without timing.

Training (:func:`prepare_training`, used by :class:`ganzoo.trainer.Trainer`)
applies only the rewrites that keep the parameters and their names (the
up-sampling + convolution and the padding + convolution ones, which share the
original ``weight`` and ``bias`` Parameters, so checkpoints, optimizers and
``state_dict`` keys are unchanged), channels_last for convolutional networks,
``cudnn.benchmark`` on CUDA, and fused Adam (:func:`adam`).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import math
import os
import sys
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils import parametrize

from .device import cpu_model
from .io import cache_dir, write_json
from .precision import autocast, bf16_supported, cpu_bf16_native, cpu_features

__all__ = [
    "cpu_bf16_native", "bf16_supported", "cpu_features", "cpu_model", "configure_backends", "adam", "LayoutSafeAdam",
    "ThreadTuner",
    "fast_sampler", "FastSampler", "Variant", "sampler_candidates", "time_candidates", "choice_cache_path",
    "load_choices", "save_choice", "batch_bucket", "model_fingerprint", "cached_sampler", "sample", "optimize_for_inference",
    "prepare_training", "rewrite_for_training", "UpsampleConv2d", "CroppedConv2d",
    "GemmConvTranspose2d", "PointConvTranspose2d", "upsample_conv_weight", "VERIFY_ATOL",
]

#: A rewritten network must reproduce the original to this max abs difference (fp32, [-1, 1] output).
VERIFY_ATOL = 1e-3
#: Transposed convolutions with at most this many output channels go through GEMM + col2im.
GEMM_CONVT_MAX_OUT = 4


# ---------------------------------------------------------------------------- capabilities
def configure_backends(device: torch.device | str) -> None:
    """Process-wide settings that only speed things up: cuDNN autotuning on CUDA."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True


class LayoutSafeAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose loaded state takes each parameter's memory layout.

    The fused and foreach kernels walk a parameter and its ``exp_avg`` /
    ``exp_avg_sq`` as flat memory: a state saved from an NCHW parameter and
    loaded for a channels_last one (a checkpoint written before channels_last
    was switched on) would silently pair the wrong elements (measured on CPU
    fused Adam in torch 2.14: a 0.16 error after one step, where 1e-7 is
    rounding). ``load_state_dict`` therefore copies such state into the
    parameter's layout. The state_dict format is Adam's.
    """

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if not st:
                    continue
                for k, v in st.items():
                    if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                        st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def adam(params, lr: float, betas: Sequence[float], *, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fastest update available: fused (one kernel for all tensors; CUDA and CPU
    in recent torch), else foreach (multi-tensor), else the per-parameter loop; loaded state
    follows the parameters' memory layout (:class:`LayoutSafeAdam`)."""
    params = [p for p in params if p.requires_grad]
    kwargs = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    for extra in ({"fused": True}, {"foreach": True}, {}):
        try:
            return LayoutSafeAdam(params, **kwargs, **extra)
        except (RuntimeError, TypeError, ValueError):
            continue
    raise AssertionError("unreachable")


def _has_conv2d(*modules: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, UpsampleConv2d, CroppedConv2d, GemmConvTranspose2d,
                                  OnePixelConv2d))
               for net in modules for m in net.modules())


# ---------------------------------------------------------------------------- rewritten layers
_UP_TAPS = torch.tensor([[0.0, 0.0, 1.0],   # convT tap 0 <- conv tap 2
                         [0.0, 1.0, 1.0],   # convT tap 1 <- conv taps 1 + 2
                         [1.0, 1.0, 0.0],   # convT tap 2 <- conv taps 0 + 1
                         [1.0, 0.0, 0.0]])  # convT tap 3 <- conv tap 0


def upsample_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """The (C_in, C_out, 4, 4) kernel of the stride-2 transposed convolution equal to nearest
    2x up-sampling followed by a 3x3, stride-1, zero-padded 'same' convolution with ``weight``
    (C_out, C_in, 3, 3).

    In 1-D, with u the up-sampled signal: ``y[2i] = w0 x[i-1] + (w1 + w2) x[i]`` and
    ``y[2i+1] = (w0 + w1) x[i] + w2 x[i+1]``, which is ``conv_transpose(x, k, stride 2,
    padding 1)`` with ``k = (w2, w1 + w2, w0 + w1, w0)``; in 2-D the same on each axis.
    Differentiable, so training can use it with the 3x3 weight as the parameter.
    """
    m = _UP_TAPS.to(device=weight.device, dtype=weight.dtype)
    return torch.einsum("ka,lb,oiab->iokl", m, m, weight)


class UpsampleConv2d(nn.Module):
    """``Upsample(scale_factor=2, mode='nearest')`` + 3x3 'same' ``Conv2d`` as one transposed conv.

    Holds the original convolution's ``weight`` (C_out, C_in, 3, 3) and ``bias``
    Parameters under the same names, so ``state_dict`` and optimizers are unchanged;
    the 4x4 kernel is derived from them at each call (cheap, differentiable).
    16 instead of 36 multiply-adds per output pixel and channel pair.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.weight = conv.weight
        self.bias = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, upsample_conv_weight(self.weight), self.bias, stride=2, padding=1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, up=2 (nearest) + 3x3 'same' as a 4x4/2 transposed conv"


class CroppedConv2d(nn.Module):
    """An asymmetric zero pad + ``Conv2d`` as a symmetric-padded ``Conv2d`` and a crop.

    Shares the convolution's Parameters (same names). ``pad`` is (left, right, top, bottom).
    """

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]) -> None:
        super().__init__()
        left, right, top, bottom = pad
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        self.sym = (max(top, bottom), max(left, right))
        self.crop_top, self.crop_left = self.sym[0] - top, self.sym[1] - left
        self.extra = (top + bottom, left + right)
        self.kernel_size = conv.kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.sym, self.dilation, self.groups)
        h = (x.shape[-2] + self.extra[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        w = (x.shape[-1] + self.extra[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
        if y.shape[-2] == h and y.shape[-1] == w:
            return y
        return y[..., self.crop_top:self.crop_top + h, self.crop_left:self.crop_left + w]


class OnePixelConv2d(nn.Module):
    """A 'same'-padded ``Conv2d`` that computes a 1x1 input as one matrix product.

    On a 1x1 map with padding ``k // 2`` only the kernel's centre tap meets the input
    (every other tap multiplies the zero padding), so the output is
    ``x @ W[:, :, c, c]^T + b`` at 1/k^2 of the multiply-adds, forward and backward; the
    other taps' gradients are zero either way. Larger inputs take ``F.conv2d`` unchanged.
    Shares the convolution's Parameters (same names). ResNet18's last stage runs on 1x1
    maps for 32x32 images (BEGAN's encoder).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, 1
        self.kernel_size, self.in_channels, self.out_channels = conv.kernel_size, conv.in_channels, conv.out_channels
        self.centre = conv.kernel_size[0] // 2

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        if type(conv) is not nn.Conv2d or conv.groups != 1 or conv.padding_mode != "zeros":
            return False
        if not _keeps_parameters(conv):
            return False
        k = conv.kernel_size
        return (k[0] == k[1] and k[0] % 2 == 1 and k[0] > 1 and conv.dilation == (1, 1)
                and conv.padding == (k[0] // 2, k[0] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 1 or x.shape[-2] != 1:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        c = self.centre
        y = F.linear(x.flatten(1), self.weight[:, :, c, c], self.bias)
        return y.view(x.shape[0], -1, 1, 1)


class GemmConvTranspose2d(nn.Module):
    """A transposed convolution with few output channels as a matrix product + col2im.

    ``y = fold(x^T W)``: the product has the input channels as its inner dimension, so
    it runs at GEMM speed even when C_out is 1-4 (where a direct kernel vectorised over
    output channels leaves most lanes idle). Inference only (made by :func:`optimize_for_inference`).
    """

    def __init__(self, convt: nn.ConvTranspose2d) -> None:
        super().__init__()
        cin, cout = convt.in_channels, convt.out_channels
        kh, kw = convt.kernel_size
        self.register_buffer("w2d", convt.weight.detach().reshape(cin, cout * kh * kw).clone())
        self.register_buffer("bias", convt.bias.detach().clone() if convt.bias is not None else None)
        self.cout, self.kernel_size, self.stride, self.padding = cout, (kh, kw), convt.stride, convt.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        cols = x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ self.w2d    # (N, H*W, C_out*kh*kw)
        out_h, out_w = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        y = F.fold(cols.transpose(1, 2), (out_h, out_w), (kh, kw), stride=(sh, sw), padding=(ph, pw))
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class PointConvTranspose2d(nn.Module):
    """A transposed convolution of a 1x1 input (DCGAN's projection of z) as one matrix product.

    ``y[n, :, i, j] = x[n] @ W[:, :, i, j] + b``; the product is laid out (N, kh, kw, C_out), so the
    result comes out channels_last at no cost. Inference only.
    """

    def __init__(self, convt: nn.ConvTranspose2d) -> None:
        super().__init__()
        cin, cout = convt.in_channels, convt.out_channels
        kh, kw = convt.kernel_size
        w = convt.weight.detach().permute(0, 2, 3, 1).reshape(cin, kh * kw * cout)
        b = convt.bias.detach().repeat(kh * kw) if convt.bias is not None else None
        self.register_buffer("w2d", w.clone())
        self.register_buffer("bias", b)
        self.cout, self.kernel_size = cout, (kh, kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        y = torch.addmm(self.bias, flat, self.w2d) if self.bias is not None else flat @ self.w2d
        return y.view(n, self.kernel_size[0], self.kernel_size[1], self.cout).permute(0, 3, 1, 2)


# ---------------------------------------------------------------------------- graph rewrites
class _LeafTracer(fx.Tracer):
    """Treat every module without children as a leaf (plugin layers with custom forwards
    included), so that the graph shows the network's layers and nothing inside them."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return next(iter(m.children()), None) is None or super().is_leaf_module(m, qualname)


def _trace(module: nn.Module) -> fx.GraphModule:
    graph = _LeafTracer().trace(module)
    return fx.GraphModule(module, graph, class_name=type(module).__name__ + "Graph")


def _users(node: fx.Node) -> list[fx.Node]:
    return list(node.users)


def _is_shape_query(node: fx.Node) -> bool:
    """``x.shape`` / ``x.size()`` / ``x.dim()``: reads metadata only, never the values."""
    return (node.op == "call_function" and node.target is getattr and len(node.args) == 2
            and node.args[1] in ("shape", "ndim", "dtype", "device")) or \
        (node.op == "call_method" and node.target in ("size", "dim"))


def _single_user(node: fx.Node) -> fx.Node | None:
    """The one node that uses ``node``'s values (shape queries do not count), or None."""
    users = [u for u in _users(node) if not _is_shape_query(u)]
    return users[0] if len(users) == 1 else None


def _call_counts(gm: fx.GraphModule) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            counts[n.target] = counts.get(n.target, 0) + 1
    return counts


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


def _called_once(gm: fx.GraphModule, counts: dict[str, int], match: Callable[[nn.Module], bool]):
    """``(node, module)`` for each call of a module that ``match`` accepts and that the graph calls only
    there (``counts``: :func:`_call_counts`), so a pass may rewrite it; the nodes are listed first, so a
    pass may change the graph."""
    for node in list(gm.graph.nodes):
        m = _module(gm, node)
        if m is not None and match(m) and counts[node.target] == 1:
            yield node, m


def _only_input_is(node: fx.Node, producer: fx.Node) -> bool:
    return len(node.args) == 1 and node.args[0] is producer and not node.kwargs


def _set_submodule(root: nn.Module, qualname: str, new: nn.Module) -> None:
    parent_name, _, name = qualname.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, new)


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Eval-mode BatchNorm as ``y = x * s + t`` (None when it would use batch statistics)."""
    if bn.training or not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        return None
    s = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.detach().double()
    t = -bn.running_mean.double() * s
    if bn.bias is not None:
        t = t + bn.bias.detach().double()
    return s, t


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _fold_bn_into_producer(gm: fx.GraphModule) -> list[str]:
    """conv / transposed conv / linear (optionally through a reshape) -> eval BatchNorm."""
    done = []
    counts = _call_counts(gm)
    for bn_node, bn in _called_once(gm, counts, lambda m: isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))):
        st = _bn_scale_shift(bn)
        src = bn_node.args[0] if bn_node.args else None
        if st is None or not isinstance(src, fx.Node) or not _only_input_is(bn_node, src):
            continue
        s, t = st
        reshape = None
        if src.op == "call_method" and src.target in ("view", "reshape") and _single_user(src) is bn_node:
            reshape, src = src, src.args[0]
        layer = _module(gm, src) if isinstance(src, fx.Node) else None
        if layer is None or counts.get(src.target, 0) != 1 \
                or _single_user(src) is not (reshape if reshape is not None else bn_node):
            continue
        if type(layer) in (nn.Conv2d, nn.Conv1d) or isinstance(layer, UpsampleConv2d):
            out_dim, n_out = 0, layer.weight.shape[0]
        elif type(layer) is nn.ConvTranspose2d and layer.groups == 1:
            out_dim, n_out = 1, layer.weight.shape[1]
        elif type(layer) is nn.Linear:
            out_dim, n_out = 0, layer.out_features
        else:
            continue
        if reshape is not None:
            # Linear (N, F) -> view (N, C, *rest) with F = C * prod(rest) -> BN(C): feature f is channel f // prod(rest)
            before, after = _shape(src), _shape(reshape)
            if type(layer) is not nn.Linear or before is None or after is None or len(before) != 2 \
                    or len(after) < 3 or after[1] != bn.num_features or math.prod(after[1:]) != before[1]:
                continue
            per = math.prod(after[2:])
            s, t = s.repeat_interleave(per), t.repeat_interleave(per)
        elif s.numel() != n_out:
            continue
        with torch.no_grad():
            w = layer.weight.double()
            shape = [1] * w.dim()
            shape[out_dim] = -1
            layer.weight.copy_((w * s.view(shape)).to(layer.weight.dtype))
            b = layer.bias.double() if layer.bias is not None else torch.zeros_like(s)
            new_b = (b * s + t).to(layer.weight.dtype)
            if layer.bias is None:
                layer.bias = nn.Parameter(new_b, requires_grad=False)
            else:
                layer.bias.copy_(new_b)
        bn_node.replace_all_uses_with(reshape if reshape is not None else src)
        gm.graph.erase_node(bn_node)
        done.append(f"BatchNorm {bn_node.target} folded into {src.target}")
    return done


def _fold_bn_into_next_linear(gm: fx.GraphModule) -> list[str]:
    """eval BatchNorm1d -> Linear: ``W (x s + t) + b = (W s) x + (W t + b)`` (exact for a Linear)."""
    done = []
    counts = _call_counts(gm)
    for bn_node, bn in _called_once(gm, counts, lambda m: type(m) is nn.BatchNorm1d):
        st = _bn_scale_shift(bn)
        nxt = _single_user(bn_node)
        lin = _module(gm, nxt) if nxt is not None else None
        shape = _shape(bn_node)
        if st is None or type(lin) is not nn.Linear or counts[nxt.target] != 1 or not _only_input_is(nxt, bn_node) \
                or shape is None or len(shape) != 2:
            continue
        s, t = st
        with torch.no_grad():
            w = lin.weight.double()
            b = lin.bias.double() if lin.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
            new_b = (b + w @ t).to(lin.weight.dtype)
            lin.weight.copy_((w * s.view(1, -1)).to(lin.weight.dtype))
            if lin.bias is None:
                lin.bias = nn.Parameter(new_b, requires_grad=False)
            else:
                lin.bias.copy_(new_b)
        bn_node.replace_all_uses_with(bn_node.args[0])
        gm.graph.erase_node(bn_node)
        done.append(f"BatchNorm {bn_node.target} folded into the next layer {nxt.target}")
    return done


def _keeps_parameters(conv: nn.Module) -> bool:
    """True when ``conv`` uses its ``weight`` Parameter as it is: not recomputed by a parametrization
    (``torch.nn.utils.parametrizations.spectral_norm``) or by hooks (the older ``spectral_norm`` /
    ``weight_norm``). A training rewrite that took ``conv.weight`` from such a layer would hold a
    snapshot, a tensor that neither trains nor follows the normalization (FastGAN's G, fine-tuned)."""
    if parametrize.is_parametrized(conv) or conv._forward_pre_hooks or conv._forward_hooks:
        return False
    return isinstance(conv.weight, nn.Parameter)


def _is_nearest_2x(m: nn.Module | None) -> bool:
    if not isinstance(m, nn.Upsample) or m.mode != "nearest" or m.size is not None:
        return False
    sf = m.scale_factor
    sf = tuple(sf) if isinstance(sf, (tuple, list)) else (sf, sf)
    return all(float(v) == 2.0 for v in sf) and not getattr(m, "recompute_scale_factor", None)


def _is_same_3x3(conv: nn.Module | None) -> bool:
    """A stride-1 3x3 conv zero-padded by 1 on every side (checked by running it, for subclasses)."""
    if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3) or conv.stride != (1, 1) \
            or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
        return False
    if type(conv) is nn.Conv2d:
        return conv.padding == (1, 1)
    # a subclass (e.g. Keras 'same' padding computed in forward): try it on an even-sized input
    with torch.no_grad():
        x = torch.randn(1, conv.in_channels, 6, 6, device=conv.weight.device, dtype=conv.weight.dtype)
        try:
            got = conv(x)
        except Exception:
            return False
        ref = F.conv2d(x, conv.weight, conv.bias, 1, 1)
        return got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5, rtol=1e-4)


def _sole_consumer(gm: fx.GraphModule, counts: dict[str, int], producer: fx.Node):
    """``(node, module)`` of the module called once that alone consumes ``producer``, as its only input.

    ``(None, None)`` when there is no such consumer: the pair cannot be fused.
    """
    node = _single_user(producer)
    module = _module(gm, node) if node is not None else None
    if module is None or counts[node.target] != 1 or not _only_input_is(node, producer):
        return None, None
    return node, module


def _fuse_into_consumer(gm: fx.GraphModule, producer: fx.Node, consumer: fx.Node, new: nn.Module) -> None:
    """Replace ``consumer``'s module by ``new``, which now does the producer's work too, and drop the producer."""
    _set_submodule(gm, consumer.target, new)
    _set_submodule(gm, producer.target, nn.Identity())
    consumer.args = (producer.args[0],)
    gm.graph.erase_node(producer)


def _upsample_conv_to_convt(gm: fx.GraphModule) -> list[str]:
    """nearest 2x Upsample -> 3x3 'same' Conv2d  ==>  one 4x4 stride-2 transposed conv (frozen weights).

    For training, :func:`rewrite_for_training` fuses the same pair into :class:`UpsampleConv2d` instead,
    which keeps the conv's Parameters.
    """
    done = []
    counts = _call_counts(gm)
    for up_node in list(gm.graph.nodes):
        if not _is_nearest_2x(_module(gm, up_node)) or counts[up_node.target] != 1:
            continue
        conv_node, conv = _sole_consumer(gm, counts, up_node)
        if conv is None or not _is_same_3x3(conv):
            continue
        new = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1,
                                 bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(upsample_conv_weight(conv.weight.double()).to(conv.weight.dtype))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        new.requires_grad_(False)
        _fuse_into_consumer(gm, up_node, conv_node, new)
        done.append(f"{up_node.target} + {conv_node.target}: up-sample + 3x3 conv as a 4x4/2 transposed conv")
    return done


def _pad_conv_to_cropped(gm: fx.GraphModule) -> list[str]:
    """ZeroPad2d (asymmetric) -> Conv2d(padding=0)  ==>  symmetric-padded Conv2d + crop."""
    done = []
    counts = _call_counts(gm)
    for pad_node, pad in _called_once(gm, counts, lambda m: isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d))):
        if isinstance(pad, nn.ConstantPad2d) and type(pad) is not nn.ZeroPad2d and pad.value != 0:
            continue
        conv_node, conv = _sole_consumer(gm, counts, pad_node)
        if type(conv) is not nn.Conv2d or conv.padding != (0, 0) or conv.padding_mode != "zeros":
            continue
        left, right, top, bottom = (int(p) for p in pad.padding)
        if min(left, right, top, bottom) < 0:
            continue
        sym = (max(top, bottom), max(left, right))
        if (sym[0] - top) % conv.stride[0] or (sym[1] - left) % conv.stride[1]:
            continue
        _fuse_into_consumer(gm, pad_node, conv_node, CroppedConv2d(conv, (left, right, top, bottom)))
        done.append(f"{pad_node.target} + {conv_node.target}: padded copy replaced by conv padding + crop")
    return done


def _convt_to_gemm(gm: fx.GraphModule) -> list[str]:
    """Transposed convs of a 1x1 input (a matrix product) or with 1-4 output channels (GEMM + col2im)."""
    done = []
    for node, m in _called_once(gm, _call_counts(gm), lambda m: type(m) is nn.ConvTranspose2d):
        if m.groups != 1 or m.dilation != (1, 1) or m.output_padding != (0, 0) or m.padding_mode != "zeros":
            continue
        shape = _shape(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if shape is None or len(shape) != 4 or len(node.args) != 1 or node.kwargs:
            continue
        if shape[2:] == (1, 1) and m.padding == (0, 0):
            _set_submodule(gm, node.target, PointConvTranspose2d(m))
            done.append(f"{node.target}: transposed conv of a 1x1 input as one matrix product")
        elif m.out_channels <= GEMM_CONVT_MAX_OUT:
            _set_submodule(gm, node.target, GemmConvTranspose2d(m))
            done.append(f"{node.target}: {m.out_channels}-channel transposed conv as GEMM + col2im")
    return done


_FRESH = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d,
          UpsampleConv2d, CroppedConv2d, GemmConvTranspose2d, PointConvTranspose2d)
_INPLACE_FN = {torch.tanh: torch.tanh_, torch.relu: torch.relu_, torch.sigmoid: torch.sigmoid_,
               F.relu: torch.relu_}


def _inplace_activations(gm: fx.GraphModule) -> list[str]:
    """Activations whose input is a fresh, single-use tensor made by a layer: run them in place."""
    done = []
    counts = _call_counts(gm)
    for node in list(gm.graph.nodes):
        src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        if src is None or _single_user(src) is not node or not isinstance(_module(gm, src), _FRESH):
            continue
        if node.op == "call_module" and counts[node.target] == 1:
            m = _module(gm, node)
            if type(m) in (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Hardtanh, nn.ReLU6) and not m.inplace:
                m.inplace = True
                done.append(f"{node.target} in place")
            elif type(m) in (nn.Tanh, nn.Sigmoid):
                with gm.graph.inserting_after(node):
                    new = gm.graph.call_function(torch.tanh_ if type(m) is nn.Tanh else torch.sigmoid_, (src,))
                node.replace_all_uses_with(new)
                gm.graph.erase_node(node)
                done.append(f"{node.target} in place")
        elif node.op == "call_function" and node.target in _INPLACE_FN and len(node.args) == 1 and not node.kwargs:
            node.target = _INPLACE_FN[node.target]
            done.append(f"{node.name} in place")
    return done


_INFERENCE_PASSES: list[tuple[str, Callable[[fx.GraphModule], list[str]]]] = [
    ("fold_bn", _fold_bn_into_producer),
    ("fold_bn_next", _fold_bn_into_next_linear),
    ("upsample_conv", _upsample_conv_to_convt),
    ("pad_conv", _pad_conv_to_cropped),
    ("gemm_convt", _convt_to_gemm),
    ("inplace", _inplace_activations),
]


def _example_inputs(G: nn.Module, batch: int, device, *, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, G.latent_dim, generator=gen).to(device)
    if getattr(G, "num_classes", 0):
        return z, torch.randint(G.num_classes, (batch,), generator=gen).to(device)
    return (z,)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    d = (a.float() - b.float()).abs().max()
    return float(d) if torch.isfinite(d) else float("inf")


def optimize_for_inference(G: nn.Module, *, example_inputs: tuple[torch.Tensor, ...],
                           channels_last: bool = True, rewrite: bool = True,
                           atol: float = VERIFY_ATOL) -> tuple[nn.Module, list[str]]:
    """An eval-mode copy of ``G`` rewritten for inference; returns ``(module, notes)``.

    ``G`` itself is not touched. Every rewrite is verified against ``G`` on
    ``example_inputs`` (fp32): all passes at once, and when that fails, pass by
    pass, keeping only those that reproduce ``G``.
    """
    ref_net = copy.deepcopy(G).eval()
    for p in ref_net.parameters():
        p.requires_grad_(False)
    notes: list[str] = []
    with torch.no_grad():
        ref = ref_net(*example_inputs)
    net: nn.Module = ref_net
    if rewrite:
        try:
            base = _trace(copy.deepcopy(ref_net))
        except Exception as exc:  # untraceable forward: no rewrites, still channels_last etc.
            notes.append(f"graph rewrites skipped: the generator cannot be traced by torch.fx ({type(exc).__name__}: {exc})")
            base = None
        if base is not None:
            net, notes = _apply_passes(base, example_inputs, ref, atol, notes)
    if channels_last and _has_conv2d(net):
        net = net.to(memory_format=torch.channels_last)
        notes.append("channels_last weights")
    return net, notes


def _run_passes(gm: fx.GraphModule, passes, example_inputs) -> tuple[fx.GraphModule, list[str]]:
    done: list[str] = []
    with torch.no_grad():  # shapes once: the passes keep every surviving node's output shape
        ShapeProp(gm).propagate(*example_inputs)
    for _, fn in passes:
        done += fn(gm)
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    gm.delete_all_unused_submodules()
    return gm, done


def _apply_passes(base: fx.GraphModule, example_inputs, ref, atol, notes) -> tuple[nn.Module, list[str]]:
    def attempt(passes):
        gm = copy.deepcopy(base)
        try:
            gm, done = _run_passes(gm, passes, example_inputs)
            with torch.no_grad():
                diff = _max_diff(gm(*example_inputs), ref)
        except Exception as exc:
            return None, [], f"{type(exc).__name__}: {exc}"
        return (gm, done, None) if diff <= atol else (None, done, f"max abs diff {diff:.3g} > {atol}")

    gm, done, err = attempt(_INFERENCE_PASSES)
    if gm is not None:
        return gm, notes + done
    # find the passes that break this network, keep the others
    kept = []
    for name, fn in _INFERENCE_PASSES:
        trial, _, err = attempt(kept + [(name, fn)])
        if trial is not None:
            kept.append((name, fn))
        else:
            notes.append(f"rewrite {name!r} dropped: it does not reproduce the network ({err})")
    gm, done, err = attempt(kept)
    if gm is None:
        notes.append(f"graph rewrites dropped ({err})")
        return copy.deepcopy(base), notes
    return gm, notes + done


# ---------------------------------------------------------------------------- CPU threads
class ThreadTuner:
    """Chooses the intra-op thread count (``torch.set_num_threads``) per input shape by timing real calls.

    On a CPU shared with other busy processes, an OpenMP parallel region waits
    for its descheduled threads at every barrier: measured on a 2-core VM at
    load 6, one thread sampled BEGAN 8x faster than two at batch 8 and 2x at
    batch 64 (and an MLP 60x at batch 1). On an idle machine more threads win
    for large batches. So: the first call per shape warms up, the next calls
    try each candidate, then the fastest (median of its last 3 timings) is used,
    and the others are re-tried every ``explore_every`` calls as load changes.
    """

    def __init__(self, candidates: Sequence[int], explore_every: int = 16) -> None:
        self.candidates = list(dict.fromkeys(int(c) for c in candidates if int(c) >= 1))
        self.explore_every = int(explore_every)
        self._times: dict[Any, dict[int, list[float]]] = {}
        self._calls: dict[Any, int] = {}

    def choose(self, key) -> int:
        calls = self._calls.get(key, 0)
        self._calls[key] = calls + 1
        times = self._times.setdefault(key, {c: [] for c in self.candidates})
        if calls == 0:
            return self.candidates[0]                 # warm-up: one-time costs, not recorded
        untried = [c for c in self.candidates if not times[c]]
        if untried:
            return untried[0]
        best = self.best(key)
        if len(self.candidates) > 1 and calls % self.explore_every == 0:
            others = [c for c in self.candidates if c != best]
            return others[(calls // self.explore_every) % len(others)]
        return best

    def record(self, key, threads: int, seconds: float) -> None:
        if self._calls.get(key, 0) <= 1:
            return
        hist = self._times.setdefault(key, {c: [] for c in self.candidates}).setdefault(threads, [])
        hist.append(seconds)
        del hist[:-3]

    def best(self, key) -> int:
        times = self._times.get(key, {})
        timed = {c: sorted(t)[len(t) // 2] for c, t in times.items() if t}
        return min(timed, key=timed.get) if timed else self.candidates[0]

    def summary(self) -> dict[str, int]:
        return {str(k): self.best(k) for k in self._times}


# ---------------------------------------------------------------------------- measured choice
@dataclass(frozen=True)
class Variant:
    """One way to run a generator: the original eager network or the rewritten one, in NCHW or
    channels_last, in fp32 or under bf16 autocast."""

    rewrite: bool
    channels_last: bool
    bf16: bool

    @property
    def name(self) -> str:
        return "-".join(("rewritten" if self.rewrite else "eager", "channels_last" if self.channels_last else "nchw",
                         "bf16" if self.bf16 else "fp32"))


#: Bump when the candidates or the way they are built change: older decisions are then ignored.
CHOICE_VERSION = 1
#: ``GANZOO_SPEED_MEASURE=0`` turns the measured choice off process-wide (the defaults are used).
MEASURE_ENV = "GANZOO_SPEED_MEASURE"


def choice_cache_path() -> Path:
    """The file of measured decisions: ``$GANZOO_CACHE/speed/choices.json``, else
    ``$XDG_CACHE_HOME/ganzoo/speed/choices.json``, else ``~/.cache/ganzoo/speed/choices.json``."""
    return cache_dir("speed") / "choices.json"


def load_choices(path: Path | None = None) -> dict[str, dict]:
    """The cached decisions (key -> entry); a missing file is empty, an unreadable or corrupt one
    is ignored with a warning (it is rewritten at the next decision)."""
    path = path or choice_cache_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"ganzoo.speed: ignoring the unreadable choice cache {path} ({type(exc).__name__}: {exc}); "
                      "it is rewritten at the next measurement", RuntimeWarning, stacklevel=2)
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("choices"), dict) \
            or data.get("version") != CHOICE_VERSION:
        warnings.warn(f"ganzoo.speed: ignoring the choice cache {path}: not a version-{CHOICE_VERSION} choice file; "
                      "it is rewritten at the next measurement", RuntimeWarning, stacklevel=2)
        return {}
    return {k: v for k, v in data["choices"].items() if isinstance(v, dict) and isinstance(v.get("variant"), str)}


def save_choice(key: str, entry: dict, path: Path | None = None) -> None:
    """Add one decision to the cache file, written atomically (a failure to write only warns)."""
    path = path or choice_cache_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a corrupt file was reported when it was read
        choices = load_choices(path)
    choices[key] = entry
    try:
        write_json(path, {"version": CHOICE_VERSION, "choices": choices})
    except OSError as exc:
        warnings.warn(f"ganzoo.speed: could not write the choice cache {path} ({exc}); the choice is not kept",
                      RuntimeWarning, stacklevel=2)


def model_fingerprint(G: nn.Module) -> str:
    """A hash of the generator's architecture and size (its class, ``repr``, config and the
    shapes and dtypes of its parameters and buffers), not of its weights' values."""
    h = hashlib.sha256()
    h.update(f"{type(G).__module__}.{type(G).__qualname__}\n{G!r}\n".encode())
    cfg = getattr(G, "config", None)
    if cfg is not None:
        with contextlib.suppress(Exception):
            h.update(json.dumps(cfg.to_dict() if hasattr(cfg, "to_dict") else cfg, sort_keys=True, default=str).encode())
    for name, t in itertools.chain(G.named_parameters(), G.named_buffers()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
    return h.hexdigest()[:24]


def batch_bucket(batch: int) -> int:
    """Batches share a decision by power-of-two bucket (1, 2, 4, ..., 256, 512, ...), so the last,
    shorter chunk of a long draw does not trigger a measurement of its own."""
    return 1 << max(0, int(batch) - 1).bit_length()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{cpu_model()}"
    return device.type


def choice_key(fingerprint: str, batch: int, device: torch.device, candidates: Sequence[Variant],
               conditional: bool) -> str:
    fields = {"model": fingerprint, "batch_bucket": batch_bucket(batch), "device": device_name(device),
              "bf16_native": bf16_supported(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "conditional": conditional, "candidates": sorted(v.name for v in candidates), "version": CHOICE_VERSION}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def time_candidates(fns: dict[str, Callable[[], Any]], device: torch.device, *, rounds: int = 5,
                    min_round_s: float = 0.005, max_s: float = 2.0) -> dict[str, float]:
    """Seconds per call of each function: one warm-up call each (not counted), then ``rounds``
    interleaved rounds (the order reversed every round, so that a machine's load hits all), each
    repeating a call until it lasts ``min_round_s``; the fastest round (other processes' load only
    ever adds time, so the minimum is the least disturbed estimate, as ``timeit`` advises). Fewer
    rounds (at least 2) when one round of all would exceed ``max_s``. A function that raises is
    left out. The measured choice's one seam: tests replace it to inject timings."""
    def timed(fn, k):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / k

    first: dict[str, float] = {}
    for name, fn in fns.items():
        try:
            fn()                                   # warm-up: one-time costs (allocation, oneDNN primitives)
            first[name] = timed(fn, 1)
        except Exception as exc:
            warnings.warn(f"ganzoo.speed: candidate {name} failed ({type(exc).__name__}: {exc}); left out",
                          RuntimeWarning, stacklevel=2)
    if not first:
        return {}
    calls = {n: max(1, min(50, math.ceil(min_round_s / max(t, 1e-7)))) for n, t in first.items()}
    per_round = sum(calls[n] * first[n] for n in first)
    rounds = max(2, min(rounds, int(max_s // per_round) if per_round > 0 else rounds))
    times: dict[str, list[float]] = {n: [] for n in first}
    names = list(first)
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            times[n].append(timed(fns[n], calls[n]))
    return {n: min(ts) for n, ts in times.items()}


# ---------------------------------------------------------------------------- the sampler
class FastSampler:
    """``sampler(z, labels=None)`` -> float32 images in [-1, 1] (NCHW), like ``G.sample``.

    Made by :func:`fast_sampler`. It holds the generator's candidate variants (:class:`Variant`)
    and, per batch-size bucket, the one measured fastest (or given); ``notes`` lists what it does.
    """

    def __init__(self, src: nn.Module, device: torch.device, *, candidates: Sequence[Variant], measure: bool,
                 conditional: bool, pixel_range: tuple[float, float], example: tuple[torch.Tensor, ...],
                 compile: bool = False, notes: list[str] | None = None) -> None:
        self._src = src                            # private eval-mode copy of G on the device
        self.device = device
        self.candidates = list(candidates)
        self.measure = bool(measure) and len(self.candidates) > 1
        self.conditional = conditional
        self.pixel_range = pixel_range
        self._example = example
        self._compile = compile
        self.notes: list[str] = list(notes or [])
        self.cuda_graphs = False
        self.compiled = False
        self._eager: nn.Module | None = None
        self._graphs: dict = {}
        self.max_graphs = 4
        self.threads: ThreadTuner | None = None
        self._rewritten: nn.Module | None = None
        self._built: dict[Variant, nn.Module] = {}
        self.choices: dict[int, Variant] = {}       # batch bucket -> variant
        self.decisions: dict[int, dict] = {}        # batch bucket -> how it was decided
        self._fingerprint: str | None = None
        self._current = self.candidates[0]

    # ---- variants
    @property
    def default(self) -> Variant:
        return self.candidates[0]

    def _rewritten_module(self) -> nn.Module:
        if self._rewritten is None:
            module, notes = optimize_for_inference(self._src, example_inputs=self._example, channels_last=False)
            # nothing rewritten (untraceable, or no pattern applies): the rewritten variants are the
            # original network, and are not timed against it
            self._rewritten = module if any(not n.startswith(("graph rewrites", "rewrite ")) for n in notes) \
                else self._src
            self.notes += notes
        return self._rewritten

    def _distinct(self) -> list[Variant]:
        """The candidates that differ: a rewritten variant whose rewrite did nothing is dropped
        when the same variant of the original network is a candidate."""
        out = []
        for c in self.candidates:
            twin = Variant(False, c.channels_last, c.bf16)
            if c.rewrite and twin in self.candidates and self._rewritten_module() is self._src:
                continue
            out.append(c)
        return out

    def build(self, v: Variant) -> nn.Module:
        """The module that runs variant ``v`` (built once)."""
        m = self._built.get(v)
        if m is not None:
            return m
        m = self._rewritten_module() if v.rewrite else self._src
        if v.channels_last and _has_conv2d(m):
            m = copy.deepcopy(m).to(memory_format=torch.channels_last)
            if "channels_last weights" not in self.notes:
                self.notes.append("channels_last weights")
        if v.bf16:
            native = bf16_supported(self.device)
            note = f"bf16 autocast ({'native' if native else 'EMULATED on this device: slow'})"
            if note not in self.notes:
                self.notes.append(note)
        if self._compile:
            try:
                options = {"freezing": True} if self.device.type == "cpu" else None
                self._eager = m
                m = torch.compile(m, dynamic=False, options=options)
                self.compiled = True
                self.notes.append("torch.compile (inductor" + (", freezing" if options else "") + ")")
            except Exception as exc:
                print(f"ganzoo: torch.compile unavailable ({exc}); sampling eagerly", file=sys.stderr)
        self._built[v] = m
        return m

    @property
    def module(self) -> nn.Module:
        """The module of the variant used last (the default before any call)."""
        return self.build(self._current)

    @property
    def bf16(self) -> bool:
        return self._current.bf16

    def variant_for(self, batch: int) -> Variant | None:
        """The variant chosen for ``batch`` (None before its bucket's first call)."""
        return self.choices.get(batch_bucket(batch))

    def _fp(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self._src)
        return self._fingerprint

    def _choose(self, z: torch.Tensor, labels: torch.Tensor | None) -> Variant:
        bucket = batch_bucket(z.shape[0])
        v = self.choices.get(bucket)
        if v is not None:
            return v
        if not self.measure:
            v, how = self.default, {"how": "given" if len(self.candidates) == 1 else "default (measurement off)"}
        else:
            key = choice_key(self._fp(), z.shape[0], self.device, self.candidates, self.conditional)
            by_name = {c.name: c for c in self.candidates}
            hit = load_choices().get(key)
            if hit is not None and hit["variant"] in by_name:
                v, how = by_name[hit["variant"]], {"how": "cached", **hit}
            else:
                fns = {c.name: (lambda c=c: self._forward(c, z, labels)) for c in self._distinct()}
                with torch.no_grad():
                    times = time_candidates(fns, self.device)
                if not times:
                    v, how = self.default, {"how": "default (every candidate failed)"}
                else:
                    best = min(times, key=times.get)
                    v = by_name[best]
                    entry = {"variant": best, "batch": int(z.shape[0]), "batch_bucket": bucket,
                             "seconds_per_call": {n: float(f"{t:.4g}") for n, t in times.items()},
                             "device": device_name(self.device), "torch": torch.__version__,
                             "threads": torch.get_num_threads(),
                             "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                    save_choice(key, entry)
                    how = {"how": "measured", **entry}
        self.choices[bucket] = v
        self.decisions[bucket] = how
        if how["how"] in ("measured", "cached"):
            ms = ", ".join(f"{n} {t * 1e3:.3g} ms" for n, t in sorted(how["seconds_per_call"].items(), key=lambda x: x[1]))
            self.notes.append(f"batch <= {bucket}: {v.name} ({how['how']}: {ms})")
        return v

    # ---- running
    def _forward(self, v: Variant, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        module = self.build(v)
        with autocast(self.device, v.bf16):
            x = module(z, labels) if self.conditional else module(z)
        x = x.float()
        lo, hi = self.pixel_range
        if (lo, hi) != (-1.0, 1.0):
            x = (x - lo) / (hi - lo) * 2.0 - 1.0
        return x.clamp_(-1.0, 1.0)

    def _run(self, z, labels):
        v = self._current = self.choices.get(batch_bucket(z.shape[0]), self.default)
        if not self.compiled:
            return self._forward(v, z, labels)
        try:
            return self._forward(v, z, labels)
        except Exception as exc:  # compile is an optimisation: never fatal
            warnings.warn(f"ganzoo.speed: torch.compile failed at run time ({type(exc).__name__}: {exc}); "
                          "sampling eagerly", RuntimeWarning, stacklevel=3)
            self._built[v], self.compiled = self._eager, False
            self.notes.append("torch.compile failed at run time: eager")
            return self._forward(v, z, labels)

    def _graphed(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        key = (tuple(z.shape), z.dtype, None if labels is None else tuple(labels.shape))
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= self.max_graphs:
                self._graphs.pop(next(iter(self._graphs)))
            static_z = z.clone()
            static_l = labels.clone() if labels is not None else None
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up outside the graph (cuDNN autotuning, lazy init)
                    self._run(static_z, static_l)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._run(static_z, static_l)
            entry = self._graphs[key] = (graph, static_z, static_l, static_out)
        graph, static_z, static_l, static_out = entry
        static_z.copy_(z)
        if static_l is not None:
            static_l.copy_(labels)
        graph.replay()
        return static_out.clone()

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.to(self.device, non_blocking=True)
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long).to(self.device, non_blocking=True)
        if self.conditional and labels is None:
            raise ValueError("this generator is conditional: pass labels")
        if not self.conditional:
            labels = None
        self._choose(z, labels)   # outside any CUDA graph capture and thread switching
        if self.cuda_graphs:
            try:
                return self._graphed(z, labels)
            except Exception as exc:
                warnings.warn(f"ganzoo.speed: CUDA graph capture failed ({type(exc).__name__}: {exc}); "
                              "launching kernels eagerly", RuntimeWarning, stacklevel=2)
                self.cuda_graphs = False
                self._graphs.clear()
                self.notes.append("CUDA graph capture failed: eager launches")
        if self.threads is None:
            return self._run(z, labels)
        key = tuple(z.shape)
        n, prev = self.threads.choose(key), torch.get_num_threads()
        if n != prev:
            torch.set_num_threads(n)
        t0 = time.perf_counter()
        try:
            out = self._run(z, labels)
        finally:
            if n != prev:
                torch.set_num_threads(prev)
        self.threads.record(key, n, time.perf_counter() - t0)
        return out


def sampler_candidates(G: nn.Module, device: torch.device, *, bf16: bool | None, channels_last: bool | None,
                       rewrite: bool | None) -> list[Variant]:
    """The variants to measure, the default first. An option given (not None) is fixed; one left
    to None is measured: rewrite or not, NCHW or channels_last (convolutional generators), fp32 or
    bf16 (only where the device computes bf16 natively). The original network in fp32 NCHW (the
    eager baseline) is always among them when nothing fixes otherwise, so the choice never loses
    to it by more than the measurement's noise."""
    conv = _has_conv2d(G)
    native = bf16_supported(device)
    cl_opts = [bool(channels_last)] if channels_last is not None else ([True, False] if conv else [False])
    bf_opts = [bool(bf16)] if bf16 is not None else ([True, False] if native else [False])
    rw_opts = [bool(rewrite)] if rewrite is not None else [True, False]
    out = []
    for rw in rw_opts:
        for cl in cl_opts:
            for bf in bf_opts:
                if not rw and rewrite is None and (cl != cl_opts[-1] or bf != bf_opts[-1]):
                    continue  # the original network: only as the baseline (NCHW/fp32 unless fixed)
                out.append(Variant(rw, cl, bf))
    return out


def fast_sampler(G: nn.Module, *, device=None, bf16: bool | None = None, channels_last: bool | None = None,
                 compile: bool = False, cuda_graphs: bool | None = None, rewrite: bool | None = None,
                 threads: int | str | None = "auto", verify_batch: int = 2, measure: bool | None = None) -> FastSampler:
    """A fast ``callable(z, labels=None)`` drawing images from ``G`` (see the module doc).

    ``G`` is not modified: the sampler holds an eval-mode copy made now (later changes to ``G``'s
    weights are not seen; :func:`cached_sampler` rebuilds when they change).

    **Measured choice.** ``bf16``, ``channels_last`` and ``rewrite`` left to None are chosen per
    batch-size bucket (:func:`batch_bucket`) by timing the candidates (:func:`sampler_candidates`,
    the original eager fp32 network among them) on the first call of that bucket, a few calls each
    after a warm-up (:func:`time_candidates`); the fastest is kept and the decision cached in
    :func:`choice_cache_path` (by model architecture and size, batch bucket, device, bf16
    capability, torch version, CPU or GPU model and thread count), so later samplers and processes
    reuse it without timing. An option given fixes that dimension; ``measure=False`` (or the
    environment variable ``GANZOO_SPEED_MEASURE=0``) skips timing and uses the defaults: rewritten,
    channels_last for convolutional generators, bf16 where native. ``compile=True`` adds
    ``torch.compile`` (inductor, weight freezing on CPU) to the default variant, without
    measurement (it costs 10-60 s per shape on a 2-core CPU), falling back to eager on failure.
    ``cuda_graphs=None`` captures CUDA graphs on a GPU. ``threads`` (CPU): ``"auto"`` picks between
    torch's current thread count and 1 by timing the calls (:class:`ThreadTuner`), an int fixes it
    for the sampler's calls, None leaves torch's setting alone.
    """
    if device is None:
        device = next(itertools.chain(G.parameters(), G.buffers()), torch.empty(0)).device
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} asked for, but CUDA is not available here")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    if cuda_graphs and device.type != "cuda":
        raise ValueError("cuda_graphs=True needs a CUDA device")
    configure_backends(device)
    if measure is None:
        measure = os.environ.get(MEASURE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    src = copy.deepcopy(G).to(device).eval()
    for p in src.parameters():
        p.requires_grad_(False)
    example = _example_inputs(src, verify_batch, device)
    candidates = sampler_candidates(src, device, bf16=bf16, channels_last=channels_last, rewrite=rewrite)
    if compile:
        measure = False
    sampler = FastSampler(src, device, candidates=candidates, measure=measure,
                          conditional=bool(getattr(G, "num_classes", 0)),
                          pixel_range=tuple(getattr(G, "pixel_range", (-1.0, 1.0))), example=example,
                          compile=bool(compile))
    if not sampler.measure:
        sampler.candidates = [sampler.default]
        sampler.build(sampler.default)      # now: its notes, and compile's errors, at construction
    else:
        sampler.notes.append("variant chosen per batch bucket by measurement among "
                             + ", ".join(c.name for c in sampler.candidates) + f" (cache {choice_cache_path()})")
    if cuda_graphs is None:
        cuda_graphs = device.type == "cuda"
    sampler.cuda_graphs = bool(cuda_graphs)
    if sampler.cuda_graphs:
        sampler.notes.append("CUDA graphs per batch shape")
    if device.type == "cpu" and threads is not None:
        if threads == "auto":
            if torch.get_num_threads() > 1:
                sampler.threads = ThreadTuner([torch.get_num_threads(), 1])
                sampler.notes.append(f"CPU threads chosen per batch shape by timing ({torch.get_num_threads()} vs 1)")
        else:
            sampler.threads = ThreadTuner([int(threads)])
            sampler.notes.append(f"{int(threads)} CPU thread(s)")
    return sampler


# sampler cache for Generator.sample(fast=True): rebuilt when the weights change
_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[Any, FastSampler]]" = weakref.WeakKeyDictionary()


def _weights_key(G: nn.Module) -> tuple:
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in itertools.chain(G.parameters(), G.buffers()))


def cached_sampler(G: nn.Module, **options: Any) -> FastSampler:
    """:func:`fast_sampler` for ``G``, reused while ``G``'s weights (and ``options``) stay the same."""
    key = (_weights_key(G), tuple(sorted((k, str(v)) for k, v in options.items())))
    hit = _CACHE.get(G)
    if hit is not None and hit[0] == key:
        return hit[1]
    sampler = fast_sampler(G, **options)
    _CACHE[G] = (key, sampler)
    return sampler


def sample(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, *, batch_size: int = 256,
           bf16: bool | None = None, device=None) -> torch.Tensor:
    """The body of ``Generator.sample(..., fast=True)``: ``z`` and ``labels`` already checked."""
    sampler = cached_sampler(G, device=device, bf16=bf16)
    chunks = []
    for i in range(0, z.shape[0], batch_size):
        lab = labels[i:i + batch_size] if labels is not None else None
        chunks.append(sampler(z[i:i + batch_size], lab))
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return torch.empty(0, *G.image_shape, device=sampler.device)
    return torch.cat(chunks)


# ---------------------------------------------------------------------------- training
def rewrite_for_training(net: nn.Module) -> list[str]:
    """Apply, in place, the exact rewrites that keep ``net``'s Parameters and their names.

    Nearest 2x up-sampling + 3x3 'same' conv becomes :class:`UpsampleConv2d`
    (2.25x fewer multiply-adds forward and backward); an asymmetric zero pad +
    conv becomes :class:`CroppedConv2d`; a 'same'-padded conv with an odd kernel becomes
    :class:`OnePixelConv2d` (a matrix product whenever its input is 1x1, plain conv
    otherwise). The replaced modules hold the very same
    Parameter objects, so optimizers built before or after, ``state_dict`` keys
    and checkpoints are unaffected. Returns what was done (empty when nothing
    applies or ``net`` cannot be traced).
    """
    try:
        gm = _trace(net)
    except Exception:
        return []
    done = []
    counts = _call_counts(gm)
    for up_node in list(gm.graph.nodes):
        if not _is_nearest_2x(_module(gm, up_node)) or counts[up_node.target] != 1:
            continue
        conv_node, conv = _sole_consumer(gm, counts, up_node)
        if conv is not None and _keeps_parameters(conv) and _is_same_3x3(conv):
            _set_submodule(net, conv_node.target, UpsampleConv2d(conv))
            _set_submodule(net, up_node.target, nn.Identity())
            done.append(f"{up_node.target} + {conv_node.target}: up-sample + 3x3 conv as a 4x4/2 transposed conv")
    for pad_node in list(gm.graph.nodes):
        pad = _module(gm, pad_node)
        if type(pad) is not nn.ZeroPad2d or counts[pad_node.target] != 1:
            continue
        conv_node, conv = _sole_consumer(gm, counts, pad_node)
        if type(conv) is nn.Conv2d and _keeps_parameters(conv) and conv.padding == (0, 0) and conv.stride == (1, 1):
            left, right, top, bottom = (int(p) for p in pad.padding)
            if min(left, right, top, bottom) >= 0:
                _set_submodule(net, conv_node.target, CroppedConv2d(conv, (left, right, top, bottom)))
                _set_submodule(net, pad_node.target, nn.Identity())
                done.append(f"{pad_node.target} + {conv_node.target}: padded copy replaced by conv padding + crop")
    one_pixel = [name for name, m in net.named_modules() if OnePixelConv2d.applies(m)]
    for name in one_pixel:
        _set_submodule(net, name, OnePixelConv2d(net.get_submodule(name)))
    if one_pixel:
        done.append(f"{len(one_pixel)} 'same' convs: 1x1 inputs as a matrix product")
    return done


def prepare_training(G: nn.Module, D: nn.Module, *, device, channels_last: bool | None = None,
                     rewrite: bool = True) -> list[str]:
    """Make a G/D pair fast to train, in place; returns what was done.

    ``channels_last=None`` turns it on when either network has 2-D convolutions.
    Call before building the optimizers or after: Parameters are kept.
    """
    notes: list[str] = []
    configure_backends(device)
    if rewrite:
        for net in (G, D):
            notes += rewrite_for_training(net)
    if channels_last is None:
        channels_last = _has_conv2d(G, D)
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
        notes.append("channels_last")
    return notes
