#!/usr/bin/env node
// Opens babelcast's own player page (/watch/{id}) in Debian's chromium and prints ONE
// JSON object: the player's levels, audio and subtitle tracks, whether playback
// advances, whether turning captions on with the page's CC button yields cues, the
// poster, and what the seek bar previews when hovered in its middle.
//
// Usage: node tests/browser/check-watch.mjs URL [--timeout-ms N]
// Exit status: 0 once the JSON is printed; 2 on bad usage; 3 when the browser could
// not run.

const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

const [url, ...rest] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: node tests/browser/check-watch.mjs URL [--timeout-ms N]\n');
  process.exit(2);
}
const timeoutIndex = rest.indexOf('--timeout-ms');
const timeoutMs = timeoutIndex >= 0 ? Number(rest[timeoutIndex + 1]) : 60000;

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stderr.write(`check-watch: playwright-core is missing (run scripts/test-fixtures.sh): ${e.message}\n`);
  process.exit(3);
}

let browser;
const report = { url, errors: [] };
const timer = setTimeout(() => {
  report.timedOut = true;
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  process.exit(0);
}, timeoutMs);
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  const page = await browser.newPage();
  page.on('pageerror', (e) => report.errors.push(`page error: ${e.message}`));
  const response = await page.goto(url);
  report.status = response.status();
  report.title = await page.title();
  // hls.js (window.player) or, with ?format=dash, dash.js (window.dashPlayer).
  const dash = new URL(url).searchParams.get('format') === 'dash';
  report.player = dash ? 'dashjs' : 'hls.js';
  await page.waitForFunction((dash) => dash
    ? window.dashPlayer && document.querySelectorAll('#quality option').length > 1
    : window.player && window.player.levels && window.player.levels.length > 0, dash, { timeout: 30000 });
  Object.assign(report, await page.evaluate((dash) => {
    const menus = {
      qualityOptions: [...document.querySelectorAll('#quality option')].map((o) => o.textContent),
      audioOptions: [...document.querySelectorAll('#audio option')].map((o) => o.textContent),
      captionOptions: [...document.querySelectorAll('#captions option')].map((o) => o.textContent),
      formatShown: !document.getElementById('format-choice').hidden,
    };
    if (dash) {
      const d = window.dashPlayer;
      return {
        ...menus,
        levels: d.getRepresentationsByType('video').map((r) => ({ width: r.width, height: r.height })),
        audioTracks: d.getTracksFor('audio').map((t) => ({ lang: t.lang })),
        subtitleTracks: d.getTracksFor('text').map((t) => ({ lang: t.lang })),
      };
    }
    const hls = window.player;
    return {
      ...menus,
      levels: hls.levels.map((l) => ({ width: l.width, height: l.height })),
      audioTracks: hls.audioTracks.map((t) => ({ lang: t.lang, name: t.name })),
      subtitleTracks: hls.subtitleTracks.map((t) => ({ lang: t.lang, name: t.name })),
    };
  }, dash));
  // Captions on through the page's own CC button, then play.
  await page.click('#cc');
  report.ccPressed = await page.getAttribute('#cc', 'aria-pressed');
  report.playback = await page.evaluate(async () => {
    const video = document.getElementById('video');
    video.muted = true;
    await video.play().catch(() => {});
    const from = video.currentTime;
    const until = Date.now() + 20000;
    let cues = 0;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      cues = 0;
      for (const track of video.textTracks) {
        if (track.mode !== 'disabled' && track.cues) cues += track.cues.length;
      }
      if (cues > 0 && video.currentTime - from > 1) break;
    }
    const showing = [...video.textTracks].filter((t) => t.mode === 'showing').map((t) => t.language);
    return { from, to: video.currentTime, advanced: video.currentTime - from > 1, cues, showing };
  });
  // The seek bar's preview: hover its middle, and read what the page shows there.
  report.poster = await page.evaluate(() => document.getElementById('video').poster || null);
  await page.waitForFunction(() => Number.isFinite(document.getElementById('video').duration), null, { timeout: 10000 })
    .catch(() => {});
  const box = await page.locator('#seek').boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(() => window.seekPreview, null, { timeout: 5000 }).catch(() => {});
    report.seekPreview = await page.evaluate(async () => {
      const shown = window.seekPreview;
      if (!shown) return null;
      const image = new Image();
      const loaded = await new Promise((resolve) => {
        image.onload = () => resolve(true);
        image.onerror = () => resolve(false);
        image.src = shown.image;
      });
      const video = document.getElementById('video');
      return { ...shown, duration: video.duration, visible: !document.getElementById('preview').hidden,
               loaded, spriteWidth: image.naturalWidth, spriteHeight: image.naturalHeight };
    });
  }
} catch (e) {
  report.errors.push(String(e && e.message ? e.message : e));
} finally {
  clearTimeout(timer);
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(0);
