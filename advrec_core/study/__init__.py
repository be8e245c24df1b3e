"""The human perceptibility study: design (trials, assignment), participation (links,
consent, showings, answers), records (the answers' table), storage (SQLAlchemy over SQLite or
PostgreSQL), analysis and the participants' web endpoint (`web`). Never imports streamlit."""
from .db import database_url, get_engine, session_factory
from .design import (
    Stimulus,
    StudyConfig,
    all_studies,
    catch_image,
    create_study,
    get_study,
    open_studies,
    set_open,
    stimuli_from_attack,
    stimuli_from_attacks,
)
from .participation import (
    complete,
    consent,
    get_annotator,
    invitation_tokens,
    next_trial,
    personal_token,
    progress,
    submit_answer,
    undo_last,
    verify_completion,
)
from .records import answers_frame

__all__ = ["StudyConfig", "Stimulus", "all_studies", "answers_frame", "catch_image", "consent",
           "create_study", "database_url", "get_annotator", "get_engine", "invitation_tokens",
           "next_trial", "open_studies", "personal_token", "progress", "session_factory",
           "set_open", "stimuli_from_attack", "stimuli_from_attacks", "submit_answer",
           "undo_last", "complete", "verify_completion", "get_study"]
