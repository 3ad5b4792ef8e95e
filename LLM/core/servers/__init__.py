"""Persistent model servers: one supervised process per launchable model."""

from .launchers import HostFacts, LaunchSpec, build_launch
from .manager import ServerManager, ServerStatus
from .states import ServerEvent, ServerState

__all__ = ["HostFacts", "LaunchSpec", "ServerEvent", "ServerManager", "ServerState", "ServerStatus", "build_launch"]
