/**
 * A queue message is input like any other: a forged item message may name any blob of the claims container.
 * Bug class prevented: a message whose `claim` names another crawl's item, a dead letter's body or any other blob
 * making the ingest publish (and then delete) that blob.
 */
import { describe, expect, it } from 'vitest';
import { claimPrefixOf, parseItemMessage } from '../../src/state/queues/items.js';
import { freshState } from '../state/helpers.js';

const base = {
  v: 1,
  op: 'upsert',
  connectionId: 'contoso',
  itemId: 'T-1',
  crawlId: '8235623456789ab12',
  hash: 'h',
  attempt: 0,
};

describe('claims are tied to their own crawl and item', () => {
  it.each([
    ['another connection', 'other/8235623456789ab12/T-1-abcd.json'],
    ['another crawl', 'contoso/1111111111111aaaa/T-1-abcd.json'],
    ['another item', 'contoso/8235623456789ab12/T-2-abcd.json'],
    ['a dead letter body', 'deadletters/contoso/upsert~t-1.json'],
    ['a path that climbs', 'contoso/8235623456789ab12/T-1-../../x.json'],
    ['the host keys', 'azure-webjobs-secrets/app/host.json'],
  ])('a claim naming %s is refused as invalid', (_what, claim) => {
    expect(() => parseItemMessage({ ...base, claim })).toThrow(
      /claim must be a blob named contoso\/8235623456789ab12\/T-1-/,
    );
  });

  it("a claim of the message's own crawl and item is read back", async () => {
    const state = await freshState({ maxInlineBytes: 200 });
    const item = { id: 'T-1', acl: [], properties: { title: 'x'.repeat(500) } };
    const sent = await state.queue.send({ ...base, item } as never);
    expect(sent.claim).toMatch(
      new RegExp(`^${claimPrefixOf(base).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f]+\\.json$`),
    );
    const [m] = await state.queue.receive(1, 5_000);
    expect(await state.queue.resolve(m!.message!)).toEqual(item);
  });
});
