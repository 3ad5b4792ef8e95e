"""llmctl: models, one-shot runs, interactive chat, probes, server and engine control from a terminal."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
