"""What every admin API route module reads a request with: its JSON body, the controller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from rollwise.controller.actions import MAX_INT
from rollwise.errors import UsageError

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["controller_of", "count_param", "read_body"]


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
