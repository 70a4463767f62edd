"""The web app's FastAPI dependencies: its context, and who is asking.

Pages want a paired browser and send anyone else to /pair (`PageSession`, and
`PageForm` for a posted form with its CSRF token); the API wants a session or a bearer
token and answers 401, or 403 for a session's state-changing call without its
X-CSRF-Token header (`require_session`, `require_session_csrf`, `authorised`).

The dependencies are `async def` though none awaits: FastAPI would run a plain `def` one
in a worker thread. No `from __future__ import annotations` here: `authorised` and
`json_body` make dependencies annotated with their arguments, which FastAPI must find as
objects, not as names in this module.
"""

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, HTTPException, Request
from jinja2 import Environment

from appliance.web.auth import csrf_token
from appliance.web.bodies import read_form
from appliance.web.context import WebContext

SESSION_COOKIE = "appliance_session"
PAIR_COOKIE = "appliance_pair"

T = TypeVar("T")


def context_of(request: Request) -> WebContext:
    """The WebContext that create_app keeps in the app's state."""
    ctx: WebContext = request.app.state.ctx
    return ctx


async def web_context(request: Request) -> WebContext:
    return context_of(request)


Ctx = Annotated[WebContext, Depends(web_context)]


def templates_of(request: Request) -> Environment:
    """The app's Jinja templates (kept in its state by create_app)."""
    templates: Environment = request.app.state.templates
    return templates


# ---- pages: a paired browser, or the way to /pair ----------------------------------------


def session_of(request: Request, ctx: WebContext) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and ctx.pairing.session_valid(token) else None


async def current_session(request: Request, ctx: Ctx) -> str | None:
    """The browser's valid session, or None."""
    return session_of(request, ctx)


class PairFirst(Exception):
    """No valid session on a page: create_app answers it with the redirect to /pair."""


async def require_page_session(
    session: Annotated[str | None, Depends(current_session)],
) -> str:
    if session is None:
        raise PairFirst
    return session


PageSession = Annotated[str, Depends(require_page_session)]


def check_form_csrf(session: str, form: dict[str, str]) -> None:
    if not secrets.compare_digest(form.get("csrf", ""), csrf_token(session)):
        raise HTTPException(403, "this form expired or came from another site; reload the page")


async def page_form(request: Request, session: PageSession) -> dict[str, str]:
    """A page's posted form, read only for a paired browser and refused (403) without
    the session's CSRF token."""
    form = await read_form(request)
    check_form_csrf(session, form)
    return form


PageForm = Annotated[dict[str, str], Depends(page_form)]


# ---- the API: a session or a bearer token ------------------------------------------------


def authorise(request: Request, ctx: WebContext, *, unsafe: bool) -> str | None:
    """The session (None for a bearer token); raises 401/403."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        if ctx.pairing.token_valid(header[7:].strip()):
            return None
        raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    session = session_of(request, ctx)
    if session is None:
        raise HTTPException(
            401, "pair this browser first, or send a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    if unsafe and not secrets.compare_digest(
        request.headers.get("x-csrf-token", ""), csrf_token(session)
    ):
        raise HTTPException(403, "missing or wrong X-CSRF-Token header")
    return session


async def require_session(request: Request, ctx: Ctx) -> str | None:
    """A reading API call: the caller's session, None for a bearer token; else 401."""
    return authorise(request, ctx, unsafe=False)


async def require_session_csrf(request: Request, ctx: Ctx) -> str | None:
    """A state-changing API call: as `require_session`, and a session must send its
    CSRF token in the X-CSRF-Token header (403)."""
    return authorise(request, ctx, unsafe=True)


def authorised(validated: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A dependency giving what the dependency `validated` gives (a body, query
    parameters), for a state-changing API call, then checking the caller (401/403). An
    unauthenticated caller never gets here: `security.RequireAuth` answers 401 before the
    body is read. For a paired caller the input is checked first (422), then its CSRF
    token (403)."""

    async def validated_then_authorised(
        request: Request, ctx: Ctx, value: Annotated[Any, Depends(validated)]
    ) -> T:
        authorise(request, ctx, unsafe=True)
        return value

    return validated_then_authorised


def json_body(model: type[T]) -> Callable[..., Awaitable[T]]:
    """A dependency giving the request's JSON body as `model` (422 if it is not one);
    the route's body in the API description, as if the route took it itself."""

    async def the_body(body: Annotated[model, Body()]) -> T:  # type: ignore[valid-type]
        return body

    return the_body
