"""What every page of the web UI shares: its templates, rendering, and the signed-in
caller (or the answer to give instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from facesearch.accounts import credentials as cred
from facesearch.accounts.roles import Action, Principal
from facesearch.api.auth import ANONYMOUS, auth_state, current_session
from facesearch.api.schemas import NOTICE

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


class Page:
    """The signed-in caller of a page, or the answer to give instead (sign in, forbidden)."""

    def __init__(self, request: Request, action: Action | None) -> None:
        self.request = request
        self.csrf = ""
        self.who: Principal | None = None
        self.stop: Response | None = None
        if not auth_state(request).enabled:
            self.who = ANONYMOUS
        else:
            session = current_session(request)
            if session is None:
                self.stop = RedirectResponse("/login", status_code=303)
                return
            self.who, self.csrf = session.principal, session.csrf
        if action is not None and not self.who.can(action):
            self.stop = render(
                request,
                "message.html",
                {"who": self.who, "title": "Not allowed", "message": forbidden(self.who, action)},
                status=403,
            )

    def render(self, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return render(self.request, name, {"who": self.who, "csrf": self.csrf, **context}, status)

    def form_ok(self, token: str) -> bool:
        return not auth_state(self.request).enabled or (bool(token) and cred.same(token, self.csrf))


def forbidden(who: Principal, action: Action) -> str:
    return f"Your role ({who.role.value}) may not {action.value.replace('_', ' ')}."


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    context = {"notice": NOTICE, "Action": Action, "csrf": "", **context}
    # Security headers (CSP, nosniff, framing, referrer) come from SecurityHeadersMiddleware.
    return templates.TemplateResponse(request, name, context, status_code=status)
