"""What every admin API route module reads a request with (its JSON body, the controller,
a count parameter) and answers with (JSON with secret values replaced)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse as _PlainJSON

from rollwise.controller.actions import MAX_INT
from rollwise.errors import UsageError
from rollwise.redact import SECRETS

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["JSONResponse", "controller_of", "count_param", "read_body"]


class JSONResponse(_PlainJSON):
    """Every answer of the admin API, with secret values replaced (replicas' last log
    lines, pods' logs, smoke-check output, status messages)."""

    def render(self, content: Any) -> bytes:
        return super().render(SECRETS.redact(content))


async def read_body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise UsageError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object")
    return data


def controller_of(request: Request) -> Controller:
    controller: Controller = request.app.state.controller
    return controller


def count_param(request: Request, name: str, what: str) -> int | None:
    """A non-negative integer query parameter, or None when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_INT:
        raise UsageError(f"?{name}= must be {what}, not {raw!r}")
    return int(raw)
