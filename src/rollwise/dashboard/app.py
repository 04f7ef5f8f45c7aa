"""The dashboard: server-side HTML (Jinja2), live over Server-Sent Events, served by the
controller on loopback (``rollwise up --dashboard``).

Reading needs nothing: the port is on loopback, as the admin API's read token would be.
Changing needs the admin API's write token (``<state>/api-token``): ``/login?token=`` puts it
in an HttpOnly, SameSite=Strict cookie (``rollwise dashboard --write`` prints that link) or a
request carries it as a bearer. Without it the action buttons are not drawn and a POST is
answered 403; a POST from another origin is refused too. Every action is an event
(``DashboardAction``) naming who did it: the dashboard, the token's holder, the client's
address.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from rollwise.a2a.labels import told
from rollwise.api.auth import ensure_tokens
from rollwise.controller.actions import run_action
from rollwise.dashboard.charts import Charts
from rollwise.dashboard.pages import PHASE_ICONS, app_page, apps_rows, log_lines
from rollwise.errors import RollwiseError
from rollwise.words import EventKind

if TYPE_CHECKING:
    from rollwise.controller.controller import Controller

__all__ = ["COOKIE", "build_dashboard"]

HERE = Path(__file__).resolve().parent
COOKIE = "rollwise_token"
PUSH_EVERY_S = 0.5
DASHBOARD_ACTIONS = (
    "promote",
    "promote-full",
    "abort",
    "retry",
    "pause",
    "resume",
    "undo",
    "approve",
)


class _Dashboard:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.token = ensure_tokens(controller.state_dir).admin
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals["icons"] = PHASE_ICONS
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["told"] = told
        self.charts = Charts(controller)

    def can_write(self, request: Request) -> bool:
        given = request.cookies.get(COOKIE, "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given, self.token)

    def render(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        context["can_write"] = self.can_write(request)
        return self.templates.TemplateResponse(request, template, context)

    def fragment(self, name: str, **context: Any) -> str:
        return self.templates.get_template(name).render(**context)

    # pages

    async def apps(self, request: Request) -> HTMLResponse:
        self.charts.start()
        phase = request.query_params.get("phase", "")
        name = request.query_params.get("name", "")
        rows = apps_rows(self.controller, phase, name)
        return self.render(request, "apps.html", rows=rows, phase=phase, name=name)

    async def app(self, request: Request) -> Response:
        self.charts.start()
        app = request.path_params["app"]
        try:
            page = await app_page(self.controller, app)
        except RollwiseError as exc:
            return HTMLResponse(f"<p>{_escape(str(exc))}</p>", status_code=404)
        return self.render(request, "app.html", app=app, **page)

    async def logs(self, request: Request) -> Response:
        app = request.path_params["app"]
        revision = request.path_params["revision"]
        self.controller.worker(app)
        return self.render(request, "logs.html", app=app, revision=revision)

    async def logs_stream(self, request: Request) -> EventSourceResponse:
        app = request.path_params["app"]
        revision = int(request.path_params["revision"])
        offsets: dict[str, int] = {}  # a local replica's log file: bytes read
        since: dict[str, str] = {}  # a cluster pod: the stamp of its newest line shown

        async def events() -> AsyncIterator[dict[str, str]]:
            while True:
                lines = await log_lines(self.controller, app, revision, offsets, since)
                if lines:
                    yield {"event": "lines", "data": self.fragment("_lines.html", lines=lines)}
                await asyncio.sleep(PUSH_EVERY_S)

        return EventSourceResponse(events(), ping=15)

    async def login(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token, self.token):
            return HTMLResponse(
                "<p>That is not this controller's write token; open the link that "
                "<code>rollwise dashboard --write</code> prints.</p>",
                403,
            )
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return answer

    # live

    async def apps_stream(self, request: Request) -> EventSourceResponse:
        phase = request.query_params.get("phase", "")
        name = request.query_params.get("name", "")
        can_write = self.can_write(request)

        async def events() -> AsyncIterator[dict[str, str]]:
            last = ""
            while True:
                rows = apps_rows(self.controller, phase, name)
                html = self.fragment("_apps_table.html", rows=rows, can_write=can_write)
                if html != last:
                    last = html
                    yield {"event": "apps", "data": html}
                await asyncio.sleep(PUSH_EVERY_S)

        return EventSourceResponse(events(), ping=15)

    async def app_stream(self, request: Request) -> EventSourceResponse:
        app = request.path_params["app"]
        can_write = self.can_write(request)

        async def events() -> AsyncIterator[dict[str, str]]:
            sent: dict[str, str] = {}
            while True:
                page = await app_page(self.controller, app)
                parts = {
                    "status": self.fragment("_status.html", app=app, can_write=can_write, **page),
                    "events": self.fragment("_events.html", **page),
                    "chart": json.dumps(
                        {
                            "weights": self.charts.weight_chart(app),
                            "evidence": await self.charts.evidence_chart(app),
                        }
                    ),
                }
                for event, data in parts.items():
                    if sent.get(event) != data:
                        sent[event] = data
                        yield {"event": event, "data": data}
                await asyncio.sleep(PUSH_EVERY_S)

        return EventSourceResponse(events(), ping=15)

    async def chart_data(self, request: Request) -> Response:
        app = request.path_params["app"]
        self.controller.worker(app)
        body = {
            "weights": self.charts.weight_chart(app),
            "evidence": await self.charts.evidence_chart(app),
        }
        return Response(json.dumps(body), media_type="application/json")

    # actions

    async def action(self, request: Request) -> Response:
        if not self.can_write(request):
            return HTMLResponse(
                "<p>This dashboard is read-only without the write token; open the link that "
                "<code>rollwise dashboard --write</code> prints, or send it as a bearer.</p>",
                status_code=403,
            )
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return HTMLResponse(
                f"<p>Actions come from this dashboard's own pages only (this one came from "
                f"{_escape(origin)}); use the buttons on {request.url.netloc}.</p>",
                403,
            )
        app = request.path_params["app"]
        name = request.path_params["action"]
        if name not in DASHBOARD_ACTIONS:
            return HTMLResponse(
                f"<p>No action {_escape(name)!r}; actions: {', '.join(DASHBOARD_ACTIONS)}.</p>",
                status_code=404,
            )
        # a plain urlencoded form: two fields at most, no multipart parser needed
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        body: dict[str, Any] = {}
        command = name
        if name == "promote-full":
            command, body = "promote", {"full": True}
        elif name == "undo":
            target = str(form.get("to_revision") or "")
            body = {"to_revision": int(target)} if target.isdigit() else {}
            body["reason"] = "undo from the dashboard"
        elif name == "approve":
            who_named = str(form.get("by") or "").strip() or "dashboard"
            body = {"gate": form.get("gate") or None, "by": f"{who_named} (dashboard)"}
        try:
            worker = self.controller.worker(app)
            await run_action(worker.commands, command, body)
        except RollwiseError as exc:
            return HTMLResponse(f"<p>{_escape(exc.message)}</p>", status_code=409)
        who = request.client.host if request.client else "?"
        message = f"{name} from the dashboard (write token, {who})"
        self.controller.events.emit(
            app, EventKind.DASHBOARD_ACTION, message, None, {"action": name, "by": "dashboard"}
        )
        return RedirectResponse(f"/apps/{app}", status_code=303)


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_dashboard(controller: Controller) -> Starlette:
    """The dashboard of ``controller``."""
    board = _Dashboard(controller)
    routes = [
        Route("/", board.apps, methods=["GET"]),
        Route("/login", board.login, methods=["GET"]),
        Route("/stream", board.apps_stream, methods=["GET"]),
        Route("/apps/{app}", board.app, methods=["GET"]),
        Route("/apps/{app}/stream", board.app_stream, methods=["GET"]),
        Route("/apps/{app}/charts", board.chart_data, methods=["GET"]),
        Route("/apps/{app}/revisions/{revision:int}/logs", board.logs, methods=["GET"]),
        Route(
            "/apps/{app}/revisions/{revision:int}/logs/stream",
            board.logs_stream,
            methods=["GET"],
        ),
        Route("/apps/{app}/actions/{action}", board.action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)
