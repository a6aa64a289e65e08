import { describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../src/state/lease.js';
import { connectionId, freshState } from './helpers.js';

describe('crawl lease', () => {
  it('two concurrent acquisitions: exactly one wins, the loser gets the holder', async () => {
    const { leases } = await freshState();
    for (let round = 0; round < 5; round++) {
      const conn = connectionId();
      const [a, b] = await Promise.all([
        leases.acquire(conn, { holder: 'host-a', crawlId: 'crawlA', ttlMs: 60_000 }),
        leases.acquire(conn, { holder: 'host-b', crawlId: 'crawlB', ttlMs: 60_000 }),
      ]);
      const winners = [a, b].filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!.ok ? winners[0]!.lease : undefined;
      const loser = [a, b].find((r) => !r.ok)!;
      if (loser.ok) throw new Error('unreachable');
      expect(loser.heldBy.holder).toBe(winner!.holder);
      expect(loser.heldBy.crawlId).toBe(winner!.crawlId);
      expect(Date.parse(loser.heldBy.expiresAt)).toBeGreaterThan(Date.now());
    }
  });

  it('eight concurrent acquisitions of an expired lease: exactly one takes it over', async () => {
    const { leases } = await freshState();
    const conn = connectionId();
    const first = await leases.acquire(conn, { holder: 'crashed', ttlMs: 300 });
    expect(first.ok).toBe(true);
    const blocked = await leases.acquire(conn, { holder: 'early', ttlMs: 60_000 });
    expect(blocked).toMatchObject({ ok: false, heldBy: { holder: 'crashed' } });
    await new Promise((r) => setTimeout(r, 450));
    expect(await leases.holder(conn)).toMatchObject({ holder: 'crashed', expired: true });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => leases.acquire(conn, { holder: `h${i}`, ttlMs: 60_000 })),
    );
    const winners = results.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    const w = winners[0]!.ok ? winners[0]!.lease : undefined;
    for (const r of results) if (!r.ok) expect(r.heldBy.holder).toBe(w!.holder);
    // The crashed holder comes back: its renew fails with the new holder's name, its release does nothing.
    if (!first.ok) throw new Error('unreachable');
    await expect(leases.renew(first.lease, 60_000)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(leases.renew(first.lease, 60_000)).rejects.toThrow(w!.holder);
    expect(await leases.release(first.lease)).toBe(false);
    expect((await leases.holder(conn))?.holder).toBe(w!.holder);
  });

  it('renew extends, release frees the lease for the next crawl', async () => {
    const { leases } = await freshState();
    const conn = connectionId();
    const r = await leases.acquire(conn, { holder: 'one', ttlMs: 400 });
    if (!r.ok) throw new Error('expected the lease');
    const renewed = await leases.renew(r.lease, 60_000);
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(r.lease.expiresAt));
    await new Promise((res) => setTimeout(res, 500)); // past the original TTL: the renewal holds
    expect((await leases.acquire(conn, { holder: 'two', ttlMs: 1000 })).ok).toBe(false);
    expect(await leases.release(renewed)).toBe(true);
    expect(await leases.holder(conn)).toBeUndefined();
    expect((await leases.acquire(conn, { holder: 'two', ttlMs: 1000 })).ok).toBe(true);
    // Separate lease names do not block each other (e.g. content crawl vs group sync).
    expect((await leases.acquire(conn, { holder: 'g', ttlMs: 1000, name: 'groups' })).ok).toBe(true);
  });
});
