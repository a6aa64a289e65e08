/**
 * A broken source never deletes from Graph: a full crawl whose source fails half way (a JSON array cut off in
 * the middle) fails without a sweep, and a source that suddenly returns 5 % of its records is refused by the
 * ratio guard — in both cases the job's message says why, and Graph keeps every item.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlLocally } from '../../src/local/crawl-locally.js';
import { expectNoSecrets, reportFigures, sized, startReliabilityStack, ticket, type RStack } from './support.js';

const N = sized(1000, 200);
const records = Array.from({ length: N }, (_, i) => ticket(i));
let stack: RStack;

const crawl = () =>
  crawlLocally(
    stack.rt.pipeline,
    { mode: 'full', trigger: 'cli' },
    { concurrency: 25, pollMs: 25, visibilityTimeoutMs: 5_000 },
  );

beforeAll(async () => {
  stack = await startReliabilityStack({
    editDefinition: (def) => {
      def.source.type = 'jsonArray';
    },
  });
  await writeFile(stack.recordsPath, JSON.stringify(records));
  const first = await crawl();
  expect(first.job?.status, first.job?.error).toBe('completed');
  expect(first.job?.counts.ingested).toBe(N);
  await stack.takeItemRequests();
});
afterAll(async () => stack?.close());

describe('sources that fail or shrink', () => {
  it('a source that fails half way through a full crawl: the crawl fails, nothing is deleted, the job says why', async () => {
    const text = JSON.stringify(records);
    // Cut in the middle of an element, as a dropped download leaves a file.
    await writeFile(stack.recordsPath, text.slice(0, Math.floor(text.length / 2)));
    const r = await crawl();
    expect(r.job?.status).toBe('failed');
    expect(r.job?.error).toMatch(/source failed/);
    expect(r.job?.error).toMatch(/truncated|ends early|end/i);
    expect(r.job?.error).toMatch(/nothing was deleted/);
    const log = await stack.takeItemRequests();
    expect(log.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect((await stack.emulatorItems()).size).toBe(N);
    await reportFigures('source fails half way', {
      items: N,
      faultsInjected: 1,
      retries: 0,
      deadLetters: r.job?.counts.deadLettered ?? 0,
      lost: N - (await stack.emulatorItems()).size,
      note: `job: ${r.job?.status}: ${r.job?.error?.slice(0, 160)}`,
    });
  });

  it('a source that suddenly returns 5 % of its records: the guard refuses the sweep and says why', async () => {
    const kept = records.filter((_, i) => i % 20 === 0);
    await writeFile(stack.recordsPath, JSON.stringify(kept));
    const r = await crawl();
    expect(r.job?.status, r.job?.error).toBe('completed');
    const error = r.job?.error ?? '';
    expect(error).toMatch(/^sweep skipped: the sweep would delete \d+ of \d+ items \(95\.0%\)/);
    expect(error).toMatch(/SWEEP_MAX_DELETE_RATIO/);
    expect(error).toMatch(/truncated read/);
    expect(r.job?.counts.deleted ?? 0).toBe(0);
    const log = await stack.takeItemRequests();
    expect(log.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect((await stack.emulatorItems()).size).toBe(N);
    await reportFigures('source returns 5 %', {
      items: N,
      faultsInjected: 1,
      retries: 0,
      deadLetters: r.job?.counts.deadLettered ?? 0,
      lost: N - (await stack.emulatorItems()).size,
      note: `guard: ${error.slice(0, 160)}`,
    });
  });

  it('logged no secret value', () => {
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
