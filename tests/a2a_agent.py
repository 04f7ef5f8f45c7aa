"""A plain a2a-sdk 1.3 agent, as teams write them: ``DefaultRequestHandler`` with an
``InMemoryTaskStore`` (each replica keeps its own tasks), the JSON-RPC routes (1.0 and 0.3)
and the REST routes under ``/rest``, nothing of rollwise.

``python tests/a2a_agent.py --port N`` serves it; ``build_app()`` gives it in-process. Its
environment says how it behaves:

- ``AGENT_VERSION``: the version its card and ``/healthz`` say;
- ``AGENT_MODE``: ``ok``; ``raise`` (its executor raises: a2a-sdk answers -32603 in an
  HTTP 200); ``fail`` (each task ends in state failed, streamed or not);
- ``AGENT_INPUT_RATE``: the share of new tasks that ask for more input (input-required);
- ``AGENT_PUBLIC_URL``: the URL its card gives (the proxy's).

A message whose text is ``ask`` always asks for more input; the next message naming that
task completes it with ``got: <text>``.
"""

from __future__ import annotations

import argparse
import os
import random

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Executor(AgentExecutor):
    def __init__(self, mode: str, input_rate: float) -> None:
        self.mode = mode
        self.input_rate = input_rate
        self.rng = random.Random()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        if self.mode == "raise":
            raise RuntimeError("the model provider is unreachable")
        task = context.current_task or new_task_from_user_message(context.message)
        follow_up = context.current_task is not None
        if not follow_up:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        text = context.get_user_input()
        if self.mode == "fail":
            await updater.failed(new_text_message("could not do it", context_id=task.context_id))
            return
        asks = text == "ask" or (self.input_rate and self.rng.random() < self.input_rate)
        if not follow_up and asks:
            await updater.requires_input(new_text_message("what else?", context_id=task.context_id))
            return
        reply = f"got: {text}" if follow_up else f"hello {text}"
        await updater.add_artifact([Part(text=reply)], name="reply")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        if context.task_id and context.context_id:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def build_app(
    version: str = "1.0.0", mode: str = "ok", input_rate: float = 0.0, url: str = "http://a/"
) -> Starlette:
    card = AgentCard(
        name="Plain agent",
        description="a2a-sdk's own server, nothing else",
        version=version,
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="hello", name="Hello", description="says hello", tags=["t"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=Executor(mode, input_rate), task_store=InMemoryTaskStore(), agent_card=card
    )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "version": version})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=True),
            *create_rest_routes(handler, path_prefix="/rest"),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    env = os.environ
    app = build_app(
        env.get("AGENT_VERSION", "1.0.0"),
        env.get("AGENT_MODE", "ok"),
        float(env.get("AGENT_INPUT_RATE", "0")),
        env.get("AGENT_PUBLIC_URL", f"http://127.0.0.1:{args.port}/"),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
