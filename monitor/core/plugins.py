"""One way to build an extension point: a registry of plugin classes found in a package.

Detectors, notifiers and ingest sources are each a :class:`Registry`. A plugin is one module
in the registry's package with one class registered under its key (or keys: a source is keyed
by the URL schemes it reads). Plugin modules are imported on first use, so naming a package
costs nothing until something asks what is in it::

    notifiers = Registry("notifier", "alerting.notifiers", infrastructure={"base", "routing"})

    @notifiers.register
    class TeamsNotifier(HttpNotifier):
        key = "teams"
        config_class = TeamsConfig       # pydantic, with type: Literal["teams"]

    notifiers.get("teams")               # the class; an unknown key names the known ones
    notifiers.config_union()             # the discriminated union for the config file

Plugin modules must be cheap to import: what they need that is heavy (PyAV, ONNX Runtime,
OpenCV, SciPy) they import where it is used, so a process that only validates the config
(ingest, alerting) never loads it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import Field

P = TypeVar("P", bound=type)


def _own_key(cls: type) -> Iterable[str]:
    return (cls.key,)  # type: ignore[attr-defined]


class Registry(Generic[P]):
    """Plugin classes of one kind, by key; see the module docstring."""

    def __init__(
        self,
        kind: str,
        package: str,
        infrastructure: Iterable[str] = (),
        keys: Callable[[P], Iterable[str]] = _own_key,
    ) -> None:
        self.kind = kind
        self.package = package
        self._skip = set(infrastructure) | {"registry"}
        self._keys = keys
        self._plugins: dict[str, P] = {}
        self._loaded = False

    def register(self, cls: P) -> P:
        """Class decorator: make a plugin known by its key(s)."""
        for key in self._keys(cls):
            if key in self._plugins and self._plugins[key] is not cls:
                raise ValueError(f"{self.kind} key {key!r} registered twice")
            self._plugins[key] = cls
        return cls

    def types(self) -> dict[str, P]:
        """Every plugin by key (imports the plugin modules on first use).

        Loading is tracked apart from registration: a plugin module imported directly (a
        test, a training script) registers itself, and the others must still be found.
        """
        if not self._loaded:
            package = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(package.__path__):
                if info.name not in self._skip:
                    importlib.import_module(f"{self.package}.{info.name}")
            self._loaded = True
        return dict(self._plugins)

    def get(self, key: str) -> P:
        """The plugin registered under ``key``; an unknown key is an error naming the known."""
        types = self.types()
        if key not in types:
            raise ValueError(f"unknown {self.kind} {key!r}; known: {', '.join(sorted(types))}")
        return types[key]

    def config_union(self) -> Any:
        """``Annotated[Union[...], Field(discriminator="type")]`` over the plugins' configs."""
        configs = tuple(dict.fromkeys(c.config_class for c in self.types().values()))  # type: ignore[attr-defined]
        if len(configs) == 1:
            return configs[0]
        return Annotated[Union[configs], Field(discriminator="type")]  # noqa: UP007
