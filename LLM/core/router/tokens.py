"""The endpoint's bearer token: made once, kept in a file only the user can read, replaced on request.

Every request but ``/health`` must bear it. The file is read again when it changes, so ``llmctl serve token
--rotate`` takes effect at once on an endpoint another process (the window) runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import EndpointError
from ..history.paths import data_dir
from ..servers.api_keys import ensure_key_file, read_key, write_new_key

TOKEN_FILE = "endpoint.token"


def default_token_path() -> Path:
    return data_dir() / TOKEN_FILE


def rotate_token(path: Path | None = None) -> str:
    """A new token; the old one stops working at once."""
    path = path or default_token_path()
    try:
        return write_new_key(path)
    except OSError as exc:
        raise EndpointError(f"cannot write the endpoint token {path}: {exc.strerror or exc}") from exc


class TokenFile:
    """The current token, read again only when the file's mtime or size changed."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_token_path()
        self._seen: tuple[int, int] | None = None
        self._token: str | None = None

    def current(self) -> str:
        """The token; made when there is none yet. EndpointError when it cannot be read or written."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return self._create()
        except OSError as exc:
            raise EndpointError(f"cannot read the endpoint token {self.path}: {exc.strerror or exc}") from exc
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen or self._token is None:
            token = read_key(self.path)
            if not token:
                raise EndpointError(f"the endpoint token file {self.path} is empty or unreadable; "
                                    "replace it with `llmctl serve token --rotate`")
            self._token, self._seen = token, seen
        return self._token

    def _create(self) -> str:
        try:
            ensure_key_file(self.path)
        except OSError as exc:
            raise EndpointError(f"cannot create the endpoint token {self.path}: {exc.strerror or exc}") from exc
        return self.current()
