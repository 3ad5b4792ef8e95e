"""Persistent model servers: one supervised process per launchable model, and the llama.cpp engine build."""

from .launchers import HostFacts, LaunchSpec, build_launch
from .llama_build import (
    BuildProgress,
    build_llama_server,
    default_build,
    engine_version,
    find_llama_server,
    install_llama_server,
)
from .manager import ServerManager, ServerStatus
from .process import log_tail
from .reachability import Reachability, probe_reachability
from .states import ServerEvent, ServerState

__all__ = [
    "BuildProgress",
    "HostFacts",
    "LaunchSpec",
    "Reachability",
    "ServerEvent",
    "ServerManager",
    "ServerState",
    "ServerStatus",
    "build_launch",
    "build_llama_server",
    "default_build",
    "engine_version",
    "find_llama_server",
    "install_llama_server",
    "log_tail",
    "probe_reachability",
]
