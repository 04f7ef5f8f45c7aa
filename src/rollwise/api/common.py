"""What every admin API route module reads a request with: its JSON body, the controller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from rollwise.errors import UsageError

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["controller_of", "read_body"]


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
