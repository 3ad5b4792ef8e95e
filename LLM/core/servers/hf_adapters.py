"""The LoRA adapters on one loaded base model: load, unload, and activation per request, all under one lock.

PEFT keeps one "active adapter" per model, so whoever activates an adapter must hold the
model until its generation ends: ``use(name)`` is that critical section. Loading and
unloading take the same lock, so they never happen in the middle of a generation.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class AdapterError(Exception):
    """An adapter cannot be loaded or unloaded; the message says why. ``status`` is the HTTP answer."""

    status = 400


class AdapterExistsError(AdapterError):
    status = 409


class UnknownAdapterError(AdapterError):
    status = 404


class Adapters:
    """The model (the base, or a PeftModel around it once an adapter is loaded) and its adapters by name."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._paths: dict[str, str] = {}
        self.lock = threading.Lock()

    def paths(self) -> dict[str, str]:
        """Adapter name -> directory, a copy (read without the lock: a dict copy is atomic enough here)."""
        return dict(self._paths)

    def load(self, name: str, path: str) -> None:
        with self.lock:
            if name in self._paths:
                raise AdapterExistsError(f"an adapter named '{name}' is already loaded (from {self._paths[name]})")
            self._load(name, path)
            self._paths[name] = path

    def unload(self, name: str) -> None:
        with self.lock:
            if name not in self._paths:
                raise UnknownAdapterError(f"no adapter named '{name}' is loaded")
            if len(self._paths) == 1:
                # The last one: unwrap, so the base runs without LoRA layers (and a PeftModel
                # with no adapter at all, which PEFT handles poorly, never exists).
                self.model = self.model.unload()
            else:
                self.model.delete_adapter(name)
            del self._paths[name]

    @contextmanager
    def use(self, name: str | None) -> Iterator[Any]:
        """Hold the model with adapter ``name`` active (None: the bare base, adapters disabled)."""
        with self.lock:
            model = self.model
            if name is not None:
                if name not in self._paths:  # unloaded between the request's check and its turn
                    raise UnknownAdapterError(f"no adapter named '{name}' is loaded")
                model.set_adapter(name)
                yield model
            elif self._paths:
                with model.disable_adapter():
                    yield model
            else:
                yield model

    def _load(self, name: str, path: str) -> None:
        """Load one adapter; on failure the model is left as it was."""
        from peft import PeftConfig, PeftModel

        if not os.path.isdir(path):
            raise AdapterError(f"adapter directory not found: {path}")
        try:
            config = PeftConfig.from_pretrained(path)
        except Exception as exc:
            raise AdapterError(f"not a PEFT adapter directory: {path}: {type(exc).__name__}: {exc}") from exc
        config.inference_mode = True
        wrapped = isinstance(self.model, PeftModel)
        # Wrapping by hand rather than PeftModel.from_pretrained: when the weights then fail to
        # load we still hold the wrapper, and unload() gives the untouched base back.
        model = self.model if wrapped else PeftModel(self.model, config, adapter_name=name)
        try:
            model.load_adapter(path, adapter_name=name, is_trainable=False)
        except Exception as exc:
            if wrapped:
                if name in model.peft_config:
                    model.delete_adapter(name)
            else:
                model.unload()
            raise AdapterError(f"failed to load adapter '{name}' from {path}: {type(exc).__name__}: {exc}") from exc
        model.eval()
        self.model = model
