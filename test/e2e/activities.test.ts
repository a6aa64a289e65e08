/**
 * mapping.activities end to end: records crawled through Azurite into the emulator, their created and commented
 * activities sent with addActivities after each PUT — 20 to a call, only the new ones on a recrawl, none (and no
 * storage call for them) when nothing changed, and a refused batch dead-lettered without failing its item.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayDeadLetters } from '../../src/host/status.js';
import { SAMPLE, startStack, type Stack } from '../support/stack.js';

interface Comment {
  author: string;
  at: string;
}
interface Task {
  ticketId: string;
  title: string;
  description: string;
  team: string;
  visibility: string;
  createdBy: string;
  createdDate: string;
  comments?: Comment[];
}

const USERS = ['adele@contoso.com', 'megan@contoso.com', 'alex@contoso.com', 'diego@contoso.com'];

function task(n: number, comments: Comment[] = []): Task {
  return {
    ticketId: `ACT${n}`,
    title: `Activity test ticket ${n}`,
    description: 'A ticket whose activities are sent to Graph.',
    team: 'logistics',
    visibility: 'public',
    createdBy: USERS[n % USERS.length]!,
    createdDate: `2025-03-0${n}T09:00:00.000Z`,
    ...(comments.length ? { comments } : {}),
  };
}

const comment = (i: number, author = USERS[i % USERS.length]!): Comment => ({
  author,
  at: new Date(Date.UTC(2025, 4, 1, 8, i)).toISOString(),
});

let stack: Stack;
let cid: string;
let tasks: Task[];
let userIds: Map<string, string>;
/** Storage requests of the runtime while `counting` is set. */
let counting = false;
const storage: { service: string; method: string; url: string }[] = [];

async function write(list: Task[]): Promise<void> {
  await stack.writeRecords(list.map((t) => JSON.stringify(t)).join('\n') + '\n');
}

/** addActivities calls the emulator answered since the last call, per item, with how many activities each sent. */
async function takeActivityCalls(): Promise<{ itemId: string; status: number }[]> {
  const { value } = await stack.admin<{ value: { route: string; itemId?: string; status: number }[] }>(
    `requests?connectionId=${cid}&route=activities`,
  );
  await stack.admin('requests', { method: 'DELETE' });
  return value.map((e) => ({ itemId: e.itemId ?? '', status: e.status }));
}

async function storedActivities(
  itemId: string,
): Promise<{ type: string; startDateTime: string; performedBy: { id: string } }[]> {
  const item = await stack.admin<{
    activities: { type: string; startDateTime: string; performedBy: { id: string } }[];
  }>(`connections/${cid}/items/${itemId}`);
  return item.activities;
}

beforeAll(async () => {
  tasks = [
    task(1, [comment(1), comment(2)]),
    task(2),
    task(
      3,
      Array.from({ length: 24 }, (_, i) => comment(i)),
    ),
  ];
  stack = await startStack({
    onStorageRequest: (service, method, url) => {
      if (counting) storage.push({ service, method, url });
    },
    records: tasks.map((t) => JSON.stringify(t)).join('\n') + '\n',
    editDefinition: (def) => {
      delete def.source.groups; // externalGroup ACLs are not what this test is about
      def.mapping.activities = [
        { type: 'created', user: 'createdBy', time: 'createdDate' },
        { type: 'commented', from: 'comments', user: 'author', time: 'at' },
      ];
    },
  });
  cid = stack.rt.definition.connection.id;
  const dir = JSON.parse(await readFile(join(SAMPLE, 'directory.json'), 'utf8')) as {
    users: { id: string; userPrincipalName: string }[];
  };
  userIds = new Map(dir.users.map((u) => [u.userPrincipalName, u.id]));
  await stack.admin('requests', { method: 'DELETE' });
}, 60_000);
afterAll(async () => stack?.close());

describe('mapping.activities: sent after the PUT, only new ones, 20 to a call', () => {
  it('the first crawl sends every activity, with the user resolved from its UPN and the record time', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.ingested).toBe(3);
    const one = await storedActivities('ACT1');
    expect(one.map((a) => a.type).sort()).toEqual(['commented', 'commented', 'created']);
    const created = one.find((a) => a.type === 'created')!;
    expect(created.startDateTime).toBe('2025-03-01T09:00:00.000Z');
    expect(created.performedBy).toEqual({ type: 'user', id: userIds.get(tasks[0]!.createdBy) });
    expect(await storedActivities('ACT2')).toHaveLength(1);
    // 25 activities (created + 24 comments) take two calls: 20, then 5.
    expect(await storedActivities('ACT3')).toHaveLength(25);
    const calls = await takeActivityCalls();
    expect(calls.filter((c) => c.itemId === 'ACT3')).toHaveLength(2);
    expect(calls.filter((c) => c.itemId === 'ACT1')).toHaveLength(1);
    expect(calls.every((c) => c.status === 200)).toBe(true);
  });

  it('an unchanged recrawl sends no activity and makes no storage call for its items', async () => {
    const before = await stack.rt.pipeline.state.items.getItem(cid, 'ACT1');
    counting = true;
    const { job } = await stack.crawl({ mode: 'full' }).finally(() => (counting = false));
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.enqueued).toBe(0);
    expect(job!.counts.unchanged).toBe(3);
    expect(await takeActivityCalls()).toEqual([]);
    expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: 0, throttled: 0 });
    const after = await stack.rt.pipeline.state.items.getItem(cid, 'ACT1');
    expect(after?.etag).toBe(before?.etag);
    expect(storage.length).toBeGreaterThan(0); // the crawl's own bookkeeping (job, lease, snapshot) was counted
    // No request names an item's row (the ledger, a claim, a message for it): the snapshot answered "unchanged".
    expect(storage.filter((r) => /act\d/i.test(decodeURIComponent(r.url)))).toEqual([]);
  });

  it('a record with one new comment sends only that comment', async () => {
    const added = comment(40, 'megan@contoso.com');
    tasks[0]!.comments!.push(added);
    await write(tasks);
    storage.length = 0;
    counting = true;
    const { job } = await stack.crawl({ mode: 'full' }).finally(() => (counting = false));
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.enqueued).toBe(1);
    // The filter of the unchanged recrawl above does see a changed item's storage calls.
    expect(storage.filter((r) => /act1/i.test(decodeURIComponent(r.url))).length).toBeGreaterThan(0);
    const calls = await takeActivityCalls();
    expect(calls).toEqual([{ itemId: 'ACT1', status: 200 }]);
    const stored = await storedActivities('ACT1');
    expect(stored).toHaveLength(4);
    expect(stored.at(-1)).toMatchObject({
      type: 'commented',
      startDateTime: added.at,
      performedBy: { type: 'user', id: userIds.get('megan@contoso.com') },
    });
  });

  it('a refused addActivities dead-letters the batch with its reason; the item still settles; a replay sends it', async () => {
    await stack.admin('faults', {
      method: 'POST',
      body: {
        match: { route: 'activities', itemId: 'ACT2' },
        action: 'status',
        status: 400,
        code: 'InvalidRequest',
        message: 'activity refused by the test',
        count: 0,
      },
    });
    tasks[1]!.comments = [comment(7), comment(8)];
    await write(tasks);
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.ingested).toBe(1);
    expect(job!.counts.deadLettered).toBe(0);
    const row = await stack.rt.pipeline.state.items.getItem(cid, 'ACT2');
    expect(row?.state).toBe('settled');
    const letters = [];
    for await (const dl of stack.rt.pipeline.state.deadLetters.list(cid)) letters.push(dl);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ op: 'activities', itemId: 'ACT2', status: 400, code: 'InvalidRequest' });
    expect(letters[0]!.message).toMatch(/2 of 2 activities were not added.*activity refused by the test/);
    expect(await storedActivities('ACT2')).toHaveLength(1); // only the created activity of the first crawl
    // The next crawl does not send them again (they are the dead letter's now) ...
    const again = await stack.crawl({ mode: 'full' });
    expect(again.job!.counts.enqueued).toBe(0);
    await takeActivityCalls();
    // ... a replay does, once Graph takes them.
    await stack.admin('faults', { method: 'DELETE' });
    const replay = await replayDeadLetters(stack.rt, { all: true });
    expect(replay).toEqual({ replayed: 1, skipped: [] });
    expect(await storedActivities('ACT2')).toHaveLength(3);
    const left = [];
    for await (const dl of stack.rt.pipeline.state.deadLetters.list(cid)) left.push(dl);
    expect(left).toEqual([]);
  });
});
