"""A study's answers as one table (the analysis's and the exports' input)."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from ..metrics.registry import IMAGE_METRICS
from .db import Annotator, Answer, Assignment, Trial

COLUMNS = ["pid", "trial_id", "kind", "cell", "item", "identical", "modified_left", "response",
           "correct", "confidence", "rt_ms", "rt_source", "exposure_ms", "frames", "frame_ms",
           "created_at"]


def answers_frame(db: sessionmaker, study_id: int) -> pd.DataFrame:
    """Every answer of a study with its trial and annotator (one row per answer): the
    reaction time and, for timed trials, the exposure as measured in the participant's
    browser (`rt_source` "client"; empty in rows stored before it was), then the trial's
    image metrics."""
    q = (select(Annotator.pid, Answer.trial_id, Trial.kind, Trial.cell, Trial.item,
                Trial.identical, Assignment.modified_left, Answer.response, Answer.correct,
                Answer.confidence, Answer.rt_ms, Answer.rt_source, Answer.exposure_ms,
                Assignment.frames, Assignment.frame_ms, Answer.created_at, Trial.metrics)
         .join(Annotator, Annotator.id == Answer.annotator_id)
         .join(Trial, Trial.id == Answer.trial_id)
         .join(Assignment, (Assignment.annotator_id == Answer.annotator_id)
               & (Assignment.trial_id == Answer.trial_id))
         .where(Trial.study_id == study_id).order_by(Answer.id))
    with db.begin() as s:
        rows = s.execute(q).all()
    df = pd.DataFrame(rows, columns=[*COLUMNS, "metrics"])
    metrics = pd.json_normalize(df.pop("metrics").tolist()) if len(df) else pd.DataFrame()
    return pd.concat([df, metrics.reindex(columns=[m for m in IMAGE_METRICS.available()
                                                   if m in metrics])], axis=1)
