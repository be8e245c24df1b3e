// The participant's side of a study, in the browser. Talks to /study/api only; never learns
// a trial's id, its kind beyond the question, or which side was modified. Timing is taken
// here, where the eyes are: the images are decoded before their onset, drawn in one
// animation frame, and (timed presentation) removed from the page after the number of display
// frames the exposure lasts; the reaction time runs from the onset frame to the key or click.
"use strict";
(() => {
  const body = document.body;
  const page = body.dataset.page;
  const args = JSON.parse(body.dataset.args || "{}");
  const $ = (id) => document.getElementById(id);

  async function call(url, payload) {
    const init = payload === undefined ? { cache: "no-store" } : {
      method: "POST", cache: "no-store", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    };
    const res = await fetch(url, init);
    let data = {};
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error(data.error || `the server answered ${res.status}`);
    return data;
  }

  function consentForm(url, payload) {
    const agree = $("agree"), start = $("start");
    agree.addEventListener("change", () => { start.disabled = !agree.checked; });
    $("consent").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      start.disabled = true;
      try {
        const r = await call(url, { ...payload, agree: true });
        location.replace(r.link);
      } catch (e) {
        $("message").textContent = e.message;
        start.disabled = false;
      }
    });
  }

  const token = location.pathname.split("/").filter(Boolean).pop();
  const base = `/study/api/p/${token}`;
  if (page === "open") consentForm("/study/api/enrol", args.query || {});
  if (page === "invite") consentForm(`${base}/consent`, {});
  if (page !== "personal") return;

  const QUESTIONS = {
    which: ["One of the two images was digitally modified. Which one?",
      [["Left", "left", "ArrowLeft"], ["Right", "right", "ArrowRight"]]],
    samediff: ["Are the two images exactly the same, or is one of them modified?",
      [["Same", "same", "s"], ["Different", "different", "d"]]],
  };
  const app = $("app");
  let state = null;   // the server's view
  let shown = null;   // the current showing: render, onset, measured exposure
  let pending = null; // an answer waiting for its confidence
  let busy = false;
  let frameMs = null; // this display's frame interval, measured once
  let keys = {};      // key -> its action in the current view (the buttons' own)

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (k === "on") for (const [e, f] of Object.entries(v)) node.addEventListener(e, f);
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));

  async function measureFrame() {
    const ts = [];
    for (let i = 0; i < 12; i++) ts.push(await frame());
    const d = ts.slice(1).map((t, i) => t - ts[i]).sort((a, b) => a - b);
    return d[Math.floor(d.length / 2)];
  }

  function message(text) {
    const line = $("message");
    if (line) line.textContent = text;
  }

  async function send(path, payload) {
    if (busy) return;  // one request at a time (a double click sends one answer)
    busy = true;
    let next;
    try {
      next = await call(base + path, payload);
    } catch (e) {
      message(e.message);
      return;
    } finally {
      busy = false;
    }
    state = next;
    shown = null;
    pending = null;
    draw().catch((e) => message(e.message));
  }

  function respond(response, ev) {
    if (!shown || busy || pending) return;
    const rt = ev.timeStamp - shown.onset;
    if (shown.hide) shown.hide(ev.timeStamp);  // answered during a timed exposure: it ends
    if (state.confidence) {
      pending = { response, rt };
      drawConfidence();
      return;
    }
    submit(response, null, rt);
  }

  function submit(response, confidence, rt) {
    send("/answer", {
      render: shown.render, response, confidence, rt_ms: rt,
      exposure_ms: shown.exposure, frames: shown.frames, frame_ms: shown.frameMs,
    });
  }

  function drawConfidence() {
    const row = $("answers");
    row.replaceChildren(el("p", { text: "How sure are you? 1 = guessing, 5 = certain (keys 1-5)" }));
    keys = {};
    for (let level = 1; level <= 5; level++) {
      keys[String(level)] = () => submit(pending.response, level, pending.rt);
      row.append(el("button", { type: "button", text: String(level),
        on: { click: keys[String(level)] } }));
    }
  }

  function choices(row, list) {
    keys = {};
    const buttons = list.map(([label, response, key]) => {
      keys[key] = (ev) => respond(response, ev);
      return el("button", { type: "button", text: label, on: { click: keys[key] } });
    });
    row.replaceChildren(...buttons);
    return buttons;
  }

  function undo() {
    if (busy) return;
    if (pending) {  // an answer waiting for its confidence: take it back, nothing stored
      pending = null;
      choices($("answers"), QUESTIONS[state.trial.question][1]);
    } else if (state.answered > 0) {
      send("/undo", {});
    }
  }

  function header() {
    const done = state.answered, total = state.total;
    return [el("progress", { max: String(total), value: String(done) }),
      el("p", { class: "muted", text: `${done} of ${total} answered` })];
  }

  function footer() {
    return [
      el("p", {}, el("button", { type: "button", id: "undo", text: "Undo last answer (U)",
        on: { click: undo } })),
      el("p", { id: "message", class: "message", role: "alert" }),
      el("p", { class: "muted", text: "Bookmark this page to continue later: its address is " +
        "your personal link." }),
    ];
  }

  async function draw() {
    if (state.done) {
      const code = state.platform_code
        ? `Your completion code is ${state.platform_code} (your participant code: ${state.code}).`
        : `Your completion code is ${state.code}.`;
      const parts = [el("p", { class: "done", text: `All done, thank you! ${code}` })];
      if (state.redirect) {
        parts.push(el("p", {}, el("a", { href: state.redirect, class: "button",
          text: "Return to the recruitment site" })));
      }
      app.replaceChildren(...parts);
      return;
    }
    const trial = state.trial;
    const [question, options] = QUESTIONS[trial.question];
    const stage = el("div", { class: "stage", id: "stage" });
    const row = el("div", { class: "answers", id: "answers" });
    const buttons = choices(row, options);
    buttons.forEach((b) => b.setAttribute("disabled", ""));  // until the onset
    app.replaceChildren(...header(), el("p", { class: "question", text: question }), stage, row,
      ...footer());
    $("undo").disabled = state.answered === 0 && !state.confidence;
    const enable = () => buttons.forEach((b) => b.removeAttribute("disabled"));
    if (!trial.images) {
      stage.append(el("p", { class: "muted", text: "You have seen this pair already: " +
        "answer from memory." }));
      shown = { render: trial.render, onset: await frame(), exposure: null, frames: null,
        frameMs };
      enable();
      return;
    }
    const res = await fetch(`${base}/image/${trial.render}`, { cache: "no-store" });
    if (!res.ok) {  // sent already (a timed pair): ask again without it
      state = await call(base);
      return draw();
    }
    const bitmap = await createImageBitmap(await res.blob());  // decoded before the onset
    frameMs = frameMs || await measureFrame();
    const dpr = window.devicePixelRatio || 1;
    const zoom = Math.max(1, Math.round(state.zoom * dpr));  // device pixels per image pixel
    const w = trial.width, h = trial.height, gap = Math.round(48 * dpr);
    const canvas = el("canvas", { width: String(2 * w * zoom + gap), height: String(h * zoom),
      "aria-label": "the two images: left and right" });
    canvas.style.width = `${canvas.width / dpr}px`;
    canvas.style.height = `${canvas.height / dpr}px`;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;  // nearest neighbour: integer zoom, lossless
    stage.append(canvas);
    await frame();
    const onset = await new Promise((resolve) => requestAnimationFrame((ts) => {
      ctx.drawImage(bitmap, 0, 0, w, h, 0, 0, w * zoom, h * zoom);
      ctx.drawImage(bitmap, w, 0, w, h, w * zoom + gap, 0, w * zoom, h * zoom);
      resolve(ts);
    }));
    bitmap.close();
    shown = { render: trial.render, onset, exposure: null, frames: null, frameMs };
    enable();
    if (state.presentation !== "timed") return;
    const mine = shown;
    mine.hide = (ts) => {  // the pair leaves the page: its exposure is over
      if (mine.exposure !== null) return;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      canvas.width = 0;
      canvas.remove();
      mine.exposure = ts - onset;
      mine.frames = Math.round((ts - onset) / frameMs);
      stage.append(el("p", { class: "muted", text: "(the images are hidden)" }));
    };
    const n = Math.max(1, Math.round(state.exposure_ms / frameMs));  // frames to show
    let ts = onset;
    while (mine.exposure === null && ts - onset < (n - 0.5) * frameMs) ts = await frame();
    mine.hide(ts);
  }

  document.addEventListener("keydown", (ev) => {
    if (!state || state.done || ev.repeat || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (key === "u") {
      ev.preventDefault();
      undo();
    } else if (keys[key] && shown) {
      ev.preventDefault();
      keys[key](ev);  // the key press's own time stamp is the answer's
    }
  });

  call(base).then((view) => { state = view; return draw(); }).catch((e) => {
    app.replaceChildren(el("p", { class: "message", role: "alert", text: e.message }));
  });
})();
