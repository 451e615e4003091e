#!/usr/bin/env node
// Real-browser check of an HLS package: serves ROOT_DIR over HTTP on 127.0.0.1, opens it
// in Debian's chromium (driven by playwright-core) with hls.js, and prints ONE JSON
// object on stdout describing what the player saw: renditions, audio and subtitle
// tracks, whether playback advances, audio switching, subtitle cues and (optionally)
// when a given cue is shown. The Rust integration tests judge that JSON.
//
// Usage: node tests/browser/check-hls.mjs ROOT_DIR MASTER_REL_PATH
//          [--cue-at SECONDS --cue-lang LANG [--cue-tolerance SECONDS]]
//          [--timeout-ms N] [--step-timeout-ms N]
//
// Exit status: 0 once the JSON is printed, whatever the checks found; 2 on bad usage
// or a missing input (ROOT_DIR, the master playlist); 3 when the checker could not run
// (chromium or the node packages missing, the browser failing to start, the overall
// timeout reached before there was anything to report). Messages go to stderr.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

const USAGE =
  'usage: node tests/browser/check-hls.mjs ROOT_DIR MASTER_REL_PATH ' +
  '[--cue-at SECONDS --cue-lang LANG [--cue-tolerance SECONDS]] [--timeout-ms N] [--step-timeout-ms N]';

function die(code, message) {
  process.stderr.write(`check-hls: ${message}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const positional = [];
  const opts = { cueAt: null, cueLang: null, cueTolerance: 0.05, timeoutMs: 120000, stepTimeoutMs: 15000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) die(2, `${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    const number = (v, what) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) die(2, `${what} must be a non-negative number, got ${JSON.stringify(v)}`);
      return n;
    };
    if (a === '--cue-at') opts.cueAt = number(value(), '--cue-at');
    else if (a === '--cue-lang') opts.cueLang = value();
    else if (a === '--cue-tolerance') opts.cueTolerance = number(value(), '--cue-tolerance');
    else if (a === '--timeout-ms') opts.timeoutMs = number(value(), '--timeout-ms');
    else if (a === '--step-timeout-ms') opts.stepTimeoutMs = number(value(), '--step-timeout-ms');
    else if (a === '-h' || a === '--help') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a.startsWith('--')) die(2, `unknown option ${a}\n${USAGE}`);
    else positional.push(a);
  }
  if (positional.length !== 2) die(2, USAGE);
  if ((opts.cueAt === null) !== (opts.cueLang === null)) die(2, '--cue-at and --cue-lang go together');
  if (opts.timeoutMs < 20000) die(2, '--timeout-ms must be at least 20000');
  [opts.root, opts.master] = positional;
  return opts;
}

// ---------------------------------------------------------------- static server

const CONTENT_TYPES = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.m3u': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.mp3': 'audio/mpeg',
  '.vtt': 'text/vtt; charset=utf-8',
  '.webvtt': 'text/vtt; charset=utf-8',
  '.json': 'application/json',
  '.key': 'application/octet-stream',
};

const PLAYER_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>babelcast hls check</title></head>
<body><video id="v" muted playsinline preload="auto" width="640" height="360"></video>
<script src="/__hls.js"></script></body></html>
`;

function startServer(root, hlsJsPath) {
  const stats = { requests: 0, notFound: [], refused: [] };
  const rootPrefix = root.endsWith(path.sep) ? root : root + path.sep;
  const server = http.createServer((req, res) => {
    stats.requests++;
    res.setHeader('Cache-Control', 'no-store');
    const send = (status, type, body) => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    } catch {
      return send(400, 'text/plain', 'bad request\n');
    }
    if (pathname === '/__player.html') return send(200, 'text/html; charset=utf-8', PLAYER_HTML);
    if (pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    let file = hlsJsPath;
    if (pathname !== '/__hls.js') {
      file = path.resolve(root, '.' + pathname);
      if (pathname.includes('\0') || !file.startsWith(rootPrefix)) {
        stats.refused.push(pathname);
        return send(403, 'text/plain', 'forbidden\n');
      }
    }
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        if (stats.notFound.length < 50) stats.notFound.push(pathname);
        return send(404, 'text/plain', 'not found\n');
      }
      const type =
        file === hlsJsPath
          ? 'text/javascript; charset=utf-8'
          : CONTENT_TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
      const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes' };
      let start = 0;
      let end = st.size - 1;
      let status = 200;
      const range = req.headers.range && /^bytes=(\d*)-(\d*)$/.exec(req.headers.range.trim());
      if (req.headers.range) {
        if (!range || (range[1] === '' && range[2] === '')) {
          res.writeHead(416, { 'Content-Range': `bytes */${st.size}` });
          return res.end();
        }
        if (range[1] === '') {
          start = Math.max(0, st.size - Number(range[2]));
        } else {
          start = Number(range[1]);
          if (range[2] !== '') end = Math.min(end, Number(range[2]));
        }
        if (start > end || start >= st.size) {
          res.writeHead(416, { 'Content-Range': `bytes */${st.size}` });
          return res.end();
        }
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
      }
      headers['Content-Length'] = st.size === 0 ? 0 : end - start + 1;
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || st.size === 0) return res.end();
      const stream = fs.createReadStream(file, { start, end });
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, stats, port: server.address().port }));
  });
}

// ---------------------------------------------------------------- in-page checks

// Runs inside the page (serialized by playwright): must not refer to anything outside.
async function pageChecks(opts) {
  const { masterUrl, cueAt, cueLang, cueTolerance, stepMs, budgetMs } = opts;
  const t0 = performance.now();
  const left = () => budgetMs - (performance.now() - t0);
  const limit = (ms) => Math.max(0, Math.min(ms ?? stepMs, left()));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const round = (x, d = 3) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toFixed(d)) : x ?? null);

  const R = (window.__result = {
    master: masterUrl,
    hlsVersion: typeof Hls === 'undefined' ? null : Hls.version,
    hlsSupported: false,
    mse: {},
    manifestParsed: false,
    levels: [],
    audioTracks: [],
    subtitleTracks: [],
    playback: null,
    audioSwitch: [],
    subtitleCues: [],
    errors: [],
  });
  if (cueAt !== null) R.cueTiming = null;
  // Hands a copy of the results so far to node after each step, for the overall timeout.
  const progress = () => {
    try {
      window.__checkProgress?.(JSON.parse(JSON.stringify(R)));
    } catch {}
  };
  let phase = 'setup';
  const errors = R.errors;
  window.addEventListener('error', (e) =>
    errors.push({ type: 'pageError', details: String(e.message || e.error), fatal: false, phase }),
  );
  window.addEventListener('unhandledrejection', (e) =>
    errors.push({ type: 'pageError', details: `unhandled rejection: ${e.reason}`, fatal: false, phase }),
  );

  const MSE = window.ManagedMediaSource || window.MediaSource;
  for (const t of [
    'video/mp4; codecs="avc1.64001f,mp4a.40.2"',
    'video/mp4; codecs="avc1.64001f"',
    'audio/mp4; codecs="mp4a.40.2"',
  ]) {
    R.mse[t] = !!(MSE && MSE.isTypeSupported(t));
  }
  if (typeof Hls === 'undefined') {
    errors.push({ type: 'checker', details: 'hls.js did not load', fatal: true, phase });
    return R;
  }
  R.hlsSupported = Hls.isSupported();
  if (!R.hlsSupported) {
    errors.push({ type: 'checker', details: 'Hls.isSupported() is false (no usable MediaSource)', fatal: true, phase });
    return R;
  }

  const video = document.getElementById('v');
  video.muted = true;
  const hls = (window.__hls = new Hls({ enableWorker: true }));
  const E = Hls.Events;
  hls.on(E.ERROR, (_, d) => {
    const e = { type: d.type, details: d.details, fatal: !!d.fatal, phase };
    const msg = d.error?.message || d.reason;
    if (msg) e.message = String(msg);
    const url = d.frag?.url || d.url || d.context?.url;
    if (url) e.url = url;
    if (d.response?.code) e.httpStatus = d.response.code;
    errors.push(e);
  });
  const fatalSince = (n) => errors.slice(n).find((e) => e.fatal);
  const errorText = (e) => `${e.type}/${e.details}${e.message ? ': ' + e.message : ''}`;

  // A fatal hls.js error stops the player (hls.js leaves recovery to the application),
  // so waits end early on one and later steps are skipped.
  const firstFatal = () => errors.find((e) => e.fatal && e.type !== 'checker') ?? null;
  // Resolves with the event data when `pred(data)` holds, or null after `ms` or on a
  // fatal error.
  const waitEvent = (ev, pred = () => true, ms) =>
    new Promise((resolve) => {
      const done = (v) => {
        clearTimeout(timer);
        hls.off(ev, h);
        hls.off(E.ERROR, onErr);
        resolve(v);
      };
      const h = (_, d) => pred(d) && done(d);
      const onErr = (_, d) => d.fatal && done(null);
      const timer = setTimeout(() => done(null), limit(ms));
      hls.on(ev, h);
      hls.on(E.ERROR, onErr);
    });
  // Polls `cond` (in the page, every 25 ms) until truthy; returns its value, or null
  // after `ms` or once a fatal error has happened.
  const waitFor = async (cond, ms) => {
    const end = performance.now() + limit(ms);
    for (;;) {
      const v = cond();
      if (v) return v;
      if (performance.now() >= end || firstFatal()) return null;
      await sleep(25);
    }
  };
  const skipReason = (need = 2000) => {
    const f = firstFatal();
    if (f) return `skipped: fatal hls.js error earlier (${errorText(f)})`;
    if (left() < need) return 'skipped: overall timeout';
    return null;
  };
  const seek = async (t) => {
    if (Math.abs(video.currentTime - t) < 0.001) return;
    const done = new Promise((r) => video.addEventListener('seeked', r, { once: true }));
    video.currentTime = t;
    await Promise.race([done, sleep(limit(5000))]);
  };
  const play = async () => {
    try {
      await Promise.race([video.play(), sleep(limit(5000))]);
      return null;
    } catch (e) {
      return `video.play() failed: ${e?.message || e}`;
    }
  };
  // Plays and checks that currentTime moves on by `need` seconds; seeks back to the
  // start first when too close to the end.
  const checkAdvance = async (need = 1.0, ms) => {
    const dur = video.duration;
    if (Number.isFinite(dur) && dur - video.currentTime < need + 1.5) await seek(0);
    if (video.ended) await seek(0);
    const playError = await play();
    const from = video.currentTime;
    const ok = await waitFor(() => video.currentTime - from >= need && !video.paused, ms);
    const out = { advanced: !!ok, from: round(from), to: round(video.currentTime) };
    if (playError) out.error = playError;
    else if (!ok)
      out.error = `currentTime went from ${round(from)} to ${round(video.currentTime)} (paused=${video.paused}, readyState=${video.readyState})`;
    return out;
  };

  // -- manifest
  phase = 'manifest';
  const parsed = new Promise((resolve) => {
    hls.once(E.MANIFEST_PARSED, (_, d) => resolve(d));
    hls.on(E.ERROR, (_, d) => d.fatal && resolve(null));
    setTimeout(() => resolve(null), limit());
  });
  hls.attachMedia(video);
  hls.loadSource(masterUrl);
  const manifest = await parsed;
  if (!manifest) {
    if (!fatalSince(0))
      errors.push({ type: 'checker', details: 'no MANIFEST_PARSED before the step timeout', fatal: true, phase });
    return R;
  }
  R.manifestParsed = true;
  R.levels = hls.levels.map((l, i) => ({
    index: i,
    width: l.width,
    height: l.height,
    bitrate: l.bitrate,
    averageBitrate: l.attrs?.['AVERAGE-BANDWIDTH'] ? Number(l.attrs['AVERAGE-BANDWIDTH']) : null,
    maxBitrate: l.maxBitrate,
    videoCodec: l.videoCodec ?? null,
    audioCodec: l.audioCodec ?? null,
    codecs: l.attrs?.CODECS ?? null,
    frameRate: l.frameRate,
    audioGroup: l.audioGroups?.[0] ?? null,
    subtitleGroup: l.subtitleGroups?.[0] ?? null,
    url: l.url?.[0] ?? l.uri ?? null,
  }));
  const trackInfo = (t) => ({
    id: t.id,
    lang: t.lang ?? null,
    name: t.name,
    default: !!t.default,
    autoselect: !!t.autoselect,
    groupId: t.groupId ?? null,
    url: t.url,
  });
  R.audioTracks = hls.audioTracks.map(trackInfo);
  R.subtitleTracks = hls.subtitleTracks.map(trackInfo);
  for (const l of R.levels) {
    const c = [l.videoCodec, l.audioCodec].filter(Boolean).join(',');
    if (!c) continue;
    const t = `video/mp4; codecs="${c}"`;
    if (!(t in R.mse)) R.mse[t] = !!MSE.isTypeSupported(t);
  }

  progress();
  // -- playback
  phase = 'playback';
  await waitFor(() => video.readyState >= 2);
  R.playback = await checkAdvance(1.0);
  if (!R.playback.advanced && firstFatal()) R.playback.error = errorText(firstFatal());
  R.playback.videoWidth = video.videoWidth;
  R.playback.videoHeight = video.videoHeight;
  R.playback.level = hls.currentLevel;
  // Where the first buffered media sits on the timeline (hls.js puts 0 at the lowest
  // DTS of the first main fragment, so with B-frames the first video frame is a little later).
  R.playback.bufferedStart = video.buffered.length ? round(video.buffered.start(0)) : null;
  R.playback.audioTrack = hls.audioTrack;

  progress();
  // -- audio switching: every track, the initially selected one last so that each
  // one is really switched to when there are two or more.
  phase = 'audioSwitch';
  const initialAudio = hls.audioTrack;
  const order = hls.audioTracks.map((t) => t.id).filter((id) => id !== initialAudio);
  if (hls.audioTracks.some((t) => t.id === initialAudio)) order.push(initialAudio);
  for (const id of order) {
    const t = hls.audioTracks.find((x) => x.id === id);
    const rec = { id, lang: t.lang ?? null, name: t.name, ok: false, switched: false, error: null };
    if (skipReason()) {
      rec.error = skipReason();
      R.audioSwitch.push(rec);
      continue;
    }
    const nErr = errors.length;
    let frags = 0;
    const onFrag = (_, d) => {
      if (d.frag?.type === 'audio' && d.frag.level === id) frags++;
    };
    hls.on(E.FRAG_BUFFERED, onFrag);
    if (hls.audioTrack === id) {
      rec.switched = true;
      rec.note = 'already selected';
    } else {
      const sw = waitEvent(E.AUDIO_TRACK_SWITCHED, (d) => d.id === id);
      hls.audioTrack = id;
      rec.switched = !!(await sw);
    }
    rec.selected = hls.audioTrack === id;
    const adv = await checkAdvance(1.0);
    hls.off(E.FRAG_BUFFERED, onFrag);
    rec.fragmentsBuffered = frags;
    rec.advanced = adv.advanced;
    rec.from = adv.from;
    rec.to = adv.to;
    const fatal = fatalSince(nErr);
    rec.ok = rec.switched && rec.selected && adv.advanced && !fatal;
    if (fatal) rec.error = errorText(fatal);
    else if (!rec.switched) rec.error = 'no AUDIO_TRACK_SWITCHED before the step timeout';
    else if (!rec.selected) rec.error = `hls.audioTrack is ${hls.audioTrack}, not ${id}`;
    else if (!adv.advanced) rec.error = adv.error;
    const others = errors.slice(nErr).filter((e) => !e.fatal);
    if (others.length) rec.nonFatalErrors = others.map(errorText);
    R.audioSwitch.push(rec);
    progress();
  }
  R.audioSwitch.sort((a, b) => a.id - b.id);

  progress();
  // -- subtitles
  phase = 'subtitleCues';
  const textTrackOf = (t) => {
    if (t.trackNode?.track) return t.trackNode.track;
    const tracks = Array.from(video.textTracks).filter((x) => x.kind === 'subtitles' || x.kind === 'captions');
    return tracks.find((x) => x.label === t.name && x.language === (t.lang ?? '')) ?? null;
  };
  const cueList = (tt) => (tt?.cues ? Array.from(tt.cues) : []);
  const cueInfo = (c) => ({ start: round(c.startTime), end: round(c.endTime), text: c.text });
  const enableSubtitle = async (id) => {
    const t = hls.subtitleTracks.find((x) => x.id === id);
    let switched = hls.subtitleTrack === id;
    if (!switched) {
      const sw = waitEvent(E.SUBTITLE_TRACK_SWITCH, (d) => d.id === id);
      hls.subtitleTrack = id;
      switched = !!(await sw);
    }
    const tt = textTrackOf(t);
    if (tt && tt.mode === 'disabled') tt.mode = 'hidden';
    return { t, tt, switched };
  };
  for (const st of hls.subtitleTracks) {
    const id = st.id;
    const rec = { id, lang: st.lang ?? null, name: st.name, ok: false, cueCount: 0, cues: [], error: null };
    if (skipReason()) {
      rec.error = skipReason();
      R.subtitleCues.push(rec);
      continue;
    }
    const nErr = errors.length;
    // Count this track's processed fragments from the moment it is enabled.
    let fragsOk = 0;
    let fragsFailed = 0;
    let lastFragAt = performance.now();
    const onFrag = (_, d) => {
      if (d.frag?.level !== id) return;
      d.success ? fragsOk++ : fragsFailed++;
      lastFragAt = performance.now();
    };
    hls.on(E.SUBTITLE_FRAG_PROCESSED, onFrag);
    video.pause();
    await seek(0);
    const { tt, switched } = await enableSubtitle(id);
    rec.switched = switched;
    rec.textTrackMode = tt ? tt.mode : null;
    await play();
    const total = () => st.details?.fragments?.length ?? Infinity;
    // Done when every fragment is in, or when cues are there and no fragment came for 1 s.
    await waitFor(
      () =>
        fatalSince(nErr) ||
        fragsOk + fragsFailed >= total() ||
        (cueList(tt).length > 0 && performance.now() - lastFragAt > 1000),
    );
    hls.off(E.SUBTITLE_FRAG_PROCESSED, onFrag);
    const cues = cueList(tt);
    rec.textTrackMode = tt ? tt.mode : null;
    rec.fragmentsLoaded = fragsOk;
    rec.fragmentsFailed = fragsFailed;
    rec.fragmentsTotal = Number.isFinite(total()) ? total() : null;
    rec.cueCount = cues.length;
    rec.cues = cues.slice(0, 5).map(cueInfo);
    const fatal = fatalSince(nErr);
    rec.ok = !!tt && cues.length > 0 && !fatal;
    if (fatal) rec.error = errorText(fatal);
    else if (!tt) rec.error = 'no TextTrack on the video element for this subtitle track';
    else if (!switched) rec.error = 'no SUBTITLE_TRACK_SWITCH before the step timeout';
    else if (!cues.length) rec.error = `no cues loaded (${fragsOk} fragments processed, ${fragsFailed} failed)`;
    const others = errors.slice(nErr).filter((e) => !e.fatal);
    if (others.length) rec.nonFatalErrors = others.map(errorText);
    R.subtitleCues.push(rec);
    progress();
  }

  progress();
  // -- cue timing
  if (cueAt !== null) {
    phase = 'cueTiming';
    const rec = { expected: cueAt, lang: cueLang, tolerance: cueTolerance, shownAt: null, delta: null, cueStart: null, text: null, error: null };
    R.cueTiming = rec;
    const want = String(cueLang).toLowerCase();
    const st =
      hls.subtitleTracks.find((t) => (t.lang ?? '').toLowerCase() === want) ??
      hls.subtitleTracks.find((t) => (t.lang ?? '').toLowerCase().split('-')[0] === want.split('-')[0]);
    if (!st) {
      rec.error = `no subtitle track with lang ${cueLang}`;
    } else if (skipReason(3000)) {
      rec.error = skipReason(3000);
    } else {
      rec.trackId = st.id;
      video.pause();
      const from = Math.max(0, cueAt - 1.5);
      await seek(from);
      const { tt } = await enableSubtitle(st.id);
      const near = (c) => Math.abs(c.startTime - cueAt) < cueTolerance;
      if (!tt) {
        rec.error = 'no TextTrack on the video element for this subtitle track';
      } else {
        // The cue has to be loaded before playback reaches it, or the change would
        // fire when it is added rather than when it starts. Give up early once cues
        // beyond T are in and no subtitle fragment has come for 2 s.
        let lastFragAt = performance.now();
        const onFrag = (_, d) => {
          if (d.frag?.level === st.id) lastFragAt = performance.now();
        };
        hls.on(E.SUBTITLE_FRAG_PROCESSED, onFrag);
        let found = null;
        await waitFor(
          () =>
            (found = cueList(tt).find(near)) ||
            (performance.now() - lastFragAt > 2000 && cueList(tt).some((c) => c.startTime > cueAt)),
        );
        hls.off(E.SUBTITLE_FRAG_PROCESSED, onFrag);
        const loaded = found;
        if (!loaded) {
          const close = cueList(tt)
            .filter((c) => Math.abs(c.startTime - cueAt) < 5)
            .map(cueInfo);
          rec.error = `no cue with startTime within ${cueTolerance} s of ${cueAt} loaded`;
          rec.nearbyCues = close;
        } else {
          rec.cueStart = round(loaded.startTime);
          rec.text = loaded.text;
          const shown = new Promise((resolve) => {
            const done = (v) => {
              clearTimeout(timer);
              tt.removeEventListener('cuechange', h);
              hls.off(E.ERROR, onErr);
              resolve(v);
            };
            // Read currentTime first thing in the handler: this is the measurement.
            const h = () => {
              const at = video.currentTime;
              const active = Array.from(tt.activeCues || []).find(near);
              if (active) done({ at, cue: active });
            };
            const onErr = (_, d) => d.fatal && done(null);
            const timer = setTimeout(() => done(null), limit(Math.max(stepMs, 1000 * (cueAt - from) + 5000)));
            tt.addEventListener('cuechange', h);
            hls.on(E.ERROR, onErr);
          });
          rec.seekedTo = round(video.currentTime);
          const playError = await play();
          const got = await shown;
          if (got) {
            rec.shownAt = round(got.at);
            rec.delta = round(got.at - cueAt);
            rec.text = got.cue.text;
          } else {
            const f = firstFatal();
            rec.error = f ? errorText(f) : playError || `cue not shown (currentTime ${round(video.currentTime)})`;
          }
        }
      }
    }
  }
  phase = 'done';
  video.pause();
  return R;
}

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  const opts = parseArgs(process.argv.slice(2));

  const root = path.resolve(opts.root);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) die(2, `ROOT_DIR is not a directory: ${root}`);
  const masterFile = path.resolve(root, opts.master);
  if (!masterFile.startsWith(root + path.sep)) die(2, `MASTER_REL_PATH leaves ROOT_DIR: ${opts.master}`);
  if (!fs.existsSync(masterFile) || !fs.statSync(masterFile).isFile())
    die(2, `master playlist not found: ${masterFile}`);

  const require = createRequire(import.meta.url);
  let hlsJsPath;
  let chromium;
  try {
    hlsJsPath = path.join(path.dirname(require.resolve('hls.js/package.json')), 'dist', 'hls.min.js');
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    die(3, `node packages missing in ${here} (run scripts/test-fixtures.sh, or npm ci there): ${e.message}`);
  }
  if (!fs.existsSync(hlsJsPath)) die(3, `hls.js build missing: ${hlsJsPath}`);
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
  } catch {
    die(3, `chromium not found at ${CHROMIUM} (install Debian's chromium: run scripts/test-fixtures.sh)`);
  }

  let browser = null;
  let srv = null;
  let page = null;
  let finished = false;
  let lastProgress = null;
  const extraErrors = [];
  const consoleMessages = [];

  const cleanup = async () => {
    const closing = [];
    if (browser) closing.push(browser.close().catch(() => {}));
    if (srv) {
      srv.server.closeAllConnections?.();
      closing.push(new Promise((r) => srv.server.close(() => r())));
    }
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000))]);
    if (browser) {
      // In case close() hung: kill the browser process we launched.
      try {
        browser.process?.()?.kill('SIGKILL');
      } catch {}
    }
  };

  const finish = async (result, code) => {
    if (finished) return;
    finished = true;
    if (result) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    await cleanup();
    process.exit(code);
  };

  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      process.stderr.write(`check-hls: ${sig}, stopping\n`);
      finish(null, 3);
    });
  }

  // Overall hard timeout: report what the page found so far, if anything. It fires
  // early enough that fetching the partial results (3 s at most) and closing the
  // browser (5 s at most) still end within --timeout-ms.
  const hard = setTimeout(async () => {
    let partial = lastProgress;
    if (page) {
      partial = await Promise.race([
        page.evaluate(() => window.__result ?? null).catch(() => null),
        new Promise((r) => setTimeout(() => r(null), 3000)),
      ]).then((r) => r ?? lastProgress);
    }
    if (partial) {
      partial.errors = [
        ...(partial.errors || []),
        ...extraErrors,
        { type: 'checker', details: `overall timeout of ${opts.timeoutMs} ms reached`, fatal: true },
      ];
      partial.timedOut = true;
      partial.master = opts.master;
      if (srv) partial.http = srv.stats;
      partial.elapsedMs = Date.now() - started;
      await finish(partial, 0);
    } else {
      process.stderr.write(
        `check-hls: overall timeout of ${opts.timeoutMs} ms reached before anything could be reported ` +
          `(browser start, page load or master playlist)\n`,
      );
      await finish(null, 3);
    }
  }, opts.timeoutMs - 8000);
  hard.unref();

  try {
    srv = await startServer(root, hlsJsPath);
  } catch (e) {
    die(3, `cannot start the HTTP server: ${e.message}`);
  }
  const base = `http://127.0.0.1:${srv.port}`;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
  } catch (e) {
    process.stderr.write(`check-hls: cannot launch ${CHROMIUM}: ${e.message}\n`);
    return finish(null, 3);
  }
  try {
    page = await browser.newPage();
    await page.exposeFunction('__checkProgress', (r) => {
      lastProgress = r;
    });
    page.on('pageerror', (e) => extraErrors.push({ type: 'pageError', details: String(e.message || e), fatal: false }));
    page.on('console', (m) => {
      if ((m.type() === 'error' || m.type() === 'warning') && consoleMessages.length < 50)
        consoleMessages.push(`${m.type()}: ${m.text()}`);
    });
    page.on('crash', () => extraErrors.push({ type: 'pageError', details: 'page crashed', fatal: true }));
    await page.goto(`${base}/__player.html`, { waitUntil: 'load', timeout: 15000 });
    const rel = opts.master.split(path.sep).map(encodeURIComponent).join('/');
    // The in-page steps stop starting new work when this runs out, before the hard timeout.
    const budgetMs = Math.max(3000, opts.timeoutMs - (Date.now() - started) - 11000);
    const result = await page.evaluate(pageChecks, {
      masterUrl: `${base}/${rel}`,
      cueAt: opts.cueAt,
      cueLang: opts.cueLang,
      cueTolerance: opts.cueTolerance,
      stepMs: opts.stepTimeoutMs,
      budgetMs,
    });
    result.master = opts.master;
    result.errors.push(...extraErrors);
    result.browser = `chromium ${browser.version()}`;
    result.http = srv.stats;
    if (consoleMessages.length) result.console = consoleMessages;
    result.elapsedMs = Date.now() - started;
    clearTimeout(hard);
    await finish(result, 0);
  } catch (e) {
    if (finished) return;
    process.stderr.write(`check-hls: the browser check failed: ${e.stack || e}\n`);
    await finish(null, 3);
  }
}

main().catch((e) => {
  process.stderr.write(`check-hls: ${e.stack || e}\n`);
  process.exit(3);
});
