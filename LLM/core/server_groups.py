"""Server groups: entries with the same base model and load settings share one server (pure).

Each adapter entry of a group selects its LoRA adapter per request; an entry without ``adapter_dir``
gets the bare base. A group's server is named after its *leader* (the first entry without an
adapter, else the first entry), which also gives it its port, log file and state record, so a
one-entry group looks exactly like the single server it was before groups existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Entry keys that change how the base is loaded or served; entries differing in one of them cannot share.
LOAD_KEYS = ("backend", "base_model", "use_4bit", "host", "context_size", "gpu_layers", "threads", "chat_format",
             "llama_server_bin", "mmproj", "tensor_parallel_size", "pipeline_parallel_size", "extra_args",
             "device_map", "max_memory", "torch_dtype", "attn_implementation", "keep_alive", "startup_timeout_s")


class GroupableEntry(Protocol):
    """A config entry as grouping sees it: the fields it reads of ``config.ModelEntry`` (a protocol, so this leaf
    imports nothing)."""

    id: str
    backend: str
    host: str
    port: int | None
    tools: str
    share_server: bool
    adapter_dir: str | None
    adapter_scale: float

    @property
    def launchable(self) -> bool: ...

    @property
    def request_model_name(self) -> str: ...


@dataclass(frozen=True)
class Member:
    """One model id of a group: what it sends as ``model`` and which adapter (None: the bare base) it selects."""

    model_id: str
    request_name: str
    adapter: str | None
    scale: float = 1.0


@dataclass(frozen=True)
class ServerGroup:
    id: str  # the leader's model id
    members: tuple[Member, ...]

    @property
    def adapters(self) -> tuple[str, ...]:
        """Distinct adapter paths, in the order the server loads them."""
        return tuple(dict.fromkeys(m.adapter for m in self.members if m.adapter))

    @property
    def base_names(self) -> tuple[str, ...]:
        """Request names served by the bare base (adapters off)."""
        return tuple(dict.fromkeys(m.request_name for m in self.members if m.adapter is None))

    @property
    def served_base_names(self) -> tuple[str, ...]:
        """What the bare base answers to; a group of adapters only still names it (never requested)."""
        return self.base_names or (f"{self.id}-base",)

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.model_id for m in self.members)

    def member(self, model_id: str) -> Member:
        return next(m for m in self.members if m.model_id == model_id)

    def without_adapters(self) -> "ServerGroup":
        """The same group holding no adapters: launch settings that adapters do not touch."""
        return ServerGroup(self.id, tuple(m for m in self.members if m.adapter is None))


@dataclass(frozen=True)
class PortClash:
    model_id: str
    message: str


def group_key(entry: GroupableEntry) -> tuple[Any, ...]:
    """Equal keys share a server; ``share_server: false`` makes an entry its own group."""
    if not entry.share_server:
        return ("alone", entry.id)
    values = [getattr(entry, key) for key in LOAD_KEYS]
    if entry.backend == "vllm":
        values.append(entry.tools != "off")  # vLLM's tool parser flags are a launch setting
    return tuple(_hashable(v) for v in values)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):  # keys may mix ints and names (max_memory: {0: ..., cpu: ...})
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def port_clashes(entries: list[GroupableEntry]) -> list[PortClash]:
    """Entries may share a (host, port) only when they share a server; later entries lose a clash."""
    seen: dict[tuple[str, int], GroupableEntry] = {}
    clashes = []
    for entry in entries:
        if not entry.launchable or entry.port is None:
            continue
        first = seen.setdefault((entry.host, entry.port), entry)
        if first is entry or group_key(first) == group_key(entry):
            continue
        clashes.append(PortClash(entry.id, f"port {entry.port} is already used by model '{first.id}', which runs "
                                           f"another server ({_why_apart(first, entry)}); entries share a port only "
                                           "when they share a server: the same base_model and load settings, "
                                           "and no share_server: false"))
    return clashes


def _why_apart(a: GroupableEntry, b: GroupableEntry) -> str:
    if not a.share_server or not b.share_server:
        return "share_server: false"
    differing = [key for key in LOAD_KEYS if getattr(a, key) != getattr(b, key)]
    if not differing:
        return "tools differs"
    return f"{', '.join(differing)} {'differs' if len(differing) == 1 else 'differ'}"


def form_groups(entries: list[GroupableEntry]) -> list[ServerGroup]:
    """Group launchable entries (in file order) by ``group_key``; attached entries are not grouped."""
    buckets: dict[tuple[Any, ...], list[GroupableEntry]] = {}
    for entry in entries:
        if entry.launchable:
            buckets.setdefault(group_key(entry), []).append(entry)
    groups = []
    for members in buckets.values():
        leader = next((e for e in members if not e.adapter_dir), members[0])
        ordered = [leader, *(e for e in members if e is not leader)]
        groups.append(ServerGroup(leader.id, tuple(
            Member(e.id, e.request_model_name, e.adapter_dir, e.adapter_scale) for e in ordered)))
    return groups
