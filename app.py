"""AdvRec Lab dashboard: `streamlit run app.py`. Page config, shared sidebar, navigation.

The pages live in `app_pages/`, not `pages/`: Streamlit treats a `pages/` folder beside the
entry script as a legacy multipage app until st.navigation has run once in the process, so
on a fresh server a first visit to e.g. /attack_lab would run that page without this file
(no wide layout, wrong sidebar).

Participants never reach this app: the study server (`advrec serve-study`, study_app.py)
serves them its own pages (advrec_core.study.web). On a study server (`ADVREC_MODE=study`
or an admin password set; advrec_core.study.access) every page shows the admin login until
this browser session gives the password: no navigation, toolbar, job status or error
details before that."""
import streamlit as st

from advrec_core.study.access import study_mode
from ui.admin import admin_login, admin_logout, is_admin
from ui.jobs import jobs_sidebar, startup_gc

st.set_page_config(page_title="AdvRec Lab", page_icon=":material/shield:", layout="wide")
startup_gc()

pages = {
    "Explore": [
        st.Page("app_pages/story.py", title="Story", icon=":material/auto_stories:",
                default=True),
        st.Page("app_pages/data.py", title="Data", icon=":material/database:"),
        st.Page("app_pages/attack_lab.py", title="Attack Lab", icon=":material/bug_report:"),
        st.Page("app_pages/impact.py", title="Recommendation Impact",
                icon=":material/trending_up:"),
        st.Page("app_pages/grid.py", title="Grid", icon=":material/grid_on:"),
    ],
    "Perceptibility study": [
        st.Page("app_pages/study_design.py", title="Study design", icon=":material/settings:"),
        st.Page("app_pages/study_analysis.py", title="Study analysis",
                icon=":material/query_stats:"),
    ],
}
if study_mode():  # what a visitor's browser may be told (process-wide settings)
    st.set_option("client.toolbarMode", "minimal")
    st.set_option("client.showErrorDetails", "none")
if not is_admin():  # the login alone: no menu either
    nav = st.navigation([p for group in pages.values() for p in group], position="hidden")
    admin_login()  # stops here until the password is given
else:
    nav = st.navigation(pages)
    with st.sidebar:
        jobs_sidebar()
        if study_mode():
            st.button("Log out", on_click=admin_logout, key="admin_logout")
        st.caption("AdvRec Lab: adversarially poisoned product images vs visual recommenders. "
                   "Anelli et al., *Assessing Perceptual and Recommendation Mutation of "
                   "Adversarially-Poisoned Visual Recommenders*.")
nav.run()
