"""One OpenAI-compatible endpoint over every configured model, for other apps (``llmctl serve``, the window's
"Serve models to other apps"): routed by ``model`` through the runtime's server manager, models started on
demand, a bearer token always required, the Host header checked, no CORS unless origins are listed.

``guard`` (who may call), ``listing`` (the model list), ``answers`` (errors as OpenAI bodies) and ``shaping``
(``<tool_call>`` text made native) are pure; ``app`` is the ASGI application, ``endpoint`` binds and serves
it, ``activity`` keeps what it did, ``tokens`` its token.
"""

from .activity import Activity, ClientSummary, RoutedRequest
from .endpoint import ModelEndpoint
from .tokens import TokenFile, rotate_token

__all__ = ["Activity", "ClientSummary", "ModelEndpoint", "RoutedRequest", "TokenFile", "rotate_token"]
