"""LLM workbench: local LLM chat, model switching and tool-calling experiments."""

__version__ = "0.1.0"
