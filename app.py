"""AdvRec Lab dashboard: `streamlit run app.py`. Page config, shared sidebar, navigation."""
import streamlit as st

st.set_page_config(page_title="AdvRec Lab", page_icon=":material/shield:", layout="wide")

pages = [
    st.Page("pages/data.py", title="Data", icon=":material/database:", default=True),
    st.Page("pages/attack_lab.py", title="Attack Lab", icon=":material/bug_report:"),
    st.Page("pages/impact.py", title="Recommendation Impact", icon=":material/trending_up:"),
    st.Page("pages/grid.py", title="Grid", icon=":material/grid_on:"),
]
nav = st.navigation(pages)
with st.sidebar:
    st.caption("AdvRec Lab: adversarially poisoned product images vs visual recommenders. "
               "Anelli et al., *Assessing Perceptual and Recommendation Mutation of "
               "Adversarially-Poisoned Visual Recommenders*.")
nav.run()
