"""Who may do what on a server that is on the internet, and the participant's completion code.

Study mode (`study_mode()`): on when ``ADVREC_MODE=study`` or an admin password is set
(``ADVREC_ADMIN_PASSWORD``). Then only the participant page is open; every other page, and
every job, needs the admin login (once per browser session). ``ADVREC_MODE=study`` without a
password keeps everything but the participant page closed.

Every participant-facing value that must not be guessed comes from a key, never from public
values: the study's key is ``ADVREC_STUDY_SECRET`` where set, otherwise a random secret made
with the study and stored with it in the study database. Under it, HMAC-SHA256 with a
separate label per use gives the completion codes (of study and participant id), the
personal links' tokens (of study and the participant's random uid) and the seed of each
participant's randomisation (sides, trial order, catch positions). Reading this code gives
no way to compute any of them.

The admin login (`AdminGuard`): a password of at least `MIN_PASSWORD` characters, compared
in constant time; per client, a delay that doubles with each failure and a lockout after
`MAX_FAILURES` (during which even the right password is refused); every failure logged to
the ``advrec.security`` logger."""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

MODE_ENV = "ADVREC_MODE"  # "study": a study server
ADMIN_ENV = "ADVREC_ADMIN_PASSWORD"  # the admin login's password
SECRET_ENV = "ADVREC_STUDY_SECRET"  # the completion codes' key (else one per study, stored)
PLATFORM_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")  # Prolific's URL parameters
MIN_PASSWORD = 12  # characters of the admin password
MIN_SECRET = 32  # characters of $ADVREC_STUDY_SECRET on a study server
security_log = logging.getLogger("advrec.security")


def study_mode() -> bool:
    """True on a study server: ADVREC_MODE=study, or an admin password set."""
    return os.environ.get(MODE_ENV, "").strip().lower() == "study" or bool(admin_password())


def admin_password() -> str | None:
    return os.environ.get(ADMIN_ENV) or None


def password_problem() -> str | None:
    """Why the admin side must stay off (no password, or one too short), else None."""
    secret = admin_password()
    if not secret:
        return f"start the app with the environment variable {ADMIN_ENV} set to a password"
    if len(secret) < MIN_PASSWORD:
        return (f"{ADMIN_ENV} has {len(secret)} characters; an admin password needs at least "
                f"{MIN_PASSWORD}")
    return None


def password_ok(given: str | None) -> bool:
    """`given` equals the admin password (constant-time); False when none is usable."""
    secret = admin_password()
    if password_problem() is not None or not given:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(secret.encode()).digest())


def server_problems(environ: dict[str, str] | None = None) -> list[str]:
    """What keeps a study server from starting (one line each): the admin password and the
    study secret must be set and long enough. Empty when it may start."""
    env = os.environ if environ is None else environ
    out = []
    password = env.get(ADMIN_ENV, "")
    if len(password) < MIN_PASSWORD:
        out.append(f"{ADMIN_ENV} must be set to a password of at least {MIN_PASSWORD} "
                   f"characters (it has {len(password)})")
    secret = env.get(SECRET_ENV, "")
    if len(secret) < MIN_SECRET:
        out.append(f"{SECRET_ENV} must be set to a random secret of at least {MIN_SECRET} "
                   f"characters (it has {len(secret)}), e.g. `openssl rand -hex 32`")
    return out


@dataclass
class AdminGuard:
    """Per-client throttling of admin logins. `attempt(client, given)` waits the client's
    current delay (`base_delay_s` x 2^(failures - 1), at most `max_delay_s`), then checks;
    after `max_failures` failures within `window_s` the client is locked out for
    `lockout_s`, and every attempt is refused at once, the right password too. A success
    clears the client's record. Thread-safe; one per server process (`admin_guard()`)."""

    max_failures: int = 5
    window_s: float = 900.0
    lockout_s: float = 900.0
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _failures: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _locked: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def locked_for(self, client: str) -> float:
        """Seconds left of `client`'s lockout (0 when not locked out)."""
        with self._lock:
            return max(0.0, self._locked.get(client, 0.0) - self.clock())

    def delay_for(self, client: str) -> float:
        """The wait before `client`'s next attempt is checked."""
        with self._lock:
            n = len(self._recent(client))
        return 0.0 if n == 0 else min(self.max_delay_s, self.base_delay_s * 2 ** (n - 1))

    def _recent(self, client: str) -> list[float]:
        t = self.clock()
        kept = [f for f in self._failures.get(client, []) if t - f < self.window_s]
        self._failures[client] = kept
        return kept

    def attempt(self, client: str, given: str | None) -> bool:
        """True when `given` is the admin password and `client` is not locked out."""
        if self.locked_for(client) > 0:
            security_log.warning("admin login refused for %s: locked out (%.0f s left)",
                                 client, self.locked_for(client))
            return False
        self.sleep(self.delay_for(client))
        if password_ok(given):
            with self._lock:
                self._failures.pop(client, None)
            return True
        with self._lock:
            recent = self._recent(client)
            recent.append(self.clock())
            n = len(recent)
            if n >= self.max_failures:
                self._locked[client] = self.clock() + self.lockout_s
                self._failures.pop(client, None)
        security_log.warning("admin login failed for %s (%d in a row%s)", client, n,
                             f"; locked out for {self.lockout_s:.0f} s"
                             if n >= self.max_failures else "")
        return False


_GUARD = AdminGuard()


def admin_guard() -> AdminGuard:
    """This process's AdminGuard."""
    return _GUARD


def new_secret() -> str:
    """A study's own completion-code key: 256 random bits, hex."""
    return secrets.token_hex(32)


def study_key(stored: str) -> str:
    """A study's key: $ADVREC_STUDY_SECRET where set, else `stored` (the study's own)."""
    return os.environ.get(SECRET_ENV) or stored


def keyed(key: str, label: str, *parts) -> bytes:
    """HMAC-SHA256 under the study's key (`study_key(key)`) of "label:part:part...": one
    label per use, so no value made for one use is valid for another."""
    msg = ":".join([label, *map(str, parts)]).encode()
    return hmac.new(study_key(key).encode(), msg, hashlib.sha256).digest()


def completion_code(key: str, study_id: int, pid: str) -> str:
    """The participant's completion code: HMAC-SHA256(key, "study:pid") as 10 base32
    characters (A-Z, 2-7: 50 bits). $ADVREC_STUDY_SECRET, where set, is the key instead."""
    mac = hmac.new(study_key(key).encode(), f"{study_id}:{pid}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:10]


def participant_token(key: str, study_id: int, uid: str) -> str:
    """The personal link's token of participant `uid` (random hex) in a study:
    "<study>-<uid>-<mac>", the mac 128 bits of HMAC under the study's key."""
    mac = base64.b32encode(keyed(key, "token", study_id, uid)[:20]).decode().lower()
    return f"{study_id}-{uid}-{mac}"


def parse_token(token: str) -> tuple[int, str] | None:
    """(study id, uid) of a well-formed token (its mac still to check), else None."""
    parts = str(token).split("-")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 9:
        return None
    uid, mac = parts[1], parts[2]
    if not (0 < len(uid) <= 32 and all(c in "0123456789abcdef" for c in uid)):
        return None
    if len(mac) != 32 or not all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in mac):
        return None
    return int(parts[0]), uid


def token_ok(key: str, token: str) -> bool:
    """`token` is the personal link's token its study and uid give (constant-time)."""
    parsed = parse_token(token)
    return parsed is not None and hmac.compare_digest(
        participant_token(key, *parsed).encode(), str(token).encode())


def randomisation_seed(key: str, study_id: int, uid: str) -> int:
    """The seed of one participant's randomisation (sides, order, catch positions)."""
    return int.from_bytes(keyed(key, "assign", study_id, uid)[:8], "little")


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


__all__ = ["ADMIN_ENV", "MODE_ENV", "SECRET_ENV", "PLATFORM_PARAMS", "MIN_PASSWORD", "MIN_SECRET",
           "AdminGuard", "admin_guard", "check_platform", "study_mode", "admin_password",
           "password_ok", "password_problem", "server_problems", "new_secret", "study_key",
           "completion_code", "code_ok", "participant_token", "parse_token", "token_ok",
           "randomisation_seed", "platform_params", "valid_id"]
