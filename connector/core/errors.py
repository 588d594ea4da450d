"""The connector's errors: one small tree rooted in ConnectorError, and the one table that
says, per error type, what every surface makes of it.

`ERRORS` has a row per type (each class's `code`, and the `serve` refusals that have no class).
The classes take `transient` and `sent_nothing` from it; `serve`, `invoke`, the CLI, the
`advice` of every error body (which the n8n node shows) and the README's table
(`errors_table()`) read it. Errors that come from the endpoint keep the server's own `error`
text, because that is what support and the docs talk about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: Exit codes of `invoke` and the CLI: done; failed; failed before anything was sent (fix the
#: input or configuration, no credit was spent).
OK, FAILED, NOTHING_SENT = 0, 1, 2


class ErrorType(NamedTuple):
    """One row of the table: an error type as every surface shows it."""

    type: str
    #: The HTTP status `serve` answers with.
    http_status: int
    #: When it happens (the README's words).
    when: str
    #: What to do: in every error body as `advice`, and after an endpoint error's message.
    advice: str
    #: Trying again later may succeed (an upstream or network failure), as opposed to
    #: something the user must fix first.
    transient: bool = False
    #: Raised before any request was sent: no credit was spent.
    sent_nothing: bool = False
    #: The endpoint's statuses that become this type.
    upstream: tuple[int, ...] = ()
    #: A status of its own when the error names one of these fields.
    field_status: Mapping[str, int] = {}
    #: Only `serve` answers it (its routing and admission): it has no exit code.
    serve_only: bool = False

    @property
    def exit_code(self) -> int:
        return NOTHING_SENT if self.sent_nothing else FAILED


_ROWS = [
    # Input and configuration: refused before anything is sent.
    ErrorType("input_error", 400, "an input is missing or invalid; `field` names it",
              "fix the field the message names; nothing was sent, no credit spent",
              sent_nothing=True),
    ErrorType("configuration_error", 400, "no API key, a bad base URL or state database",
              "give an API key, or fix the setting the message names (the message says how); "
              "nothing was sent",
              sent_nothing=True, field_status={"apiKey": 401}),  # no usable key: send one
    ErrorType("state_error", 400, "trigger state damaged or from a newer version",
              "restore it from the runner's history, or pass null to start a new baseline",
              sent_nothing=True),
    # What the endpoint answered; the message is the server's, this advice after it.
    ErrorType("bad_request", 400, "the request was rejected (a handle it cannot use)",
              "check the handle and inputs", upstream=(400,)),
    ErrorType("authentication_error", 401, '"API key is invalid or missing."',
              "check the API key, and the base URL it was sent to", upstream=(401,)),
    ErrorType("insufficient_credits", 402, '"Insufficient credits. Please top up your '
              'account."',
              "top up your DumplingAI credits", upstream=(403,)),
    ErrorType("not_found", 404, '"Following list not found for user: ..." (private, hidden '
              'or no such user)',
              "the following list is private, hidden, or the handle does not exist",
              upstream=(404,)),
    ErrorType("rate_limited", 429, "rate limited, after retries",
              "rate limited; poll less often or try again later",
              transient=True, upstream=(429, 503)),
    ErrorType("server_error", 502, "DumplingAI failed, after retries (any other 5xx too)",
              "DumplingAI failed; try again later", transient=True, upstream=(500,)),
    ErrorType("upstream_error", 502, "the upstream TikTok service failed, after retries",
              "the upstream TikTok service failed; try again later",
              transient=True, upstream=(502,)),
    ErrorType("api_error", 502, "the endpoint answered an undocumented status",
              "an unexpected status; try again later, and report it if it stays"),
    # The request went out but no usable answer came back.
    ErrorType("bad_response", 502, "a 200 that is not JSON or lacks `followingList`",
              "try again; report it if it stays", transient=True),
    ErrorType("transport_error", 502, "refused, reset, timed out, or no complete answer "
              "within the deadline (`Timeouts.total`), after retries",
              "check the network and the base URL, then try again", transient=True),
    # The state database (the embedded store, `poll`, `watch`).
    ErrorType("state_conflict", 409, "another poll saved this state after this one read it",
              "nothing: the other poll's result stands, and the next poll starts from it",
              transient=True),
    ErrorType("database_unavailable", 503, "the state database cannot be reached, or cut "
              "the session", "check that the database is up and reachable; `watch` waits "
              "for it and goes on", transient=True),
    ErrorType("connector_error", 500, "anything else (a lock held too long, a `watch` "
              "process that stopped)", "read the message; try again, and report it if it "
              "stays"),
    ErrorType("internal_error", 500, "a bug", "report it, with the message (the CLI shows "
              "the traceback with -vv)"),
    # `serve`'s own refusals: nothing was sent upstream.
    ErrorType("unauthorized", 401, "`serve` wants its shared token and the request has "
              "none or another", "send the service's TIKTOK_FOLLOWING_SERVE_TOKEN in the "
              "X-Connector-Token header", sent_nothing=True, serve_only=True),
    ErrorType("unknown_route", 404, "a path `serve` does not have (a service URL with a "
              "path), or a manifest it does not know",
              "give the service URL without a path; the routes are GET /healthz, GET "
              "/v1/manifests, POST /v1/run, POST /v1/auth/test",
              sent_nothing=True, serve_only=True),
    ErrorType("method_not_allowed", 405, "a route called with another method",
              "use the method the Allow header names", sent_nothing=True, serve_only=True),
    ErrorType("too_large", 413, "a request body over `serve`'s limit (8 MB)",
              "send a smaller request: a form and a state are far smaller",
              sent_nothing=True, serve_only=True),
    ErrorType("busy", 503, "every slot for calling the upstream is taken",
              "try again after Retry-After seconds, or give the service more --threads",
              transient=True, sent_nothing=True, serve_only=True),
]
#: Every error type, by its code: the one table.
ERRORS: dict[str, ErrorType] = {row.type: row for row in _ROWS}


def error_type(code: Any) -> ErrorType:
    """The row of an error type; `internal_error` for a type that is not in the table."""
    return ERRORS.get(code) or ERRORS["internal_error"]


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The `error` object of the invoke protocol (and of `serve`): type, message, what to do,
    and the details that are set (`status`, `field`, ...)."""
    return {"type": code, "message": message, "advice": error_type(code).advice,
            **{k: v for k, v in details.items() if v is not None}}


def http_status(error: Mapping[str, Any]) -> int:
    """The HTTP status `serve` answers an `error` object with."""
    row = error_type(error.get("type"))
    return row.field_status.get(error.get("field"), row.http_status)


def exit_code(err: BaseException) -> int:
    """The exit code of `invoke` and the CLI for an exception (a bug is `internal_error`)."""
    return error_type(err.code if isinstance(err, ConnectorError) else None).exit_code


class ConnectorError(Exception):
    """Anything that went wrong in the connector. `code` names it (the invoke protocol's
    `type`, a row of ERRORS)."""

    code = "connector_error"
    #: From the table (an instance may say more: a database failure that is worth retrying).
    transient: bool
    sent_nothing: bool

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        #: What was fetched before the error, when a multi-page read failed part-way.
        self.partial: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _take_row(cls)

    @property
    def advice(self) -> str:
        """What to do about it."""
        return error_type(self.code).advice

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of the invoke protocol."""
        return error_body(self.code, self.message, **self.details)


#: The tree's classes by type: those defined here, not a subclass kept beside what raises it
#: (config.MissingApiKey, a ConfigurationError whose words each surface chooses).
_CLASSES: dict[str, type[ConnectorError]] = {}


def _take_row(cls: type[ConnectorError]) -> None:
    """A class's `transient` and `sent_nothing` are its row's; a class without one is a
    mistake caught at import."""
    if cls.code not in ERRORS:
        raise TypeError(f"{cls.__name__}.code {cls.code!r} has no row in ERRORS")
    row = ERRORS[cls.code]
    cls.transient, cls.sent_nothing = row.transient, row.sent_nothing
    if cls.__module__ == __name__:
        _CLASSES[cls.code] = cls


_take_row(ConnectorError)


class InputError(ConnectorError):
    """An input is missing or invalid. `field` names it; fix the value and run again."""

    code = "input_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.field = field


class ConfigurationError(ConnectorError):
    """Credentials or settings are missing or unsafe (no API key, a plain-http base URL)."""

    code = "configuration_error"


class StateError(ConnectorError):
    """Trigger state does not parse or comes from a newer version; it is never replaced silently."""

    code = "state_error"


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
        # Case-insensitive, as HTTP's header names are: a server (or a proxy) may send
        # `retry-after`. urllib3 is loaded already wherever a response was read.
        from urllib3 import HTTPHeaderDict

        self.headers = HTTPHeaderDict(headers or {})


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


class UpstreamError(ApiError):
    """502: the upstream TikTok service failed or sent bad data; retried already. Try later."""

    code = "upstream_error"


class RateLimitError(ApiError):
    """429 or 503: a rate limit was hit and retries ran out. Poll less often, or try later."""

    code = "rate_limited"

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait, if it said."""
        try:
            return float(self.headers.get("Retry-After", ""))
        except ValueError:
            return None


class ResponseFormatError(ConnectorError):
    """A 200 whose body is not JSON or lacks the documented shape. Retry; report it if it stays."""

    code = "bad_response"


class TransportError(ConnectorError):
    """Connection refused, reset or timed out, after retries. Check the network or base URL."""

    code = "transport_error"


class StateConflict(ConnectorError):
    """Another poll saved this state after it was read; this poll's result was not saved.
    Nothing is lost: the other poll's result stands, and the next poll starts from it."""

    code = "state_conflict"


class DatabaseUnavailable(ConnectorError):
    """The state database could not be reached, or cut this session (a restart, a terminated
    backend, the network). What the failing call did was not saved, or, for a commit whose
    answer was lost, may have been; nothing is lost either way. `recover()` says when the
    database is back."""

    code = "database_unavailable"


#: The error class of each status the endpoint documents (from the table's `upstream`).
STATUS_ERRORS: dict[int, type[ApiError]] = {
    status: cls for cls in _CLASSES.values() if issubclass(cls, ApiError)
    for status in ERRORS[cls.code].upstream
}


def error_for_status(
    status: int, server_message: str | None, headers: Mapping[str, str] | None = None
) -> ApiError:
    """Build the typed error for an error response, keeping the server's message and saying
    what to do after it."""
    cls = STATUS_ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    text = server_message or f"HTTP {status}"
    return cls(f"{text} ({status}: {ERRORS[cls.code].advice})", status=status,
               server_message=server_message, headers=headers)


def errors_table() -> str:
    """The README's "Errors and what to do" table, in Markdown, made from ERRORS."""
    lines = ["| `type` | Python class | exit | HTTP | when | what to do |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in _ROWS:
        cls = f"`{_CLASSES[row.type].__name__}`" if row.type in _CLASSES else "-"
        exit_ = "-" if row.serve_only else str(row.exit_code)
        status = str(row.http_status) + "".join(
            f", {code} for `{field}`" for field, code in row.field_status.items())
        when = (f"endpoint {', '.join(map(str, row.upstream))}: " if row.upstream
                else "") + row.when
        lines.append(f"| `{row.type}` | {cls} | {exit_} | {status} | {when} | {row.advice} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m connector.core.errors: the README's table
    print(errors_table(), end="")
