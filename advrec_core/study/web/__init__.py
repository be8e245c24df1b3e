"""The participants' endpoint: a few plain HTTP routes (Starlette), served beside the admin's
Streamlit app by the study server (`advrec serve-study`, `study_app.py`) or alone.

Why not a Streamlit page: a Streamlit page is a websocket session that reruns a script per
click, so reaction times were taken on the server between reruns (network and rerun
included); the exposure was a CSS animation that started whether or not the images were
decoded; both images stayed in the page as data URIs whose lengths gave the answer away;
and every participant could send Streamlit's own messages (clear every cache, read the
repository's git state, upload files). Here the browser gets a static page and a script
(`static/participant.js`), JSON views that name a showing by a random id, and one PNG per
showing; it measures exposure and reaction time itself.

Routes (all under /study):
  GET  /study?study=ID[&pid=..|&PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..]  consent page
  POST /study/api/enrol                      consent on an open link -> {"link": ...}
  GET  /study/p/<token>                      the personal page (or an invitation's consent)
  GET  /study/api/p/<token>                  the view (JSON)
  POST /study/api/p/<token>/consent          consent on an invitation
  GET  /study/api/p/<token>/image/<render>   the showing's PNG (a timed one once)
  POST /study/api/p/<token>/answer           {render, response, confidence, rt_ms,
                                              exposure_ms, frames, frame_ms} -> the view
  POST /study/api/p/<token>/undo             -> the view
Every response carries a strict Content-Security-Policy (this server's script and style
only, no framing), no-referrer, nosniff and no-store."""
from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...errors import AdvRecError
from ..db import session_factory
from ..design import StudyConfig
from ..participation import (
    accept_invitation,
    answer,
    arrive,
    enrol,
    open_study,
    parse_link,
    resolve,
    showing_png,
    undo_last,
    view,
)
from .pages import consent_page, invite_page, message_page, personal_page

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"participant.js": "text/javascript", "participant.css": "text/css"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "same-origin"}
MAX_BODY = 4096  # bytes of a participant's JSON request
log = logging.getLogger("advrec.study")


def client_address(request: Request) -> str:
    """The participant's address: the peer's, or, when the peer is this machine (the
    reverse proxy), the X-Real-IP it set."""
    peer = request.client.host if request.client else "unknown"
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    return request.headers.get("x-real-ip", peer) if local else peer


class RateLimit:
    """At most `n` events per client in `per_s` seconds (consents: a bot cannot fill a
    study's balancing with fake participants). Thread-safe, in memory."""

    def __init__(self, n: int, per_s: float):
        self.n, self.per_s, self._seen, self._lock = n, per_s, {}, threading.Lock()

    def allow(self, client: str) -> bool:
        t = time.monotonic()
        with self._lock:
            recent = [x for x in self._seen.get(client, []) if t - x < self.per_s]
            ok = len(recent) < self.n
            self._seen[client] = recent + [t] if ok else recent
            if len(self._seen) > 100_000:  # forget the oldest clients
                self._seen = dict(list(self._seen.items())[-50_000:])
            return ok


def _line(e: Exception) -> str:
    """An error as the one sentence a participant reads."""
    text = str(e)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def _error(text: str, status: int = 400) -> Response:
    return _headers(JSONResponse({"error": text}, status))


async def _json(request: Request) -> dict:
    """The request's JSON object, read no further than MAX_BODY bytes. Only same-origin
    scripts send it: a JSON content type needs a CORS preflight, which is never granted,
    and an Origin other than this host is refused."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise AdvRecError("send JSON (Content-Type: application/json)")
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise AdvRecError("requests come from this site's own pages only")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise AdvRecError("request too large")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise AdvRecError("the request is not valid JSON") from None
    if not isinstance(data, dict):
        raise AdvRecError("the request must be a JSON object")
    return data


class ParticipantEndpoints:
    """The participants' HTTP endpoints, on the study database at `url` ($ADVREC_STUDY_DB by
    default); consents rate-limited per client by `enrolments`."""

    def __init__(self, url: str | None = None, enrolments: RateLimit | None = None):
        self.url, self._db = url, None
        self.enrolments = enrolments or RateLimit(30, 600.0)

    def db(self):
        if self._db is None:
            self._db = session_factory(self.url)
        return self._db

    def open_link(self, request: Request) -> Response:
        query = dict(request.query_params)
        try:
            link = parse_link(query)
            token = arrive(self.db(), link)
            if token is not None:  # the same Prolific session: resume
                return _headers(RedirectResponse(f"/study/p/{token}", 303))
            cfg = StudyConfig.of(open_study(self.db(), link.study_id))
        except AdvRecError as e:
            return _headers(HTMLResponse(message_page(_line(e)), 404))
        return _headers(HTMLResponse(consent_page(cfg, query)))

    async def enrol_route(self, request: Request) -> Response:
        try:
            data = await _json(request)
            if data.pop("agree", None) is not True:
                raise AdvRecError("please agree to take part first")
            link = parse_link({k: str(v) for k, v in data.items()})
            if not self.enrolments.allow(client_address(request)):
                log.warning("too many consents from %s", client_address(request))
                return _error("too many new participants from this address: try again later",
                              429)
            token = enrol(self.db(), link)
        except AdvRecError as e:
            return _error(_line(e), 403)
        return _headers(JSONResponse({"link": f"/study/p/{token}"}))

    def personal(self, request: Request) -> Response:
        try:
            study, ann = resolve(self.db(), request.path_params["token"])
        except AdvRecError as e:
            return _headers(HTMLResponse(message_page(_line(e)), 404))
        if ann is None:
            return _headers(HTMLResponse(invite_page(StudyConfig.of(study))))
        return _headers(HTMLResponse(personal_page()))

    def state(self, request: Request) -> Response:
        try:
            study, ann = resolve(self.db(), request.path_params["token"])
        except AdvRecError as e:
            return _error(_line(e), 404)
        return _headers(JSONResponse(view(self.db(), study, ann)))

    async def accept(self, request: Request) -> Response:
        try:
            if (await _json(request)).get("agree") is not True:
                raise AdvRecError("please agree to take part first")
            token = request.path_params["token"]
            accept_invitation(self.db(), token)
        except AdvRecError as e:
            return _error(_line(e), 403)
        return _headers(JSONResponse({"link": f"/study/p/{token}"}))

    def image(self, request: Request) -> Response:
        try:
            study, ann = resolve(self.db(), request.path_params["token"])
        except AdvRecError as e:
            return _error(_line(e), 404)
        png = None if ann is None else showing_png(self.db(), study, ann,
                                                    request.path_params["render"])
        if png is None:
            return _error("these images are not shown (again)", 410)
        return _headers(Response(png, media_type="image/png"))

    async def answer_route(self, request: Request) -> Response:
        try:
            data = await _json(request)
            study, ann = resolve(self.db(), request.path_params["token"])
            if ann is None:
                raise AdvRecError("please agree to take part first")
            answer(self.db(), study, ann, data.get("render"), str(data.get("response", "")),
                   data.get("confidence"), data.get("rt_ms"), data.get("exposure_ms"),
                   data.get("frames"), data.get("frame_ms"))
        except AdvRecError as e:
            return _error(_line(e), 409)
        return _headers(JSONResponse(view(self.db(), study, ann)))

    async def undo_route(self, request: Request) -> Response:
        try:
            await _json(request)
            study, ann = resolve(self.db(), request.path_params["token"])
            if ann is None:
                raise AdvRecError("please agree to take part first")
        except AdvRecError as e:
            return _error(_line(e), 409)
        undo_last(self.db(), ann.id)
        return _headers(JSONResponse(view(self.db(), study, ann)))

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:  # a fixed set: nothing typed reaches the file system
            return _error("not found", 404)
        response = FileResponse(STATIC / name, media_type=STATIC_FILES[name])
        _headers(response).headers["Cache-Control"] = "no-cache"
        return response

    def routes(self) -> list:
        return [
            Route("/study", self.open_link, methods=["GET"]),
            Route("/study/api/enrol", self.enrol_route, methods=["POST"]),
            Route("/study/p/{token}", self.personal, methods=["GET"]),
            Route("/study/api/p/{token}", self.state, methods=["GET"]),
            Route("/study/api/p/{token}/consent", self.accept, methods=["POST"]),
            Route("/study/api/p/{token}/image/{render}", self.image, methods=["GET"]),
            Route("/study/api/p/{token}/answer", self.answer_route, methods=["POST"]),
            Route("/study/api/p/{token}/undo", self.undo_route, methods=["POST"]),
            Route("/study/static/{name}", self.static, methods=["GET"]),
        ]


def participant_routes(url: str | None = None, enrolments: RateLimit | None = None) -> list:
    """The routes, on the study database at `url` ($ADVREC_STUDY_DB by default)."""
    return ParticipantEndpoints(url, enrolments).routes()


def participant_app(url: str | None = None, **kwargs) -> Starlette:
    """The participants' endpoint on its own (tests, a separate process behind a proxy)."""
    return Starlette(routes=participant_routes(url, **kwargs))
