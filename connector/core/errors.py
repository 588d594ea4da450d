"""The connector's errors: one small tree rooted in ConnectorError.

Every class says when it happens and what to do. Errors that come from the endpoint keep the
server's own `error` text, because that is what support and the docs talk about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConnectorError(Exception):
    """Anything that went wrong in the connector. `code` names it (the invoke protocol's
    `type`)."""

    code = "connector_error"
    #: Raised before any request was sent: no credit was spent, and fixing the input or
    #: configuration is what helps.
    sent_nothing = False
    #: Whether trying again later may succeed (an upstream or network failure), as opposed to
    #: something the user must fix first (input, credentials, credits, a private list).
    transient = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        #: What was fetched before the error, when a multi-page read failed part-way.
        self.partial: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of the invoke protocol."""
        out: dict[str, Any] = {"type": self.code, "message": self.message}
        out.update({k: v for k, v in self.details.items() if v is not None})
        return out


# Input and configuration errors: raised before anything is sent, so no credit is spent.


class InputError(ConnectorError):
    """An input is missing or invalid. `field` names it; fix the value and run again."""

    code = "input_error"
    sent_nothing = True

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.field = field


class ConfigurationError(ConnectorError):
    """Credentials or settings are missing or unsafe (no API key, a plain-http base URL)."""

    code = "configuration_error"
    sent_nothing = True


class StateError(ConnectorError):
    """Trigger state does not parse or comes from a newer version; it is never replaced silently."""

    code = "state_error"
    sent_nothing = True


# Errors the endpoint answered with. `status` and the server's message are kept.


class ApiError(ConnectorError):
    """The endpoint answered with an error status."""

    code = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        server_message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.status = status
        self.server_message = server_message
        self.headers = dict(headers or {})


class BadRequestError(ApiError):
    """400: the endpoint rejected the request (bad JSON, empty handle, or a handle it can't use)."""

    code = "bad_request"


class AuthenticationError(ApiError):
    """401: the API key is invalid, missing or inactive. Check it in your DumplingAI account."""

    code = "authentication_error"


class InsufficientCreditsError(ApiError):
    """403: the account is out of credits. Top up, then run again."""

    code = "insufficient_credits"


class NotFoundError(ApiError):
    """404: the following list is private, hidden, or the handle does not exist."""

    code = "not_found"


class ServerError(ApiError):
    """500: DumplingAI failed; retried already. Try later, or contact support if it persists."""

    code = "server_error"
    transient = True


class UpstreamError(ApiError):
    """502: the upstream TikTok service failed or sent bad data; retried already. Try later."""

    code = "upstream_error"
    transient = True


class RateLimitError(ApiError):
    """429 or 503: a rate limit was hit and retries ran out. Poll less often, or try later."""

    code = "rate_limited"
    transient = True

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait, if it said."""
        try:
            return float(self.headers.get("Retry-After", ""))
        except ValueError:
            return None


# The request went out but no usable answer came back.


class ResponseFormatError(ConnectorError):
    """A 200 whose body is not JSON or lacks the documented shape. Retry; report it if it stays."""

    code = "bad_response"
    transient = True


class TransportError(ConnectorError):
    """Connection refused, reset or timed out, after retries. Check the network or base URL."""

    code = "transport_error"
    transient = True


STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: InsufficientCreditsError,
    404: NotFoundError,
    429: RateLimitError,
    500: ServerError,
    502: UpstreamError,
    503: RateLimitError,
}

#: What the user should do, per status; appended to the server's own message.
STATUS_ADVICE: dict[int, str] = {
    400: "check the handle and inputs",
    401: "check the API key (credentials apiKey or DUMPLINGAI_API_KEY)",
    403: "top up your DumplingAI credits",
    404: "the following list is private, hidden, or the handle does not exist",
    429: "rate limited; poll less often or try again later",
    500: "DumplingAI failed; try again later",
    502: "the upstream TikTok service failed; try again later",
    503: "rate limited upstream; try again later",
}


def error_for_status(
    status: int, server_message: str | None, headers: Mapping[str, str] | None = None
) -> ApiError:
    """Build the typed error for an error response, keeping the server's message."""
    cls = STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    advice = STATUS_ADVICE.get(status, "unexpected status")
    text = server_message or f"HTTP {status}"
    return cls(f"{text} ({status}: {advice})", status=status, server_message=server_message,
               headers=headers)
