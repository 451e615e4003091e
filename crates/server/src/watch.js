// The player page (/watch/{id}/{link}): hls.js (or dash.js, for a CMAF package,
// with ?format=dash) with quality, audio-language and caption selection, the poster, and a seek bar that previews the picture under
// the pointer from the package's thumbnails track. Served as a file so that the page's content security policy
// allows no inline script.
(() => {
  // The page's own address says which video and holds the viewer link:
  // /watch/{id}/{link}. The link goes to the API in the Authorization header.
  const [, , id, link] = location.pathname.split("/");
  const video = document.getElementById("video");
  const quality = document.getElementById("quality");
  const audio = document.getElementById("audio");
  const captions = document.getElementById("captions");
  const cc = document.getElementById("cc");
  const status = document.getElementById("status");
  const format = document.getElementById("format");
  const formatChoice = document.getElementById("format-choice");
  let lastCaptions = -1;
  const seek = document.getElementById("seek");
  const played = document.getElementById("seek-played");
  const preview = document.getElementById("preview");
  const previewImage = document.getElementById("preview-image");
  const previewTime = document.getElementById("preview-time");
  // The thumbnails track's cues: { start, end, image (absolute URL), x, y, w, h }.
  let thumbs = [];

  function seconds(stamp) {
    const [h, m, s] = stamp.trim().split(":");
    return Number(h) * 3600 + Number(m) * 60 + Number(s);
  }

  // A WebVTT thumbnails track: each cue's text is `image#xywh=x,y,w,h`, relative to
  // the track's own URL.
  async function loadThumbnails(trackUrl) {
    const response = await fetch(trackUrl);
    if (!response.ok) return;
    const base = new URL(trackUrl, location.href);
    thumbs = [];
    for (const block of (await response.text()).split(/\r?\n\r?\n/)) {
      const lines = block.split(/\r?\n/).filter((l) => l.trim());
      const timing = lines.findIndex((l) => l.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [from, to] = lines[timing].split("-->");
      const [file, fragment] = lines[timing + 1].trim().split("#xywh=");
      if (!fragment) continue;
      const [x, y, w, h] = fragment.split(",").map(Number);
      thumbs.push({ start: seconds(from), end: seconds(to), image: new URL(file, base).href, x, y, w, h });
    }
  }

  function duration() {
    if (Number.isFinite(video.duration) && video.duration > 0) return video.duration;
    return thumbs.length ? thumbs[thumbs.length - 1].end : 0;
  }

  function timeAt(event) {
    const box = seek.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return { fraction, time: fraction * duration() };
  }

  function clock(t) {
    const s = Math.floor(t);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  seek.addEventListener("mousemove", (event) => {
    const { fraction, time } = timeAt(event);
    const cue = thumbs.find((c) => time >= c.start && time < c.end) || (time >= duration() ? thumbs[thumbs.length - 1] : null);
    if (!cue) { preview.hidden = true; return; }
    Object.assign(previewImage.style, {
      width: `${cue.w}px`, height: `${cue.h}px`,
      backgroundImage: `url("${cue.image}")`, backgroundPosition: `-${cue.x}px -${cue.y}px`,
    });
    previewTime.textContent = clock(time);
    preview.style.left = `${fraction * 100}%`;
    preview.hidden = false;
    // What the preview shows, for tests and debugging.
    window.seekPreview = { time, image: cue.image, x: cue.x, y: cue.y, w: cue.w, h: cue.h };
  });
  seek.addEventListener("mouseleave", () => { preview.hidden = true; });
  seek.addEventListener("click", (event) => { video.currentTime = timeAt(event).time; });
  video.addEventListener("timeupdate", () => {
    const d = duration();
    played.style.width = d ? `${(video.currentTime / d) * 100}%` : "0";
    seek.setAttribute("aria-valuenow", String(Math.round(video.currentTime)));
  });

  function option(select, value, text) {
    const o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    select.appendChild(o);
  }

  async function start() {
    const response = await fetch(`/v1/videos/${id}/playback`, { headers: { Authorization: `Bearer ${link}` } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      status.textContent = (body.error && body.error.message) || `not playable yet (${response.status})`;
      // A refused link stays refused; a video not packaged yet is worth a retry.
      if (response.status !== 401 && response.status !== 403) setTimeout(start, 3000);
      return;
    }
    const { url, dash, poster, thumbnails } = await response.json();
    if (poster) video.poster = poster;
    if (thumbnails) loadThumbnails(thumbnails).catch(() => {});
    // A CMAF package plays as DASH too: the switch reloads the page in that format.
    const wantDash = new URLSearchParams(location.search).get("format") === "dash";
    if (dash) {
      formatChoice.hidden = false;
      format.value = wantDash ? "dash" : "hls";
      format.onchange = () => { location.search = format.value === "dash" ? "?format=dash" : ""; };
    }
    if (dash && wantDash) return playDash(dash);
    return playHls(url);
  }

  function playHls(url) {
    if (!window.Hls || !Hls.isSupported()) {
      if (video.canPlayType("application/vnd.apple.mpegurl")) { video.src = url; return; }
      status.textContent = "This browser cannot play HLS.";
      return;
    }
    const hls = new Hls({ subtitleDisplay: false });
    window.player = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      hls.levels.forEach((l, i) => option(quality, i, `${l.height}p`));
      status.textContent = "";
    });
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => {
      audio.innerHTML = "";
      hls.audioTracks.forEach((t, i) => option(audio, i, t.name || t.lang || `Track ${i + 1}`));
      audio.value = String(hls.audioTrack);
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      captions.innerHTML = "";
      option(captions, -1, "Off");
      hls.subtitleTracks.forEach((t, i) => option(captions, i, t.name || t.lang));
      captions.value = String(hls.subtitleTrack);
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) status.textContent = `Playback error: ${data.details}`;
    });
    quality.onchange = () => { hls.currentLevel = Number(quality.value); };
    audio.onchange = () => { hls.audioTrack = Number(audio.value); };
    function showCaptions(index) {
      hls.subtitleTrack = index;
      hls.subtitleDisplay = index >= 0;
      captions.value = String(index);
      cc.setAttribute("aria-pressed", String(index >= 0));
      if (index >= 0) lastCaptions = index;
    }
    captions.onchange = () => showCaptions(Number(captions.value));
    cc.onclick = () => {
      if (hls.subtitleTrack >= 0) showCaptions(-1);
      else showCaptions(lastCaptions >= 0 ? lastCaptions : (hls.subtitleTracks.length ? 0 : -1));
    };
    window.showCaptions = showCaptions;
    hls.loadSource(url);
    hls.attachMedia(video);
  }

  // dash.js is loaded only when DASH is chosen.
  async function playDash(url) {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/assets/dash.mediaplayer.min.js";
      script.onload = resolve;
      script.onerror = () => reject(new Error("dash.js did not load"));
      document.head.appendChild(script);
    });
    const d = dashjs.MediaPlayer().create();
    window.dashPlayer = d;
    d.updateSettings({ debug: { logLevel: 1 } });
    const label = (t) => (t.labels && t.labels[0] && t.labels[0].text) || t.lang;
    let textShown = -1;
    d.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => {
      d.getRepresentationsByType("video").forEach((r, i) => option(quality, i, `${r.height}p`));
      audio.innerHTML = "";
      d.getTracksFor("audio").forEach((t, i) => option(audio, i, label(t) || `Track ${i + 1}`));
      captions.innerHTML = "";
      option(captions, -1, "Off");
      d.getTracksFor("text").forEach((t, i) => option(captions, i, label(t)));
      status.textContent = "";
    });
    d.on(dashjs.MediaPlayer.events.ERROR, (e) => {
      status.textContent = `Playback error: ${(e.error && e.error.message) || "DASH"}`;
    });
    quality.onchange = () => {
      const i = Number(quality.value);
      d.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: i < 0 } } } });
      if (i >= 0) d.setRepresentationForTypeByIndex("video", i);
    };
    audio.onchange = () => d.setCurrentTrack(d.getTracksFor("audio")[Number(audio.value)]);
    function showCaptions(index) {
      d.enableText(index >= 0);
      if (index >= 0) d.setTextTrack(index);
      textShown = index;
      captions.value = String(index);
      cc.setAttribute("aria-pressed", String(index >= 0));
      if (index >= 0) lastCaptions = index;
    }
    captions.onchange = () => showCaptions(Number(captions.value));
    cc.onclick = () => {
      if (textShown >= 0) showCaptions(-1);
      else showCaptions(lastCaptions >= 0 ? lastCaptions : (d.getTracksFor("text").length ? 0 : -1));
    };
    window.showCaptions = showCaptions;
    d.initialize(video, url, false);
  }
  start().catch((e) => { status.textContent = String(e); });
})();
