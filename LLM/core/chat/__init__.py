"""The chat model: request parameters, the messages a request sends, conversations as trees, answer metrics.

``__all__`` is the conversation model the rest of the workbench uses. How a request's messages are built and
fitted to the context (``messages``, ``turns``, ``context_budget``, ``params``) is core's own business: core
modules import those from their modules.
"""

from .conversation import Conversation, GenerationSettings, Message, StepRecord
from .metrics import Metrics, MetricsMeter
from .params import InferenceConfig, max_new_tokens
from .parts import Notice, TextPart, ToolCard
from .turns import answer_turns

__all__ = [
    "Conversation",
    "GenerationSettings",
    "InferenceConfig",
    "Message",
    "Metrics",
    "MetricsMeter",
    "Notice",
    "StepRecord",
    "TextPart",
    "ToolCard",
    "answer_turns",
    "max_new_tokens",
]
