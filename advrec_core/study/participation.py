"""The participant's side of a study: links, consent, the trial to show, the answers.

A participant is who their link says:

* The study's open link (`/study?study=ID`, with a platform's participant id or not) leads to
  the consent page, which creates nothing. Consenting creates the annotator, with a random
  `uid`, and gives its personal link, whose token is an HMAC of (study, uid) under the
  study's key (`access.participant_token`): only its holder answers, undoes, or sees the
  completion code.
* A platform's id is bound at consent. Prolific's PROLIFIC_PID is bound to the first
  SESSION_ID that came with it: the same session resumes, another is refused. Any other
  `pid` is bound to its first consent: a second arrival without the personal link is
  refused, and the owner goes on undisturbed.
* Invitations (`invitation_tokens`) are personal links made ahead; their annotator is created
  when their holder consents.

What the browser gets (`view`) names the current showing by a random render id, never a
trial id or kind; 2AFC and catch trials read the same. The two images come as one PNG of
both side by side, stored uncompressed (`pair_png`), so its length depends only on the
images' size. A timed trial's images are sent once: undo or a reload asks again without
them."""
from __future__ import annotations

import io
import math
import secrets
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import AdvRecError
from .access import (
    code_ok,
    completion_code,
    parse_token,
    participant_token,
    platform_params,
    token_ok,
    valid_id,
)
from .db import Annotator, Answer, Assignment, Study, Trial, now
from .design import StudyConfig, assign

RESPONSES = {"2afc": ("left", "right"), "catch": ("left", "right"),
             "samediff": ("same", "different")}
QUESTION = {"2afc": "which", "catch": "which", "samediff": "samediff"}  # what the browser is
# told of a trial's kind: catch trials read as 2AFC


@dataclass(frozen=True)
class Link:
    """What a participant's link says, checked: the study and, from a recruitment platform,
    the participant id (`pid` or Prolific's PROLIFIC_PID) and its parameters."""

    study_id: int
    pid: str | None = None
    platform: dict[str, str] = field(default_factory=dict)  # PROLIFIC_PID, STUDY_ID, SESSION_ID

    @property
    def session(self) -> str | None:
        return self.platform.get("SESSION_ID")


def parse_link(query: Mapping[str, str]) -> Link:
    """A participant link's query parameters -> Link, or one line saying what is wrong."""
    study = str(query.get("study", "")).strip()
    if not study.isdigit() or len(study) > 9:
        raise AdvRecError("this link names no study: it should end in ?study=<number>")
    platform = platform_params(query)
    for name in ("pid", "PROLIFIC_PID", "STUDY_ID", "SESSION_ID"):
        value = str(query.get(name, "")).strip()
        if value and not valid_id(value):
            raise AdvRecError(f"the link's {name} must be 1-64 letters, digits, '-', '_' or '.'")
    pid, prolific = str(query.get("pid", "")).strip(), platform.get("PROLIFIC_PID")
    if pid and prolific and pid != prolific:
        raise AdvRecError("this link names two participants (pid and PROLIFIC_PID differ)")
    return Link(int(study), pid or prolific or None, platform)


def open_study(db: sessionmaker, study_id: int) -> Study:
    """The study a participant link names, if it is open; one line otherwise (a closed and
    an unknown id read the same, and no other study is ever offered instead)."""
    with db.begin() as s:
        study = s.get(Study, study_id)
    if study is None or not study.is_open:
        raise AdvRecError(f"study {study_id} is not open")
    return study


def _find(s: Session, study_id: int, pid: str) -> Annotator | None:
    return s.scalar(select(Annotator).where(Annotator.study_id == study_id, Annotator.pid == pid))


def _bound_elsewhere(found: Annotator, link: Link) -> AdvRecError | None:
    """Why `link` may not resume `found` (None: it may: the same Prolific session)."""
    if link.session and found.session == link.session:
        return None
    return AdvRecError("this participant id has already started this study: continue with "
                       "the personal link you were given after consenting")


def arrive(db: sessionmaker, link: Link) -> str | None:
    """What an open link leads to before consent: the personal token of a participant it
    may resume (the same Prolific session), None for the consent page; refused in one line
    (a closed study, a participant id already bound elsewhere). Creates nothing."""
    study = open_study(db, link.study_id)
    if link.pid is None:
        return None
    with db.begin() as s:
        found = _find(s, study.id, link.pid)
    if found is None:
        return None
    problem = _bound_elsewhere(found, link)
    if problem is not None:
        raise problem
    return participant_token(study.secret, study.id, found.uid)


def _create(db: sessionmaker, study: Study, pid: str | None, uid: str | None = None,
            platform: dict | None = None, session: str | None = None) -> Annotator:
    """A consenting annotator with its assignments (IntegrityError if `pid` exists)."""
    uid = uid or secrets.token_hex(8)
    with db.begin() as s:
        ann = Annotator(study_id=study.id, pid=pid or uid, uid=uid, platform=platform or None,
                        session=session, consented_at=now())
        s.add(ann)
        s.flush()
        assign(s, s.get(Study, study.id), ann)
        return ann


def enrol(db: sessionmaker, link: Link) -> str:
    """Consent given on an open link: the new annotator's personal token (or, for the same
    Prolific session, the existing one's); refused in one line like `arrive`."""
    study = open_study(db, link.study_id)
    try:
        ann = _create(db, study, link.pid, platform=link.platform or None, session=link.session)
    except IntegrityError:  # the pid consented already (or just now, in another tab)
        with db.begin() as s:
            found = _find(s, study.id, link.pid)
        problem = _bound_elsewhere(found, link)
        if problem is not None:
            raise problem from None
        ann = found
    return participant_token(study.secret, study.id, ann.uid)


def resolve(db: sessionmaker, token: str) -> tuple[Study, Annotator | None]:
    """(study, its annotator) of a personal token; the annotator is None for an invitation
    not yet accepted. A forged, malformed or closed study's token: one line."""
    parsed = parse_token(token)
    if parsed is None:
        raise AdvRecError("this link is not valid")
    study_id, uid = parsed
    with db.begin() as s:
        study = s.get(Study, study_id)
        if study is None or study.secret is None or not token_ok(study.secret, token):
            raise AdvRecError("this link is not valid")
        ann = s.scalar(select(Annotator).where(Annotator.study_id == study_id,
                                               Annotator.uid == uid))
    if ann is None and not study.is_open:
        raise AdvRecError(f"study {study_id} is not open")
    return study, ann


def accept_invitation(db: sessionmaker, token: str) -> Annotator:
    """Consent given on an invitation: its annotator (created now, or already)."""
    study, ann = resolve(db, token)
    if ann is not None:
        return ann
    uid = parse_token(token)[1]
    try:
        return _create(db, study, None, uid=uid)
    except IntegrityError:  # accepted meanwhile in another tab
        return resolve(db, token)[1]


def invitation_tokens(db: sessionmaker, study_id: int, n: int) -> list[str]:
    """`n` personal tokens for participants not enrolled yet (their rows appear at consent)."""
    if not 1 <= n <= 10_000:
        raise AdvRecError(f"make 1-10000 invitations at a time, not {n}")
    with db.begin() as s:
        study = s.get(Study, study_id)
    if study is None:
        raise AdvRecError(f"no study with id {study_id}")
    return [participant_token(study.secret, study.id, secrets.token_hex(8)) for _ in range(n)]


def personal_token(db: sessionmaker, study_id: int, pid: str) -> str | None:
    """The personal token of participant `pid` (for an admin re-sending a lost link)."""
    with db.begin() as s:
        study = s.get(Study, study_id)
        found = _find(s, study_id, pid.strip()) if study is not None else None
    return None if found is None else participant_token(study.secret, study.id, found.uid)


def get_annotator(db: sessionmaker, study: Study, pid: str, create: bool = True,
                  platform: dict[str, str] | None = None) -> Annotator | None:
    """The annotator with participant id `pid` in `study`, created the first time (consent
    is given with it) with its assignments. Two callers racing to create one pid end with
    one annotator."""
    pid = pid.strip()
    if not valid_id(pid):
        raise AdvRecError("participant id must be 1-64 letters, digits, '-', '_' or '.'")
    with db.begin() as s:
        found = _find(s, study.id, pid)
    if found is not None or not create:
        return found
    try:
        return _create(db, study, pid, platform=platform,
                       session=(platform or {}).get("SESSION_ID"))
    except IntegrityError:
        with db.begin() as s:
            return _find(s, study.id, pid)


def consent(db: sessionmaker, annotator: Annotator) -> None:
    with db.begin() as s:
        a = s.get(Annotator, annotator.id)
        if a.consented_at is None:
            a.consented_at = now()
        annotator.consented_at = a.consented_at


def progress(db: sessionmaker, annotator: Annotator) -> tuple[int, int]:
    """(answered, total) trials of this annotator."""
    with db.begin() as s:
        return _progress(s, annotator.id)


def _progress(s: Session, annotator_id: int) -> tuple[int, int]:
    total = s.scalar(select(func.count()).select_from(Assignment)
                     .where(Assignment.annotator_id == annotator_id))
    answered = s.scalar(select(func.count()).select_from(Answer)
                        .where(Answer.annotator_id == annotator_id))
    return answered, total


def _current(s: Session, annotator_id: int):
    """(Assignment, Trial) of the first assigned trial without an answer, or None."""
    answered_ids = select(Answer.trial_id).where(Answer.annotator_id == annotator_id)
    return s.execute(select(Assignment, Trial).join(Trial, Trial.id == Assignment.trial_id)
                     .where(Assignment.annotator_id == annotator_id,
                            Assignment.trial_id.not_in(answered_ids))
                     .order_by(Assignment.position).limit(1)).first()


@dataclass
class Presented:
    """The trial to show now (the engine's view, with ids: never sent to a browser)."""
    assignment_id: int
    trial_id: int
    kind: str
    position: int  # 0-based
    total: int
    answered: int
    left_png: bytes
    right_png: bytes


def next_trial(db: sessionmaker, annotator: Annotator) -> Presented | None:
    """The first assigned trial without an answer (None when all are answered)."""
    with db.begin() as s:
        row = _current(s, annotator.id)
        if row is None:
            return None
        a, t = row
        answered, total = _progress(s, annotator.id)
    left, right = (t.image_b, t.image_a) if a.modified_left else (t.image_a, t.image_b)
    return Presented(a.id, t.id, t.kind, a.position, total, answered, left, right)


def pair_png(left_png: bytes, right_png: bytes) -> bytes:
    """The two images of a trial side by side, (H, 2W, 3), as a PNG stored without
    compression: lossless, and its length depends only on H and W (a compressed PNG's
    length tells which half holds noise, and whether the halves are identical)."""
    left, right = (np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in (left_png,
                                                                                   right_png))
    if left.shape != right.shape:
        raise AdvRecError(f"a trial's two images differ in size: {left.shape} vs {right.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([left, right], axis=1)).save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def view(db: sessionmaker, study: Study, annotator: Annotator | None) -> dict:
    """What the participant's browser is told now (JSON-ready): consent to give, the
    current showing (its random render id, the question's kind, whether its images are
    sent), progress, or the completion code. Never a trial id, a trial's kind beyond its
    question, or which side is which."""
    cfg = StudyConfig.of(study)
    out = {"presentation": cfg.presentation, "exposure_ms": cfg.exposure_ms, "zoom": cfg.zoom,
           "confidence": cfg.confidence, "trials": cfg.trials_per_annotator}
    if annotator is None:
        return {**out, "consent": True}
    code = complete(db, annotator)
    with db.begin() as s:
        answered, total = _progress(s, annotator.id)
        out.update(answered=answered, total=total, consent=False)
        row = _current(s, annotator.id)
        if row is None:
            return {**out, "done": True, "code": code, "platform_code": cfg.platform_code or None,
                    "redirect": cfg.platform_redirect or None}
        a, t = row
        assignment = s.get(Assignment, a.id)
        if assignment.render is None:  # one random id per showing, kept across reloads and
            assignment.render = secrets.token_hex(16)  # resubmissions
        images = cfg.presentation != "timed" or assignment.exposed_at is None
        w, h = Image.open(io.BytesIO(t.image_a)).size
        return {**out, "done": False, "trial": {
            "render": assignment.render, "question": QUESTION[t.kind], "images": images,
            "width": w, "height": h}}


def _showing(s: Session, annotator_id: int, render: str):
    """(Assignment, Trial) of this annotator's showing `render`, or None."""
    if not (isinstance(render, str) and len(render) == 32):
        return None
    return s.execute(select(Assignment, Trial).join(Trial, Trial.id == Assignment.trial_id)
                     .where(Assignment.annotator_id == annotator_id,
                            Assignment.render == render)).first()


def showing_png(db: sessionmaker, study: Study, annotator: Annotator, render: str) -> bytes | None:
    """The pair PNG of the showing `render` (left and right as assigned); None when there is
    no such showing, or it is a timed trial whose images were sent already."""
    timed = StudyConfig.of(study).presentation == "timed"
    with db.begin() as s:
        row = _showing(s, annotator.id, render)
        if row is None:
            return None
        a, t = row
        assignment = s.get(Assignment, a.id, with_for_update=True)
        if timed and assignment.exposed_at is not None:
            return None
        if assignment.exposed_at is None:
            assignment.exposed_at = now()
        left, right = (t.image_b, t.image_a) if a.modified_left else (t.image_a, t.image_b)
    return pair_png(left, right)


def _is_correct(kind: str, response: str, modified_left: bool, identical: bool) -> bool:
    if response not in RESPONSES[kind]:
        options = " or ".join(repr(r) for r in RESPONSES[kind])
        raise AdvRecError(f"this trial takes {options}, not {response!r}")
    if kind == "samediff":
        return (response == "same") == identical
    return (response == "left") == modified_left


def _measure(value, name: str, hi: float) -> float | None:
    """A finite number in [0, hi] from the browser, or None; one line otherwise."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AdvRecError(f"{name} must be a number") from None
    if not (math.isfinite(x) and 0 <= x <= hi):
        raise AdvRecError(f"{name} must be between 0 and {hi:g}")
    return x


def _insert_answer(s: Session, values: dict) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True if stored, False if it existed already."""
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        mod = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
        stmt = mod.insert(Answer).values(**values).on_conflict_do_nothing(
            index_elements=["annotator_id", "trial_id"]).returning(Answer.id)
        return s.execute(stmt).first() is not None  # (rowcount is -1 on psycopg)
    s.add(Answer(**values))  # other databases: the unique constraint decides
    return True


def submit_answer(db: sessionmaker, annotator_id: int, trial_id: int, response: str,
                  confidence: int | None = None, rt_ms: float | None = None,
                  exposure_ms: float | None = None, rt_source: str | None = None) -> bool:
    """Store one answer; True if stored, False if this (annotator, trial) had one already
    (a double click, a resubmitted request): the database keeps exactly one."""
    if confidence is not None and not 1 <= int(confidence) <= 5:
        raise AdvRecError(f"confidence must be 1-5, not {confidence}")
    try:
        with db.begin() as s:
            row = s.execute(select(Assignment.modified_left, Trial.kind, Trial.identical)
                            .join(Trial, Trial.id == Assignment.trial_id)
                            .where(Assignment.annotator_id == annotator_id,
                                   Assignment.trial_id == trial_id)).first()
            if row is None:
                raise AdvRecError(f"trial {trial_id} is not assigned to annotator {annotator_id}")
            correct = _is_correct(row.kind, response, row.modified_left, row.identical)
            return _insert_answer(s, dict(
                annotator_id=annotator_id, trial_id=trial_id, response=response,
                correct=correct, confidence=confidence, rt_ms=rt_ms, exposure_ms=exposure_ms,
                rt_source=rt_source, created_at=now()))
    except IntegrityError:
        return False


def answer(db: sessionmaker, study: Study, annotator: Annotator, render: str, response: str,
           confidence=None, rt_ms=None, exposure_ms=None, frames=None, frame_ms=None) -> bool:
    """The browser's answer to showing `render`, with what it measured: the reaction time
    from the images' onset, and for a timed trial the exposure (onset to removal), in
    frames of `frame_ms`. True if stored; False for a showing already answered (a
    resubmission). A stale or unknown render id, or a malformed value: one line."""
    cfg = StudyConfig.of(study)
    rt_ms = _measure(rt_ms, "rt_ms", 3.6e6)
    exposure_ms = _measure(exposure_ms, "exposure_ms", 6e5)
    frame_ms = _measure(frame_ms, "frame_ms", 1e3)
    frames = None if frames is None else int(_measure(frames, "frames", 1e5))
    if cfg.confidence and confidence is None:
        raise AdvRecError("this study asks for a confidence (1-5) with each answer")
    if confidence is not None:
        if not isinstance(confidence, int) or not 1 <= confidence <= 5:
            raise AdvRecError("confidence must be an integer 1-5")
    with db.begin() as s:
        row = _showing(s, annotator.id, render)
        if row is None:
            raise AdvRecError("this trial is no longer shown: reload the page")
        a, _ = row
        assignment = s.get(Assignment, a.id)
        if cfg.presentation == "timed" and assignment.exposure_ms is None and exposure_ms:
            assignment.exposure_ms, assignment.frames = exposure_ms, frames
            assignment.frame_ms = frame_ms
        trial_id, exposure_ms = a.trial_id, assignment.exposure_ms
    return submit_answer(db, annotator.id, trial_id, response, confidence, rt_ms,
                         exposure_ms=exposure_ms, rt_source="client")


def undo_last(db: sessionmaker, annotator_id: int) -> int | None:
    """Delete the annotator's most recent answer; returns its trial id (None if none, or
    once the annotator has been given the completion code: then the answers are final)."""
    with db.begin() as s:
        if s.get(Annotator, annotator_id).completed_at is not None:
            return None
        last = s.scalar(select(Answer).where(Answer.annotator_id == annotator_id)
                        .order_by(Answer.created_at.desc(), Answer.id.desc()).limit(1))
        if last is None:
            return None
        s.execute(delete(Answer).where(Answer.id == last.id))
        return last.trial_id


def complete(db: sessionmaker, annotator: Annotator) -> str | None:
    """The annotator's completion code once every assigned trial has its answer stored (None
    before): HMAC of (study, pid) under the study's key. Records when the code was first
    given; from then on the answers are final."""
    with db.begin() as s:
        done, total = _progress(s, annotator.id)
        if done < total:
            return None
        a = s.get(Annotator, annotator.id)
        study = s.get(Study, a.study_id)
        if a.completed_at is None:
            a.completed_at = now()
        return completion_code(study.secret, study.id, a.pid)


def verify_completion(db: sessionmaker, study_id: int, pid: str, code: str) -> bool:
    """True when `code` is the completion code of participant `pid`, who has finished
    `study_id` (for paying out on a recruitment platform)."""
    with db.begin() as s:
        study = s.get(Study, study_id)
        a = s.scalar(select(Annotator).where(Annotator.study_id == study_id,
                                             Annotator.pid == pid.strip()))
        if study is None or a is None or a.completed_at is None or study.secret is None:
            return False
        return code_ok(study.secret, study_id, a.pid, code)
