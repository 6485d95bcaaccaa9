"""What a request's handler tells the middleware around it (token counts, a client that went away), kept in the
request's ASGI scope so that the access log and the metrics see it after the response is sent."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope

SCOPE_KEY = "longkit"


@dataclass
class RequestRecord:
    """One request as the access log and the metrics report it."""

    status: int = 500  # the response's status once it has started; a request that never answered counts as 500
    started: bool = False  # whether the response has started (an error can then no longer be sent)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    disconnected: bool = False  # the client hung up before the answer was complete

    def tokens(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Note the request's token counts."""
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens


def record_of(scope: Scope) -> RequestRecord:
    """The request's record, created on first use."""
    record = scope.get(SCOPE_KEY)
    if not isinstance(record, RequestRecord):
        record = scope[SCOPE_KEY] = RequestRecord()
    return record
