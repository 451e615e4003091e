#!/usr/bin/env node
// Real-browser check of a DASH manifest: serves ROOT_DIR over HTTP on 127.0.0.1, opens
// it in Debian's chromium (driven by playwright-core) with dash.js (npm `dashjs`) or
// Shaka Player (npm `shaka-player`), both pinned in package.json, and prints ONE JSON
// object on stdout: the video representations, audio and text tracks, whether
// playback advances, whether every audio track plays, and (optionally) when a given
// cue is shown. The Rust integration tests judge that JSON.
//
// Usage: node tests/browser/check-dash.mjs ROOT_DIR MPD_REL_PATH --player dashjs|shaka
//          [--cue-at SECONDS --cue-lang LANG] [--timeout-ms N]
//
// Exit status: 0 once the JSON is printed; 2 on bad usage; 3 when the browser could
// not run.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const LIBS = {
  dashjs: path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js'),
  shaka: path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js'),
};
const TYPES = {
  '.mpd': 'application/dash+xml', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4',
  '.vtt': 'text/vtt; charset=utf-8', '.jpg': 'image/jpeg', '.js': 'text/javascript',
  '.html': 'text/html; charset=utf-8',
};

const argv = process.argv.slice(2);
const [root, mpd] = argv;
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const player = opt('--player', 'dashjs');
const cueAt = opt('--cue-at', null) === null ? null : Number(opt('--cue-at'));
const cueLang = opt('--cue-lang', 'en');
const timeoutMs = Number(opt('--timeout-ms', 90000));
if (!root || !mpd || !LIBS[player] || !fs.existsSync(path.join(root, mpd))) {
  process.stderr.write('usage: node tests/browser/check-dash.mjs ROOT_DIR MPD_REL_PATH --player dashjs|shaka\n');
  process.exit(2);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stderr.write(`check-dash: playwright-core is missing (run scripts/test-fixtures.sh): ${e.message}\n`);
  process.exit(3);
}

const notFound = [];
const page = `<!doctype html><html><body><video id="video" muted playsinline width="640"></video>
<script src="/__lib.js"></script></body></html>`;
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file;
  if (url === '/__page.html') {
    res.writeHead(200, { 'Content-Type': TYPES['.html'] });
    res.end(page);
    return;
  } else if (url === '/__lib.js') {
    file = LIBS[player];
  } else {
    file = path.join(path.resolve(root), url);
    if (!file.startsWith(path.resolve(root))) file = null;
  }
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    notFound.push(url);
    res.writeHead(404);
    res.end();
    return;
  }
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const report = { player, mpd, errors: [], http: { notFound } };
let browser;
const timer = setTimeout(() => finish(true), timeoutMs);
async function finish(timedOut) {
  clearTimeout(timer);
  if (timedOut) report.timedOut = true;
  if (browser) await browser.close().catch(() => {});
  server.close();
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  process.exit(0);
}

try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  const tab = await browser.newPage();
  tab.on('pageerror', (e) => report.errors.push(`page error: ${e.message}`));
  await tab.goto(`${base}/__page.html`);
  Object.assign(report, await tab.evaluate(async ({ player, url, cueAt, cueLang }) => {
    const video = document.getElementById('video');
    const out = { errors: [] };
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const until = async (check, ms) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const v = await check();
        if (v) return v;
        await sleep(50);
      }
      return null;
    };
    // One small interface over both players.
    let p;
    if (player === 'dashjs') {
      const d = dashjs.MediaPlayer().create();
      d.updateSettings({ debug: { logLevel: 0 } });
      d.on(dashjs.MediaPlayer.events.ERROR, (e) => out.errors.push(`dash.js: ${JSON.stringify(e.error || e).slice(0, 300)}`));
      const ready = new Promise((r) => d.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, r));
      d.initialize(video, url, false);
      await Promise.race([ready, sleep(20000)]);
      p = {
        heights: () => d.getRepresentationsByType('video').map((r) => r.height),
        audio: () => d.getTracksFor('audio').map((t) => ({ lang: t.lang, roles: (t.roles || []).map((r) => r.value || r) })),
        text: () => d.getTracksFor('text').map((t) => ({ lang: t.lang })),
        selectAudio: (i) => d.setCurrentTrack(d.getTracksFor('audio')[i]),
        showText: (lang) => {
          d.enableText(true);
          const i = d.getTracksFor('text').findIndex((t) => t.lang === lang);
          d.setTextTrack(i);
        },
      };
    } else {
      shaka.polyfill.installAll();
      const s = new shaka.Player();
      s.addEventListener('error', (e) => out.errors.push(`shaka: ${e.detail && e.detail.code}`));
      await s.attach(video);
      await s.load(url).catch((e) => out.errors.push(`shaka load: ${e.code} ${e.message || ''}`));
      const variants = () => s.getVariantTracks();
      // Shaka 5 lists audio tracks on their own (getAudioTracks / selectAudioTrack).
      p = {
        heights: () => [...new Set(variants().map((t) => t.height))],
        audio: () => s.getAudioTracks().map((t) => ({ lang: t.language, roles: t.roles || [] })),
        text: () => s.getTextTracks().map((t) => ({ lang: t.language })),
        selectAudio: (i) => s.selectAudioTrack(s.getAudioTracks()[i]),
        showText: (lang) => {
          const t = s.getTextTracks().find((x) => x.language === lang);
          if (t) s.selectTextTrack(t);
          // Shaka 5 shows the selected track (older versions also need visibility on).
          if (s.setTextTrackVisibility) s.setTextTrackVisibility(true);
        },
      };
    }
    out.heights = p.heights().sort((a, b) => a - b);
    out.audioTracks = p.audio();
    out.textTracks = p.text();
    // Playback advances.
    await video.play().catch((e) => out.errors.push(`play: ${e.message}`));
    const from = video.currentTime;
    await until(() => video.currentTime - from > 1.5, 15000);
    out.playback = { from, to: video.currentTime, advanced: video.currentTime - from > 1.5 };
    out.firstBuffered = video.buffered.length ? video.buffered.start(0) : null;
    // Every audio track plays.
    out.audioSwitch = [];
    for (let i = 0; i < out.audioTracks.length; i++) {
      p.selectAudio(i);
      const t0 = video.currentTime;
      const ok = await until(() => video.currentTime - t0 > 1, 10000);
      out.audioSwitch.push({ lang: out.audioTracks[i].lang, ok: !!ok });
    }
    // The cue at T: shown when the video is at T.
    if (cueAt !== null) {
      const rec = { expected: cueAt, shownAt: null, cueStart: null, text: null };
      out.cueTiming = rec;
      video.pause();
      p.showText(cueLang);
      video.currentTime = Math.max(0, cueAt - 2);
      await until(() => video.readyState >= 3, 10000);
      const near = (c) => Math.abs(c.startTime - cueAt) < 0.5;
      const tracks = () => [...video.textTracks].filter((t) => t.mode !== 'disabled');
      const loaded = await until(() => tracks().flatMap((t) => [...(t.cues || [])]).find(near), 10000);
      if (!loaded) {
        rec.error = 'the cue never loaded';
      } else {
        rec.cueStart = loaded.startTime;
        await video.play();
        const got = await until(() => {
          const at = video.currentTime;
          const active = tracks().flatMap((t) => [...(t.activeCues || [])]).find(near);
          return active ? { at, text: active.text } : null;
        }, 15000);
        if (got) {
          rec.shownAt = Math.round(got.at * 1000) / 1000;
          rec.text = got.text;
        }
      }
    }
    video.pause();
    return out;
  }, { player, url: `${base}/${mpd}`, cueAt, cueLang }).catch((e) => ({ errors: [String(e.message || e)] })));
} catch (e) {
  report.errors.push(String(e && e.message ? e.message : e));
}
await finish(false);
