/** Run `worker` over `items` with at most `limit` in flight; resolves when all are done, rejects on the first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  worker: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await worker(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, run));
  return results;
}

/** Retry-After (ms) plus up to `jitterRatio` of it again (at least 250 ms of spread), never less than Retry-After. */
export function retryAfterWithJitter(
  retryAfterMs: number,
  random: () => number = Math.random,
  jitterRatio = 0.2,
): number {
  const spread = Math.max(250, retryAfterMs * jitterRatio);
  return Math.ceil(retryAfterMs + random() * spread);
}
