/**
 * Malformed records never stop a crawl and never pass silently: bad records mixed into good ones (wrong
 * types, oversize content, huge strings, illegal or missing ids, missing or unresolvable ACLs, broken UTF-8,
 * unparseable lines) are each rejected with a reason that names the field; every good one is ingested.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlLocally } from '../../src/local/crawl-locally.js';
import { expectNoSecrets, reportFigures, sized, startReliabilityStack, ticket, type RStack } from './support.js';

const GOOD = sized(2000, 300);
const BAD = sized(500, 100);
const MAX_ITEM_BYTES = 100_000;

/** Each kind of bad record: how to make it (from a good one) and the field its rejection must name. */
const KINDS: { kind: string; field: RegExp; make: (r: Record<string, unknown>) => Buffer }[] = [
  { kind: 'int64 as text', field: /field "priority"/, make: (r) => line({ ...r, priority: 'high' }) },
  { kind: 'not a date', field: /field "createdDateTime"/, make: (r) => line({ ...r, createdDate: 'last Tuesday' }) },
  { kind: 'object as string', field: /field "title"/, make: (r) => line({ ...r, title: { text: 'x' } }) },
  { kind: 'bad collection element', field: /field "tags"/, make: (r) => line({ ...r, tags: ['ok', { no: 1 }] }) },
  { kind: 'number out of range', field: /field "priority"/, make: (r) => line({ ...r, priority: 2 ** 60 }) },
  {
    kind: 'oversize content',
    field: /field "content"/,
    make: (r) => line({ ...r, description: 'lorem ipsum '.repeat(MAX_ITEM_BYTES / 10) }),
  },
  {
    kind: 'huge string property',
    // The size check measures the whole item; it names the content it would cut.
    field: /field "(content|assignedTo)"/,
    make: (r) => line({ ...r, assignedTo: 'z'.repeat(MAX_ITEM_BYTES * 2) }),
  },
  { kind: 'missing id', field: /field "id"/, make: (r) => line({ ...r, ticketId: undefined }) },
  {
    kind: 'illegal id (lone surrogate)',
    field: /field "id"/,
    make: (r) => lineRaw(r, `"ticketId":"${String(r.ticketId)}\\ud800"`),
  },
  { kind: 'missing required title', field: /field "title"/, make: (r) => line({ ...r, title: undefined }) },
  {
    kind: 'ACL missing (restricted, no users)',
    field: /field "acl"/,
    make: (r) => line({ ...r, visibility: 'restricted', allowedUsers: undefined }),
  },
  {
    kind: 'ACL unresolvable (unknown user)',
    field: /field "acl"/,
    make: (r) => line({ ...r, visibility: 'restricted', allowedUsers: ['ghost@contoso.com'] }),
  },
  {
    kind: 'broken UTF-8 (invalid bytes in the JSON)',
    field: /line \d+|parse|JSON/i,
    make: (r) =>
      Buffer.concat([
        Buffer.from(`{"ticketId":"${String(r.ticketId)}","title":`),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('}\n'),
      ]),
  },
  {
    kind: 'unparseable line',
    field: /line \d+|parse|JSON/i,
    make: (r) => Buffer.from(`{"ticketId":"${String(r.ticketId)}", "title": "unterminated\n`),
  },
];

function line(r: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(r) + '\n');
}
/** A record with one raw JSON member replacing the ticketId (for escapes JSON.stringify would not write). */
function lineRaw(r: Record<string, unknown>, member: string): Buffer {
  const { ticketId: _id, ...rest } = r;
  return Buffer.from(`{${member},${JSON.stringify(rest).slice(1)}\n`);
}

let stack: RStack;
const badKinds = new Map<string, string>(); // bad record's ticketId → kind

beforeAll(async () => {
  stack = await startReliabilityStack({
    editDefinition: (def) => {
      def.mapping.contentOverflow = 'reject';
      def.mapping.maxItemBytes = MAX_ITEM_BYTES;
    },
  });
  const parts: Buffer[] = [];
  let g = 0;
  let b = 0;
  // Spread the bad ones evenly through the good ones.
  while (g < GOOD || b < BAD) {
    if (b < BAD && (g >= GOOD || (b + 1) * GOOD <= (g + 1) * BAD)) {
      const k = KINDS[b % KINDS.length]!;
      const r = ticket(100_000 + b, 0, 'BAD');
      badKinds.set(String(r.ticketId), k.kind);
      parts.push(k.make(r));
      b++;
    } else {
      parts.push(line(ticket(g)));
      g++;
    }
  }
  await writeFile(stack.recordsPath, Buffer.concat(parts));
});
afterAll(async () => stack?.close());

describe(`${BAD} malformed records among ${GOOD} good ones`, () => {
  it('ingests every good record and rejects every bad one with a reason naming the field', async () => {
    const r = await crawlLocally(
      stack.rt.pipeline,
      { mode: 'full', trigger: 'cli' },
      { concurrency: 25, pollMs: 25, visibilityTimeoutMs: 5_000 },
    );
    const job = r.job!;
    expect(job.status, job.error).toBe('completed');
    expect(job.counts.ingested).toBe(GOOD);
    expect(job.counts.rejected).toBe(BAD);
    expect(job.counts.enumerated).toBe(GOOD + BAD);
    expect(job.counts.deadLettered).toBe(0);

    // Graph holds exactly the good ones.
    const items = await stack.emulatorItems();
    expect(items.size).toBe(GOOD);
    for (const id of items.keys()) expect(id).toMatch(/^REL\d{6}$/);

    // Every rejection names its field.
    const rejections = [];
    for await (const dl of stack.rt.pipeline.state.deadLetters.list(stack.connectionId, {
      crawlId: job.crawlId,
      op: 'reject',
    }))
      rejections.push(dl);
    expect(rejections).toHaveLength(BAD);
    const unnamed: string[] = [];
    const perKind = new Map<string, number>();
    for (const dl of rejections) {
      const text = (dl.reasons ?? [dl.message]).join('; ');
      const key = [...badKinds.keys()].find((id) => text.includes(id) || dl.itemId.includes(id));
      const kind = KINDS.find((k) => k.kind === (key ? badKinds.get(key) : undefined));
      if (kind) perKind.set(kind.kind, (perKind.get(kind.kind) ?? 0) + 1);
      // Parse failures are reported by position (the record has no readable fields); the rest by field.
      const named = kind ? kind.field.test(text) : /field "[^"]+"/.test(text) || /line \d+/.test(text);
      if (!kind && !/field "id"|line \d+/.test(text)) unnamed.push(`unattributed: ${text.slice(0, 200)}`);
      if (!named) unnamed.push(`${dl.itemId}: ${text.slice(0, 200)}`);
    }
    expect(unnamed, 'rejections that do not name the field').toEqual([]);
    // Every kind was produced and recognised.
    // (A record without an id, or one that does not parse, is reported by its line: no kind to match.)
    for (const k of KINDS.filter((x) => x.kind !== 'missing id' && !/parse|JSON/.test(x.field.source)))
      expect(perKind.get(k.kind) ?? 0, k.kind).toBeGreaterThan(0);

    await reportFigures('malformed records', {
      items: GOOD + BAD,
      faultsInjected: BAD,
      retries: 0,
      deadLetters: job.counts.deadLettered,
      lost: GOOD - items.size,
      note: `${BAD} rejected with the field named (${KINDS.length} kinds), ${job.counts.ingested} ingested`,
    });
  });

  it('logged no secret value', () => {
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
