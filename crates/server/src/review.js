// The review page (/review/{id} or /review/{id}/{link}): the player beside the
// editable cues of the transcript or of one translation, the caption rules checked
// as the reviewer types, save and approve. Served as a file so that the page's
// content security policy allows no inline script.
(() => {
  // The page's own address: /review/{id} (the reviewer types an API token or key,
  // kept in this browser) or /review/{id}/{link} (a review link, which is all the
  // page needs). Either goes to the API in the Authorization header only.
  const [, , id, link] = location.pathname.split("/");
  // The caption rules (broadcast profile), checked as the reviewer types; the
  // server checks the same rules on save.
  const RULES = { maxLineChars: 42, maxLines: 2, minMs: 833, maxMs: 7000, maxCps: 20, minGapMs: 83 };
  const video = document.getElementById("video");
  const list = document.getElementById("cues");
  const status = document.getElementById("status");
  const token = document.getElementById("token");
  if (link) {
    token.closest("label").hidden = true;
  } else {
    token.value = localStorage.getItem("babelcast-token") || "";
    token.onchange = () => localStorage.setItem("babelcast-token", token.value);
  }
  const credential = () => link || token.value;
  const authorized = () => ({ Authorization: `Bearer ${credential()}` });
  const langSelect = document.getElementById("lang");
  let cues = [];
  // The language shown: "" is the source transcript, else a target's translation.
  let lang = "";
  let source = [];
  let untranslated = new Map();

  const fmt = (ms) => (ms / 1000).toFixed(3);
  const parse = (s) => Math.round(parseFloat(s) * 1000);

  function problems(i) {
    const c = cues[i];
    const out = [];
    const lines = c.text.split("\n");
    lines.forEach((l, k) => { if ([...l].length > RULES.maxLineChars) out.push(`line ${k + 1} has ${[...l].length} characters; at most ${RULES.maxLineChars} fit`); });
    if (lines.length > RULES.maxLines) out.push(`${lines.length} lines; at most ${RULES.maxLines} fit`);
    const ms = c.end_ms - c.start_ms;
    if (!(ms > 0)) out.push("ends before it starts");
    else {
      if (ms < RULES.minMs) out.push(`shown ${ms} ms; at least ${RULES.minMs}`);
      if (ms > RULES.maxMs) out.push(`shown ${ms} ms; at most ${RULES.maxMs}`);
      const cps = [...c.text.replace(/\n/g, "")].length / (ms / 1000);
      if (cps > RULES.maxCps) out.push(`${cps.toFixed(1)} characters per second; at most ${RULES.maxCps}`);
    }
    if (i > 0 && cues[i - 1].end_ms > c.start_ms) out.push("overlaps the cue before");
    else if (i > 0 && c.start_ms - cues[i - 1].end_ms < RULES.minGapMs) out.push(`less than ${RULES.minGapMs} ms after the cue before`);
    return out;
  }

  function showProblems() {
    list.querySelectorAll(".cue").forEach((row, i) => {
      row.querySelector(".problems").textContent = problems(i).join("; ");
    });
  }

  function render() {
    list.innerHTML = "";
    cues.forEach((c, i) => {
      const row = document.createElement("div");
      row.className = "cue";
      row.innerHTML = `<div class="times"><span>#${i + 1}</span>
        <input class="start" aria-label="start (s)"> → <input class="end" aria-label="end (s)"></div>
        <textarea class="text" rows="2" aria-label="text"></textarea><div class="problems"></div>
        <div class="untranslated"></div><div class="source"></div>`;
      row.querySelector(".start").value = fmt(c.start_ms);
      row.querySelector(".end").value = fmt(c.end_ms);
      row.querySelector(".text").value = c.text;
      if (lang) {
        // The source cues this cue's time overlaps, to read beside it.
        const said = source.filter((s) => s.start_ms < c.end_ms && c.start_ms < s.end_ms).map((s) => s.text.replace(/\n/g, " "));
        row.querySelector(".source").textContent = said.length ? `source: ${said.join(" ")}` : "";
        const words = untranslated.get(i);
        if (words) {
          row.classList.add("flagged");
          row.querySelector(".untranslated").textContent = `left untranslated: ${words.join(", ")}`;
        }
      }
      row.querySelector(".times span").onclick = () => { video.currentTime = c.start_ms / 1000; };
      row.querySelector(".text").onfocus = () => { video.currentTime = cues[i].start_ms / 1000; };
      row.querySelector(".start").oninput = (e) => { cues[i].start_ms = parse(e.target.value); showProblems(); };
      row.querySelector(".end").oninput = (e) => { cues[i].end_ms = parse(e.target.value); showProblems(); };
      row.querySelector(".text").oninput = (e) => { cues[i].text = e.target.value; showProblems(); };
      list.appendChild(row);
    });
    showProblems();
  }

  video.addEventListener("timeupdate", () => {
    const t = video.currentTime * 1000;
    list.querySelectorAll(".cue").forEach((row, i) => {
      row.classList.toggle("active", cues[i] && cues[i].start_ms <= t && t < cues[i].end_ms);
    });
  });

  async function call(method, path, body) {
    const headers = authorized();
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((json.error && json.error.message) || `HTTP ${r.status}`);
    return json;
  }

  document.getElementById("save").onclick = async () => {
    try {
      const saved = await call("PUT", editPath(), { cues });
      status.textContent = `saved (${saved.cues.length} cues, ${saved.violations.length} rule notes)`;
    } catch (e) { status.textContent = `not saved: ${e.message}`; }
  };
  document.getElementById("approve").onclick = async () => {
    try {
      await call("PUT", editPath(), { cues });
      const done = await call("POST", `/v1/videos/${id}/approve`);
      status.textContent = done.approved === "translations" ? "approved (translations)" : "approved";
    } catch (e) { status.textContent = `not approved: ${e.message}`; }
  };

  const editPath = () => lang ? `/v1/videos/${id}/translations/${lang}` : `/v1/videos/${id}/transcript`;

  function languages(t) {
    const shown = langSelect.value;
    langSelect.innerHTML = "";
    for (const [value, label] of [["", `${t.language} (source)`], ...t.translations.map((l) => [l, l])]) {
      const o = document.createElement("option");
      o.value = value; o.textContent = label;
      langSelect.appendChild(o);
    }
    langSelect.value = t.translations.includes(shown) ? shown : "";
  }

  async function loadCues() {
    const r = await fetch(`/v1/videos/${id}/transcript`, { headers: authorized() });
    if (r.status === 401 || r.status === 403) {
      const body = await r.json().catch(() => ({}));
      status.textContent = `not allowed: ${(body.error && body.error.message) || r.status}`;
      if (!link) token.onchange = () => { localStorage.setItem("babelcast-token", token.value); loadCues(); };
      return;
    }
    if (!r.ok) { status.textContent = "waiting for the transcript…"; setTimeout(loadCues, 2000); return; }
    const t = await r.json();
    languages(t);
    source = t.cues;
    lang = langSelect.value;
    if (lang) {
      const tr = await fetch(`/v1/videos/${id}/translations/${lang}`, { headers: authorized() }).then((x) => x.json());
      cues = tr.cues;
      untranslated = new Map(tr.untranslated.map((u) => [u.cue, u.words]));
      status.textContent = `${tr.state.replace(/_/g, " ")}: ${lang}, ${cues.length} cues, ${untranslated.size} with untranslated words`;
    } else {
      cues = t.cues;
      untranslated = new Map();
      status.textContent = `${t.state.replace(/_/g, " ")}: ${cues.length} cues`;
    }
    render();
  }
  langSelect.onchange = () => loadCues();

  async function loadVideo() {
    const r = await fetch(`/v1/videos/${id}/playback`, { headers: authorized() });
    if (!r.ok) { setTimeout(loadVideo, 3000); return; }
    const { url } = await r.json();
    if (window.Hls && Hls.isSupported()) { const hls = new Hls(); hls.loadSource(url); hls.attachMedia(video); }
    else video.src = url;
  }

  loadCues();
  loadVideo();
})();
