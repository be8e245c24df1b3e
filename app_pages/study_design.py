"""Perceptibility study, the administrator's side: build a study from computed attack results,
open or close it, and hand out the participants' link. Password: $ADVREC_ADMIN_PASSWORD."""
from datetime import datetime

import streamlit as st

from advrec_core.errors import AdvRecError
from advrec_core.experiments.attack import computed_attacks
from advrec_core.study import (
    StudyConfig,
    all_studies,
    create_study,
    invitation_tokens,
    personal_token,
    set_open,
    stimuli_from_attacks,
    verify_completion,
)
from advrec_core.study.db import database_url
from ui.admin import require_admin, study_db
from ui.data import current_dataset

st.title("Study design")
require_admin()
db = study_db()
url = database_url()
st.caption(f"Database: `{url.split('@')[-1] if '@' in url else url}` (set ADVREC_STUDY_DB to "
           f"use PostgreSQL).")

if "admin_created" in st.session_state:
    st.success(st.session_state.pop("admin_created"))
st.subheader("Studies")
studies = all_studies(db)
if studies.empty:
    st.info("No study yet: build one below.")
else:
    st.dataframe(studies, hide_index=True, key="admin_studies")
    c = st.columns(3)
    sid = c[0].selectbox("Study", studies["id"], key="admin_sid", format_func=lambda i: (
        studies.set_index("id").loc[i, "name"]))
    is_open = bool(studies.set_index("id").loc[sid, "open"])
    if c[1].button("Close it" if is_open else "Open it", key="admin_toggle"):
        set_open(db, int(sid), not is_open)
        st.rerun()
    c[2].markdown(f"Participants' link on the study server (`advrec serve-study`): "
                  f"`/study?study={sid}`  \n(consenting gives each a personal link; Prolific: "
                  f"`/study?study={sid}&PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
                  f"&STUDY_ID={{{{%STUDY_ID%}}}}&SESSION_ID={{{{%SESSION_ID%}}}}`)")
    with st.expander("Personal links: invitations, or a participant's lost link"):
        c = st.columns(3)
        n = c[0].number_input("Invitations to make", 1, 10_000, 10, key="admin_invite_n")
        host = c[1].text_input("Study server address (optional)",
                               placeholder="https://study.example.org", key="admin_invite_host")
        if c[2].button("Make personal links", key="admin_invite"):
            links = [f"{host.rstrip('/')}/study/p/{t}"
                     for t in invitation_tokens(db, int(sid), int(n))]
            st.download_button("Download the links (CSV)", "link\n" + "\n".join(links) + "\n",
                               file_name=f"study-{sid}-links.csv", key="admin_invite_csv")
            st.caption(f"{len(links)} links; a participant's row appears when they consent.")
        lost = st.text_input("Participant id whose personal link was lost", key="admin_lost_pid")
        if lost:
            token = personal_token(db, int(sid), lost)
            st.code(f"{host.rstrip('/')}/study/p/{token}" if token else "no such participant",
                    language=None)
    with st.expander("Check a participant's completion code"):
        c = st.columns(2)
        who = c[0].text_input("Participant id", key="admin_check_pid")
        code = c[1].text_input("Code they sent", key="admin_check_code")
        if who and code:
            ok = verify_completion(db, int(sid), who, code)
            (st.success if ok else st.error)("Valid: finished this study." if ok else
                                             "Not valid for this participant and study.")

st.subheader("New study")
spec, ds = current_dataset()
found = computed_attacks(ds)
if not found:
    st.info("No attack results on this dataset yet: run attacks in the Attack Lab (or the "
            "Grid) first; every computed attack can become a study cell.")
    st.stop()


def describe(n: int) -> str:
    job, r = found[n]
    avg = r.summary["averages"]
    return (f"{job.label} · {job.source} → {job.target} · {len(r.items)} images · "
            f"SR {avg['SR']:.0%} · {job.extractor.arch} · "
            f"{datetime.fromtimestamp((r.folder / 'manifest.json').stat().st_mtime):%Y-%m-%d %H:%M}")


with st.form("admin_new"):
    name = st.text_input("Name", value=f"study-{datetime.now():%Y%m%d-%H%M}", key="admin_name")
    picked = st.multiselect("Attack results (one cell each)", range(len(found)),
                            format_func=describe, default=[0], key="admin_cells")
    c = st.columns(4)
    kinds = c[0].multiselect("Trial types", ["2afc", "samediff"], default=["2afc"],
                             key="admin_kinds", format_func={
                                 "2afc": "which was modified? (2AFC)",
                                 "samediff": "same / different"}.get)
    per_cell = c[1].number_input("Images per cell", 1, 500, 10, key="admin_per_cell")
    overlap = c[2].number_input("Judgments per trial (overlap)", 1, 50, 3, key="admin_overlap")
    per_ann = c[3].number_input("Trials per annotator", 2, 1000, 30, key="admin_per_ann")
    c = st.columns(4)
    catch = c[0].number_input("Catch trials per annotator", 0, 100, 3, key="admin_catch")
    identical = c[1].slider("Same/different: identical share", 0.0, 1.0, 0.5, 0.05,
                            key="admin_identical")
    presentation = c[2].radio("Presentation", ["unlimited", "timed"], key="admin_presentation",
                              horizontal=True)
    exposure = c[3].number_input("Exposure when timed (ms)", 100, 10000, 1000, step=100,
                                 key="admin_exposure")
    c = st.columns(4)
    zoom = c[0].number_input("Zoom (integer, nearest neighbour)", 1, 16, 4, key="admin_zoom")
    confidence = c[1].checkbox("Ask for confidence (1-5)", key="admin_confidence")
    seed = c[2].number_input("Seed", 0, 2**31 - 1, 0, key="admin_seed")
    min_rt = c[3].number_input("Flag answers faster than (ms)", 0, 5000, 300, step=50,
                               key="admin_min_rt")
    c = st.columns(2)
    platform_code = c[0].text_input("Recruitment platform's completion code (optional)",
                                    key="admin_platform_code")
    redirect = c[1].text_input("Completion URL (optional), e.g. https://app.prolific.com/"
                               "submissions/complete?cc=...", key="admin_redirect")
    create = st.form_submit_button("Create study", type="primary", key="admin_create")

if create:
    try:
        cfg = StudyConfig(tuple(kinds), int(per_cell), int(overlap), int(per_ann), int(catch),
                          float(identical), bool(confidence), presentation, int(exposure),
                          int(zoom), int(seed), int(min_rt), platform_code.strip(),
                          redirect.strip())
        with st.status("Building the study...") as status:
            stimuli = stimuli_from_attacks(ds, [found[n] for n in picked], int(per_cell),
                                           int(seed))
            study = create_study(db, name.strip(), cfg, stimuli)
            status.update(label=f"Study {study.name!r} created", state="complete")
        st.session_state["admin_created"] = (f"Created {study.name!r} with {len(stimuli)} "
                                             f"stimuli. Participants' link on the study "
                                             f"server: `/study?study={study.id}`")
        st.rerun()
    except AdvRecError as e:
        st.error(str(e))
