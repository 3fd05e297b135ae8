// Loads one page in headless Chromium as a person would and reports, as
// one JSON line, what was rendered and what happened: the status code and
// headers, the text, the status badges and reason codes, the scripts in
// the DOM, every request made, every console error, and whether the page
// fits the viewport's width. Saves a full-page screenshot.
//
// node browse.js URL SCREENSHOT WIDTH
const { chromium } = require('playwright-core');

async function main() {
  const [url, screenshot, width] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: Number(width), height: 900 } });
    const requests = [];
    const errors = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    const response = await page.goto(url, { waitUntil: 'load' });
    // The page refreshes itself: read it and shoot it in one go, again if
    // a refresh replaced it meanwhile (the next one is as good).
    let seen;
    for (let attempt = 0; ; attempt++) {
      try {
        seen = await page.evaluate(() => ({
          title: document.title,
          text: document.body.innerText,
          badges: [...document.querySelectorAll('.badge')].map((e) => e.textContent),
          reasons: [...document.querySelectorAll('.reasons code')].map((e) => e.textContent),
          scripts: document.querySelectorAll('script').length,
          sparklines: document.querySelectorAll('figure svg').length,
          lines: document.querySelectorAll('figure svg polyline, figure svg circle').length,
          overflow: document.documentElement.scrollWidth - window.innerWidth,
        }));
        await page.screenshot({ path: screenshot, fullPage: true });
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
        await page.waitForLoadState('load');
      }
    }
    const report = {
      status: response.status(),
      headers: response.headers(),
      requests,
      errors,
      ...seen,
    };
    process.stdout.write(JSON.stringify(report) + '\n');
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + '\n');
  process.exit(1);
});
