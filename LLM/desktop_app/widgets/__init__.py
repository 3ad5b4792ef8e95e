"""Reusable widgets: the transcript and its Markdown view, the model selector and server status, the settings panel."""
