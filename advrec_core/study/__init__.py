"""The human perceptibility study: design (trials, assignment), storage (SQLAlchemy over
SQLite or PostgreSQL) and analysis. Never imports streamlit."""
from .db import database_url, get_engine, session_factory
from .design import (
                     Stimulus,
                     StudyConfig,
                     all_studies,
                     answers_frame,
                     catch_image,
                     claim_session,
                     complete,
                     consent,
                     create_study,
                     get_annotator,
                     get_study,
                     next_trial,
                     open_studies,
                     progress,
                     set_open,
                     stimuli_from_attack,
                     stimuli_from_attacks,
                     submit_answer,
                     undo_last,
                     verify_completion,
)

__all__ = ["StudyConfig", "Stimulus", "all_studies", "answers_frame", "catch_image", "consent",
           "create_study", "database_url", "get_annotator", "get_engine", "next_trial",
           "open_studies", "progress", "session_factory", "set_open", "stimuli_from_attack",
           "stimuli_from_attacks",
           "submit_answer", "undo_last", "claim_session", "complete", "verify_completion",
           "get_study"]
