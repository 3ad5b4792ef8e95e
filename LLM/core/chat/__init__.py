"""The chat model: request parameters, the messages a request sends, conversations as trees, answer metrics."""
