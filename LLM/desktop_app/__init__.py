"""The PySide6 window (built on LLM.core; core never imports this package)."""
