/**
 * The live dashboard in a real browser (Debian's chromium, driven by playwright-core) against
 * three real raft-kv processes: it shows the members and the leader, its buttons transfer
 * leadership and take a snapshot, and when the leader is SIGKILLed (the very node that served
 * the page) it goes on through another member and shows the new leader.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appDir,
  killAll,
  launch,
  localNodes,
  memberFlags,
  type Proc,
  statusOf,
  until,
} from './processes.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = mkdtempSync(join(tmpdir(), 'kv-dashboard-'));
let nodes: { id: string; http: string; raft: string; proc?: Proc }[] = [];
let browser: Browser | undefined;
let load: { stop: boolean; done: Promise<void> } | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium), or set CHROMIUM_PATH`,
    );
  }
  nodes = await localNodes(3);
  for (const n of nodes) {
    n.proc = launch([
      ...memberFlags(n, nodes),
      '--data-dir',
      join(root, n.id),
      '--election-timeout-ms',
      '300',
      '--heartbeat-ms',
      '50',
      '--log-level',
      'warn',
    ]);
  }
  await until(
    'every node to know its leader',
    async () => {
      const all = await Promise.all(nodes.map((n) => statusOf(n.http)));
      return all.every((s) => s !== null && s.leaderId !== null);
    },
    30_000,
  );
  // A light, steady load, so the charts have something to draw.
  const state = { stop: false, done: Promise.resolve() };
  state.done = (async () => {
    for (let i = 0; !state.stop && i < 100_000; i++) {
      const n = nodes[i % nodes.length] as (typeof nodes)[number];
      await fetch(`http://${n.http}/v1/kv/load-${i % 50}`, {
        method: 'PUT',
        body: String(i),
        signal: AbortSignal.timeout(2000),
      }).catch(() => {});
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  load = state;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}, 90_000);

afterAll(async () => {
  if (load !== undefined) {
    load.stop = true;
    await load.done;
  }
  await browser?.close();
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

async function leaderText(page: Page): Promise<string> {
  return (await page.locator('#leader').textContent())?.trim() ?? '';
}

describe('the dashboard', () => {
  it('shows the cluster live, acts on it, and follows a new leader after the old one is SIGKILLed', async () => {
    const first = await statusOf((nodes[0] as (typeof nodes)[number]).http);
    const leaderId = first?.leaderId as string;
    const leader = nodes.find((n) => n.id === leaderId) as (typeof nodes)[number];
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // The page of the leader itself: the node that will be killed.
    await page.goto(`http://${leader.http}/`);
    await expect.poll(() => leaderText(page), { timeout: 15_000 }).toBe(leaderId);
    await expect.poll(() => page.locator('#members tr').count(), { timeout: 10_000 }).toBe(3);
    for (const n of nodes) {
      const role = await page
        .locator(`#members tr[data-member="${n.id}"]`)
        .getAttribute('data-role');
      expect(role).toBe(n.id === leaderId ? 'leader' : 'follower');
    }
    expect(await page.locator('#connection').textContent()).toBe('live');
    // Samples arrive once a second: wait for a few, then keep a picture for the README.
    await expect
      .poll(async () => Number(await page.locator('#rate').textContent()), { timeout: 15_000 })
      .toBeGreaterThan(0);
    await page.waitForTimeout(3000);
    const shots = join(appDir, '..', '..', 'docs');
    mkdirSync(shots, { recursive: true });
    const shot =
      process.env.UPDATE_SCREENSHOT === '1'
        ? join(shots, 'dashboard.png')
        : join(root, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    // Take a snapshot on this node.
    await page.click('#snapshot');
    await expect
      .poll(() => page.locator('#message').textContent(), { timeout: 10_000 })
      .toMatch(/^snapshot at index \d+$/);

    // Hand leadership to a chosen follower, then back to this node so that it is the one killed.
    const target = nodes.find((n) => n.id !== leaderId) as (typeof nodes)[number];
    await page.selectOption('#transfer-to', target.id);
    await page.click('#transfer');
    await expect
      .poll(() => page.locator('#message').textContent(), { timeout: 15_000 })
      .toMatch(new RegExp(`^leader is now ${target.id} \\(term \\d+\\)$`));
    await expect.poll(() => leaderText(page), { timeout: 10_000 }).toBe(target.id);
    await page.selectOption('#transfer-to', leader.id);
    await page.click('#transfer');
    await expect.poll(() => leaderText(page), { timeout: 15_000 }).toBe(leader.id);

    // Kill the leader: the node that served the page.
    const termBefore = Number(await page.locator('#term').textContent());
    leader.proc?.child.kill('SIGKILL');
    await leader.proc?.exited;
    await expect
      .poll(() => leaderText(page), { timeout: 20_000 })
      .toMatch(
        new RegExp(
          `^(${nodes
            .filter((n) => n !== leader)
            .map((n) => n.id)
            .join('|')})$`,
        ),
      );
    expect(Number(await page.locator('#term').textContent())).toBeGreaterThan(termBefore);
    expect(await page.locator('#connection').textContent()).toMatch(/^live \(via n\d\)$/);
    await expect
      .poll(
        () => page.locator(`#members tr[data-member="${leader.id}"]`).getAttribute('data-role'),
        {
          timeout: 10_000,
        },
      )
      .toBe('down');
    // Its buttons now point to the node the page reads from.
    await page.click('#snapshot');
    await expect
      .poll(() => page.locator('#message').textContent(), { timeout: 5000 })
      .toMatch(/^the node of this page does not answer: act from http:\/\/127\.0\.0\.\d:\d+\/$/);
    const elections = await page.locator('#elections li').allTextContents();
    expect(elections.length).toBeGreaterThan(1);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});
