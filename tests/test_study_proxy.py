"""The shipped reverse-proxy configuration (deploy/nginx-study.conf), run for real: Debian's
nginx, started by the test on 127.0.0.1 with that file (TLS lines swapped for a plain local
listener), in front of a real study server. Blocked paths answer 403, the security headers
are on every response, a burst beyond the limits gets 429, and the participants' pages and
the admin app's websocket pass through."""
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from browser import free_port, study_server
from helpers import ROOT, Http, stimuli

from advrec_core.study import StudyConfig, create_study, session_factory

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="no nginx here (apt-get install nginx)")


def local_config(upstream: int, port: int, folder) -> str:
    """deploy/nginx-study.conf as a whole nginx.conf for this test: the TLS server listens
    on 127.0.0.1:`port` without TLS, the redirect server is dropped, the upstream is the
    test's study server; pid, logs and temp files in `folder`."""
    site = (ROOT / "deploy" / "nginx-study.conf").read_text()
    site = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", site, flags=re.S)
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
    site = re.sub(r"\n    ssl_certificate.*", "", site)
    site = site.replace("server 127.0.0.1:8501;", f"server 127.0.0.1:{upstream};")
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
{temp}
{site}
}}
"""


def status_of(url: str, method: str = "GET", data: bytes | None = None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data, method=method),
                                      timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:  # not listening (yet)
        return 0


def test_the_shipped_nginx_config_guards_the_study_server(tmp_path):
    db = session_factory(f"sqlite:///{tmp_path / 'study.sqlite'}")
    study = create_study(db, "s", StudyConfig(trials_per_annotator=3, catch_trials=0), stimuli())
    port = free_port()
    with study_server(tmp_path) as (upstream, _):
        conf = tmp_path / "nginx.conf"
        conf.write_text(local_config(int(upstream.rsplit(":", 1)[1]), port, tmp_path))
        check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf), "-g",
                                 "daemon off;"], stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 30
            while status_of(f"{base}/_stcore/health") != 200:
                assert time.time() < deadline and proc.poll() is None, "nginx did not start"
                time.sleep(0.2)
            for method, path in [("GET", "/_stcore/metrics"), ("PUT", "/_stcore/upload_file/a/b"),
                                 ("POST", "/_stcore/upload_file")]:
                assert status_of(base + path, method, b"x" * 100) == 403, (method, path)
            http = Http(base)
            for path in ("/", f"/study?study={study.id}", "/_stcore/metrics"):
                status, body, headers = http.get(path)
                assert "frame-ancestors 'none'" in headers["content-security-policy"], path
                assert headers.get_all("x-frame-options") == ["DENY"], path
                assert headers["x-content-type-options"] == "nosniff", path
                assert headers["referrer-policy"] == "no-referrer", path
                assert headers["strict-transport-security"].startswith("max-age"), path
            status, page, _ = http.get(f"/study?study={study.id}")
            assert status == 200 and b'id="agree"' in page  # participants pass through
            statuses = [http.post("/study/api/enrol", {"study": str(study.id), "agree": True})[0]
                        for _ in range(12)]  # 6 a minute, a burst of 5
            assert statuses[:6] == [200] * 6 and 429 in statuses, statuses
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(16) as pool:  # 200 page requests at once: 20 a second
                burst = list(pool.map(status_of, [f"{base}/study?study={study.id}"] * 200))
            assert burst.count(200) >= 40 and burst.count(429) >= 50, burst.count(429)
            from streamlit.proto.BackMsg_pb2 import BackMsg
            from websockets.sync.client import connect

            with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                         open_timeout=30) as ws:  # the admin app works through the proxy
                rerun = BackMsg()
                rerun.rerun_script.query_string = ""
                ws.send(rerun.SerializeToString())
                got, deadline = b"", time.time() + 30
                while b"Admin password" not in got and time.time() < deadline:
                    try:
                        got += ws.recv(timeout=2)
                    except TimeoutError:
                        pass
            assert b"Admin password" in got
        finally:
            proc.terminate()
            proc.wait(10)
