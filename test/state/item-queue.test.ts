import { describe, expect, it } from 'vitest';
import type { ExternalItem } from '../../src/config/model.js';
import { ItemMessageError, parseItemMessage, type ItemMessage } from '../../src/state/queues/items.js';
import { encodeQueueMessage } from '../../src/state/storage.js';
import { freshState, uid } from './helpers.js';

function item(id: string, content = 'hello'): ExternalItem {
  return {
    id,
    acl: [{ type: 'group', value: 'g1', accessType: 'grant' }],
    properties: { title: `Item ${id}`, tags: ['a', 'b'], 'tags@odata.type': 'Collection(String)' },
    content: { type: 'text', value: content },
  };
}

function msg(over: Partial<ItemMessage> = {}): ItemMessage {
  const itemId = over.itemId ?? 'item1';
  return {
    v: 1,
    op: 'upsert',
    connectionId: 'conn1',
    itemId: 'item1',
    crawlId: 'crawl1',
    generation: 3,
    hash: 'abc',
    attempt: 0,
    item: item(itemId),
    ...over,
  };
}

async function receiveAll(state: Awaited<ReturnType<typeof freshState>>, want: number, timeoutMs = 5000) {
  const out = [];
  const until = Date.now() + timeoutMs;
  while (out.length < want && Date.now() < until) {
    const got = await state.queue.receive(32, 30_000);
    out.push(...got);
    if (got.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

describe('item queue', () => {
  it('round-trips every message kind, base64-encoded on the wire', async () => {
    const state = await freshState();
    const kinds: ItemMessage[] = [
      msg({ itemId: 'up1', item: item('up1') }),
      msg({ itemId: 'up2', item: item('up2'), attempt: 3, notBefore: Date.now() + 1000 }),
      (() => {
        const { item: _i, ...rest } = msg({ itemId: 'del1', op: 'delete', hash: '' });
        return rest;
      })(),
    ];
    for (const m of kinds) await state.queue.send(m);
    // Raw peek: the text is base64 of the JSON (what the Functions host decodes by default).
    const peek = await state.queue.queueClient.peekMessages({ numberOfMessages: 32 });
    expect(peek.peekedMessageItems).toHaveLength(3);
    for (const p of peek.peekedMessageItems) {
      expect(p.messageText).toMatch(/^[A-Za-z0-9+/]+=*$/);
      expect(JSON.parse(Buffer.from(p.messageText, 'base64').toString('utf8')).v).toBe(1);
    }
    const got = await receiveAll(state, 3);
    expect(got.map((g) => g.error)).toEqual([undefined, undefined, undefined]);
    const byId = new Map(got.map((g) => [g.message!.itemId, g.message!]));
    for (const m of kinds) expect(byId.get(m.itemId)).toEqual(m);
    expect(await state.queue.resolve(byId.get('up1')!)).toEqual(item('up1'));
    expect(await state.queue.resolve(byId.get('del1')!)).toBeUndefined();
    for (const g of got) await state.queue.delete(g);
    expect(await receiveAll(state, 1, 300)).toHaveLength(0);
  });

  it('sends a 100 KiB item by claim check and gets it back byte-identical; the claim is deleted after settle', async () => {
    const state = await freshState();
    const big = item('big1', 'x'.repeat(50 * 1024) + 'é漢字'.repeat(10 * 1024)); // > 100 KiB of UTF-8
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(100 * 1024);
    const sent = await state.queue.send(msg({ itemId: 'big1', item: big }));
    expect(sent.claim).toBeTruthy();
    const [r] = await receiveAll(state, 1);
    expect(r!.error).toBeUndefined();
    expect(r!.message!.item).toBeUndefined();
    expect(r!.message!.claim).toBe(sent.claim);
    expect(r!.text.length).toBeLessThan(2000);
    const back = await state.queue.resolve(r!.message!);
    expect(Buffer.from(JSON.stringify(back))).toEqual(Buffer.from(JSON.stringify(big)));
    await state.queue.deleteClaim(r!.message!);
    expect(await state.queue.claims.getBlobClient(sent.claim!).exists()).toBe(false);
    await expect(state.queue.resolve(r!.message!)).rejects.toMatchObject({ name: 'ClaimMissingError' });
  });

  it('keeps an item just under the limit inline and moves one just over to a claim', async () => {
    const state = await freshState({ maxInlineBytes: 4000 });
    const small = await state.queue.send(msg({ itemId: 's1', item: item('s1', 'y'.repeat(2000)) }));
    const large = await state.queue.send(msg({ itemId: 'l1', item: item('l1', 'y'.repeat(3500)) }));
    expect(small.claim).toBeUndefined();
    expect(large.claim).toBeTruthy();
  });

  it('raises ItemMessageError for malformed and unknown-version messages, without failing the batch', async () => {
    const state = await freshState();
    await state.queue.queueClient.sendMessage(encodeQueueMessage('{not json'));
    await state.queue.queueClient.sendMessage(encodeQueueMessage(JSON.stringify({ ...msg({ itemId: 'v2' }), v: 2 })));
    await state.queue.queueClient.sendMessage(
      encodeQueueMessage(JSON.stringify({ ...msg({ itemId: 'bad' }), op: 'patch' })),
    );
    await state.queue.send(msg({ itemId: 'good1' }));
    const got = await receiveAll(state, 4);
    const errors = got.filter((g) => g.error).map((g) => g.error!);
    expect(errors.map((e) => e.reason).sort()).toEqual(['invalid', 'malformed', 'unknownVersion']);
    for (const e of errors) expect(e).toBeInstanceOf(ItemMessageError);
    expect(got.filter((g) => g.message).map((g) => g.message!.itemId)).toEqual(['good1']);

    expect(() => parseItemMessage({ ...msg(), v: 99 })).toThrow(/unknown message version 99/);
    expect(() => parseItemMessage({ ...msg(), item: undefined })).toThrow(/exactly one of item or claim/);
    expect(() => parseItemMessage({ ...msg(), itemId: 'has space' })).toThrow(/itemId/);
    expect(() => parseItemMessage({ ...msg(), item: item('other') })).toThrow(/item.id must equal itemId/);
    expect(() => parseItemMessage(42)).toThrow(ItemMessageError);
    // The Functions trigger hands over an already-parsed object; a plain JSON string also works.
    expect(parseItemMessage(JSON.stringify(msg())).itemId).toBe('item1');
    // Sending a message we would refuse to read fails at the sender.
    await expect(state.queue.send({ ...msg(), generation: -1 })).rejects.toThrow(ItemMessageError);
  });

  it('hides a message sent with a visibility delay until the delay elapses', async () => {
    const state = await freshState();
    const t0 = Date.now();
    await state.queue.send(msg({ itemId: 'later1', attempt: 1 }), { visibilityDelayMs: 1500 });
    expect(await state.queue.receive(32, 30_000)).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 700));
    expect(await state.queue.receive(32, 30_000)).toHaveLength(0);
    let got: Awaited<ReturnType<typeof state.queue.receive>> = [];
    while (got.length === 0 && Date.now() - t0 < 6000) {
      await new Promise((r) => setTimeout(r, 150));
      got = await state.queue.receive(32, 30_000);
    }
    expect(got).toHaveLength(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(got[0]!.message!.attempt).toBe(1);
  });

  it('updateVisibility re-hides a received message and returns a working handle', async () => {
    const state = await freshState();
    await state.queue.send(msg({ itemId: 'vis1' }));
    const [r] = await receiveAll(state, 1);
    const h = await state.queue.updateVisibility(r!, 1000);
    expect(h.popReceipt).not.toBe(r!.popReceipt);
    expect(await state.queue.receive(1, 1000)).toHaveLength(0);
    await state.queue.delete(h);
    await new Promise((r) => setTimeout(r, 1200));
    expect(await state.queue.receive(1, 1000)).toHaveLength(0);
  });

  it('sendBatch sends all messages with bounded concurrency', async () => {
    const state = await freshState();
    const msgs = Array.from({ length: 60 }, (_, i) => msg({ itemId: `b${i}`, item: item(`b${i}`) }));
    const res = await state.queue.sendBatch(msgs, { concurrency: 8 });
    expect(res).toHaveLength(60);
    expect(await state.queue.approximateCount()).toBe(60);
  });

  it('drains the poison queue through a handler; a failing handler leaves the message', async () => {
    const state = await freshState();
    const poison = state.queue.poisonClient!;
    expect(poison.name).toBe(`${state.queue.name}-poison`);
    await poison.sendMessage(encodeQueueMessage(JSON.stringify(msg({ itemId: 'p1' }))));
    await poison.sendMessage(encodeQueueMessage('garbage ' + uid()));
    expect(await state.queue.peekPoison()).toHaveLength(2);
    const seen: string[] = [];
    const n = await state.queue.drainPoison(
      async (m) => {
        if (m.error) throw new Error('cannot record');
        seen.push(m.message!.itemId);
      },
      { visibilityTimeoutMs: 1000 },
    );
    expect(n).toBe(1);
    expect(seen).toEqual(['p1']);
    expect(await state.queue.peekPoison()).toHaveLength(0); // the failed one is hidden, not deleted
    await new Promise((r) => setTimeout(r, 1200));
    const left = await state.queue.peekPoison();
    expect(left).toHaveLength(1);
    expect(left[0]!.error?.reason).toBe('malformed');
  });
});
