/** What every handler shares: state, identity, randomness, limits, faults, options and the log. */
import type { Faults } from './faults.js';
import type { Identity } from './identity.js';
import type { Limits } from './limits.js';
import type { Rng } from './random.js';
import type { Store } from './store.js';
import type { Throttling } from './throttling.js';

export interface EmulatorSettings {
  latencyMs: number;
  schemaDelayMs: number;
  faultRate: number;
  rateLimit: number;
  groupRateLimit: number;
  deleteDelayMs: number;
  maxConcurrency: number;
  /** Lowest Retry-After (seconds) of injected throttling; with retryAfterMax, values are drawn from the range. */
  retryAfterMin: number;
  /** Highest Retry-After (seconds) of injected throttling (0 = the fault's or window's own value). */
  retryAfterMax: number;
}

export interface RequestLogEntry {
  time: string;
  method: string;
  path: string;
  route: string;
  status: number;
  connectionId?: string;
  itemId?: string;
  retryAfter?: number;
  appId?: string;
  requestId: string;
  clientRequestId: string;
  durationMs: number;
  fault?: string;
  warnings?: string[];
}

export interface Emu {
  store: Store;
  identity: Identity;
  ids: Rng;
  limits: Limits;
  faults: Faults;
  throttling: Throttling;
  settings: EmulatorSettings;
  /** Graph's origin for the request being handled (the emulator's own, or graph.microsoft.com in proxy mode). */
  readonly baseUrl: string;
  log: (line: string) => void;
  requests: RequestLogEntry[];
  /** Called when anything changes (persists, and lets operations advance). */
  changed(): void;
}
