/**
 * Transient faults never lose or duplicate an item: with 10 % of Graph calls failing (429 and 503 with
 * Retry-After, 502, 500, dropped connections, slow responses — the emulator's seeded random faults), the
 * emulator's final state equals the source exactly, every ACL as mapped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlLocally } from '../../src/local/crawl-locally.js';
import {
  expectNoSecrets,
  jsonl,
  reportFigures,
  sized,
  sourceGroupIds,
  startReliabilityStack,
  ticket,
  type RStack,
} from './support.js';

const N = sized(2000, 300);
let stack: RStack;

beforeAll(async () => {
  stack = await startReliabilityStack({
    emulator: { seed: 6 },
    records: jsonl(Array.from({ length: N }, (_, i) => ticket(i))),
  });
});
afterAll(async () => stack?.close());

describe(`${N} items under 10 % injected transient faults`, () => {
  it('ends with the emulator holding exactly the source, every ACL as mapped; nothing lost, none extra', async () => {
    const { rt } = stack;
    // The expected final state: what the mapper makes of each source record.
    const expected = new Map<string, { acl: unknown; properties: unknown; content: unknown }>();
    const externalGroups = await sourceGroupIds(stack);
    for await (const record of rt.pipeline.source().read()) {
      const m = rt.pipeline.mapper.map(record, { externalGroups });
      if (!m.ok) throw new Error(`test data: record ${record.key} rejected: ${m.reason.message}`);
      expected.set(m.item.id, { acl: m.item.acl, properties: m.item.properties, content: m.item.content });
    }
    expect(expected.size).toBe(N);

    await stack.takeItemRequests();
    await stack.admin('settings', { method: 'PATCH', body: { faultRate: 0.1 } });
    const r = await crawlLocally(
      rt.pipeline,
      { mode: 'full', trigger: 'cli' },
      { concurrency: 25, pollMs: 25, visibilityTimeoutMs: 2_000, maxDequeueCount: 10 },
    );
    await stack.admin('settings', { method: 'PATCH', body: { faultRate: 0 } });
    const log = await stack.takeItemRequests();
    const faults = log.filter((q) => q.fault);
    const byKind = new Map<string, number>();
    for (const q of faults) byKind.set(q.fault!, (byKind.get(q.fault!) ?? 0) + 1);

    expect(r.job?.status, r.job?.error).toBe('completed');
    // The faults really happened, of every kind the issue names.
    expect(faults.length / log.length).toBeGreaterThan(0.05);
    expect([...byKind.keys()].join(' ')).toMatch(/429/);
    expect([...byKind.keys()].join(' ')).toMatch(/503/);
    expect([...byKind.keys()].join(' ')).toMatch(/502/);
    expect([...byKind.keys()].join(' ')).toMatch(/drop/);
    expect([...byKind.keys()].join(' ')).toMatch(/slow|delay|latency/);

    const actual = await stack.emulatorItems();
    const missing = [...expected.keys()].filter((id) => !actual.has(id));
    const extra = [...actual.keys()].filter((id) => !expected.has(id));
    expect(missing, 'items missing from Graph').toEqual([]);
    expect(extra, 'items in Graph that the source does not have').toEqual([]);
    const wrong: string[] = [];
    for (const [id, want] of expected) {
      const got = actual.get(id)!;
      if (JSON.stringify(got.acl) !== JSON.stringify(want.acl)) wrong.push(`${id}: acl`);
      if (JSON.stringify(got.properties) !== JSON.stringify(want.properties)) wrong.push(`${id}: properties`);
      if (JSON.stringify(got.content) !== JSON.stringify(want.content)) wrong.push(`${id}: content`);
    }
    expect(wrong).toEqual([]);
    const c = r.job!.counts;
    expect(c.ingested).toBe(N);
    expect(c.deadLettered).toBe(0);
    // Every source record ends in exactly one bucket.
    expect(c.enumerated).toBe(c.enqueued + c.unchanged + c.rejected);

    const retries = log.length - N; // every request beyond one successful PUT per item
    await reportFigures('transient faults (10 %)', {
      items: N,
      faultsInjected: faults.length,
      retries,
      deadLetters: c.deadLettered,
      lost: missing.length,
      note: `faults by kind: ${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')}`,
    });
  });

  it('logged no secret value', () => {
    expect(stack.logger.lines.length).toBeGreaterThan(0);
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
