"""The study server: the participants' endpoint (`advrec_core.study.web`) beside the admin's
Streamlit app (`app.py`), in one ASGI app behind `ui.server.StudyServerGuard`.

Started by `advrec serve-study` (which checks its settings and passes Streamlit the study
server's options); `streamlit run study_app.py` works too. It refuses to start, in one line
per problem, without ADVREC_ADMIN_PASSWORD (at least 12 characters) and ADVREC_STUDY_SECRET
(at least 32), and always runs in study mode: every page but the participants' needs the
admin login."""
import os
import sys

from starlette.middleware import Middleware

from advrec_core.study.access import MODE_ENV, server_problems

problems = server_problems()
if problems:
    sys.exit("the study server cannot start:\n  " + "\n  ".join(problems))
os.environ[MODE_ENV] = "study"

import streamlit as st  # noqa: E402  (after the check: nothing starts without the settings)

from advrec_core.study.web import participant_routes  # noqa: E402
from ui.server import StudyServerGuard  # noqa: E402

app = st.App("app.py", routes=participant_routes(), middleware=[Middleware(StudyServerGuard)])
