/**
 * Global setup of the reliability suite: a folder each test file drops its figures into, and the summary
 * table printed when the run ends.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

interface Figures {
  name: string;
  items: number;
  faultsInjected: number;
  retries: number;
  deadLetters: number;
  lost: number;
  /** Set by the hostile scenarios: what leaked (0); the others measure no leak ("–"). */
  leaked?: number;
  note?: string;
}

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'gc-reliability-'));
  project.provide('reliabilityFiguresDir', dir);
  return async () => {
    const rows: Figures[] = [];
    for (const f of (await readdir(dir)).sort()) {
      rows.push(JSON.parse(await readFile(join(dir, f), 'utf8')) as Figures);
    }
    await rm(dir, { recursive: true, force: true });
    if (!rows.length) return;
    const head = ['scenario', 'items', 'faults injected', 'retries', 'dead letters', 'lost', 'leaked'];
    const cells = rows.map((r) => [
      r.name,
      String(r.items),
      String(r.faultsInjected),
      String(r.retries),
      String(r.deadLetters),
      String(r.lost),
      r.leaked === undefined ? '–' : String(r.leaked),
    ]);
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
    const out = [
      '',
      `reliability (${process.env.RELIABILITY_SIZE === 'small' ? 'small' : 'full'} size)`,
      line(head),
      w.map((n) => '─'.repeat(n)).join('  '),
      ...cells.map(line),
      ...rows.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`),
      '',
    ];
    process.stdout.write(out.join('\n') + '\n');
  };
}
