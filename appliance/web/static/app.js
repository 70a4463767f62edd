// The config page's few scripts: live status (server-sent events), the latency chart,
// "Try it" without a page reload, and the audio checks. Served locally; no inline code.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STAGES = [["stt", "#2456c7"], ["llm_first_token", "#8a4fd1"],
                  ["tts_first_sentence", "#1f9a6a"]];

  function el(tag, attrs, text) {
    const svg = ["svg", "rect", "text", "g"].includes(tag);
    const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                     : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, opts);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail
                     : JSON.stringify(body.detail)) : response.statusText;
      throw new Error(detail);
    }
    return body;
  }

  // ---- status page ----------------------------------------------------------------
  function drawChart(turns) {
    const box = document.getElementById("chart");
    if (!box) return;
    box.textContent = "";
    const shown = turns.filter(t => t.timings && t.timings.turn).slice(0, 10).reverse();
    if (!shown.length) return;
    const max = Math.max(...shown.map(t => t.timings.turn), 0.001);
    const rowH = 18, width = 600, left = 40;
    const svg = el("svg", { viewBox: `0 0 ${width} ${shown.length * rowH + 24}`,
                            role: "img", "aria-label": "latency per turn" });
    shown.forEach((t, i) => {
      const y = i * rowH;
      svg.appendChild(el("text", { x: 0, y: y + 13, "font-size": 11 }, "#" + t.turn));
      let x = left;
      for (const [stage, colour] of STAGES) {
        const w = ((t.timings[stage] || 0) / max) * (width - left - 70);
        if (w > 0) {
          const r = el("rect", { x: x, y: y + 2, width: w, height: rowH - 5, fill: colour });
          r.appendChild(el("title", {}, `${stage} ${Math.round(t.timings[stage] * 1000)} ms`));
          svg.appendChild(r);
          x += w;
        }
      }
      svg.appendChild(el("text", { x: x + 4, y: y + 13, "font-size": 11 },
                         Math.round(t.timings.turn * 1000) + " ms"));
    });
    let lx = left;
    STAGES.forEach(([stage, colour]) => {
      svg.appendChild(el("rect", { x: lx, y: shown.length * rowH + 8, width: 10, height: 10, fill: colour }));
      svg.appendChild(el("text", { x: lx + 14, y: shown.length * rowH + 17, "font-size": 11 }, stage));
      lx += 150;
    });
    box.appendChild(svg);
  }

  function fillTurns(turns) {
    const body = document.querySelector("#turns tbody");
    if (!body) return;
    body.textContent = "";
    if (!turns.length) {
      const tr = el("tr", { class: "empty" });
      tr.appendChild(el("td", { colspan: 5 }, "No turns yet."));
      body.appendChild(tr);
    }
    for (const t of turns) {
      const tr = el("tr", { "data-turn": t.turn });
      const latency = ["stt", "llm_first_token", "tts_first_sentence", "ttfa", "turn"]
        .filter(k => k in t.timings).map(k => `${k} ${Math.round(t.timings[k] * 1000)} ms`).join(", ");
      for (const text of [t.turn, t.outcome, t.transcript, t.reply, latency]) {
        tr.appendChild(el("td", {}, String(text)));
      }
      body.appendChild(tr);
    }
  }

  function fillErrors(errors) {
    const list = document.getElementById("errors");
    if (!list) return;
    list.textContent = "";
    if (!errors.length) list.appendChild(el("li", { class: "empty" }, "None."));
    for (const e of errors) list.appendChild(el("li", {}, `${e.stage} (${e.code}): ${e.message}`));
  }

  async function refreshStatus() {
    try {
      const s = await api("/api/status");
      fillTurns(s.turns); fillErrors(s.errors); drawChart(s.turns);
      setState(s.state); setHomeAssistant(s.home_assistant); setRemotes(s.remotes);
    } catch (e) { /* the next event tries again */ }
  }

  function setHomeAssistant(ha) {
    const node = document.getElementById("home-assistant");
    if (!node || !ha) return;
    if (ha.error) { node.textContent = `not served: ${ha.error}`; return; }
    if (!ha.served) return;
    node.textContent = ha.clients.length ? `connected: ${ha.clients.join(", ")}`
      : `not connected: waiting on port ${ha.port}, ${ha.encrypted ? "encrypted" : "without encryption"}`;
  }

  function setRemotes(remotes) {
    for (const r of remotes || []) {
      const node = document.querySelector(`.remote[data-stage="${r.stage}"]`);
      if (!node) continue;
      node.textContent = `${r.remote}: ` + (r.up === null ? "not checked yet"
        : r.up ? "up" : `down, this board answers (${r.reason})`);
    }
  }

  function setState(state) {
    const node = document.getElementById("state");
    if (node) { node.textContent = state; node.dataset.state = state; }
  }

  if (document.getElementById("state")) {
    refreshStatus();
    const source = new EventSource("/api/events");
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "state") setState(event.state);
      if (event.type === "muted" && mute) { mute.dataset.muted = String(event.muted);
        mute.textContent = event.muted ? "Unmute" : "Mute"; }
      if (["turn_end", "error", "satellite_connection", "remote_state"].includes(event.type)) refreshStatus();
    };
  }

  const mute = document.getElementById("mute");
  if (mute) {
    const said = document.getElementById("control-result");
    const show = (muted) => {
      mute.dataset.muted = String(muted);
      mute.textContent = muted ? "Unmute" : "Mute";
    };
    mute.addEventListener("click", async () => {
      try {
        const r = await api("/api/mute", { method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ muted: mute.dataset.muted !== "true" }) });
        show(r.muted); said.textContent = "";
      } catch (e) { said.textContent = e.message; }
    });
    document.getElementById("listen-now").addEventListener("click", async () => {
      try { await api("/api/listen-now", { method: "POST" }); said.textContent = "Listening…"; }
      catch (e) { said.textContent = e.message; }
    });
  }

  // ---- try it ------------------------------------------------------------------------
  const askForm = document.getElementById("ask-form");
  if (askForm) {
    askForm.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const box = document.getElementById("ask-result");
      const playHere = document.getElementById("play-here").checked;
      const text = document.getElementById("text").value;
      box.hidden = false;
      document.getElementById("reply").textContent = "…";
      document.getElementById("reply-meta").textContent = "";
      try {
        const r = await api("/api/ask", { method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text: text, audio: playHere }) });
        document.getElementById("reply").textContent = r.reply || "(no reply)";
        document.getElementById("reply-meta").textContent =
          `turn ${r.turn}, ${r.outcome}` + (r.errors.length ? "; " + r.errors.join("; ") : "");
        const audio = document.getElementById("reply-audio");
        if (r.audio_wav_base64) {
          const bytes = Uint8Array.from(atob(r.audio_wav_base64), c => c.charCodeAt(0));
          audio.src = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
          audio.hidden = false;
          audio.play().catch(() => {});
        }
      } catch (e) {
        document.getElementById("reply").textContent = "";
        document.getElementById("reply-meta").textContent = "Error: " + e.message;
      }
    });
  }
  const upload = document.getElementById("upload-form");
  if (upload) {
    upload.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const out = document.getElementById("upload-result");
      const file = document.getElementById("wav").files[0];
      if (!file) return;
      out.textContent = "Running…";
      try {
        const r = await api("/api/listen", { method: "POST",
          headers: { "Content-Type": "audio/wav" }, body: file });
        out.textContent = "";
        if (r.message) out.appendChild(el("p", {}, r.message));
        for (const t of r.turns) {
          out.appendChild(el("p", {}, `Turn ${t.turn} (${t.outcome}): heard “${t.transcript}”, replied “${t.reply}”`));
        }
      } catch (e) { out.textContent = "Error: " + e.message; }
    });
  }

  // ---- audio checks ------------------------------------------------------------------
  const speaker = document.getElementById("test-speaker");
  if (speaker) {
    const result = document.getElementById("audio-result");
    speaker.addEventListener("click", async () => {
      try { await api("/api/speaker-test", { method: "POST" }); result.textContent = "Speaking a test sentence…"; }
      catch (e) { result.textContent = "Speaker test: " + e.message; }
    });
    document.getElementById("test-microphone").addEventListener("click", async () => {
      const meter = document.getElementById("meter");
      meter.textContent = ""; result.textContent = "Listening for 2 s: say something…";
      try {
        const r = await api("/api/microphone-test", { method: "POST" });
        for (const db of r.levels_dbfs) {
          const bar = el("span", { title: db.toFixed(0) + " dBFS" });
          bar.style.height = Math.max(2, 100 + db * 100 / 60) + "%";
          meter.appendChild(bar);
        }
        const peak = Math.max(...r.levels_dbfs);
        result.textContent = `Peak ${peak.toFixed(0)} dBFS` + (peak < -50 ? ": nothing heard; check the microphone." : ".");
      } catch (e) { result.textContent = "Microphone test: " + e.message; }
    });
  }

  // ---- settings: the device form shows the fields of the chosen backend -------------
  const backend = document.getElementById("device-backend");
  if (backend) {
    const show = () => {
      document.getElementById("device-gpio").hidden = backend.value !== "gpio";
      document.getElementById("device-mqtt").hidden = backend.value !== "mqtt";
    };
    backend.addEventListener("change", show);
    show();
  }
})();
