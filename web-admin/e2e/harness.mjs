// Shared pieces of the end-to-end runs: a real broker (started and stopped here; the release
// binary, or CONSOLE_E2E_BIN — scripts/test.sh runs the debug one its Rust tests built),
// Debian's Chromium through playwright-core, and a tiny sequential test runner.
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(WEB, '..');
export const OUT = join(WEB, 'e2e', '.out');
export const SHOTS = join(ROOT, 'docs', 'screenshots');
export const BIN = process.env.CONSOLE_E2E_BIN ?? join(ROOT, 'target', 'release', 'magnetar');
export const CHROMIUM = process.env.CONSOLE_E2E_CHROMIUM ?? '/usr/bin/chromium';

export function die(msg) {
  console.error(`e2e: error: ${msg}`);
  process.exit(2);
}

export function preflight() {
  if (!existsSync(CHROMIUM)) {
    die(`Chromium not found at ${CHROMIUM}. Install Debian's: apt-get install -y chromium (or set CONSOLE_E2E_CHROMIUM to a Chromium binary).`);
  }
  if (!existsSync(BIN)) die(`no broker binary at ${BIN}: run scripts/build-console.sh && cargo build --release -p magnetar (or set CONSOLE_E2E_BIN)`);
  mkdirSync(OUT, { recursive: true });
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `magnetar standalone` (with --auth unless `auth` is false) in a fresh data dir. */
export async function startBroker({ auth = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'magnetar-e2e-'));
  const port = await freePort();
  const args = ['standalone', '--data-dir', dir, '--http-addr', `127.0.0.1:${port}`];
  if (auth) args.push('--auth');
  // The broker reads MAGNETAR_* variables as configuration: pass none of the test runner's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAGNETAR_')));
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) die(`the broker exited (${child.exitCode}):\n${err.slice(-2000)}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) die(`the broker did not become ready:\n${err.slice(-2000)}`);
    await sleep(100);
  }
  let token = null;
  if (auth) {
    const lines = out.split('\n').map((l) => l.trim());
    const i = lines.findIndex((l) => l.startsWith('Authentication is on.'));
    token = i >= 0 ? lines[i + 1] : null;
    if (!token) die(`no superuser token in the broker's output:\n${out}`);
  }
  const index = await (await fetch(`${base}/`)).text();
  if (!index.includes('id="root"')) {
    die('the broker serves no console: build it first (scripts/build-console.sh; release binaries embed it, so rebuild them after)');
  }
  return {
    base,
    dir,
    token,
    /** Mints a token for `role` with the broker's secret key (what an operator hands out). */
    mint(role, expiry = '2h') {
      const o = execFileSync(BIN, ['tokens', 'create', '--secret-key', `file:${join(dir, 'auth', 'secret.key')}`, '--subject', role, '--expiry-time', expiry]).toString();
      return o.trim().split('\n').pop().trim();
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = Date.now();
        while (child.exitCode === null && Date.now() - t < 20_000) await sleep(50);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One API call from the test (not the browser); resolves to { status, body }. */
export async function api(base, token, method, path, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: r.status, body: parsed };
}

export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'magnetar-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Sequential tests; prints `N passed, M failed` at the end (the closing line CI reads). */
export function runner() {
  const tests = [];
  return {
    test(name, fn) {
      tests.push({ name, fn });
    },
    async run(ctx) {
      let passed = 0;
      let failed = 0;
      for (const t of tests) {
        const start = Date.now();
        try {
          await t.fn(ctx);
          passed++;
          console.log(`ok   ${t.name} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
        } catch (e) {
          failed++;
          console.log(`FAIL ${t.name} (${((Date.now() - start) / 1000).toFixed(1)} s)\n     ${String(e?.stack ?? e).split('\n').slice(0, 8).join('\n     ')}`);
          for (const [i, p] of (ctx.browser?.context.pages() ?? []).entries()) {
            await p.screenshot({ path: join(OUT, `fail-${t.name.replace(/\W+/g, '-')}-${i}.png`) }).catch(() => {});
          }
        }
      }
      console.log(`\n${passed} passed, ${failed} failed`);
      return failed;
    },
  };
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function assertEq(got, want, msg) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${msg}: got ${g}, want ${w}`);
}

export async function poll(what, fn, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last?.message ?? JSON.stringify(last)})`);
    await sleep(200);
  }
}
