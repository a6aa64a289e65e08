/**
 * The status page in headless Chromium, over a real crawl (Azurite + the emulator): served by the same handlers as
 * `GET /api/dashboard`, behind a function key the page must pass on to its API calls. It loads without a console
 * error, shows the finished crawl's counts, renders attacker-controlled ids and messages as text, and its replay
 * button puts a dead-lettered operation back on the item queue.
 *
 * Set DASHBOARD_SCREENSHOT=<file.png> to save a screenshot of the loaded page (docs/dashboard.png is one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { runSlice } from '../../src/crawl/enumerate.js';
import { startCrawl } from '../../src/crawl/start.js';
import { createHandlers } from '../../src/host/handlers.js';
import { startApiServer, type ApiServer } from '../../src/local/api-server.js';
import { encodeItemId } from '../../src/mapping/item-id.js';
import { parseItemMessage } from '../../src/state/queues/items.js';
import type { CrawlJob } from '../../src/state/jobs.js';
import { findChromium, launchChromium, NO_CHROMIUM } from '../support/browser.js';
import { startStack, type Stack } from '../support/stack.js';

const chromiumPath = findChromium();
if (!chromiumPath) console.warn(`test/e2e/dashboard.test.ts skipped: ${NO_CHROMIUM}`);

const KEY = 'test-function-key-0123456789';
const HOSTILE_ID = `<img src=x onerror="document.title='pwned-id'">`;
const HOSTILE_MESSAGE = `<img src=x onerror="document.title='pwned-message'">refused`;
const REFUSED = 'TSP800007';

function ticket(id: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    ticketId: id,
    title: `Dashboard ticket ${id}`,
    description: 'A ticket shown on the status page.',
    status: 'open',
    priority: 2,
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: 'payments',
    tags: ['dashboard'],
    createdDate: '2026-01-02T03:04:05Z',
    lastEditedDate: '2026-01-03T03:04:05Z',
    visibility: 'team',
    ...extra,
  });
}
const records = [
  ...Array.from({ length: 24 }, (_, i) => ticket(`TSP8${String(i).padStart(5, '0')}`)),
  // Rejected by the mapping (a priority that is not a number): its key is shown as the dead letter's item id.
  ticket(HOSTILE_ID, { priority: 'urgent' }),
].join('\n');

let stack: Stack;
let server: ApiServer;
let browser: Browser;
let first: CrawlJob;
let job: CrawlJob;

describe.skipIf(!chromiumPath)('the status page in headless Chromium', () => {
  beforeAll(async () => {
    stack = await startStack({ records });
    // Graph refuses one item for good: it is dead-lettered with Graph's (hostile) message.
    await stack.admin('faults', {
      method: 'POST',
      body: {
        match: { method: 'PUT', route: 'item', itemId: encodeItemId(REFUSED) },
        action: 'status',
        status: 400,
        code: 'InvalidRequest',
        message: HOSTILE_MESSAGE,
        count: 0,
      },
    });
    // Two crawls: the first ingests, the second finds everything unchanged (and Graph still refuses the one).
    first = (await stack.crawl({ mode: 'full' })).job!;
    job = (await stack.crawl({ mode: 'full' })).job!;
    await stack.admin('faults', { method: 'DELETE' });
    server = await startApiServer(
      createHandlers(async () => stack.rt),
      { functionKey: KEY },
    );
    browser = await launchChromium(chromiumPath!);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await stack?.close();
  });

  async function open(url: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(url);
    return { page, problems };
  }

  it('the crawls it shows finished with one rejection and one dead letter each', () => {
    expect(first.status, first.error).toBe('completed');
    expect(first.counts).toMatchObject({ enumerated: 25, rejected: 1, deadLettered: 1, ingested: 23 });
    expect(job.status, job.error).toBe('completed');
    expect(job.counts).toMatchObject({ enumerated: 25, rejected: 1, deadLettered: 1, unchanged: 23, ingested: 0 });
  });

  it('every route wants the function key (so the page below works only by passing its own on)', async () => {
    for (const route of ['dashboard', 'status', 'jobs', 'deadletters'])
      expect((await fetch(`${server.origin}/api/${route}`)).status, route).toBe(401);
    expect((await fetch(`${server.origin}/api/status`, { headers: { 'x-functions-key': KEY } })).status).toBe(200);
  });

  it('loads with no console error and shows the finished crawl with its reconciliation counts', async () => {
    const { page, problems } = await open(`${server.dashboardUrl}?code=${KEY}`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
    for (const j of [first, job]) {
      const row = page.locator(`tr[data-crawl="${j.crawlId}"]`);
      const count = async (k: string) => (await row.locator(`td[data-count="${k}"]`).textContent())?.trim();
      for (const k of ['enumerated', 'ingested', 'unchanged', 'rejected', 'deadLettered', 'superseded', 'deleted'])
        expect(await count(k), `${j.crawlId} ${k}`).toBe(String(j.counts[k as keyof CrawlJob['counts']]));
      expect(await row.locator('td').last().textContent()).toBe('✓');
    }
    // Newest first.
    expect(await page.locator('#jobs tbody tr').first().getAttribute('data-crawl')).toBe(job.crawlId);
    expect(await page.textContent('#provisioning')).toContain('ready');
    expect(await page.textContent('#running')).toContain('No crawl is running');
    // One bar per finished crawl, titled with its rate.
    const bars = await page.locator('#throughput svg rect title').allTextContents();
    expect(bars).toHaveLength(2);
    expect(bars[0]).toMatch(new RegExp(`^${first.crawlId}: \\d+\\.\\d records/s$`));
    const groups = await page.locator('#deadletters details summary .code').allTextContents();
    expect(groups.sort()).toEqual(['InvalidRequest (upsert)', 'rejected by the mapping']);
    if (process.env.DASHBOARD_SCREENSHOT)
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('renders attacker-controlled item ids and Graph messages as text, never as markup', async () => {
    const { page, problems } = await open(`${server.dashboardUrl}?code=${KEY}`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
    for (const summary of await page.locator('#deadletters summary .code').all()) await summary.click();
    expect(await page.locator('#deadletters .item-id').allTextContents()).toContain(HOSTILE_ID);
    expect(await page.textContent('#deadletters')).toContain(HOSTILE_MESSAGE);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).toBe('graph-connector status');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a replay button puts the dead-lettered operation back on the item queue', async () => {
    const queue = stack.rt.pipeline.state.queue;
    expect(await queue.approximateCount()).toBe(0);
    const { page, problems } = await open(`${server.dashboardUrl}?code=${KEY}`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
    // The rejected record has no replay button: it is fixed at the source.
    expect(await page.locator('details[data-group="rejected by the mapping"] button').count()).toBe(0);
    await page.click('button[data-replay-group="InvalidRequest (upsert)"]');
    await page.locator('#replay-result', { hasText: /^replayed 1$/ }).waitFor();
    const peeked = await stack.rt.pipeline.state.queue.queueClient.peekMessages({ numberOfMessages: 32 });
    const ops = peeked.peekedMessageItems.map((m) => parseItemMessage(m.messageText));
    expect(ops.map((o) => o.itemId)).toEqual([encodeItemId(REFUSED)]);
    const left = [];
    for await (const dl of stack.rt.pipeline.state.deadLetters.list(stack.rt.pipeline.connectionId)) left.push(dl.op);
    expect(left).toEqual(['reject']);
    // The page refreshed: only the rejection is left.
    await expect.poll(() => page.locator('#deadletters details').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a crawl in progress: its phase, position in the source, records/s and what is pending', async () => {
    // Started and enumerated, but no worker runs: its operations stay pending on the item queue.
    const { pipeline } = stack.rt;
    await stack.writeRecords(records.replaceAll('Dashboard ticket', 'Edited ticket'));
    const started = await startCrawl(pipeline, { mode: 'full', trigger: 'http' });
    if (started.status !== 'started') throw new Error(`crawl did not start: ${started.status}`);
    const slice = await runSlice(pipeline, started.crawlId, { slice: 0 });
    expect(slice.status).not.toBe('interrupted');
    const { page, problems } = await open(`${server.dashboardUrl}?code=${KEY}`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
    const running = (await page.textContent('#running')) ?? '';
    expect(running).toContain(started.crawlId);
    expect(running).toContain('enumerated — source read to the end');
    const size = Buffer.byteLength(await readFile(stack.recordsPath));
    expect(running).toContain(`${size.toLocaleString('en-US')} of ${size.toLocaleString('en-US')} bytes (100 %)`);
    expect(running).toMatch(/records\/s\s*\d/);
    expect(await page.getAttribute('#running [role="progressbar"]', 'aria-valuenow')).toBe('100');
    expect(await page.locator(`tr[data-crawl="${started.crawlId}"] td`).last().textContent()).toBe('…');
    expect(problems).toEqual([]);
    await page.close();
  });
});
