/**
 * Pages over a record stream, for a source that has no cheaper way to resume: the position is the count of
 * records already returned, and resuming skips that many (reading them again, without yielding them).
 */
import type { PagedReadOptions, SourcePage, SourceRecord } from './types.js';

export const DEFAULT_PAGE_SIZE = 1000;

export async function* pagesBySkipping(
  read: (options: PagedReadOptions) => AsyncIterable<SourceRecord>,
  options: PagedReadOptions = {},
): AsyncGenerator<SourcePage> {
  const pageSize = Math.max(1, options.pageSize ?? DEFAULT_PAGE_SIZE);
  const skip = typeof options.position?.records === 'number' ? options.position.records : 0;
  let n = 0;
  let page: SourceRecord[] = [];
  for await (const record of read(options)) {
    n++;
    if (n <= skip) continue;
    page.push(record);
    if (page.length >= pageSize) {
      yield { records: page, next: { records: n }, progress: { done: n, unit: 'records' } };
      page = [];
    }
  }
  // The last page (possibly empty) says the read is complete.
  yield { records: page, next: undefined, progress: { done: n, unit: 'records' } };
}
