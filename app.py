"""AdvRec Lab dashboard: `streamlit run app.py`. Page config, shared sidebar, navigation."""
import streamlit as st

st.set_page_config(page_title="AdvRec Lab", page_icon=":material/shield:", layout="wide")

pages = [
    st.Page("pages/data.py", title="Data", icon=":material/database:", default=True),
]
nav = st.navigation(pages)
with st.sidebar:
    st.caption("AdvRec Lab: adversarially poisoned product images vs visual recommenders. "
               "Anelli et al., *Assessing Perceptual and Recommendation Mutation of "
               "Adversarially-Poisoned Visual Recommenders*.")
nav.run()
