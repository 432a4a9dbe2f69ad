"""The WebmapError tree: each class knows its HTTP status, its CLI exit code and a user-safe message.

Raise the most specific class with a message a user can act on (what was expected, what arrived, what to
do). Anything that is not a WebmapError is an internal error: exit 1 / HTTP 500 with a generic message.
The message is English (the CLI, logs, the API's ``error``); a message that people meet on the web pages
also carries its Vietnamese wording (``vi=``), which pages in Vietnamese show instead (``localized``).
The classes also subclass the matching built-in so callers can catch ``ValueError`` or ``LookupError``.
"""


class WebmapError(Exception):
    """Base class: a problem we foresaw, with a message safe to show to the user."""

    http_status = 500
    exit_code = 1

    def __init__(self, message, *, vi=None):
        super().__init__(message)
        self.message = message
        self.message_vi = vi

    def __str__(self):
        return self.message

    def localized(self, lang: str) -> str:
        """The message in ``lang`` when it has that wording (Vietnamese), else in English."""
        return self.message_vi if lang == "vi" and self.message_vi else self.message


class BadInput(WebmapError, ValueError):
    """The user's file, option or parameter is wrong: exit 2, HTTP 400."""

    http_status = 400
    exit_code = 2


class UnsafeInput(BadInput):
    """The input looks hostile (path traversal, archive bomb, external entities, indirection formats)."""


class CrsError(BadInput):
    """The coordinate reference system is missing, unknown or does not fit the coordinates."""


class EncodingError(BadInput):
    """The text of the file cannot be decoded with the encoding given or detected."""


class SchemaError(BadInput):
    """Attributes or geometries do not fit the layer definition."""


class NotFound(WebmapError, LookupError):
    """The layer or object does not exist (or the user may not know that it does): HTTP 404."""

    http_status = 404
    exit_code = 2


class StoreError(WebmapError):
    """The store could not complete an operation; nothing was changed."""
