"""Who may use the admin side of a study server: the login (throttled per client by the
engine's `AdminGuard`), its expiry and logout, and the study database the admin pages read."""
from __future__ import annotations

import time

import streamlit as st

from advrec_core.study.access import admin_guard, password_problem, study_mode

ADMIN_KEY = "admin_session"  # session state: {"since", "seen"} once the password was given
ADMIN_IDLE_S = 30 * 60  # an admin session ends after this long without a page run ...
ADMIN_MAX_S = 12 * 3600  # ... and this long after the login, whatever happens


@st.cache_resource(show_spinner=False)
def _study_db(url: str):
    from advrec_core.study import session_factory

    return session_factory(url)


def study_db():
    """The study database's session factory ($ADVREC_STUDY_DB or studydata/study.sqlite)."""
    from advrec_core.study import database_url

    return _study_db(database_url())


def client_address() -> str:
    """Who is asking, for the login's throttling: the websocket's peer, or, when it is this
    machine (a reverse proxy on it), the X-Real-IP the proxy set."""
    peer = st.context.ip_address
    if not isinstance(peer, str):  # localhost (None), or no browser at all (AppTest)
        return st.context.headers.get("X-Real-IP") or "localhost"
    return peer


def _logged_in() -> bool:
    """This browser session gave the admin password, and its login is still fresh
    (`ADMIN_IDLE_S` since its last page run, `ADMIN_MAX_S` since the login)."""
    session = st.session_state.get(ADMIN_KEY)
    now = time.time()
    if not session or now - session["seen"] > ADMIN_IDLE_S or now - session["since"] > ADMIN_MAX_S:
        st.session_state.pop(ADMIN_KEY, None)
        return False
    session["seen"] = now
    return True


def is_admin() -> bool:
    """This browser session may use everything: off a study server always; on one
    (`access.study_mode`) while its admin login is fresh."""
    return not study_mode() or _logged_in()


def admin_logout() -> None:
    st.session_state.pop(ADMIN_KEY, None)


def _try_login() -> None:
    """The password box's callback: one attempt per value typed (never on a mere rerun),
    through the process's `AdminGuard`; the value is not kept."""
    given = st.session_state.pop("admin_password", "")
    if not given:
        return
    guard, client = admin_guard(), client_address()
    if guard.attempt(client, given):
        st.session_state[ADMIN_KEY] = {"since": time.time(), "seen": time.time()}
        st.session_state.pop("admin_refused", None)
        return
    locked = guard.locked_for(client)
    st.session_state["admin_refused"] = (
        f"Too many wrong passwords: logins from here are locked for {locked / 60:.0f} more "
        f"minutes." if locked else "Wrong password.")


def admin_login(title: str = "AdvRec Lab") -> None:
    """The admin login form, in place of a page; the page stops here until the password
    ($ADVREC_ADMIN_PASSWORD, at least 12 characters) is given, once per browser session.
    Attempts go through the process's `AdminGuard`: a growing delay per client, a lockout
    after repeated failures, each failure logged. Without a usable password the admin
    side is off."""
    if _logged_in():
        return
    st.title(title)
    problem = password_problem()
    if problem:
        st.error(f"Administration is disabled: {problem}.")
        st.stop()
    st.caption("This server runs a study. Participants: please use the link you were given.")
    st.text_input("Admin password", type="password", key="admin_password", on_change=_try_login)
    if "admin_refused" in st.session_state:
        st.error(st.session_state["admin_refused"])
    st.stop()


def require_admin() -> None:
    """Stop the page unless this session is an admin: the study's design and results are
    never open to annotators, so these pages need the password on any server."""
    admin_login("Study administration")
