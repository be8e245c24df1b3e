"""What several test files share: the repository root, small dataset folders, file digests
and synthetic study stimuli. Test files import from here, never from each other."""
import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from advrec_core.models import Classifier, Normalize
from advrec_core.study import Stimulus

ROOT = Path(__file__).resolve().parents[1]


def digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def stimuli(n_cells=2, per_cell=6, size=8, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_cells):
        for i in range(per_cell):
            clean = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            adv = np.clip(clean.astype(int) + rng.integers(-4, 5, clean.shape), 0, 255).astype(np.uint8)
            out.append(Stimulus(f"pgd-{4 * (c + 1)}/traditional", f"item{c}-{i}", clean, adv,
                                {"LPIPS-vgg": 0.01 * (i + 1), "SSIM": 1 - 0.01 * i}))
    return out


def write_image(path: Path, mode: str = "RGB", size=(16, 16), fmt: str | None = None, value=None):
    """Write a small solid image in `mode`; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        arr = np.full(size[::-1], 40000 if value is None else value, np.uint16)
        Image.fromarray(arr).save(path, format=fmt)  # uint16 -> I;16
    else:
        color = value if value is not None else {"L": 128, "1": 1, "CMYK": (0, 255, 255, 0),
                                                 "RGBA": (255, 0, 0, 128),
                                                 "LA": (50, 128)}.get(mode, (10, 200, 30))
        Image.new(mode, size, color).save(path, format=fmt)
    return path


def make_generic(root: Path, rows: list[str], items=None, header="user,item,timestamp,rating",
                 categories: list[str] | None = None) -> Path:
    """A generic-layout folder: interactions.csv from `rows`, one PNG per item."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "interactions.csv").write_text("\n".join([header, *rows]) + "\n")
    if items is None:
        items = sorted({r.split(",")[1] for r in rows})
    for it in items:
        write_image(root / "images" / f"{it}.png")
    if categories is not None:
        (root / "items.csv").write_text("\n".join(["item,category", *categories]) + "\n")
    return root


def make_authors(root: Path, train: list[str], test: list[str], items=None,
                 classes: list[str] | None = None, classes_in: str = "",
                 defense_classes: dict[str, list[str]] | None = None) -> Path:
    """An authors'-layout folder: tab-separated train/test, original/images/<id>.jpg, and
    classes.csv rows in `<root>/<classes_in>/` (the release: "original"; "" = the root) and
    in each `defense_classes` folder (e.g. "madry_original")."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "trainingset.tsv").write_text("\n".join(train) + "\n")
    (root / "testset.tsv").write_text("\n".join(test) + "\n")
    if items is None:
        items = sorted({r.split("\t")[1] for r in train + test})
    for it in items:
        write_image(root / "original" / "images" / f"{it}.jpg", fmt="JPEG")
    header = "ImageID,ClassStr,ClassNum,Prob"
    files = {**({classes_in: classes} if classes is not None else {}), **(defense_classes or {})}
    for folder, rows in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "classes.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


class Http:
    """A participant's browser as far as HTTP goes: GET and POST-JSON against a base URL,
    answering (status, parsed JSON or bytes, headers); redirects not followed."""

    def __init__(self, base: str):
        self.base = base

    def _open(self, request):
        import urllib.error
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            r = opener.open(request, timeout=60)
            status, body, headers = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, body, headers = e.code, e.read(), e.headers
        if headers.get("content-type", "").startswith("application/json"):
            import json

            body = json.loads(body)
        return status, body, headers

    def get(self, path: str):
        import urllib.request

        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, payload: dict | None = None, content_type="application/json"):
        import json
        import urllib.request

        return self._open(urllib.request.Request(
            self.base + path, json.dumps(payload or {}).encode(), method="POST",
            headers={"Content-Type": content_type}))


def serve(app):
    """Run an ASGI `app` on a free local port in a thread; a context manager yielding its
    base URL."""
    import socket
    import threading
    import time
    from contextlib import contextmanager

    import uvicorn

    @contextmanager
    def running():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 30
        while not server.started:
            if time.time() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)

    return running()



# --- a tiny classifier that has learnt something (attacks, uploads) -----------------------

class Tiny(Classifier):
    def __init__(self, n_classes=5):
        super().__init__()
        torch.manual_seed(0)
        self.class_names = tuple(f"c{i}" for i in range(n_classes))
        self.input_size, self.feature_dim = 16, 32
        self.normalize = Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, n_classes)


def colour_images(n, g, protos=None):
    """(n, 3, 16, 16) textured images of random colours on the 8-bit grid, and the index of
    the nearest colour prototype."""
    colour = torch.rand(n, 3, generator=g)
    x = (colour[:, :, None, None] + 0.15 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)
    x = (x * 255).round() / 255
    y = torch.cdist(colour, protos).argmin(1) if protos is not None else None
    return x, y


def trained_tiny(steps=150) -> Tiny:
    """Tiny trained briefly to classify images by their colour (5 colour prototypes), so
    that input gradients mean something (a random net is nearly constant)."""
    g = torch.Generator().manual_seed(0)
    model = Tiny()
    protos = torch.rand(5, 3, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        x, y = colour_images(64, g, protos)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.freeze()
