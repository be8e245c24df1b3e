"""Storage of the perceptibility study: SQLAlchemy models over SQLite (default, WAL mode) or
any SQLAlchemy URL (PostgreSQL for a multi-annotator deployment).

    ADVREC_STUDY_DB=postgresql+psycopg://user:pw@host/db  streamlit run app.py

Tables: `schema_version` (migrations), `studies`, `trials` (stimuli stored as PNG bytes, so a
study survives a cleared cache and a database server serves every annotator), `annotators`
(one per participant id), `assignments` (each annotator's randomised trial order) and
`answers`, unique per (annotator, trial): a resubmission is a no-op, never a second row.

Schema versions: 2 added studies.secret and the annotators' platform, session, last_seen and
completed_at; 3 the annotator's random `uid` (its personal link), each assignment's render
nonce and measured exposure, and each answer's exposure and reaction-time source (`client`:
measured in the participant's browser; NULL in older rows: the server's clock)."""
from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

SCHEMA_VERSION = 3
DEFAULT_DB = Path(__file__).resolve().parents[2] / "studydata" / "study.sqlite"
ENV_URL = "ADVREC_STUDY_DB"


def now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict] = mapped_column(JSON)  # StudyConfig as a dict
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    secret: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the study's key
    # (access.new_secret, made with the study): completion codes, personal links and the
    # randomisation; never shown


class Trial(Base):
    __tablename__ = "trials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # 2afc | samediff | catch
    cell: Mapped[str] = mapped_column(String(120))  # e.g. "pgd-8/traditional"; "catch"
    item: Mapped[str] = mapped_column(String(200))  # catalogue item id
    identical: Mapped[bool] = mapped_column(Boolean, default=False)  # samediff: no change
    image_a: Mapped[bytes] = mapped_column(LargeBinary)  # PNG: the clean image
    image_b: Mapped[bytes] = mapped_column(LargeBinary)  # PNG: modified (or clean if identical)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)  # LPIPS, SSIM, PSNR, L2, FL...


class Annotator(Base):
    __tablename__ = "annotators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    pid: Mapped[str] = mapped_column(String(64))  # the link's participant id (a platform's,
    # or the uid for a participant who enrolled from the study's open link)
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True)  # random; names the
    # personal link (access.participant_token)
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    platform: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # PROLIFIC_PID, ...
    session: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the recruitment
    # platform's SESSION_ID this pid is bound to (the first that came with it)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (UniqueConstraint("study_id", "pid", name="uq_annotator_pid"),
                      Index("uq_annotator_uid", "study_id", "uid", unique=True))


class Assignment(Base):
    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"), index=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0-based order for this annotator
    modified_left: Mapped[bool] = mapped_column(Boolean)  # where image_b is shown
    render: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the opaque id of
    # its current showing (new per showing; what the participant's answer names)
    exposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # when its images were first sent (timed trials are sent once)
    exposure_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # as measured in
    # the browser: onset to removal, display frames
    frames: Mapped[int | None] = mapped_column(Integer, nullable=True)  # frames it was shown
    frame_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # the display's frame
    __table_args__ = (UniqueConstraint("annotator_id", "trial_id", name="uq_assignment"),
                      UniqueConstraint("annotator_id", "position", name="uq_position"))


class Answer(Base):
    __tablename__ = "answers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"), index=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id"), index=True)
    response: Mapped[str] = mapped_column(String(16))  # left | right | same | different
    correct: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1..5
    rt_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # reaction time: onset
    # of the images to the key press, in the browser
    rt_source: Mapped[str | None] = mapped_column(String(8), nullable=True)  # "client"; NULL:
    # a row of schema < 3, timed on the server between reruns
    exposure_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # measured
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    __table_args__ = (UniqueConstraint("annotator_id", "trial_id", name="uq_answer"),)


def database_url(url: str | None = None) -> str:
    """`url`, else $ADVREC_STUDY_DB, else the SQLite file studydata/study.sqlite."""
    return url or os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_DB}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cur.execute("PRAGMA busy_timeout=30000")  # wait for the write lock instead of failing
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    # take the write lock when the transaction starts: no read-then-upgrade deadlocks
    conn.exec_driver_sql("BEGIN IMMEDIATE")


_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process, schema created (and version checked) on first use."""
    url = database_url(url)
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = _create(url)
        return engine


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is replaced by explicit BEGIN IMMEDIATE
        event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin_immediate)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine


def migrate(engine: Engine) -> int:
    """Create missing tables and record the schema version; refuse a newer database."""
    Base.metadata.create_all(engine)
    with Session(engine) as s, s.begin():
        current = s.scalar(select(func.max(SchemaVersion.version)))
        if current is None:
            s.add(SchemaVersion(version=SCHEMA_VERSION))
            current = SCHEMA_VERSION
        elif current > SCHEMA_VERSION:
            raise RuntimeError(f"the study database has schema version {current}; this code "
                               f"knows up to {SCHEMA_VERSION}: update AdvRec Lab")
        if current < 2:  # columns added in 2; existing rows keep NULL there
            _add_missing_columns(s, [Study.__table__, Annotator.__table__])
            s.add(SchemaVersion(version=2))
            current = 2
        if current < 3:  # 3: personal links, render nonces, measured exposure and RT
            _add_missing_columns(s, [Annotator.__table__, Assignment.__table__,
                                     Answer.__table__])
            for index in Annotator.__table__.indexes:  # create_all skips existing tables
                index.create(s.connection(), checkfirst=True)
            s.add(SchemaVersion(version=3))
            current = 3
        _backfill_keys(s)
    return current


def _backfill_keys(s: Session) -> None:
    """Every study has its secret and every annotator a uid (rows of older schemas)."""
    import secrets

    for study in s.scalars(select(Study).where(Study.secret.is_(None))):
        study.secret = secrets.token_hex(32)
    for ann in s.scalars(select(Annotator).where(Annotator.uid.is_(None))):
        ann.uid = secrets.token_hex(8)


def _add_missing_columns(s: Session, tables) -> None:
    """ALTER TABLE ... ADD COLUMN for every nullable column a table lacks (SQLite, PostgreSQL)."""
    from sqlalchemy import inspect, text

    conn = s.connection()
    for table in tables:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for col in table.columns:
            if col.name not in have:
                kind = col.type.compile(conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {kind}'))


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def dispose(url: str | None = None) -> None:
    """Close and forget the engine for `url` (tests)."""
    with _LOCK:
        engine = _ENGINES.pop(database_url(url), None)
    if engine is not None:
        engine.dispose()
