"""The participants' endpoint over real HTTP (advrec_core.study.web on a local server), tried
as a participant and as an attacker would: nothing before consent, one line for a closed or
unknown study, a participant is who their personal link says, timed pairs sent once,
randomisation from the study's secret, one answer per showing, bad requests refused."""
import html
import re
import time

import numpy as np
import pytest
from helpers import Http, serve, stimuli
from sqlalchemy import func, select

from advrec_core.study import StudyConfig, answers_frame, create_study, session_factory
from advrec_core.study.access import completion_code, randomisation_seed
from advrec_core.study.db import Annotator, Assignment, Study, Trial, dispose
from advrec_core.study.participation import pair_png
from advrec_core.study.web import participant_app


@pytest.fixture
def site(tmp_path, monkeypatch):
    """(db, http client) of a participants' endpoint on a fresh SQLite database."""
    monkeypatch.delenv("ADVREC_STUDY_SECRET", raising=False)
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    db = session_factory(url)
    with serve(participant_app(url)) as base:
        yield db, Http(base)
    dispose(url)


def count(db, table) -> int:
    with db.begin() as s:
        return s.scalar(select(func.count()).select_from(table))


def make(db, name="s", **kw) -> int:
    cfg = StudyConfig(**{"trials_per_annotator": 5, "catch_trials": 1, **kw})
    return create_study(db, name, cfg, stimuli(size=8)).id


def enrol(http, sid, **params):
    """Consent on the open link; the personal link's path."""
    status, body, _ = http.post("/study/api/enrol", {"study": str(sid), "agree": True, **params})
    assert status == 200, body
    assert re.fullmatch(r"/study/p/\d+-[0-9a-f]{16}-[a-z2-7]{32}", body["link"])
    return body["link"]


def api(link: str) -> str:
    return link.replace("/study/p/", "/study/api/p/")


def play(http, link, n=None, undo_after=None):
    """Answer `n` showings (all) through the API as a browser would; the last view."""
    status, v, _ = http.get(api(link))
    done = 0
    while not v["done"] and (n is None or done < n):
        trial = v["trial"]
        if trial["images"]:
            status, png, headers = http.get(f"{api(link)}/image/{trial['render']}")
            assert status == 200 and headers["content-type"] == "image/png"
        response = "left" if trial["question"] == "which" else "different"
        status, v, _ = http.post(f"{api(link)}/answer", {
            "render": trial["render"], "response": response, "rt_ms": 812.5,
            "exposure_ms": 500.2 if v["presentation"] == "timed" else None, "frames": 30,
            "frame_ms": 16.67})
        assert status == 200, v
        done += 1
        if undo_after == done:
            status, v, _ = http.post(f"{api(link)}/undo", {})
    return v


def test_nothing_is_stored_before_consent(site):
    db, http = site
    sid = make(db)
    for k in range(30):  # page loads, with fresh ids or none
        status, page, headers = http.get(f"/study?study={sid}" + (f"&pid=p{k}" if k % 2 else ""))
        assert status == 200 and b'id="agree"' in page
    assert count(db, Annotator) == 0 and count(db, Assignment) == 0
    status, body, _ = http.post("/study/api/enrol", {"study": str(sid)})  # no agreement
    assert status == 403 and "agree" in body["error"] and count(db, Annotator) == 0
    enrol(http, sid)
    assert count(db, Annotator) == 1 and count(db, Assignment) == 5


def test_a_closed_or_unknown_study_is_refused_in_one_line_never_replaced(site):
    from advrec_core.study import set_open

    db, http = site
    first, second = make(db, "a"), make(db, "b")
    set_open(db, first, False)
    for query, said in [(f"study={first}", f"Study {first} is not open."),
                        ("study=99", "Study 99 is not open."),
                        ("", "This link names no study"),
                        (f"study={second}&pid=a&PROLIFIC_PID=b", "names two participants"),
                        (f"study={second}&pid=bad%20id", "link's pid must be")]:
        status, page, _ = http.get(f"/study?{query}")
        assert status == 404 and html.escape(said).encode() in page, (query, page)
        assert b'id="agree"' not in page and b"alert" in page
    status, body, _ = http.post("/study/api/enrol", {"study": str(first), "agree": True})
    assert status == 403 and body["error"] == f"Study {first} is not open."
    assert count(db, Annotator) == 0


def test_a_participant_works_only_through_the_personal_link(site):
    db, http = site
    sid = make(db, trial_kinds=("2afc", "samediff"), platform_code="C0DE1",
               platform_redirect="https://example.org/done")
    link = enrol(http, sid)
    status, page, headers = http.get(link)
    assert status == 200 and b'data-page="personal"' in page
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    v = play(http, link, n=2, undo_after=2)
    assert v["answered"] == 1 and not v["done"]
    status, stale, _ = http.post(f"{api(link)}/answer", {"render": "0" * 32, "response": "left"})
    assert status == 409 and "no longer shown" in stale["error"]
    render = v["trial"]["render"]
    body = {"render": render, "response": "left" if v["trial"]["question"] == "which"
            else "same", "rt_ms": 640.0}
    assert http.post(f"{api(link)}/answer", body)[0] == 200
    status, again, _ = http.post(f"{api(link)}/answer", body)  # a double click: stored once
    assert status == 200 and again["answered"] == 2 and len(answers_frame(db, sid)) == 2
    forged = link[:-1] + ("a" if link[-1] != "a" else "b")
    assert http.get(api(forged))[0] == 404 and http.get(forged)[0] == 404
    assert "code" not in http.get(api(link))[1]  # no code before the last answer
    v = play(http, link)
    with db.begin() as s:
        study = s.get(Study, sid)
        ann = s.scalar(select(Annotator))
    assert v["done"] and v["code"] == completion_code(study.secret, sid, ann.pid)
    assert v["platform_code"] == "C0DE1" and v["redirect"] == "https://example.org/done"
    df = answers_frame(db, sid)
    assert len(df) == 5 and df["trial_id"].is_unique and (df["rt_source"] == "client").all()
    assert http.post(f"{api(link)}/undo", {})[1]["done"]  # the answers are final now


def test_a_prolific_id_is_bound_to_its_first_session(site):
    db, http = site
    sid = make(db)
    q = f"/study?study={sid}&PROLIFIC_PID=5f3a9c&STUDY_ID=st1&SESSION_ID=se1"
    link = enrol(http, sid, PROLIFIC_PID="5f3a9c", STUDY_ID="st1", SESSION_ID="se1")
    status, _, headers = http.get(q)  # the same session comes back: resumes
    assert status == 303 and headers["location"] == link
    assert enrol(http, sid, PROLIFIC_PID="5f3a9c", STUDY_ID="st1", SESSION_ID="se1") == link
    status, page, _ = http.get(q.replace("se1", "se2"))  # another session: refused
    assert status == 404 and b"already started" in page
    status, body, _ = http.post("/study/api/enrol", {"study": str(sid), "agree": True,
                                                      "PROLIFIC_PID": "5f3a9c",
                                                      "SESSION_ID": "se2"})
    assert status == 403 and "already started" in body["error"]
    with db.begin() as s:
        ann = s.scalar(select(Annotator))
    assert ann.pid == "5f3a9c" and ann.session == "se1"
    assert ann.platform == {"PROLIFIC_PID": "5f3a9c", "STUDY_ID": "st1", "SESSION_ID": "se1"}
    assert count(db, Annotator) == 1


def test_a_pid_without_its_token_never_locks_out_the_owner(site):
    db, http = site
    sid = make(db)
    link = enrol(http, sid, pid="P-7")
    play(http, link, n=1)
    for attempt in (lambda: http.get(f"/study?study={sid}&pid=P-7"),  # a second browser
                    lambda: http.post("/study/api/enrol", {"study": str(sid), "agree": True,
                                                            "pid": "P-7"})):
        status, body, _ = attempt()
        assert status in (403, 404) and b"already started" in (
            body if isinstance(body, bytes) else body["error"].encode())
    t0 = time.perf_counter()  # the owner reloads: page, view and images at once
    assert http.get(link)[0] == 200
    v = http.get(api(link))[1]
    assert http.get(f"{api(link)}/image/{v['trial']['render']}")[0] == 200
    assert time.perf_counter() - t0 < 2.0 and v["answered"] == 1
    assert play(http, link)["done"]


def test_a_timed_pair_is_sent_once(site):
    db, http = site
    sid = make(db, presentation="timed", exposure_ms=500)
    link = enrol(http, sid)
    v = http.get(api(link))[1]
    image = f"{api(link)}/image/{v['trial']['render']}"
    assert http.get(image)[0] == 200 and http.get(image)[0] == 410  # once
    v = http.get(api(link))[1]  # a reload: the same trial, asked without its images
    assert not v["trial"]["images"]
    assert http.get(f"{api(link)}/image/{v['trial']['render']}")[0] == 410
    http.post(f"{api(link)}/answer", {"render": v["trial"]["render"], "response": "left",
                                      "rt_ms": 900.0, "exposure_ms": 499.8, "frames": 30,
                                      "frame_ms": 16.66})
    v = http.post(f"{api(link)}/undo", {})[1]  # undo: asked again, never shown again
    assert v["answered"] == 0 and not v["trial"]["images"]
    row = answers_frame(db, sid)
    assert row.empty


def test_invitations_store_nothing_until_their_holder_consents(site):
    from advrec_core.study import invitation_tokens

    db, http = site
    sid = make(db)
    tokens = invitation_tokens(db, sid, 3)
    assert len(set(tokens)) == 3 and count(db, Annotator) == 0
    status, page, _ = http.get(f"/study/p/{tokens[0]}")
    assert status == 200 and b'data-page="invite"' in page and count(db, Annotator) == 0
    assert http.get(f"/study/api/p/{tokens[0]}")[1]["consent"]
    status, body, _ = http.post(f"/study/api/p/{tokens[0]}/consent", {"agree": True})
    assert status == 200 and body["link"] == f"/study/p/{tokens[0]}"
    assert count(db, Annotator) == 1 and play(http, body["link"])["done"]


def test_randomisation_cannot_be_recomputed_from_public_values(site):
    """An attacker knowing the study id, the participant ids, the config and the code
    replays the assignment's random draws from every public seed it can think of; none
    reproduces the sides or the catch positions. The same replay from the study's secret
    (which only the server holds) reproduces them exactly, so the replay is faithful."""
    import hashlib

    db, http = site
    cfg = dict(trials_per_annotator=12, catch_trials=3, images_per_cell=6, seed=7)
    sid = make(db, **cfg)
    for k in range(30):
        enrol(http, sid, pid=f"P{k}")
    with db.begin() as s:
        study = s.get(Study, sid)
        n_regular = s.scalar(select(func.count()).select_from(Trial)
                             .where(Trial.study_id == sid, Trial.kind != "catch"))
        n_pool = s.scalar(select(func.count()).select_from(Trial)
                          .where(Trial.study_id == sid, Trial.kind == "catch"))
        people = [(a.pid, a.uid, [(x.modified_left, x.trial_id) for x in s.scalars(
            select(Assignment).where(Assignment.annotator_id == a.id)
            .order_by(Assignment.position))]) for a in s.scalars(select(Annotator))]
        catch_ids = set(s.scalars(select(Trial.id).where(Trial.study_id == sid,
                                                         Trial.kind == "catch")))

    def replay(seed):
        """(sides, catch positions) the assignment draws from `seed`."""
        rng = np.random.default_rng(seed)
        rng.random(n_regular)
        n_chosen = cfg["trials_per_annotator"] - cfg["catch_trials"]
        rng.permutation(n_chosen)
        rng.permutation(n_pool)
        positions = list(range(n_chosen))
        for k in range(cfg["catch_trials"]):
            positions.insert(int(rng.integers(1, len(positions) + 1)), -1 - k)
        left = rng.permutation(np.arange(len(positions)) % 2 == 0)
        return list(left), {i for i, p in enumerate(positions) if p < 0}

    public = {
        "sha256(seed:study:pid) (the old recipe)": lambda pid, uid: int.from_bytes(
            hashlib.sha256(f"{cfg['seed']}:{sid}:{pid}".encode()).digest()[:8], "little"),
        "the config's seed": lambda pid, uid: cfg["seed"],
        "sha256(pid)": lambda pid, uid: int.from_bytes(
            hashlib.sha256(pid.encode()).digest()[:8], "little"),
    }
    for name, seed in public.items():
        sides = catches = total = 0
        for pid, uid, rows in people:
            left, catch = replay(seed(pid, uid))
            sides += sum(p == bool(m) for p, (m, _) in zip(left, rows))
            catches += catch == {i for i, (_, t) in enumerate(rows) if t in catch_ids}
            total += len(rows)
        assert 0.35 < sides / total < 0.65, (name, sides / total)  # a coin's agreement
        assert catches <= 3, (name, catches)  # of 30 participants
    for _pid, uid, rows in people:  # with the server's secret the replay is exact
        left, catch = replay(randomisation_seed(study.secret, sid, uid))
        assert left == [bool(m) for m, _ in rows]
        assert catch == {i for i, (_, t) in enumerate(rows) if t in catch_ids}


def test_the_browser_gets_no_answer_in_views_or_image_bytes(site):
    """Every view has the same keys and value types whatever the trial; the render id is
    random; every showing's PNG has the same length (2AFC, identical and modified
    same/different pairs, catch trials alike) and is the lossless pair as assigned."""
    import io

    from PIL import Image

    db, http = site
    sid = make(db, trial_kinds=("2afc", "samediff"), trials_per_annotator=14, catch_trials=2,
               images_per_cell=6)
    lengths, renders, shapes = set(), set(), set()
    for _ in range(3):
        link = enrol(http, sid)
        v = http.get(api(link))[1]
        while not v["done"]:
            t = v["trial"]
            shapes.add((tuple(sorted(v)), tuple(sorted(t)), tuple(type(t[k]).__name__ for k in
                                                                   sorted(t))))
            assert re.fullmatch(r"[0-9a-f]{32}", t["render"]) and t["render"] not in renders
            renders.add(t["render"])
            png = http.get(f"{api(link)}/image/{t['render']}")[1]
            lengths.add(len(png))
            assert Image.open(io.BytesIO(png)).size == (2 * t["width"], t["height"])
            v = http.post(f"{api(link)}/answer", {"render": t["render"], "response": "left" if
                                                  t["question"] == "which" else "same"})[1]
    assert len(lengths) == 1 and len(shapes) == 1, (lengths, shapes)
    a, b = (np.full((8, 8, 3), c, np.uint8) for c in (0, 255))
    png = pair_png(_png(a), _png(b))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.concatenate([a, b], 1))


def _png(img):
    from advrec_core.viz import png_bytes

    return png_bytes(img)


@pytest.mark.parametrize("path, payload, content_type, said", [
    ("/study/api/enrol", "x", "text/plain", "send JSON"),
    ("/study/api/enrol", {"study": "1", "agree": True, "pid": "x" * 65}, None, "pid must be"),
    ("answer", {"render": "R", "response": "up"}, None, "takes 'left' or 'right'"),
    ("answer", {"render": "R", "response": "left", "rt_ms": -5}, None, "rt_ms must be"),
    ("answer", {"render": "R", "response": "left", "rt_ms": "NaN"}, None, "rt_ms must be"),
    ("answer", {"render": "R", "response": "left", "confidence": 9}, None, "confidence"),
    ("answer", {"render": "R", "response": "left", "frames": 1e9}, None, "frames must be"),
])
def test_bad_requests_are_refused_in_one_line(site, path, payload, content_type, said):
    db, http = site
    sid = make(db, trial_kinds=("2afc",), catch_trials=0)
    link = enrol(http, sid)
    if path == "answer":
        path = f"{api(link)}/answer"
        payload["render"] = http.get(api(link))[1]["trial"]["render"]
    status, body, _ = http.post(path, payload, content_type or "application/json")
    assert status in (403, 409) and said.lower() in body["error"].lower() and "\n" not in body["error"]
    assert len(answers_frame(db, sid)) == 0


def test_other_sites_and_large_bodies_are_refused(site):
    import urllib.request

    db, http = site
    sid = make(db)
    req = urllib.request.Request(http.base + "/study/api/enrol", b'{"study": "1", "agree": true}',
                                 {"Content-Type": "application/json",
                                  "Origin": "https://evil.example"}, method="POST")
    status, body, _ = http._open(req)
    assert status == 403 and "this site's own pages" in body["error"]
    status, body, _ = http.post("/study/api/enrol", {"study": str(sid), "agree": True,
                                                      "padding": "x" * 10_000})
    assert status == 403 and "too large" in body["error"] and count(db, Annotator) == 0


def test_only_the_participant_files_are_served(site):
    _, http = site
    assert http.get("/study/static/participant.js")[0] == 200
    for name in ("..%2F__init__.py", "%2E%2E%2Fpages.py", "x.js", "participant.js%00"):
        assert http.get(f"/study/static/{name}")[0] == 404
