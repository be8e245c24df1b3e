"""The study server's guard around Streamlit (`study_app.py`): what any visitor of the admin
side could otherwise send or fetch.

* HTTP: `/_stcore/upload_file` (the app takes no uploads) and `/_stcore/metrics` answer 404;
  every response gets the security headers (`advrec_core.study.web.HEADERS` on the
  participants' routes, which set their own; framing forbidden, nosniff, same-origin
  referrers on the rest).
* Websocket: of the messages a browser may send Streamlit, only those the admin pages need
  pass (rerun, stop, heartbeat, backend operations such as large tables' chunks). Dropped:
  `clear_cache` (it clears every user's caches), `load_git_info` (the repository's remote,
  branch and file names), `file_urls_request` (upload URLs), `set_run_on_save` and the
  `debug_*` messages."""
from __future__ import annotations

import logging

from streamlit.proto.BackMsg_pb2 import BackMsg

BLOCKED_PATHS = ("/_stcore/upload_file", "/_stcore/metrics")
ALLOWED_MESSAGES = frozenset({"rerun_script", "stop_script", "app_heartbeat",
                              "backend_operation_request"})
ADMIN_HEADERS = {b"content-security-policy": b"frame-ancestors 'none'",
                 b"x-frame-options": b"DENY", b"x-content-type-options": b"nosniff",
                 b"referrer-policy": b"same-origin"}
log = logging.getLogger("advrec.security")


def blocked(path: str) -> bool:
    """A path no visitor of a study server may reach."""
    path = "/" + path.lstrip("/")
    return any(path == p or path.startswith(p + "/") for p in BLOCKED_PATHS)


def allowed_message(data: bytes) -> bool:
    """A websocket frame a visitor may send Streamlit (a BackMsg of an allowed type)."""
    try:
        kind = BackMsg.FromString(data).WhichOneof("type")
    except Exception:  # not a BackMsg: Streamlit would drop it too
        return False
    return kind in ALLOWED_MESSAGES


class StudyServerGuard:
    """Pure ASGI middleware (it must see websockets too) applying the rules above."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if blocked(scope.get("path", "")):
                await send({"type": "http.response.start", "status": 404,
                            "headers": [(b"content-type", b"text/plain"), *ADMIN_HEADERS.items()]})
                await send({"type": "http.response.body", "body": b"not found"})
                return
            await self.app(scope, receive, _with_headers(send))
        elif scope["type"] == "websocket":
            await self.app(scope, _filtered(receive), send)
        else:
            await self.app(scope, receive, send)


def _with_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            have = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in ADMIN_HEADERS.items() if k not in have]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)
    return wrapped


def _filtered(receive):
    async def wrapped():
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return message
            data = message.get("bytes")
            if data is not None and allowed_message(data):
                return message
            log.warning("dropped a websocket message a study server does not take")
    return wrapped
