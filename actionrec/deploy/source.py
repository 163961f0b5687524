"""The one MODEL resolver: what a user names on the command line or passes to the API → a :class:`ModelSource`.

A MODEL is, in this order of precedence:

===============  ======================================================  ===========
kind             what                                                    example
===============  ======================================================  ===========
``module``       an ``nn.Module`` with ``.meta`` (API only)              ``model``
``onnx``         an ONNX file written by ``actionrec export``            ``m.onnx``
``pt2``          an AOTInductor package written by ``actionrec export``  ``m.pt2``
``checkpoint``   one of our ``.safetensors`` checkpoints                 ``best.safetensors``
``weights``      a known weight set (fetched once, cached)               ``i3d_kinetics400``
``arch``         an architecture with random weights (speed tests only)  ``r2plus1d_18``
===============  ======================================================  ===========

File types are told apart here and nowhere else (:func:`file_kind`). Loading is lazy: resolving a
name touches no weights, so a CLI can check its arguments before any heavy work.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionrec.errors import UsageError

__all__ = ["ModelSource", "resolve_model", "file_kind", "MODEL_SUFFIXES"]

log = logging.getLogger(__name__)

#: file suffix → kind; anything else that exists as a file is read as a checkpoint
FILE_KINDS = {".onnx": "onnx", ".pt2": "pt2", ".safetensors": "checkpoint"}
MODEL_SUFFIXES = (".safetensors", ".onnx", ".pt2", ".pt", ".pth", ".ckpt")


def file_kind(path: str | os.PathLike) -> str:
    """``"onnx"``, ``"pt2"`` or ``"checkpoint"`` by the file's suffix."""
    return FILE_KINDS.get(Path(path).suffix.lower(), "checkpoint")


@dataclass
class ModelSource:
    """A resolved MODEL argument (see the module docstring); ``meta`` and ``torch_model()`` load on first use."""

    spec: str  # as the user gave it
    kind: str  # module | onnx | pt2 | checkpoint | weights | arch
    path: Path | None = None
    num_classes: int | None = None  # arch: head size
    _module: Any = field(default=None, repr=False)
    _meta: Any = field(default=None, repr=False)

    @property
    def meta(self) -> Any:
        """The model's :class:`~actionrec.meta.ModelMeta` (read from the file header where there is one)."""
        if self._meta is None:
            if self.kind == "onnx":
                from actionrec.deploy.onnx_export import read_onnx_meta

                self._meta = read_onnx_meta(self.path)
            elif self.kind == "pt2":
                from actionrec.deploy.pt2 import read_pt2_meta

                self._meta = read_pt2_meta(self.path)[0]
            elif self.kind == "checkpoint":
                from actionrec.checkpoint import read_meta

                self._meta = read_meta(self.path)
            else:
                self._meta = self.torch_model().meta
        return self._meta

    def torch_model(self) -> Any:
        """The PyTorch model in eval mode (cached: callers that change it must copy it first)."""
        if self._module is None:
            if self.kind in ("onnx", "pt2"):
                raise UsageError(f"{self.spec}: an {self.kind} file holds no PyTorch model; give the checkpoint it was exported from")
            if self.kind == "arch":
                from actionrec.factory import create_model

                log.info("%s: an architecture name, so random weights (speed only)", self.spec)
                self._module = create_model(self.spec, num_classes=self.num_classes).eval()
            else:
                from actionrec.factory import load_model

                self._module = load_model(self.path if self.path is not None else self.spec)
        return self._module

    def __str__(self) -> str:
        return self.spec


def _known_names(allow_arch: bool) -> tuple[list[str], list[str]]:
    from actionrec.models import list_models, list_pretrained

    return list_pretrained(), (list_models() if allow_arch else [])


def resolve_model(model: Any, *, allow_arch: bool = False, num_classes: int | None = None) -> ModelSource:
    """``model`` (a path, a name or a module) → :class:`ModelSource`.

    ``allow_arch``: an architecture name gives a randomly initialised model (``bench``, ``export``, ``info``).
    Raises ``FileNotFoundError`` for a path that does not exist and :class:`UsageError` for an unknown
    name (with the close matches and a pointer to ``actionrec models``).
    """
    if isinstance(model, ModelSource):
        return model
    if not isinstance(model, (str, os.PathLike)):
        if getattr(model, "meta", None) is None:
            raise UsageError(f"a {type(model).__name__} has no .meta (ModelMeta): build models with actionrec.create_model")
        return ModelSource(spec=type(model).__name__, kind="module", _module=model.eval())
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        return ModelSource(spec=text, kind=file_kind(path), path=path)
    if path.is_dir():
        raise UsageError(f"{text}: a directory, not a model file")
    if path.suffix.lower() in MODEL_SUFFIXES or os.sep in text or (os.altsep and os.altsep in text):
        raise FileNotFoundError(f"model file not found: {text}")
    weights, archs = _known_names(allow_arch)
    if text in weights:
        return ModelSource(spec=text, kind="weights")
    if text in archs:
        return ModelSource(spec=text, kind="arch", num_classes=num_classes)
    if not allow_arch and text in _known_names(True)[1]:
        own = [w for w in weights if w.startswith(f"{text}_")]
        raise UsageError(f"{text!r} is an architecture with random weights, not a model to run: give a checkpoint or a "
                         f"known weight set ({', '.join(own) or 'none for it'}; `actionrec weights list` shows all)")
    close = difflib.get_close_matches(text, weights + archs, n=3, cutoff=0.6)
    guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    what = "a model file, a known weight set or an architecture" if allow_arch else "a model file or a known weight set"
    raise UsageError(f"{text!r} is not {what}{guess} (`actionrec weights list` shows the weight sets, "
                     f"`actionrec models` the architectures)")
