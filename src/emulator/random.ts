/** Seeded randomness for the emulator: every random choice (faults, ids) comes from here, so a seed reproduces a run. */

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** `n` random bytes as lowercase hex. */
  hex(bytes: number): string;
  /** A version-4-shaped GUID. */
  guid(): string;
}

/** mulberry32: small, fast, good enough for test randomness (not for secrets). */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const hex = (bytes: number): string => {
    let out = '';
    for (let i = 0; i < bytes; i++)
      out += Math.floor(next() * 256)
        .toString(16)
        .padStart(2, '0');
    return out;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    hex,
    guid: () => {
      const h = hex(16);
      const variant = ((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(18, 20)}-${h.slice(20, 32)}`;
    },
  };
}

/** Derive a child seed so that independent streams (ids, faults) do not disturb each other. */
export function deriveSeed(seed: number, stream: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(stream, 0xc2b2ae35)) >>> 0;
}
