// Benchmark of the live tail (docs/benchmarks.md, "Web console (issue 10)"): a WebSocket
// producer at a fixed rate (`magnetar perf ws-produce`) with and without a console tail open in
// Chromium. Measures the producer's rate and latency both ways, and in the page: messages
// received, shown and skipped by the sampler, frames longer than 50 ms, the longest frame and
// long tasks.
//   node e2e/bench-tail.mjs [rate=5000] [seconds=30]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, BIN, launch, OUT, preflight, startBroker } from './harness.mjs';

const run = promisify(execFile);
const rate = Number(process.argv[2] ?? 5000);
const seconds = Number(process.argv[3] ?? 30);
preflight();

async function produce(base, topic) {
  const url = base.replace(/^http/, 'ws');
  const { stdout } = await run(BIN, ['perf', 'ws-produce', '--url', url, '--topic', `persistent://public/default/${topic}`, '-n', String(rate * seconds), '-s', '256', '--rate', String(rate)], {
    maxBuffer: 1 << 24,
  });
  return stdout.trim().split('\n').pop();
}

const broker = await startBroker({ auth: false });
const browser = await launch();
const result = { rate, seconds };
try {
  for (const t of ['alone', 'tailed']) {
    const r = await api(broker.base, null, 'PUT', `/admin/v2/persistent/public/default/${t}`);
    if (r.status !== 204) throw new Error(`create topic ${t}: ${r.status}`);
  }
  result.producerAlone = await produce(broker.base, 'alone');
  console.log(`without tail: ${result.producerAlone}`);

  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    const w = window;
    w.__frames = { count: 0, over50: 0, longest: 0, last: 0, run: false };
    w.__longtasks = { count: 0, longest: 0 };
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        w.__longtasks.count++;
        w.__longtasks.longest = Math.max(w.__longtasks.longest, e.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
    const tick = (now) => {
      const f = w.__frames;
      if (f.run && f.last) {
        const gap = now - f.last;
        f.count++;
        if (gap > 50) f.over50++;
        f.longest = Math.max(f.longest, gap);
      }
      f.last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await page.goto(`${broker.base}/tenants/public/namespaces/default/topics/tailed?tab=messages&mode=tail`);
  // Idle baseline: the same page for 5 s without messages.
  await page.evaluate(() => {
    window.__frames.run = true;
  });
  await page.waitForTimeout(5000);
  result.idle = await page.evaluate(() => ({ ...window.__frames }));
  await page.evaluate(() => {
    Object.assign(window.__frames, { count: 0, over50: 0, longest: 0, last: 0, run: false });
  });
  await page.getByRole('button', { name: 'Start tail' }).click();
  await page.getByTestId('tail-status').getByText(/Tail live/).waitFor().catch(async (e) => {
    await page.screenshot({ path: join(OUT, 'bench-tail-failed.png') });
    throw e;
  });
  await page.evaluate(() => {
    window.__frames.run = true;
  });
  result.producerTailed = await produce(broker.base, 'tailed');
  console.log(`with tail:    ${result.producerTailed}`);
  result.atProducerEnd = await page.evaluate(() => document.querySelector('[data-testid="tail-status"]')?.textContent);
  // Let the tail drain what the broker still has for it.
  await page.waitForTimeout(10_000);
  result.page = await page.evaluate(() => ({ frames: window.__frames, longtasks: window.__longtasks, status: document.querySelector('[data-testid="tail-status"]')?.textContent }));
  await page.screenshot({ path: join(OUT, 'bench-tail.png') });
  console.log(JSON.stringify(result.page, null, 2));
} finally {
  await browser.close();
  await broker.stop();
}
writeFileSync(join(OUT, 'bench-tail.json'), JSON.stringify(result, null, 2));
