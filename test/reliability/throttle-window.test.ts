/**
 * A throttling window in the middle of a crawl: once a third of the items are in, every Graph call on the
 * connection answers 429 for 60 seconds (10 at the CI size), each with a Retry-After drawn from 2–20 s (1–5). The crawl
 * ends with the emulator holding exactly the source (nothing lost, no dead letter), and no item request came
 * before the Retry-After of the 429 that preceded it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlLocally } from '../../src/local/crawl-locally.js';
import { expectNoSecrets, jsonl, reportFigures, sized, startReliabilityStack, ticket, type RStack } from './support.js';

const N = sized(1500, 200);
const WINDOW_SECONDS = sized(60, 10);
const RETRY_AFTER: [number, number] = [sized(2, 1), sized(20, 5)];
let stack: RStack;
/** The suite's good ticket, on a team the sample's group sync knows (the mapping rejects grants to other teams). */
const record = (i: number): Record<string, unknown> => ({
  ...ticket(i),
  team: ['payments', 'logistics', 'finance'][i % 3],
});

beforeAll(async () => {
  stack = await startReliabilityStack({
    emulator: { seed: 12, retryAfterRange: RETRY_AFTER },
    records: jsonl(Array.from({ length: N }, (_, i) => record(i))),
  });
});
afterAll(async () => stack?.close());

interface Logged {
  method: string;
  status: number;
  itemId?: string;
  fault?: string;
  time: string;
  durationMs: number;
  retryAfter?: number;
}

describe(`a ${WINDOW_SECONDS}-second 429 window in the middle of a ${N}-item crawl`, () => {
  it('ends with every item in Graph and no request before its Retry-After', async () => {
    const { rt, connectionId, admin } = stack;
    await stack.takeItemRequests();
    const crawl = crawlLocally(
      rt.pipeline,
      { mode: 'full', trigger: 'cli' },
      { concurrency: 16, pollMs: 25, visibilityTimeoutMs: 5_000 },
    );
    // Open the window once a third of the items are in.
    let openedAt = 0;
    const opener = (async () => {
      for (;;) {
        const { byRouteMethodStatus } = await admin<{ byRouteMethodStatus: Record<string, number> }>(
          `requests/summary?connectionId=${connectionId}&route=item`,
        );
        if ((byRouteMethodStatus['PUT item 200'] ?? 0) >= N / 3) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await admin('throttle', { method: 'POST', body: { connectionId, seconds: WINDOW_SECONDS } });
      openedAt = Date.now();
    })();
    const r = await crawl;
    await opener;
    const finishedAt = Date.now();

    expect(r.job?.status, r.job?.error).toBe('completed');
    expect(openedAt).toBeGreaterThan(0);
    // The window really held the crawl up.
    expect(finishedAt - openedAt).toBeGreaterThanOrEqual(WINDOW_SECONDS * 1000 - 1000);

    const { value } = await admin<{ value: Logged[] }>(`requests?connectionId=${connectionId}&route=item`);
    const throttled = value.filter((e) => e.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    expect(throttled.every((e) => String(e.fault).startsWith('window:'))).toBe(true);
    expect(throttled.every((e) => e.retryAfter! >= RETRY_AFTER[0] && e.retryAfter! <= RETRY_AFTER[1])).toBe(true);

    // No request before its Retry-After: per item, the request after a 429 starts no sooner than allowed.
    const byItem = new Map<string, Logged[]>();
    for (const e of value) byItem.set(e.itemId!, [...(byItem.get(e.itemId!) ?? []), e]);
    const early: string[] = [];
    let checked = 0;
    for (const [itemId, entries] of byItem) {
      entries.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
      for (let i = 0; i + 1 < entries.length; i++) {
        const e = entries[i]!;
        if (e.retryAfter === undefined) continue;
        checked++;
        const answeredAt = Date.parse(e.time) + e.durationMs;
        const next = Date.parse(entries[i + 1]!.time);
        if (next < answeredAt + e.retryAfter * 1000)
          early.push(`${itemId}: retried ${next - answeredAt} ms after a 429 with Retry-After ${e.retryAfter}`);
      }
      expect(entries.at(-1)!.status, itemId).toBe(200);
    }
    expect(checked).toBe(throttled.length);
    expect(early).toEqual([]);

    // Nothing lost, nothing extra, no dead letter.
    const items = await stack.emulatorItems();
    const expected = Array.from({ length: N }, (_, i) => String(record(i).ticketId));
    const missing = expected.filter((id) => !items.has(id));
    expect(missing).toEqual([]);
    expect(items.size).toBe(N);
    const c = r.job!.counts;
    expect(c.ingested).toBe(N);
    expect(c.deadLettered).toBe(0);
    expect(c.enumerated).toBe(c.enqueued + c.unchanged + c.rejected);

    const maxPerItem = Math.max(...[...byItem.values()].map((l) => l.filter((e) => e.status === 429).length));
    await reportFigures(`429 window (${WINDOW_SECONDS} s) mid-crawl`, {
      items: N,
      faultsInjected: throttled.length,
      retries: value.length - N,
      deadLetters: c.deadLettered,
      lost: missing.length,
      note: `${byItem.size - [...byItem.values()].filter((l) => l.every((e) => e.status !== 429)).length} items throttled, at most ${maxPerItem} times each; crawl ended ${Math.round((finishedAt - openedAt) / 1000)} s after the window opened`,
    });
  });

  it('logged no secret value', () => {
    expect(stack.logger.lines.length).toBeGreaterThan(0);
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
