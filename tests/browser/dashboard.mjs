#!/usr/bin/env node
// Drives babelcast's dashboard (/) in Debian's chromium like an operator: a wrong
// key is refused; signs in; uploads a clip with language en, target es and review;
// follows its state and progress; makes a review link, opens it in a second tab
// and approves there; waits for the video to finish; downloads the es MP4 through
// the dashboard; then, given SUBTITLES, uploads the clip again with them as the
// transcript and follows it to the end. Prints ONE JSON object.
//
// Usage: node tests/browser/dashboard.mjs URL KEY CLIP OUT_MP4 [SUBTITLES]
// Exit status: 0 once the JSON is printed; 2 on bad usage; 3 when the browser could
// not run.

const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

const [url, key, clip, out, subtitles] = process.argv.slice(2);
if (!url || !key || !clip || !out) {
  process.stderr.write('usage: node tests/browser/dashboard.mjs URL KEY CLIP OUT_MP4\n');
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stderr.write(`dashboard: playwright-core is missing (run scripts/test-fixtures.sh): ${e.message}\n`);
  process.exit(3);
}
const report = { errors: [], states: [], progressShown: false, listProgressShown: false };
let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => report.errors.push(`page error: ${e.message}`));
  await page.goto(url);

  await page.fill('#key', 'bk_wrong_key');
  await page.click('#signin-button');
  await page.waitForFunction(() => document.getElementById('signin-status').textContent !== '', null, { timeout: 10000 });
  report.wrongKey = await page.textContent('#signin-status');

  await page.fill('#key', key);
  await page.click('#signin-button');
  await page.waitForSelector('#app:not(.hidden)', { timeout: 10000 });
  report.signedIn = true;

  await page.setInputFiles('#file', clip);
  await page.selectOption('#language', 'en');
  await page.fill('#targets', 'es');
  await page.check('#review');
  await page.click('#upload');
  await page.waitForFunction(() => /uploaded|refused|may not|answered/.test(document.getElementById('upload-status').textContent), null, { timeout: 60000 });
  report.uploadStatus = await page.textContent('#upload-status');

  // Follows the selected video's state as the dashboard shows it.
  const follow = async (done, timeoutMs) => {
    const started = Date.now();
    for (;;) {
      const state = await page.textContent('#detail-state').catch(() => '');
      if (state && report.states[report.states.length - 1] !== state) report.states.push(state);
      if (await page.locator('progress.stage-progress').count() > 0) report.progressShown = true;
      if (await page.locator('#videos td.running progress').count() > 0) report.listProgressShown = true;
      if (done.includes(state)) return state;
      if (Date.now() - started > timeoutMs) throw new Error(`still ${state} after ${timeoutMs} ms`);
      await page.waitForTimeout(150);
    }
  };
  await follow(['awaiting_review', 'failed'], 120000);
  report.listed = await page.locator('#videos tr.video').count();

  await page.click('#review-link');
  await page.waitForFunction(() => document.getElementById('review-link-url').value !== '', null, { timeout: 10000 });
  report.reviewLink = await page.inputValue('#review-link-url');
  const reviewer = await context.newPage();
  reviewer.on('pageerror', (e) => report.errors.push(`review page error: ${e.message}`));
  await reviewer.goto(report.reviewLink);
  await reviewer.waitForSelector('.cue textarea', { timeout: 30000 });
  await reviewer.click('#approve');
  await reviewer.waitForFunction(() => /^(approved|not approved)/.test(document.getElementById('status').textContent), null, { timeout: 20000 });
  report.approveStatus = await reviewer.textContent('#status');
  await reviewer.close();

  report.finalState = await follow(['completed', 'completed_with_warnings', 'failed', 'cancelled'], 240000);
  report.dubs = await page.locator('#dubs tr').allTextContents();
  const button = page.locator('button.download[data-path="mp4/es.mp4"]');
  await button.waitFor({ timeout: 20000 });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), button.click()]);
  report.downloadName = download.suggestedFilename();
  await download.saveAs(out);
  report.downloaded = out;

  if (subtitles) {
    const before = await page.textContent('#detail-id');
    await page.evaluate(() => { document.getElementById('upload-status').textContent = ''; });
    await page.setInputFiles('#file', clip);
    await page.selectOption('#language', 'en');
    await page.fill('#targets', '');
    await page.uncheck('#review');
    await page.setInputFiles('#transcript', subtitles);
    await page.click('#upload');
    await page.waitForFunction(() => /uploaded|refused|may not|answered/.test(document.getElementById('upload-status').textContent), null, { timeout: 60000 });
    report.subtitledUpload = await page.textContent('#upload-status');
    // The new video is the one shown before its state is followed.
    await page.waitForFunction((old) => document.getElementById('detail-id').textContent !== old, before, { timeout: 20000 });
    report.subtitledId = await page.textContent('#detail-id');
    report.subtitledState = await follow(['completed', 'completed_with_warnings', 'failed', 'cancelled'], 120000);
  }
} catch (e) {
  report.errors.push(String(e && e.message ? e.message : e));
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(0);
