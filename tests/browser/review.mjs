#!/usr/bin/env node
// Drives babelcast's review page (/review/{id}) in Debian's chromium like a
// reviewer: types a too-long line (the page must flag it), corrects the first cue,
// saves, clicks a cue to seek, and approves. Prints ONE JSON object.
//
// Usage: node tests/browser/review.mjs URL TOKEN NEW_TEXT
//   (TOKEN `-`: none typed in; the URL is a review link, which is all the page needs)
// Exit status: 0 once the JSON is printed; 2 on bad usage; 3 when the browser could
// not run.

const CHROMIUM = process.env.CHECK_HLS_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

const [url, token, newText] = process.argv.slice(2);
if (!url || !token || !newText) {
  process.stderr.write('usage: node tests/browser/review.mjs URL TOKEN NEW_TEXT\n');
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  process.stderr.write(`review: playwright-core is missing (run scripts/test-fixtures.sh): ${e.message}\n`);
  process.exit(3);
}
const report = { errors: [] };
let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  const page = await browser.newPage();
  page.on('pageerror', (e) => report.errors.push(`page error: ${e.message}`));
  await page.goto(url);
  if (token !== '-') {
    await page.fill('#token', token);
    await page.dispatchEvent('#token', 'change');
  }
  await page.waitForSelector('.cue textarea', { timeout: 30000 });
  report.cues = await page.locator('.cue').count();
  const first = page.locator('.cue textarea').first();
  await first.fill('x'.repeat(60));
  report.flaggedWhileTyping = await page.locator('.cue .problems').first().textContent();
  await first.fill(newText);
  report.flagsAfterFix = await page.locator('.cue .problems').first().textContent();
  await page.click('#save');
  await page.waitForFunction(() => /^(saved|not saved)/.test(document.getElementById('status').textContent), null, { timeout: 20000 });
  report.saveStatus = await page.textContent('#status');
  // Clicking a cue's number seeks the video to its start.
  if (report.cues > 1) {
    await page.waitForFunction(() => document.getElementById('video').readyState >= 1, null, { timeout: 20000 }).catch(() => {});
    await page.locator('.cue .times span').nth(1).click();
    report.seekedTo = await page.evaluate(() => document.getElementById('video').currentTime);
    report.secondStart = Number(await page.locator('.cue .start').nth(1).inputValue());
  }
  await page.click('#approve');
  await page.waitForFunction(() => /^(approved|not approved)/.test(document.getElementById('status').textContent), null, { timeout: 20000 });
  report.approveStatus = await page.textContent('#status');
} catch (e) {
  report.errors.push(String(e && e.message ? e.message : e));
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.exit(0);
