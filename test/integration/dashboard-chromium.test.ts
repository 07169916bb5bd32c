// The fleet dashboard in a real headless Chromium (Debian's chromium, driven by playwright-core) against a real
// mesh (`tessera up --config`: a control plane, web and two api replicas with their sidecars): the page shows the
// running workloads and what each proxy serves, a break-glass grant and a denial; a CA rotation driven with
// `tessera ca prepare` / `activate` shows up without a reload; no console error, failed request or error status
// along the way. A screenshot is kept in test/artifacts/dashboard.png (.ci/run copies it to .ci/out).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { tesseraInProcess } from '../helpers/cli-in-process.js';
import { freeLowPorts } from '../helpers/free-port.js';
import { startReadyProcess } from '../helpers/ready-process.js';
import { makeTempDir, REPO_ROOT, tessera } from '../helpers/run.js';

const CHROMIUM = '/usr/bin/chromium';
const TD = 'dash.test';
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const API = `spiffe://${TD}/ns/default/sa/api`;
const SCREENSHOT = join(REPO_ROOT, 'test/artifacts/dashboard.png');

interface UpState {
  controlPlane: { admin: string; dashboard: string; dataDir: string };
  workloads: { name: string; spiffeId: string; replicas: { replica: string; outbound: { to: string; url: string }[] }[] }[];
}

let dir: string;
let cleanup: (() => Promise<void>) | undefined;
let stopUp: (() => Promise<number | null>) | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await stopUp?.().catch(() => null);
  await cleanup?.();
}, 60_000);

/** The text of every row of a table's body, cells joined by " | ". */
function rows(page: Page, table: string): Promise<string[]> {
  return page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((c) => (c.textContent ?? '').trim()).join(' | ')));
}

/** Waits (bounded, in the page) until `table` has a row matching every pattern of one of `want`. */
async function waitRows(page: Page, table: string, want: (rs: string[]) => boolean, what: string, timeoutMs = 45_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rs = await rows(page, table);
    if (want(rs)) return rs;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; #${table} rows:\n${rs.join('\n')}`);
    await page.waitForTimeout(250);
  }
}

test('the dashboard shows a running mesh and follows a CA rotation live, without errors', async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`).toBe(true);
  const meshDir = join(dir, 'mesh');
  await mkdir(meshDir, { recursive: true });
  // SVIDs of 40 s (backdated 10 s by `tessera up`): each sidecar renews ~15 s after it started, and reports to the
  // fleet view right after a renewal, so the denial below is shown then, not at the 30 s report interval. The
  // checks of which SVID each proxy serves come before the first renewal.
  await writeFile(
    join(meshDir, 'mesh.yaml'),
    [`trustDomain: ${TD}`, 'svidTtl: 40s', 'workloads:', `  - { name: web, appPort: ${await freeLowPorts(1)}, outbound: [{ to: api, port: 0 }] }`, `  - { name: api, appPort: ${await freeLowPorts(2)}, replicas: 2, outbound: [{ to: web, port: 0 }] }`, ''].join('\n'),
  );
  const stateDir = join(meshDir, '.tessera');
  const up = await startReadyProcess(['up', '--config', join(meshDir, 'mesh.yaml'), '--state-dir', stateDir], 'tessera up: ready', { timeoutMs: 90_000, cwd: meshDir });
  stopUp = () => up.stop(30_000, 'SIGINT');
  const state = JSON.parse(await readFile(join(stateDir, 'up.json'), 'utf8')) as UpState;
  // `tessera up` prints where the dashboard is.
  expect(state.controlPlane.dashboard).toBe(`${state.controlPlane.admin}/dashboard`);
  expect(up.stdout()).toContain(`dashboard      ${state.controlPlane.dashboard}`);
  const dataDir = state.controlPlane.dataDir;

  // A denial to report (no policy lets api call web) and a break-glass grant to show.
  const apiToWeb = state.workloads.find((w) => w.name === 'api')!.replicas[0]!.outbound.find((o) => o.to === 'web')!.url;
  expect((await fetch(`${apiToWeb}/hello`)).status).toBe(403);
  // Set-up, not what the page is tested on: in-process, the same command and admin-socket request.
  const grant = await tesseraInProcess(['policy', 'break-glass', '--data-dir', dataDir, '--to', WEB, '--from', API, '--for', '15m', '--reason', 'dashboard test']);
  expect(grant.code, grant.stderr).toBe(0);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });

  await page.goto(state.controlPlane.dashboard);
  await page.waitForSelector('body[data-updates]', { timeout: 15_000 });
  expect(await page.textContent('#trust-domain')).toBe(TD);
  expect(await page.textContent('#status')).toMatch(/^Updated \d\d:\d\d:\d\dZ \(live\)/);

  // Workloads: web once, api twice (two replicas, two renewal chains), and the control plane itself.
  const workloads = await waitRows(page, 'workloads', (rs) => rs.filter((r) => r.startsWith(`${API} |`)).length === 2, 'both api replicas');
  expect(workloads.filter((r) => r.startsWith(`${WEB} |`))).toHaveLength(1);
  expect(workloads.some((r) => r.startsWith(`spiffe://${TD}/tessera/control-plane |`))).toBe(true);
  // Attested with a join token; with 40 s SVIDs a slow machine may already show its first renewal.
  expect(workloads.filter((r) => r.startsWith(`${WEB} |`))[0]).toMatch(/join_token:|renewal of /);

  // Proxies: each of the three sidecars reports the SVID it serves, and it is the latest issued to it.
  const proxies = await waitRows(page, 'proxies', (rs) => rs.length === 3 && rs.every((r) => r.includes('✓ current')), 'three proxies serving their latest SVID');
  expect(proxies.filter((r) => r.startsWith(`${API} |`))).toHaveLength(2);
  expect(await page.$$('#proxies tr.mismatch')).toHaveLength(0);

  // The grant and the denial (a sidecar reports after each renewal and every 30 s).
  const grants = await rows(page, 'grants');
  expect(grants).toHaveLength(1);
  expect(grants[0]).toContain('dashboard test');
  const denials = await waitRows(page, 'denials', (rs) => rs.some((r) => r.includes('✕ denied') && r.includes(API)), 'the api → web denial', 50_000);
  expect(denials.find((r) => r.includes('✕ denied'))).toContain(`${WEB} `);

  // The CA: one active authority, no rotation under way; the timeline draws roots, intermediates, grant, SVIDs.
  expect(await rows(page, 'authorities')).toHaveLength(1);
  expect(await page.textContent('#rotation-next')).toContain('tessera ca prepare');
  expect(await page.$$('#timeline-svg g.kind-root')).toHaveLength(1);
  expect(await page.$$('#timeline-svg g.kind-grant')).toHaveLength(1);
  expect((await page.$$('#timeline-svg g.kind-svid')).length).toBeGreaterThanOrEqual(4);

  // A rotation, driven from the command line: the open page follows it, without a reload.
  await page.evaluate(() => {
    (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
  });
  const updatesBefore = Number(await page.getAttribute('body', 'data-updates'));
  const prepared = await tessera(['ca', 'prepare', '--data-dir', dataDir]);
  expect(prepared.code, prepared.stderr).toBe(0);
  const afterPrepare = await waitRows(page, 'authorities', (rs) => rs.length === 2 && rs.some((r) => r.includes('◐ prepared')), 'the prepared authority');
  expect(afterPrepare.some((r) => r.includes('● active'))).toBe(true);
  expect(await page.textContent('ol.steps li[aria-current="step"]')).toContain('Propagate');
  expect(await page.textContent('#rotation-next')).toContain('tessera ca activate');
  expect(await page.$$('#timeline-svg g.kind-root')).toHaveLength(2);

  const activated = await tessera(['ca', 'activate', '--data-dir', dataDir]);
  expect(activated.code, activated.stderr).toBe(0);
  await waitRows(page, 'authorities', (rs) => rs.length === 2 && rs.some((r) => r.includes('○ retired')) && rs.some((r) => r.includes('● active')), 'the retired and the newly active authority');
  expect(await page.textContent('ol.steps li[aria-current="step"]')).toContain('Retire');
  expect(await page.textContent('#rotation-summary')).toMatch(/^Retired [0-9a-f]{8} \(\d+ live SVIDs?\) stays in the bundle/);
  expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  expect(Number(await page.getAttribute('body', 'data-updates'))).toBeGreaterThan(updatesBefore);
  const events = await rows(page, 'events');
  expect(events.some((r) => r.includes('ca.prepared'))).toBe(true);
  expect(events.some((r) => r.includes('ca.activated'))).toBe(true);
  expect(events.some((r) => r.includes('break_glass.opened'))).toBe(true);

  // Accessibility basics as the browser sees them: a caption and column headers per table, one live region.
  const tables = await page.$$eval('table', (ts) => ts.map((t) => ({ caption: !!t.querySelector('caption')?.textContent?.trim(), headers: t.querySelectorAll('thead th[scope="col"]').length })));
  expect(tables.every((t) => t.caption && t.headers >= 6)).toBe(true);
  expect(await page.getAttribute('#status', 'aria-live')).toBe('polite');

  await mkdir(join(REPO_ROOT, 'test/artifacts'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect(problems).toEqual([]);
  await page.close();
}, 240_000);
