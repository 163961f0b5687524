"""One registry helper: name → object, duplicates refused, unknown names answered with close matches.

Every pluggable kind of thing has one :class:`Registry` (models, weight sets, converters, dataset
formats, inference backends, flow algorithms)::

    FORMATS = Registry("dataset format", hint="see `actionrec train --help`")

    @FORMATS.register("ucf101")
    def _index_ucf101(...): ...

    FORMATS.get("ucf101")     # the object
    FORMATS.get("ucf11")      # UsageError: unknown dataset format 'ucf11'; did you mean 'ucf101'? choose from ...
    FORMATS.names()           # in registration order, for --help and error messages

This module imports nothing but :mod:`actionrec.errors`, so any layer may use it, and a CLI can list
names without importing torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from actionrec.errors import UsageError

__all__ = ["Registry", "DuplicateNameError", "lazy"]

T = TypeVar("T")


class DuplicateNameError(ValueError):
    """Two things registered under one name (a bug in the code that registers them, not a user error)."""


class Registry(Generic[T]):
    """Name → ``T``, in registration order.

    Args:
        kind: what the names are, for messages ("model", "backend", ...).
        hint: appended to the unknown-name error (e.g. "run `actionrec models`").
        autoload: modules that register the built-in entries; imported at the first look-up, so that
            importing the registry stays cheap (timm's pattern, without import-time side effects).
    """

    def __init__(self, kind: str, *, hint: str = "", autoload: tuple[str, ...] = ()) -> None:
        self.kind, self.hint = kind, hint
        self._items: dict[str, T] = {}
        self._autoload = autoload  # modules that register the built-in entries, imported on first look-up

    def _load(self) -> None:
        if self._autoload:
            import importlib

            modules, self._autoload = self._autoload, ()
            for m in modules:
                importlib.import_module(m)

    def register(self, name: str, obj: T | None = None) -> Any:
        """``register(name, obj)`` adds ``obj``; ``@register(name)`` decorates. A taken name raises."""
        if obj is not None:
            self._add(name, obj)
            return obj

        def deco(o: T) -> T:
            self._add(name, o)
            return o

        return deco

    def _add(self, name: str, obj: T) -> None:
        self._load()  # the built-ins first, so that a new entry cannot take a built-in's name
        if not isinstance(name, str) or not name:
            raise DuplicateNameError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._items:
            raise DuplicateNameError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered as ``name``, else a :class:`UsageError` with close matches and the choices."""
        self._load()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise UsageError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The one-line message for an unknown ``name``."""
        self._load()
        close = difflib.get_close_matches(str(name), list(self._items), n=3, cutoff=0.6)
        guess = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"unknown {self.kind} {name!r}{guess}; choose from: {', '.join(self._items) or 'none'}{hint}"

    def names(self) -> list[str]:
        self._load()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._items.items())

    def values(self) -> list[T]:
        self._load()
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)})"


def lazy(path: str) -> Callable[..., Any]:
    """A callable that imports ``"package.module:function"`` on first call (registries that must not import torch)."""
    module, _, attr = path.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    call.__qualname__ = path
    return call

