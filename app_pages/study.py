"""Perceptibility study, the participant's side: consent, instructions, one trial at a time
(keyboard answers, undo, progress), resumable from the participant id in the URL (`pid`, or a
recruitment platform's `PROLIFIC_PID`); the completion code once every answer is stored."""
import time
import uuid

import streamlit as st

from advrec_core.errors import AdvRecError
from advrec_core.study import (
    StudyConfig,
    complete,
    consent,
    get_annotator,
    next_trial,
    open_studies,
    progress,
    submit_answer,
    undo_last,
)
from advrec_core.study.access import platform_params
from ui import hold_participant, study_db
from ui.compare import KIND_TEXT, pair_html

db = study_db()
studies = open_studies(db)
if not studies:
    st.title("Image study")
    st.info("No study is open right now. Thank you for your interest.")
    st.stop()
wanted = st.query_params.get("study")
study = next((s for s in studies if str(s.id) == wanted), studies[0])
config = StudyConfig.of(study)
platform = platform_params(st.query_params.to_dict())  # PROLIFIC_PID, STUDY_ID, SESSION_ID
pid = st.query_params.get("pid") or platform.get("PROLIFIC_PID")

st.title("Image study")
if not pid:  # consent and instructions come first
    timed = (f"* The images disappear after {config.exposure_ms} ms: look carefully."
             if config.presentation == "timed" else "")
    st.markdown(f"""
You will see **{config.trials_per_annotator} pairs of product photos**, one pair at a time.
In some pairs one photo was changed by a computer in a way that may be hard to see. Answer
as well as you can; when unsure, guess. It takes about
{max(1, round(config.trials_per_annotator * 5 / 60))} minutes.

* Answer with the buttons or the keyboard: **←** / **→** for "which image", **S** / **D**
  for same / different, **U** to undo your last answer.
{timed}
* We store your answers, how long each took, and a random participant id; nothing else.
  You can stop at any time; the link with your participant id brings you back where you
  stopped.
""")
    agreed = st.checkbox("I have read the above and agree to take part.", key="study_consent")
    if st.button("Start", type="primary", disabled=not agreed, key="study_start"):
        new = uuid.uuid4().hex[:12]
        consent(db, get_annotator(db, study, new))
        st.query_params["pid"] = new
        st.query_params["study"] = str(study.id)
        st.rerun()
    st.stop()

try:
    annotator = get_annotator(db, study, pid, platform=platform)
except AdvRecError as e:
    st.error(str(e))
    st.stop()
hold_participant(db, annotator)  # one browser session per participant id
if annotator.consented_at is None:  # a participant id from a recruitment link
    st.markdown("Please confirm that you agree to take part (see the study description).")
    if st.checkbox("I agree to take part.", key="study_consent_pid"):
        consent(db, annotator)
        st.rerun()
    st.stop()

trial = next_trial(db, annotator)
answered, total = progress(db, annotator)
st.progress(answered / max(total, 1), text=f"{answered} of {total} answered")


def _undo() -> None:
    if st.session_state.pop("pending", None):  # an answer waiting for its confidence
        return
    redo = undo_last(db, annotator.id)
    st.session_state.pop(f"shown_{redo}", None)  # its reaction time starts afresh


if trial is None:  # every answer stored: the code (answers are final from now on)
    code = complete(db, annotator)
    if config.platform_code:
        st.success(f"All done, thank you! Your completion code is **{config.platform_code}**"
                   f" (your participant code: {code}).")
    else:
        st.success(f"All done, thank you! Your completion code is **{code}**.")
    if config.platform_redirect:
        st.link_button("Return to the recruitment site", config.platform_redirect,
                       type="primary")
    st.stop()

text, choices = KIND_TEXT[trial.kind]
shown_key = f"shown_{trial.trial_id}"
st.session_state.setdefault(shown_key, time.time())  # when this trial was first drawn
pending = st.session_state.get("pending")
if pending and pending["trial"] != trial.trial_id:
    pending = st.session_state["pending"] = None


def _answer(response: str, trial_id: int) -> None:
    rt = (time.time() - st.session_state[f"shown_{trial_id}"]) * 1000  # server-side clock
    if config.confidence:
        st.session_state["pending"] = {"trial": trial_id, "response": response, "rt": rt}
    else:
        submit_answer(db, annotator.id, trial_id, response, rt_ms=rt)


def _confident(level: int) -> None:
    p = st.session_state.pop("pending")
    submit_answer(db, annotator.id, p["trial"], p["response"], confidence=level, rt_ms=p["rt"])


if pending:  # second step: how sure (images hidden)
    st.markdown("**How sure are you?** 1 = guessing, 5 = certain (keys 1-5)")
    cols = st.columns(5)
    for level in range(1, 6):
        cols[level - 1].button(str(level), key=f"conf_{level}", on_click=_confident,
                               args=(level,), shortcut=str(level), use_container_width=True)
else:
    st.markdown(text)
    st.html(pair_html(trial.left_png, trial.right_png, config.zoom,
                      config.exposure_ms if config.presentation == "timed" else None,
                      labels=("Left", "Right"), uid=f"t{trial.trial_id}"))
    cols = st.columns(len(choices))
    for col, (label, response, key) in zip(cols, choices):
        col.button(label,  # Streamlit shows the shortcut key on the button
                   key=f"answer_{response}", on_click=_answer, args=(response, trial.trial_id),
                   shortcut=key,
                   type="primary", use_container_width=True)
st.button("Undo last answer", on_click=_undo, key="study_undo", shortcut="U",
          disabled=answered == 0 and not pending)
st.caption(f"Participant {pid} · trial {trial.position + 1} of {total}. "
           f"Bookmark this page to continue later.")
