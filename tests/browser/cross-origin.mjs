#!/usr/bin/env node
// A customer's site playing babelcast's signed stream from another origin: serves a
// page on 127.0.0.1:PORT that loads hls.js from babelcast and plays MASTER_URL (a
// signed playback URL), opens it in Debian's chromium and prints ONE JSON object:
// whether the manifest and a fragment loaded, and the first error.
//
// Usage: node tests/browser/cross-origin.mjs BABELCAST_URL MASTER_URL PORT
// Exit status: 0 once the JSON is printed; 2 on bad usage; 3 when the browser could
// not run.

import http from 'node:http';

const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const [base, master, port] = process.argv.slice(2);
if (!base || !master || !port) {
  process.stderr.write('usage: node tests/browser/cross-origin.mjs BABELCAST_URL MASTER_URL PORT\n');
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stderr.write(`cross-origin: playwright-core is missing (run scripts/test-fixtures.sh): ${e.message}\n`);
  process.exit(3);
}

const page = `<!doctype html><html><body><video id="v" muted></video>
<script src="${base}/assets/hls.min.js"></script>
<script>
  window.report = { manifestParsed: false, fragLoaded: false, error: null };
  const hls = new Hls();
  hls.on(Hls.Events.MANIFEST_PARSED, () => { report.manifestParsed = true; });
  hls.on(Hls.Events.FRAG_LOADED, () => { report.fragLoaded = true; });
  hls.on(Hls.Events.ERROR, (_, d) => { if (!report.error) report.error = d.details; });
  hls.loadSource(${JSON.stringify(master)});
  hls.attachMedia(document.getElementById("v"));
</script></body></html>`;
const site = http.createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(page); });
await new Promise((resolve) => site.listen(Number(port), '127.0.0.1', resolve));

const report = { origin: `http://127.0.0.1:${port}` };
let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${port}/`);
  await tab.waitForFunction(() => window.report && (window.report.fragLoaded || window.report.error), null, { timeout: 20000 })
    .catch(() => {});
  Object.assign(report, await tab.evaluate(() => window.report));
} catch (e) {
  report.error = String(e && e.message ? e.message : e);
} finally {
  if (browser) await browser.close().catch(() => {});
  site.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
