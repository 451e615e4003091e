// The operator's dashboard (/): sign in with a key, the videos with their state
// and live progress, upload with options, and per video its player, review page
// or review link, downloads, dub quality, cancel, retry and delete. Served as a
// file so that the page's content security policy allows no inline script. The
// key stays in this tab's sessionStorage and goes only in the Authorization
// header; every text from the server is set as text, never as HTML.
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = "babelcast-key";
  let key = sessionStorage.getItem(KEY) || "";
  let cursor = null;
  let pages = 1; // pages of the list shown: "More" adds one, the poll keeps them
  let selected = null;
  let timer = null;
  let refreshing = null; // the refresh under way; another one asked meanwhile runs after it
  let again = false;

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function show(id, visible) { $(id).classList.toggle("hidden", !visible); }

  function message(text, refused) {
    $("message").textContent = text;
    $("message").className = refused ? "refused" : "";
  }

  // A call to the API with the key; a refused key signs out.
  async function api(method, path, body) {
    const init = { method, headers: { Authorization: `Bearer ${key}` } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const json = await response.json().catch(() => ({}));
    if (response.status === 401) {
      signOut("key refused");
      throw new Error("key refused");
    }
    if (!response.ok) {
      const why = (json.error && json.error.message) || `the server answered ${response.status}`;
      throw new Error(response.status === 403 ? `this key may not do that: ${why}` : why);
    }
    return json;
  }

  function signOut(why) {
    key = "";
    sessionStorage.removeItem(KEY);
    clearInterval(timer);
    selected = null;
    show("app", false);
    show("signin", true);
    show("signout", false);
    $("whoami").textContent = "";
    $("signin-status").textContent = why || "";
  }

  async function signIn(candidate) {
    key = candidate;
    try {
      await api("GET", "/v1/videos?limit=1");
    } catch (e) {
      $("signin-status").textContent = e.message;
      return;
    }
    sessionStorage.setItem(KEY, key);
    $("signin-status").textContent = "";
    show("signin", false);
    show("app", true);
    show("signout", true);
    $("whoami").textContent = "signed in";
    await refresh();
    clearInterval(timer);
    timer = setInterval(refresh, 2000);
  }

  function when(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 16);
  }

  function videoRow(video) {
    const row = el("tr", undefined, "video");
    row.dataset.id = video.id;
    if (video.id === selected) row.classList.add("selected");
    row.appendChild(el("td", video.source_name));
    row.appendChild(el("td", video.state, `state state-${video.state}`));
    row.appendChild(el("td", when(video.created_ms)));
    row.appendChild(el("td", undefined, "running"));
    row.onclick = () => {
      if (selected !== video.id) {
        $("review-link-url").value = "";
        show("review-link-box", false);
      }
      selected = video.id;
      refresh();
    };
    return row;
  }

  // A processing video's running stages, each with its progress bar.
  async function fillRunning(row) {
    const status = await api("GET", `/v1/videos/${row.dataset.id}`);
    const cell = row.querySelector("td.running");
    cell.replaceChildren(...status.stages.filter((s) => s.state === "running").map((stage) => {
      const item = el("div", `${stage.stage} `);
      const bar = el("progress", undefined, "video-progress");
      bar.max = 1;
      if (typeof stage.progress === "number") bar.value = stage.progress;
      item.appendChild(bar);
      return item;
    }));
  }

  // The first page again and the pages shown after it, newest first; then the
  // progress of each processing video among them.
  async function refreshList() {
    const filter = $("state-filter").value;
    const query = (after) => `/v1/videos?limit=50${filter ? `&state=${encodeURIComponent(filter)}` : ""}${after ? `&cursor=${encodeURIComponent(after)}` : ""}`;
    const rows = [];
    let after = null;
    for (let n = 0; n < pages; n++) {
      const page = await api("GET", query(after));
      rows.push(...page.videos.map(videoRow));
      after = page.next_cursor || null;
      if (!after) break;
    }
    $("videos").replaceChildren(...rows);
    cursor = after;
    show("more", Boolean(cursor));
    const processing = rows.filter((row) => row.querySelector(".state").textContent === "processing");
    // One video gone meanwhile (deleted) leaves its cell empty, not the list.
    await Promise.all(processing.map((row) => fillRunning(row).catch(() => {})));
  }

  async function refreshDetail() {
    if (!selected) { show("detail", false); return; }
    let status;
    try {
      status = await api("GET", `/v1/videos/${selected}`);
    } catch (e) {
      show("detail", false);
      selected = null;
      return;
    }
    show("detail", true);
    $("detail-name").textContent = status.source_name;
    $("detail-id").textContent = status.id;
    $("detail-state").textContent = status.state;
    $("detail-state").className = `state state-${status.state}`;
    $("detail-error").textContent = status.error || "";
    $("detail-warnings").replaceChildren(...status.warnings.map((w) => el("li", w, "warning")));
    const inProgress = status.state === "processing" || status.state === "awaiting_review";
    $("cancel").disabled = !inProgress;
    $("approve").disabled = status.state !== "awaiting_review";
    $("watch").disabled = !status.outputs.master;
    $("stages").replaceChildren(...status.stages.map((stage) => {
      const row = el("tr");
      row.appendChild(el("td", stage.stage));
      row.appendChild(el("td", stage.error ? `${stage.state}: ${stage.error}` : stage.state, `state-${stage.state}`));
      const cell = el("td");
      if (stage.state === "running") {
        const bar = el("progress", undefined, "stage-progress");
        bar.max = 1;
        if (typeof stage.progress === "number") bar.value = stage.progress;
        cell.appendChild(bar);
      }
      row.appendChild(cell);
      const action = el("td");
      if (stage.state === "dead") {
        const retry = el("button", "Retry", "retry");
        retry.type = "button";
        retry.onclick = () => act(() => api("POST", `/v1/videos/${status.id}/stages/${encodeURIComponent(stage.stage)}/retry`), `${stage.stage} queued again`);
        action.appendChild(retry);
      }
      row.appendChild(action);
      return row;
    }));
    $("downloads").replaceChildren(...status.downloads.map((d) => {
      const item = el("li");
      const button = el("button", d.path, "download");
      button.type = "button";
      button.dataset.path = d.path;
      button.onclick = () => download(d).catch((e) => message(e.message, true));
      item.appendChild(button);
      return item;
    }));
    $("dubs").replaceChildren(...status.dubs.map((dub) => {
      const row = el("tr");
      const qa = dub.qa || {};
      row.appendChild(el("td", dub.language));
      row.appendChild(el("td", typeof qa.fit_without_speedup === "number" ? `${Math.round(qa.fit_without_speedup * 100)}%` : "?"));
      row.appendChild(el("td", typeof qa.max_speed === "number" ? `${qa.max_speed.toFixed(2)}×` : "?"));
      row.appendChild(el("td", qa.overflowing ?? "?"));
      row.appendChild(el("td", qa.cut ?? "?"));
      return row;
    }));
  }

  // One refresh at a time: a slow server must not pile up polls, and a click
  // during one is shown by the one run right after it.
  function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        try {
          await refreshList();
          await refreshDetail();
        } catch (e) {
          if (key) message(e.message, true);
        }
      } while (again && key);
      refreshing = null;
    })();
    return refreshing;
  }

  async function act(call, done) {
    try {
      await call();
      message(done);
      await refresh();
    } catch (e) {
      message(e.message, true);
    }
  }

  // Downloads need the key in a header: fetched as a blob, saved under the
  // server's file name.
  async function download(d) {
    message(`downloading ${d.path}…`);
    const response = await fetch(d.url, { headers: { Authorization: `Bearer ${key}` } });
    if (!response.ok) throw new Error(`${d.path}: the server answered ${response.status}`);
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a");
    a.href = url;
    a.download = match ? match[1] : d.path.replace(/\//g, ".");
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    message(`downloaded ${a.download}`);
  }

  function upload(event) {
    event.preventDefault();
    const file = $("file").files[0];
    if (!file) return;
    const options = {
      language: $("language").value,
      to: $("targets").value.split(",").map((t) => t.trim()).filter(Boolean),
      review: $("review").checked,
      review_translations: $("review-translations").checked,
    };
    const transcript = $("transcript").files[0];
    if (transcript) options.retime = $("retime").checked;
    const glossary = $("glossary").files[0];
    const send = (glossaryText) => {
      if (glossaryText !== undefined) {
        try {
          options.glossary = JSON.parse(glossaryText);
        } catch (e) {
          $("upload-status").textContent = `the glossary is not JSON: ${e.message}`;
          return;
        }
      }
      const form = new FormData();
      form.append("options", JSON.stringify(options));
      if (transcript) form.append("transcript", transcript, transcript.name);
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/videos");
      xhr.setRequestHeader("Authorization", `Bearer ${key}`);
      show("upload-progress", true);
      xhr.upload.onprogress = (p) => { if (p.lengthComputable) $("upload-progress").value = p.loaded / p.total; };
      xhr.onload = () => {
        show("upload-progress", false);
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 202) {
          $("upload-status").textContent = "uploaded";
          selected = body.id;
          refresh();
        } else {
          const why = (body.error && body.error.message) || `the server answered ${xhr.status}`;
          $("upload-status").textContent = xhr.status === 403 ? `this key may not upload: ${why}` : why;
        }
      };
      xhr.onerror = () => { show("upload-progress", false); $("upload-status").textContent = "the upload was cut off"; };
      $("upload-status").textContent = "uploading…";
      xhr.send(form);
    };
    if (glossary) glossary.text().then(send); else send();
  }

  $("signin-form").onsubmit = (e) => { e.preventDefault(); signIn($("key").value.trim()); };
  $("signout").onclick = () => signOut("");
  $("upload-form").onsubmit = upload;
  $("state-filter").onchange = () => { pages = 1; refresh(); };
  $("more").onclick = () => { pages += 1; refresh(); };
  $("watch").onclick = () => act(async () => {
    const link = await api("POST", `/v1/videos/${selected}/links/view`, {});
    window.open(link.url, "_blank", "noopener");
  }, "player opened");
  $("review-page").onclick = () => window.open(`/review/${selected}`, "_blank", "noopener");
  $("review-link").onclick = () => act(async () => {
    const link = await api("POST", `/v1/videos/${selected}/links/review`, {});
    $("review-link-url").value = new URL(link.url, location.origin).href;
    show("review-link-box", true);
  }, "review link made");
  // The clipboard API exists on https and localhost only; elsewhere the old way.
  $("copy").onclick = () => {
    const input = $("review-link-url");
    const byHand = () => {
      input.select();
      const done = document.execCommand && document.execCommand("copy");
      message(done ? "copied" : "select the link and copy it", !done);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(() => message("copied"), byHand);
    } else {
      byHand();
    }
  };
  $("approve").onclick = () => act(() => api("POST", `/v1/videos/${selected}/approve`), "approved");
  $("cancel").onclick = () => act(() => api("POST", `/v1/videos/${selected}/cancel`), "cancelled");
  $("delete").onclick = () => {
    if (!confirm("Delete this video and everything it made?")) return;
    act(async () => { await api("DELETE", `/v1/videos/${selected}`); selected = null; show("detail", false); }, "deleted");
  };

  if (key) signIn(key); else signOut("");
})();
