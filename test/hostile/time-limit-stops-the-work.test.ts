/**
 * A time limit that says "stopped" stops the work: the worker process extracting the file is killed, even in the
 * middle of one long synchronous step, so that no CPU is spent on the file afterwards and the next file gets a
 * fresh worker. (Before, the result said `timeout` while parsing or inflating went on.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { strToU8 } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDocx } from '../../src/extract/fixtures/index.js';
import {
  closeExtraction,
  extractFile,
  sandboxPids,
  sandboxWorkerCount,
  warmUpExtraction,
} from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** CPU time (all threads of this process) spent during the next `ms`, as a share of one core. */
async function cpuShareOver(ms: number): Promise<number> {
  const before = process.cpuUsage();
  const started = performance.now();
  await sleep(ms);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / (performance.now() - started);
}

describe('the time limit stops the work', () => {
  const cases = [
    {
      name: 'pdf-nested-graphics-state.pdf',
      how: 'pdfjs busy on one page (asynchronous steps)',
      bytes: corpus((f) => f.name === 'pdf-nested-graphics-state.pdf')[0]!.bytes,
    },
    {
      name: 'long.html',
      how: 'one synchronous parse of 24 MB of HTML',
      bytes: strToU8(`<html><body>${'<p>lorem <b>ipsum</b> dolor</p>\n'.repeat(800_000)}</body></html>`),
    },
  ];
  for (const c of cases)
    it(`${c.name}: ${c.how} — the worker is terminated at the limit`, async () => {
      const file = { name: c.name, class: 'huge-structure' as const, description: c.how, bytes: c.bytes };
      await warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb });
      const workers = sandboxPids();
      expect(workers.length).toBeGreaterThan(0);
      const m = await extractHostile(file, { timeoutMs: 300 });
      expectContained(file, m, 300);
      expect(m.result).toMatchObject({ ok: false, code: 'timeout' });
      if (!m.result.ok) {
        expect(m.result.reason).toContain('longer than 300 ms (timeoutMs)');
        expect(m.result.reason).toContain(`"${c.name}" was stopped`);
      }
      // Nothing keeps running: the worker process is gone, and this process is idle.
      expect(sandboxWorkerCount()).toBe(0);
      expect(await cpuShareOver(1_000)).toBeLessThan(0.25);
      for (const pid of workers) expect(alive(pid), `worker process ${pid}`).toBe(false);
      // The next file gets a fresh worker and is extracted.
      const next = await extractFile(
        { bytes: makeDocx(['after the timeout']), fileName: 'next.docx' },
        HOSTILE_OPTIONS,
      );
      expect(next).toMatchObject({ ok: true, text: 'after the timeout' });
    });
});
