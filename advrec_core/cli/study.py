"""`study`: list studies, export their answers and analysis, make personal links;
`serve-study`: the study server, failing closed."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import AdvRecError

DB_HELP = "SQLAlchemy URL (default: $ADVREC_STUDY_DB or studydata/study.sqlite)"


def register(sub) -> None:
    sy = sub.add_parser("study", help="perceptibility studies: list; export answers and the "
                                      "analysis (CSV / JSON); invite: personal links")
    sy.add_argument("action", choices=["list", "export", "invite"])
    sy.add_argument("study", nargs="?", type=int, help="export, invite: the study id")
    sy.add_argument("--n", type=int, default=10, help="invite: how many personal links")
    sy.add_argument("--base", default="", help="invite: the study server's address, e.g. "
                                               "https://study.example.org")
    sy.add_argument("--out", default="study_export", help="export folder")
    sy.add_argument("--db", help=DB_HELP)
    sy.add_argument("--keep-failing", action="store_true",
                    help="keep annotators who failed catch trials in the summary")
    sy.set_defaults(func=study)

    ss = sub.add_parser("serve-study", help="the study server: participants' pages and the "
                                            "admin app, in study mode (needs "
                                            "ADVREC_ADMIN_PASSWORD and ADVREC_STUDY_SECRET)")
    ss.add_argument("--host", default="127.0.0.1", help="address to listen on (behind a "
                                                         "reverse proxy: keep 127.0.0.1)")
    ss.add_argument("--port", type=int, default=8501)
    ss.add_argument("--db", help=DB_HELP)
    ss.set_defaults(func=serve_study)


def study(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..cache import atomic_write_text
    from ..study import all_studies, analysis, answers_frame, database_url, session_factory

    db = session_factory(args.db)
    studies = all_studies(db)
    print(f"database     {database_url(args.db).split('@')[-1]}")
    if args.action == "list":
        print(studies.to_string(index=False) if len(studies) else "no studies")
        return 0
    if args.study is None or args.study not in set(studies["id"]):
        raise AdvRecError(f"{args.action} needs a study id; known: "
                          f"{sorted(studies['id']) or 'none'}")
    if args.action == "invite":  # rows appear only when a link's holder consents
        from ..study import invitation_tokens

        for token in invitation_tokens(db, args.study, args.n):
            print(f"{args.base.rstrip('/')}/study/p/{token}")
        return 0
    answers = answers_frame(db, args.study)
    from ..study import StudyConfig, get_study

    cfg = StudyConfig.of(get_study(db, args.study))
    summary = analysis.summary(answers, exclude_failing=not args.keep_failing,
                               min_rt_ms=cfg.min_rt_ms,
                               exposure_ms=cfg.exposure_ms if cfg.presentation == "timed"
                               else None) if len(answers) else {"answers": 0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "answers.csv", answers.to_csv(index=False))
    atomic_write_text(out / "answers.json", answers.to_json(orient="records", date_format="iso"))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
    det = pd.DataFrame(summary.get("detection", []))
    atomic_write_text(out / "detection.csv", det.to_csv(index=False))
    print(f"answers      {len(answers)} from {answers['pid'].nunique() if len(answers) else 0} "
          f"annotators -> {out}/answers.csv, answers.json, summary.json, detection.csv")
    if len(det):
        print(det.round(4).to_string(index=False))
    return 0


def serve_study(args: argparse.Namespace) -> int:
    """Check the study server's settings, then become it (Streamlit running study_app.py
    with the study server's options): fails closed, in one line per problem."""
    from ..cache import PROJECT_ROOT
    from ..study.access import MODE_ENV, server_problems
    from ..study.db import ENV_URL

    problems = server_problems()
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if problems:
        return 2
    env = {**os.environ, MODE_ENV: "study", **({ENV_URL: args.db} if args.db else {})}
    argv = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "study_app.py"),
            "--server.address", args.host, "--server.port", str(args.port),
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--server.maxUploadSize", "1",
            "--client.toolbarMode", "minimal", "--client.showErrorDetails", "none",
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false"]
    print(f"study server on http://{args.host}:{args.port} (participants: /study?study=ID)",
          flush=True)
    os.chdir(PROJECT_ROOT)
    os.execve(sys.executable, argv, env)
    return 0  # not reached
