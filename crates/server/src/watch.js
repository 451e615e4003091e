// The player page (/watch/{id}/{link}): hls.js with quality, audio-language and
// caption selection. Served as a file so that the page's content security policy
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
  let lastCaptions = -1;

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
    const { url } = await response.json();
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
  start().catch((e) => { status.textContent = String(e); });
})();
