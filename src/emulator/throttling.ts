/**
 * Throttling that tests a client's patience: Retry-After values drawn from a range (Graph's observed values run
 * from 1 s to minutes, reference §6.2), throttling windows (every Graph call of a connection answers 429 for N
 * seconds) and 503 storms (a share of every Graph call answers 503 "service unavailable" for N seconds).
 *
 * A window: { status: 429 | 503, seconds, startInSeconds?, connectionId?, share?, retryAfter? }.
 *   connectionId → only calls on that connection (any case); without it every Graph call (search and $batch
 *   sub-requests included). share (0..1, default 1) → the probability that a call inside the window is refused.
 *   Retry-After of a refused call: `retryAfter` when given; else drawn from the emulator's Retry-After range when
 *   one is set; else the seconds left in the window (at least 1).
 */
import type { EmulatorSettings } from './context.js';
import { GraphError, isObject } from './http.js';
import type { Rng } from './random.js';

export interface ThrottleWindow {
  id: string;
  status: 429 | 503;
  connectionId?: string;
  startsAt: number;
  endsAt: number;
  share: number;
  retryAfter?: number;
  /** Calls refused so far. */
  refused: number;
}

export interface ThrottleDecision {
  status: 429 | 503;
  retryAfter: number;
  label: string;
  reason: string;
}

/** `30s`, `1.5m`, `500ms` or a plain number of seconds → milliseconds. */
export function parseSeconds(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`${what} '${text}' is not a duration; use e.g. 30s, 2m or 500ms.`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm']);
}

/**
 * The CLI form of a window: `START+DURATION[:STATUS[:SHARE]][@CONNECTION]`, e.g. `30s+60s` (every call 429 from
 * 30 s after start for 60 s), `10s+20s:503:0.5` (half of every call 503), `0s+60s@contosotasks`.
 */
export function parseWindowSpec(text: string): Record<string, unknown> {
  const m = /^([^+@:]+)\+([^@:]+)(?::(429|503))?(?::([0-9.]+))?(?:@([A-Za-z0-9]+))?$/.exec(text.trim());
  if (!m)
    throw new Error(
      `--throttle-window '${text}' must look like START+DURATION[:STATUS[:SHARE]][@CONNECTION], e.g. 30s+60s or 10s+20s:503:0.5.`,
    );
  return {
    startInSeconds: parseSeconds(m[1]!, '--throttle-window start') / 1000,
    seconds: parseSeconds(m[2]!, '--throttle-window duration') / 1000,
    status: m[3] ? Number(m[3]) : 429,
    ...(m[4] !== undefined ? { share: Number(m[4]) } : {}),
    ...(m[5] ? { connectionId: m[5] } : {}),
  };
}

export class Throttling {
  windows: ThrottleWindow[] = [];
  private counter = 0;

  constructor(
    private readonly rng: Rng,
    private readonly settings: EmulatorSettings,
  ) {}

  /** A Retry-After (seconds) from the configured range, or `fallback` when no range is set. */
  retryAfter<T extends number | undefined>(fallback: T): number | T {
    const { retryAfterMin: min, retryAfterMax: max } = this.settings;
    if (!(max > 0)) return fallback;
    const lo = Math.max(0, Math.min(min, max));
    return lo + this.rng.int(Math.floor(max - lo) + 1);
  }

  /** Parse and add a window; throws a 400 naming the bad field. */
  add(body: unknown, now = Date.now()): ThrottleWindow {
    const bad = (message: string) => new GraphError(400, 'BadRequest', message);
    if (!isObject(body)) throw bad('The throttling window must be a JSON object {status, seconds, ...}.');
    for (const k of Object.keys(body))
      if (!['status', 'seconds', 'startInSeconds', 'connectionId', 'share', 'retryAfter'].includes(k))
        throw bad(`Unknown field '${k}'; use status, seconds, startInSeconds, connectionId, share or retryAfter.`);
    const status = body.status === undefined ? 429 : Number(body.status);
    if (status !== 429 && status !== 503) throw bad('status must be 429 (throttling window) or 503 (storm).');
    const num = (k: string, min: number, max = Infinity): number | undefined => {
      if (body[k] === undefined) return undefined;
      const v = body[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
        throw bad(`${k} must be a number from ${min} to ${max}; got ${JSON.stringify(v)}.`);
      return v;
    };
    const seconds = num('seconds', 0.001, 86_400);
    if (seconds === undefined) throw bad('seconds is required: how long the window lasts (e.g. 60).');
    const start = num('startInSeconds', 0, 86_400) ?? 0;
    const share = num('share', 0, 1) ?? 1;
    const retryAfter = num('retryAfter', 0, 86_400);
    if (body.connectionId !== undefined && (typeof body.connectionId !== 'string' || !body.connectionId))
      throw bad('connectionId must be a connection id (or left out: every Graph call).');
    const w: ThrottleWindow = {
      id: `window${++this.counter}`,
      status: status,
      ...(typeof body.connectionId === 'string' ? { connectionId: body.connectionId } : {}),
      startsAt: now + start * 1000,
      endsAt: now + (start + seconds) * 1000,
      share,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
      refused: 0,
    };
    this.windows.push(w);
    return w;
  }

  remove(id?: string): number {
    const before = this.windows.length;
    this.windows = id ? this.windows.filter((w) => w.id !== id) : [];
    return before - this.windows.length;
  }

  /** The window refusing this Graph call, if any. */
  decide(connectionId: string | undefined, now = Date.now()): ThrottleDecision | undefined {
    this.windows = this.windows.filter((w) => w.endsAt > now);
    for (const w of this.windows) {
      if (w.startsAt > now) continue;
      if (w.connectionId && w.connectionId.toLowerCase() !== connectionId?.toLowerCase()) continue;
      if (w.share < 1 && this.rng.next() >= w.share) continue;
      w.refused++;
      const left = Math.max(1, Math.ceil((w.endsAt - now) / 1000));
      const retryAfter = w.retryAfter ?? this.retryAfter(left);
      const scope = w.connectionId ? `connection '${w.connectionId}'` : 'this tenant';
      return {
        status: w.status,
        retryAfter,
        label: `window:${w.id}:${w.status}`,
        reason:
          w.status === 429
            ? `Throttling window on ${scope}: every request is throttled for ${left} more second(s).`
            : `The service is unavailable for ${scope} (storm, ${left} more second(s)).`,
      };
    }
    return undefined;
  }

  view(now = Date.now()): unknown[] {
    return this.windows
      .filter((w) => w.endsAt > now)
      .map((w) => ({
        ...w,
        startsAt: new Date(w.startsAt).toISOString(),
        endsAt: new Date(w.endsAt).toISOString(),
        active: w.startsAt <= now,
      }));
  }
}
