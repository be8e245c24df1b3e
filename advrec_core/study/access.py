"""Who may do what on a server that is on the internet, and the participant's completion code.

Study mode (`study_mode()`): on when ``ADVREC_MODE=study`` or an admin password is set
(``ADVREC_ADMIN_PASSWORD``). Then only the participant page is open; every other page, and
every job, needs the admin login (once per browser session). ``ADVREC_MODE=study`` without a
password keeps everything but the participant page closed.

Completion codes are an HMAC-SHA256 of (study, participant) under a server secret:
``ADVREC_STUDY_SECRET`` where set, otherwise a random secret generated once per study and
stored with it in the study database. Reading this code gives no way to compute a code; only
the database (or the environment) holds the key."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

MODE_ENV = "ADVREC_MODE"  # "study": a study server
ADMIN_ENV = "ADVREC_ADMIN_PASSWORD"  # the admin login's password
SECRET_ENV = "ADVREC_STUDY_SECRET"  # the completion codes' key (else one per study, stored)
PLATFORM_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")  # Prolific's URL parameters


def study_mode() -> bool:
    """True on a study server: ADVREC_MODE=study, or an admin password set."""
    return os.environ.get(MODE_ENV, "").strip().lower() == "study" or bool(admin_password())


def admin_password() -> str | None:
    return os.environ.get(ADMIN_ENV) or None


def password_ok(given: str | None) -> bool:
    """`given` equals the admin password (constant-time); False when none is set."""
    secret = admin_password()
    return bool(secret and given) and hmac.compare_digest(given.encode(), secret.encode())


def new_secret() -> str:
    """A study's own completion-code key: 256 random bits, hex."""
    return secrets.token_hex(32)


def completion_code(key: str, study_id: int, pid: str) -> str:
    """The participant's completion code: HMAC-SHA256(key, "study:pid") as 10 base32
    characters (A-Z, 2-7: 50 bits). $ADVREC_STUDY_SECRET, where set, is the key instead."""
    key = os.environ.get(SECRET_ENV) or key
    mac = hmac.new(key.encode(), f"{study_id}:{pid}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:10]


def code_ok(key: str, study_id: int, pid: str, code: str) -> bool:
    """`code` is this participant's completion code (constant-time, case-insensitive)."""
    return hmac.compare_digest(completion_code(key, study_id, pid).encode(),
                               code.strip().upper().encode())


def check_platform(completion_code: str, redirect_url: str) -> None:
    """A study's recruitment-platform settings (Prolific's by default), checked: its own
    completion code ("" = none) and the https URL participants return to when done."""
    from ..errors import AdvRecError

    if redirect_url and not redirect_url.startswith("https://"):
        raise AdvRecError(f"the platform's completion URL must start with https://, not "
                          f"{redirect_url!r}")
    if completion_code and not all(c.isalnum() or c in "-_" for c in completion_code):
        raise AdvRecError("the platform's completion code must be letters, digits, '-' or '_'")


def valid_id(value: str) -> bool:
    """A participant id (or a platform's id): 1-64 letters, digits, '-', '_' or '.'."""
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)


def platform_params(query: dict[str, str]) -> dict[str, str]:
    """The recruitment platform's URL parameters (PROLIFIC_PID, STUDY_ID, SESSION_ID) found in
    a participant's link, each checked like a participant id (else left out)."""
    return {k: v for k in PLATFORM_PARAMS if valid_id(v := str(query.get(k, "")).strip())}


__all__ = ["ADMIN_ENV", "MODE_ENV", "SECRET_ENV", "PLATFORM_PARAMS", "check_platform", "study_mode",
           "admin_password", "password_ok", "new_secret", "completion_code", "code_ok",
           "platform_params", "valid_id"]
