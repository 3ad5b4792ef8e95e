"""The window's pages: the chat page and the tool chat page built on it."""
