"""Header sets of the proxy's request path: what is hop-by-hop, dropped, or looked at."""

from __future__ import annotations

from http import HTTPStatus

__all__ = [
    "CONNECTION_OPTIONS",
    "HOP_BY_HOP",
    "REQUEST_DROPPED",
    "SPECIAL_HEADERS",
    "STATUS_LINES",
]

# RFC 9110 §7.6.1 hop-by-hop fields, never forwarded in either direction.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# A request's framing is rebuilt by the proxy, and it answers Expect: 100-continue itself.
REQUEST_DROPPED = HOP_BY_HOP | {b"content-length", b"expect"}
CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b""})
STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode()) for status in HTTPStatus
}
# Request headers that need more than a copy; an app adds its routing headers (AppRoutes).
SPECIAL_HEADERS = frozenset(
    {
        b"host",
        b"content-length",
        b"connection",
        b"transfer-encoding",
        b"x-forwarded-for",
        b"expect",
        b"traceparent",
        b"cookie",
    }
    | HOP_BY_HOP
)
