/** Per-connection concurrency and an items/s token bucket (reference §6). */

export interface Admission {
  ok: boolean;
  /** Seconds to wait when not ok. */
  retryAfter?: number;
  reason?: string;
}

interface Bucket {
  tokens: number;
  last: number;
}

export class Limits {
  private readonly inflight = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    public maxConcurrency: number,
    public rateLimit: number,
    public groupRateLimit = 0,
  ) {}

  /** Take a concurrency slot for `appId` on `connectionId`; call the returned release when the response is sent. */
  enter(connectionId: string, appId = ''): { admission: Admission; release: () => void } {
    const key = `${appId}|${connectionId}`;
    const n = this.inflight.get(key) ?? 0;
    if (this.maxConcurrency > 0 && n >= this.maxConcurrency)
      return {
        admission: {
          ok: false,
          retryAfter: 1,
          reason: `More than ${this.maxConcurrency} concurrent requests from app '${appId}' on connection '${connectionId}'.`,
        },
        release: () => {},
      };
    this.inflight.set(key, n + 1);
    let released = false;
    return {
      admission: { ok: true },
      release: () => {
        if (released) return;
        released = true;
        const left = (this.inflight.get(key) ?? 1) - 1;
        if (left <= 0) this.inflight.delete(key);
        else this.inflight.set(key, left);
      },
    };
  }

  /** Spend one item token (PUT/DELETE of an item). */
  takeItem(connectionId: string, now = Date.now()): Admission {
    return this.take(`item|${connectionId}`, this.rateLimit, 'item writes', connectionId, now);
  }

  /** Spend one group-administration token (group and member writes). */
  takeGroup(connectionId: string, now = Date.now()): Admission {
    return this.take(`group|${connectionId}`, this.groupRateLimit, 'group administration requests', connectionId, now);
  }

  private take(key: string, rate: number, what: string, connectionId: string, now: number): Admission {
    if (!rate || rate <= 0) return { ok: true };
    const capacity = Math.max(1, rate);
    const b = this.buckets.get(key) ?? { tokens: capacity, last: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.last) / 1000) * rate);
    b.last = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / rate));
    return {
      ok: false,
      retryAfter,
      reason: `More than ${rate} ${what} per second on connection '${connectionId}'.`,
    };
  }

  reset(): void {
    this.buckets.clear();
  }
}
