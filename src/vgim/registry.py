"""Named, pluggable parts (bottlenecks, heads): a class registers itself under a name in its own file, and a
config names it with its options, which are checked against the class's ``Options`` dataclass.

A registry finds its parts by importing every module of its package the first time it is asked, so adding
a part is one new file in that package (and a preset that names it).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["NoOptions", "Registry"]

T = TypeVar("T")


@dataclass
class NoOptions:
    """The options of a part without settings of its own."""


class Registry(Generic[T]):
    """Classes of one kind by name. ``package`` is the dotted package whose modules define them;
    ``key`` / ``options_key`` are the config keys that name a part and hold its options (for messages)."""

    def __init__(self, package: str, key: str, options_key: str) -> None:
        self.package, self.key, self.options_key = package, key, options_key
        self._classes: dict[str, type[T]] = {}
        self._found = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make the class available as ``key = name``."""

        def add(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return add

    def _discover(self) -> None:
        if self._found:
            return
        self._found = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        from vgim.config import ConfigError

        self._discover()
        if name not in self._classes:
            raise ConfigError(f"{self.key}: unknown name {name!r}; expected one of {sorted(self._classes)}")
        return self._classes[name]

    def options(self, name: str, options: dict[str, Any]) -> Any:
        """The options dataclass of part ``name`` built from ``options``; raises ConfigError when they do
        not match it (an unknown key, a wrong type, or the options' own ``check()``)."""
        from vgim.typed import typed

        opts = typed(getattr(self.get(name), "Options", NoOptions), options, self.options_key)
        check = getattr(opts, "check", None)
        if check is not None:
            check()
        return opts
