"""A small real upstream for proxy tests: ``python tests/upstream_app.py PORT NAME``.

``GET /`` names the server; ``GET /headers`` returns the request headers; ``POST /echo``
returns the body; ``GET /big`` returns 64 KiB; ``GET /sse`` streams three events 0.5 s apart;
``GET /status/N`` answers with status N; ``GET /slow/S`` answers after S seconds.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

NAME = sys.argv[2] if len(sys.argv) > 2 else "upstream"


async def root(request: Request) -> Response:
    return PlainTextResponse(
        NAME, headers={"x-seen-traceparent": request.headers.get("traceparent", "")}
    )


async def headers(request: Request) -> Response:
    return JSONResponse(dict(request.headers))


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type="application/octet-stream", headers={"x-name": NAME})


async def big(_: Request) -> Response:
    return Response(b"x" * 65536, media_type="application/octet-stream")


async def sse(_: Request) -> Response:
    async def events() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: event {i}\n\n".encode()
            await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream")


async def status(request: Request) -> Response:
    return PlainTextResponse(NAME, status_code=int(request.path_params["code"]))


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.path_params["seconds"]))
    return PlainTextResponse(NAME)


app = Starlette(
    routes=[
        Route("/", root),
        Route("/headers", headers),
        Route("/echo", echo, methods=["POST"]),
        Route("/big", big),
        Route("/sse", sse),
        Route("/status/{code}", status),
        Route("/slow/{seconds}", slow),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
