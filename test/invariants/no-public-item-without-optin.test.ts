/**
 * Invariant 5: an item whose ACL cannot be resolved is never made visible to everyone — it is rejected
 * (`onUnresolved: "reject"`) or ingested visible to nobody (`onUnresolved: "denyAll"`).
 * Bug class prevented: fail-open ACLs — an unknown user, a deny that cannot be resolved or a missing
 * visibility turning an item public (or visible to the people it must be hidden from).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import { deadLetters, emulatorItems, jsonl, rec, recs, searchAs, type Rec } from './helpers.js';

const good = recs(6);
const unresolvable: Rec[] = [
  rec(200, { allowedUsers: ['ghost@contoso.com'] }), // the only grant names an unknown user
  rec(201, { visibility: 'public', deniedUsers: ['ghost@contoso.com'] }), // a deny that cannot be resolved
  rec(202, { visibility: 'restricted', allowedUsers: ['adele@contoso.com'], deniedUsers: ['nobody@fabrikam.com'] }),
  rec(203, { visibility: 'secret' }), // no rule applies: no grant at all
  rec(204, { visibility: null, allowedUsers: null }),
];
const probe = rec(300, { visibility: 'public' }); // a control: public by the mapping's explicit opt-in
const records = [...good, ...unresolvable, probe];
const unresolvableIds = unresolvable.map((r) => String(r.ticketId));

async function everyUser(stack: Stack): Promise<string[]> {
  const dir = await stack.admin<{ users: { userPrincipalName: string }[] }>('directory');
  return dir.users.map((u) => u.userPrincipalName);
}

/** Which users see the record with index-word `zqinv<i>`. */
async function audience(stack: Stack, r: Rec, users: string[]): Promise<string[]> {
  const word = String(r.title).split(' ').at(-1)!;
  const seen: string[] = [];
  for (const u of users) if ((await searchAs(stack, u, word)).includes(String(r.ticketId))) seen.push(u);
  return seen;
}

describe('onUnresolved: reject', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ records: jsonl(records) });
  }, 60_000);
  afterAll(async () => stack?.close());

  it('rejects each record with an unresolvable ACL (with the ACL reason); nobody can find it', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.rejected).toBe(unresolvable.length);
    expect(job!.counts.ingested).toBe(good.length + 1);
    const rejections = (await deadLetters(stack, job!.crawlId)).filter((d) => d.op === 'reject');
    expect(rejections.map((d) => d.itemId).sort()).toEqual([...unresolvableIds].sort());
    for (const d of rejections) expect(d.message).toMatch(/acl/i);
    const stored = new Set((await emulatorItems(stack)).map((i) => i.id));
    for (const id of unresolvableIds) expect(stored.has(id), id).toBe(false);

    const users = await everyUser(stack);
    expect(users.length).toBeGreaterThan(10);
    for (const r of unresolvable) expect(await audience(stack, r, users), String(r.ticketId)).toEqual([]);
    // The control shows the search works: the opted-in public item is visible to everyone.
    expect((await audience(stack, probe, users)).sort()).toEqual([...users].sort());
  });
});

describe('onUnresolved: denyAll', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      records: jsonl(records),
      editDefinition: (def) => {
        def.mapping.acl.onUnresolved = 'denyAll';
      },
    });
  }, 60_000);
  afterAll(async () => stack?.close());

  it('ingests each record with an unresolvable ACL visible to nobody', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.rejected).toBe(0);
    expect(job!.counts.ingested).toBe(records.length);
    const stored = new Map((await emulatorItems(stack)).map((i) => [i.id, i]));
    for (const id of unresolvableIds) {
      const acl = stored.get(id)?.acl as { type: string; accessType: string }[] | undefined;
      expect(acl, id).toBeDefined();
      expect(
        acl!.filter((e) => e.accessType === 'grant'),
        id,
      ).toEqual([]);
      expect(
        acl!.some((e) => e.type === 'everyone' && e.accessType === 'deny'),
        id,
      ).toBe(true);
    }
    const users = await everyUser(stack);
    for (const r of unresolvable) expect(await audience(stack, r, users), String(r.ticketId)).toEqual([]);
    expect(await audience(stack, good[0]!, users)).toEqual(['adele@contoso.com']);
  });
});

describe('allowEveryone: false', () => {
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    // A mapping module that tries to share every item with everyone, without the opt-in.
    dir = await mkdtemp(join(tmpdir(), 'gc-optin-'));
    const modulePath = join(dir, 'everyone-mapper.mjs');
    await writeFile(
      modulePath,
      `export function map(record) {
        return {
          id: record.ticketId,
          properties: { title: record.title },
          content: { type: 'text', value: record.title },
          acl: [{ type: 'everyone', value: 'everyone', accessType: 'grant' }],
        };
      }\n`,
    );
    stack = await startStack({
      records: jsonl(records),
      editDefinition: (def) => {
        def.mapping = { module: modulePath, acl: { onUnresolved: 'reject', allowEveryone: false, rules: [] } };
      },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an everyone grant without the opt-in is rejected: nothing reaches Graph, nobody sees anything', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.rejected).toBe(records.length);
    expect(job!.counts.ingested).toBe(0);
    const rejections = (await deadLetters(stack, job!.crawlId)).filter((d) => d.op === 'reject');
    expect(rejections).toHaveLength(records.length);
    for (const d of rejections) expect(d.message).toMatch(/allowEveryone/);
    expect(await emulatorItems(stack)).toEqual([]);
    expect(await audience(stack, probe, await everyUser(stack))).toEqual([]);
  });
});
