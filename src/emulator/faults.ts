/**
 * Fault injection: seeded random faults (faultRate) and scripted faults (POST /_emulator/faults).
 *
 * Scripted fault: { match?: {method?, route?, connectionId?, itemId?, path?}, action, count?, ... }
 *   action "status"        → answer `status` (default 503) in Graph's envelope, with Retry-After when `retryAfter` is set
 *                             (a 429/503 without it gets one from the emulator's Retry-After range, when one is set)
 *   action "drop-connection" → destroy the socket without an answer
 *   action "delay"         → wait `ms` before handling the request normally
 *   action "503-but-create" → handle the request (side effects happen), then answer 503 instead (alias of
 *                             status 503 with after=true)
 *   action "fail-next-schema-operation" → the next schema operation (optionally of match.connectionId) ends `failed`
 *                             with `message`
 *   `after: true` (status / drop-connection) → the request is processed first and only its answer is replaced.
 *   `count` → how many requests it applies to (default 1; 0 = every matching request until deleted).
 */
import { GraphError, isObject } from './http.js';
import type { Rng } from './random.js';

export const FAULT_ACTIONS = [
  'status',
  'drop-connection',
  'delay',
  '503-but-create',
  'fail-next-schema-operation',
] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

export interface FaultMatch {
  method?: string;
  route?: string;
  connectionId?: string;
  itemId?: string;
  /** Substring of the request path. */
  path?: string;
}

export interface FaultRule {
  id: string;
  match: FaultMatch;
  action: FaultAction;
  status: number;
  code?: string;
  message?: string;
  retryAfter?: number;
  ms: number;
  after: boolean;
  /** Remaining uses; Infinity = until deleted. */
  remaining: number;
  used: number;
}

/** What to do with one request. */
export interface FaultDecision {
  kind: 'status' | 'drop' | 'delay';
  status?: number;
  code?: string;
  message?: string;
  retryAfter?: number;
  ms?: number;
  after: boolean;
  label: string;
}

export interface RequestFacts {
  method: string;
  route: string;
  path: string;
  connectionId?: string;
  itemId?: string;
}

function matches(m: FaultMatch, f: RequestFacts): boolean {
  if (m.method && m.method.toUpperCase() !== f.method) return false;
  if (m.route && m.route !== f.route) return false;
  if (m.connectionId && m.connectionId !== f.connectionId) return false;
  if (m.itemId && m.itemId !== f.itemId) return false;
  if (m.path && !f.path.includes(m.path)) return false;
  return true;
}

const RANDOM_KINDS = ['429', '503', '502', '500', 'drop', 'slow'] as const;

export class Faults {
  rules: FaultRule[] = [];
  private counter = 0;

  constructor(
    private readonly rng: Rng,
    public rate: number,
    /** Retry-After of a random 429/503: the emulator's range when one is set, else `fallback`. */
    private readonly drawRetryAfter: <T extends number | undefined>(fallback: T) => number | T = (fallback) => fallback,
  ) {}

  /** Parse and add a scripted fault; throws a 400 naming the bad field. */
  add(body: unknown): FaultRule {
    if (!isObject(body)) throw new GraphError(400, 'BadRequest', 'The fault must be a JSON object.');
    const action = body.action as FaultAction;
    if (!FAULT_ACTIONS.includes(action))
      throw new GraphError(
        400,
        'BadRequest',
        `Unknown fault action ${JSON.stringify(body.action)}; use one of ${FAULT_ACTIONS.join(', ')}.`,
      );
    const match = (body.match ?? {}) as FaultMatch;
    if (!isObject(match))
      throw new GraphError(400, 'BadRequest', 'match must be an object {method, route, connectionId, itemId, path}.');
    for (const k of Object.keys(match))
      if (!['method', 'route', 'connectionId', 'itemId', 'path'].includes(k))
        throw new GraphError(
          400,
          'BadRequest',
          `Unknown match field '${k}'; use method, route, connectionId, itemId or path.`,
        );
    const count = body.count === undefined ? 1 : Number(body.count);
    if (!Number.isInteger(count) || count < 0)
      throw new GraphError(400, 'BadRequest', 'count must be a non-negative integer (0 = until deleted).');
    const num = (k: string, dflt?: number): number | undefined => {
      if (body[k] === undefined) return dflt;
      const v = Number(body[k]);
      if (!Number.isFinite(v) || v < 0) throw new GraphError(400, 'BadRequest', `${k} must be a non-negative number.`);
      return v;
    };
    const rule: FaultRule = {
      id: `fault${++this.counter}`,
      match,
      action,
      status: num('status', action === '503-but-create' ? 503 : 503)!,
      code: typeof body.code === 'string' ? body.code : undefined,
      message: typeof body.message === 'string' ? body.message : undefined,
      retryAfter: num('retryAfter'),
      ms: num('ms', 0)!,
      after: action === '503-but-create' ? true : body.after === true,
      remaining: count === 0 ? Infinity : count,
      used: 0,
    };
    if (action === 'status' && (rule.status < 400 || rule.status > 599))
      throw new GraphError(400, 'BadRequest', 'status must be an HTTP error status (400–599).');
    this.rules.push(rule);
    return rule;
  }

  remove(id?: string): number {
    const before = this.rules.length;
    this.rules = id ? this.rules.filter((r) => r.id !== id) : [];
    return before - this.rules.length;
  }

  /** The scripted or random fault for this request, if any (consumes one use). */
  decide(facts: RequestFacts, graph: boolean): FaultDecision | undefined {
    for (const rule of this.rules) {
      if (rule.action === 'fail-next-schema-operation' || rule.remaining <= 0) continue;
      if (!matches(rule.match, facts)) continue;
      rule.remaining -= 1;
      rule.used += 1;
      if (rule.remaining <= 0) this.rules = this.rules.filter((r) => r !== rule);
      const label = `scripted:${rule.id}:${rule.action}`;
      if (rule.action === 'delay') return { kind: 'delay', ms: rule.ms, after: false, label };
      if (rule.action === 'drop-connection') return { kind: 'drop', after: rule.after, label };
      // A scripted 429/503 without its own Retry-After gets one from the emulator's range, when one is set.
      const retryAfter =
        rule.retryAfter ?? (rule.status === 429 || rule.status === 503 ? this.drawRetryAfter(undefined) : undefined);
      return {
        kind: 'status',
        status: rule.status,
        code: rule.code,
        message: rule.message,
        retryAfter,
        after: rule.after,
        label,
      };
    }
    if (!graph || this.rate <= 0 || this.rng.next() >= this.rate) return undefined;
    const kind = RANDOM_KINDS[this.rng.int(RANDOM_KINDS.length)]!;
    const label = `random:${kind}`;
    switch (kind) {
      case '429':
        return {
          kind: 'status',
          status: 429,
          retryAfter: this.drawRetryAfter(1 + this.rng.int(2)),
          after: false,
          label,
        };
      case '503':
        return {
          kind: 'status',
          status: 503,
          retryAfter: this.drawRetryAfter(1 + this.rng.int(2)),
          after: false,
          label,
        };
      case '502':
        return { kind: 'status', status: 502, after: false, label };
      case '500':
        return { kind: 'status', status: 500, after: false, label };
      case 'drop':
        return { kind: 'drop', after: false, label };
      default:
        return { kind: 'delay', ms: 500 + this.rng.int(1500), after: false, label };
    }
  }

  /** Consume a fail-next-schema-operation rule for this connection, if one is armed. */
  takeSchemaFailure(connectionId: string): string | undefined {
    const rule = this.rules.find(
      (r) =>
        r.action === 'fail-next-schema-operation' &&
        r.remaining > 0 &&
        (!r.match.connectionId || r.match.connectionId === connectionId),
    );
    if (!rule) return undefined;
    rule.remaining -= 1;
    rule.used += 1;
    if (rule.remaining <= 0) this.rules = this.rules.filter((r) => r !== rule);
    return rule.message ?? 'Server error, something went wrong';
  }

  view(): unknown[] {
    return this.rules.map((r) => ({ ...r, remaining: r.remaining === Infinity ? 'unlimited' : r.remaining }));
  }
}

/** Default Graph code/message for an injected status. */
export function faultError(status: number, code?: string, message?: string): { code: string; message: string } {
  const defaults: Record<number, [string, string]> = {
    429: ['TooManyRequests', 'Too many requests. Retry after the number of seconds in the Retry-After header.'],
    500: ['InternalServerError', 'An internal server error occurred (injected by the emulator).'],
    502: ['BadGateway', 'Bad gateway (injected by the emulator).'],
    503: ['ServiceUnavailable', 'The service is temporarily unavailable (injected by the emulator).'],
    504: ['GatewayTimeout', 'Gateway timeout (injected by the emulator).'],
  };
  const d = defaults[status] ?? ['generalException', `Injected failure ${status}.`];
  return { code: code ?? d[0], message: message ?? d[1] };
}
