"""AdvRec Lab dashboard: `streamlit run app.py`. Page config, shared sidebar, navigation.

The pages live in `app_pages/`, not `pages/`: Streamlit treats a `pages/` folder beside the
entry script as a legacy multipage app until st.navigation has run once in the process, so
on a fresh server a first visit to e.g. /attack_lab would run that page without this file
(no wide layout, wrong sidebar)."""
import streamlit as st

from ui import jobs_sidebar, startup_gc

st.set_page_config(page_title="AdvRec Lab", page_icon=":material/shield:", layout="wide")
startup_gc()

study = st.Page("app_pages/study.py", title="Take the study", icon=":material/visibility:",
                url_path="study")
pages = {
    "Explore": [
        st.Page("app_pages/data.py", title="Data", icon=":material/database:", default=True),
        st.Page("app_pages/attack_lab.py", title="Attack Lab", icon=":material/bug_report:"),
        st.Page("app_pages/impact.py", title="Recommendation Impact",
                icon=":material/trending_up:"),
        st.Page("app_pages/grid.py", title="Grid", icon=":material/grid_on:"),
    ],
    "Perceptibility study": [
        study,
        st.Page("app_pages/study_admin.py", title="Study design", icon=":material/settings:"),
        st.Page("app_pages/study_analysis.py", title="Study analysis",
                icon=":material/query_stats:"),
    ],
}
participant = "pid" in st.query_params or "study" in st.query_params
if participant:  # a participant's link shows the study and nothing else (no menu either)
    nav = st.navigation([p for group in pages.values() for p in group], position="hidden")
    if nav.url_path != study.url_path:
        st.switch_page(study, query_params=st.query_params.to_dict())
else:
    nav = st.navigation(pages)
    with st.sidebar:
        jobs_sidebar()
        st.caption("AdvRec Lab: adversarially poisoned product images vs visual recommenders. "
                   "Anelli et al., *Assessing Perceptual and Recommendation Mutation of "
                   "Adversarially-Poisoned Visual Recommenders*.")
nav.run()
