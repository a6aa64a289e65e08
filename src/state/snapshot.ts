/**
 * The snapshot: a compact picture of what Graph holds for a connection — for every item, the 8-byte digest of its
 * key and the 8-byte reduction of the hash of the item Graph holds (or "unknown"), sorted by key digest — so a crawl
 * diffs a record against memory, not against storage: an unchanged record costs no storage call at all. 16 bytes an
 * item in memory (80 MB at Graph's 5,000,000-item limit). The exact item ids live in a second blob, in the same
 * order, read (streamed) only by the sweep and by the next snapshot's writer.
 *
 * The snapshot is a cache of the ledger, never the other way round: it is rewritten from the ledger's touch rows when
 * a crawl finishes, every entry it is unsure of is "unknown" (a crawl then asks the ledger), and it can be rebuilt
 * from the ledger's item rows at any time (crawl/snapshot.ts).
 *
 * Blobs in the state container (both block blobs, written block by block so a writer never holds them whole):
 *   snapshots/<connectionId>/<version>.snap  'GCSNAP02' | uint32 LE header length | header JSON | padding to 16 |
 *                                             count × (uint32 LE hi, lo, hashA, hashB), ascending by (hi, lo)
 *   snapshots/<connectionId>/<version>.ids   count × (uint8 length, UTF-8 item id), same order
 */
import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { CursorStore } from './cursors.js';

const MAGIC = 'GCSNAP02';
/** Entries per staged block of digests (1 MiB). */
const BLOCK_ENTRIES = 65_536;
const IDS_BLOCK_BYTES = 1 << 20;

export interface SnapshotRef {
  version: number;
  blob: string;
  idsBlob: string;
  count: number;
  createdAt: string;
  /** The crawl whose finish wrote it (absent for a rebuild). */
  crawlId?: string;
}

interface SnapshotHeader extends SnapshotRef {
  v: 2;
  connectionId: string;
  /** Byte offset of the digests. */
  dataOffset: number;
}

export class SnapshotError extends ConnectorError {
  override name = 'SnapshotError';
  constructor(message: string, code = 'SnapshotCorrupt') {
    super(message, { code });
  }
}

/** An in-memory snapshot: binary search over the sorted key digests. */
export class Snapshot {
  constructor(
    readonly connectionId: string,
    readonly ref: SnapshotRef,
    /** 4 × count: hi, lo, hashA, hashB; (hashA, hashB) = (0, 0) is unknown. */
    readonly data: Uint32Array,
  ) {}

  static empty(connectionId: string): Snapshot {
    return new Snapshot(
      connectionId,
      { version: 0, blob: '', idsBlob: '', count: 0, createdAt: new Date(0).toISOString() },
      new Uint32Array(0),
    );
  }

  get count(): number {
    return this.ref.count;
  }

  get version(): number {
    return this.ref.version;
  }

  /** The position of a key digest, or -1. */
  indexOf(hi: number, lo: number): number {
    const d = this.data;
    let a = 0;
    let b = this.ref.count - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const h = d[4 * m]!;
      if (h < hi) a = m + 1;
      else if (h > hi) b = m - 1;
      else {
        const l = d[4 * m + 1]!;
        if (l < lo) a = m + 1;
        else if (l > lo) b = m - 1;
        else return m;
      }
    }
    return -1;
  }

  /** True when the entry at `i` holds exactly this hash reduction (an unknown entry matches nothing). */
  holds(i: number, hash: readonly [number, number]): boolean {
    const a = this.data[4 * i + 2]!;
    const b = this.data[4 * i + 3]!;
    return !(a === 0 && b === 0) && a === hash[0] && b === hash[1];
  }

  hi(i: number): number {
    return this.data[4 * i]!;
  }

  lo(i: number): number {
    return this.data[4 * i + 1]!;
  }

  hash(i: number): [number, number] {
    return [this.data[4 * i + 2]!, this.data[4 * i + 3]!];
  }

  /** Memory the digests take, in bytes. */
  get bytes(): number {
    return this.data.byteLength;
  }
}

export interface SnapshotStoreOptions {
  /** The state container (STATE_CONTAINER, default `graph-state`). */
  container: ContainerClient;
  cursors: CursorStore;
  logger?: Logger;
  now?: () => number;
}

const POINTER = 'snapshot';

/**
 * Snapshots in blob storage, with the current one named by a pointer row in the cursors table (committed with its
 * ETag, so two writers can never both move it). Loaded snapshots are cached per process by blob name, so the
 * slices of one crawl running in one process read the blob once.
 */
export class SnapshotStore {
  readonly container: ContainerClient;
  private readonly cursors: CursorStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private cache: { key: string; snapshot: Promise<Snapshot> } | undefined;

  constructor(options: SnapshotStoreOptions) {
    this.container = options.container;
    this.cursors = options.cursors;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.container.createIfNotExists(options);
  }

  /** The current snapshot's reference (and the pointer's ETag), or undefined when none was written yet. */
  async current(
    connectionId: string,
    options: OperationOptions = {},
  ): Promise<{ ref: SnapshotRef; etag: string } | undefined> {
    const c = await this.cursors.get(connectionId, POINTER, options);
    if (!c) return undefined;
    try {
      return { ref: JSON.parse(c.value) as SnapshotRef, etag: c.etag };
    } catch {
      throw new SnapshotError(`the snapshot pointer of connection ${connectionId} is not readable JSON`);
    }
  }

  /** Whether a snapshot's blobs exist (an empty snapshot always does). */
  async exists(ref: SnapshotRef, options: OperationOptions = {}): Promise<boolean> {
    if (ref.count === 0 || !ref.blob) return true;
    const [a, b] = await Promise.all([
      this.container.getBlobClient(ref.blob).exists(options),
      this.container.getBlobClient(ref.idsBlob).exists(options),
    ]);
    return a && b;
  }

  /** Load a snapshot's digests into memory (cached per process). An absent ref is the empty snapshot. */
  async load(connectionId: string, ref: SnapshotRef | undefined, options: OperationOptions = {}): Promise<Snapshot> {
    if (!ref || ref.count === 0 || !ref.blob) return Snapshot.empty(connectionId);
    const key = `${connectionId}/${ref.blob}`;
    if (this.cache?.key === key) return this.cache.snapshot;
    const snapshot = this.read(connectionId, ref, options);
    this.cache = { key, snapshot };
    snapshot.catch(() => {
      if (this.cache?.key === key) this.cache = undefined;
    });
    return snapshot;
  }

  private async read(connectionId: string, ref: SnapshotRef, options: OperationOptions): Promise<Snapshot> {
    const t0 = this.now();
    const client = this.container.getBlobClient(ref.blob);
    const head = await client.downloadToBuffer(0, 12, options);
    if (head.subarray(0, 8).toString('latin1') !== MAGIC) throw new SnapshotError(`${ref.blob} is not a snapshot`);
    const len = head.readUInt32LE(8);
    if (len > 64 * 1024) throw new SnapshotError(`${ref.blob}: header too long`);
    const header = JSON.parse((await client.downloadToBuffer(12, len, options)).toString('utf8')) as SnapshotHeader;
    if (header.connectionId !== connectionId || header.count !== ref.count)
      throw new SnapshotError(
        `${ref.blob} does not match its pointer (connection ${header.connectionId}, ${header.count} entries)`,
      );
    const n = header.count;
    // allocUnsafeSlow: an ArrayBuffer of its own, so the Uint32Array view is aligned.
    const body = Buffer.allocUnsafeSlow(n * 16);
    await client.downloadToBuffer(body, header.dataOffset, n * 16, {
      abortSignal: options.abortSignal,
      concurrency: 4,
      blockSize: 8 * 1024 * 1024,
    });
    this.log.debug('snapshot loaded', { connectionId, version: ref.version, count: n, ms: this.now() - t0 });
    return new Snapshot(connectionId, ref, new Uint32Array(body.buffer, body.byteOffset, n * 4));
  }

  /** The exact item ids of a snapshot, in key order (streamed from its ids blob). */
  async *ids(snapshot: Snapshot, options: OperationOptions = {}): AsyncGenerator<string> {
    if (snapshot.count === 0) return;
    const res = await this.container.getBlobClient(snapshot.ref.idsBlob).download(0, undefined, options);
    const body = res.readableStreamBody;
    if (!body) throw new SnapshotError(`${snapshot.ref.idsBlob}: no body`);
    yield* readIds(body as AsyncIterable<Buffer>, snapshot.count, snapshot.ref.idsBlob);
  }

  /** A writer for the next snapshot of a connection: add entries in ascending key order, then finish. */
  writer(connectionId: string, version: number, meta: { crawlId?: string } & OperationOptions = {}): SnapshotWriter {
    return new SnapshotWriter(this.container, connectionId, version, this.now, meta);
  }

  /**
   * Point the connection at `ref`. `expected` is the pointer read before (undefined = there was none); when the
   * pointer moved meanwhile this throws (ConcurrencyError) and nothing changes. The replaced blobs are deleted.
   */
  async commit(
    connectionId: string,
    ref: SnapshotRef,
    expected: { ref: SnapshotRef; etag: string } | undefined,
    options: OperationOptions = {},
  ): Promise<void> {
    await this.cursors.commit(connectionId, JSON.stringify(ref), expected?.etag, { name: POINTER, ...options });
    this.cache = undefined;
    if (expected && expected.ref.blob && expected.ref.blob !== ref.blob)
      for (const b of [expected.ref.blob, expected.ref.idsBlob])
        await this.container
          .getBlobClient(b)
          .deleteIfExists(options)
          .catch(() => undefined);
  }

  /** Delete the connection's snapshots and pointer (a reset). */
  async reset(connectionId: string, options: OperationOptions = {}): Promise<void> {
    await this.cursors.delete(connectionId, POINTER, options);
    this.cache = undefined;
    for await (const b of this.container.listBlobsFlat({ prefix: `snapshots/${connectionId}/` }))
      await this.container.getBlobClient(b.name).deleteIfExists(options);
  }

  // ------------------------------------------------------------------ the synced external group ids

  /** Record the external group ids the connector synced last (every crawl's mapping checks ACLs against them). */
  async saveGroupIds(connectionId: string, ids: readonly string[], options: OperationOptions = {}): Promise<void> {
    const body = Buffer.from(JSON.stringify({ syncedAt: new Date(this.now()).toISOString(), ids }), 'utf8');
    await this.container.getBlockBlobClient(`groups/${connectionId}.json`).uploadData(body, options);
  }

  /** The external group ids synced last, or undefined when the connector never synced any. */
  async loadGroupIds(connectionId: string, options: OperationOptions = {}): Promise<string[] | undefined> {
    try {
      const buf = await this.container
        .getBlobClient(`groups/${connectionId}.json`)
        .downloadToBuffer(undefined, undefined, options);
      const v = JSON.parse(buf.toString('utf8')) as { ids?: unknown };
      return Array.isArray(v.ids) ? v.ids.filter((x): x is string => typeof x === 'string') : undefined;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  // ------------------------------------------------------------------ a crawl's seen bitmaps

  seenBlob(connectionId: string, crawlId: string, pages: number): string {
    return `crawls/${connectionId}/${crawlId}/seen-${String(pages).padStart(8, '0')}.bin`;
  }

  async saveSeen(name: string, bits: Uint8Array, options: OperationOptions = {}): Promise<void> {
    const { deflateRawSync } = await import('node:zlib');
    const data = deflateRawSync(bits, { level: 1 });
    await this.container.getBlockBlobClient(name).uploadData(data, options);
  }

  async loadSeen(name: string, size: number, options: OperationOptions = {}): Promise<Uint8Array> {
    const { inflateRawSync } = await import('node:zlib');
    const data = await this.container.getBlobClient(name).downloadToBuffer(undefined, undefined, options);
    const bits = inflateRawSync(data, { maxOutputLength: Math.max(1, size) });
    if (bits.length !== size)
      throw new SnapshotError(`${name}: the seen bitmap has ${bits.length} bytes, expected ${size}`);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.length);
  }

  /** Delete every blob of a crawl (its seen bitmaps). */
  async deleteCrawlBlobs(connectionId: string, crawlId: string, options: OperationOptions = {}): Promise<void> {
    for await (const b of this.container.listBlobsFlat({ prefix: `crawls/${connectionId}/${crawlId}/` }))
      await this.container
        .getBlobClient(b.name)
        .deleteIfExists(options)
        .catch(() => undefined);
  }
}

function blockId(n: number): string {
  return Buffer.from(`b${String(n).padStart(9, '0')}`).toString('base64');
}

/**
 * Writes a snapshot block by block: entries must come in ascending key order. Memory: one block of digests and one
 * of ids at a time.
 */
export class SnapshotWriter {
  readonly blob: string;
  readonly idsBlob: string;
  private count = 0;
  private lastHi = -1;
  private lastLo = -1;
  private digest = new Uint32Array(BLOCK_ENTRIES * 4);
  private inDigest = 0;
  private ids: Buffer[] = [];
  private idsBytes = 0;
  private readonly digestBlocks: string[] = [];
  private readonly idBlocks: string[] = [];
  private readonly pending: Promise<unknown>[] = [];
  private readonly data: BlockBlobClient;
  private readonly idData: BlockBlobClient;

  constructor(
    container: ContainerClient,
    readonly connectionId: string,
    readonly version: number,
    private readonly now: () => number,
    private readonly meta: { crawlId?: string } & OperationOptions,
  ) {
    const base = `snapshots/${connectionId}/${String(version).padStart(10, '0')}`;
    this.blob = `${base}.snap`;
    this.idsBlob = `${base}.ids`;
    this.data = container.getBlockBlobClient(this.blob);
    this.idData = container.getBlockBlobClient(this.idsBlob);
  }

  get size(): number {
    return this.count;
  }

  async add(hi: number, lo: number, hashA: number, hashB: number, itemId: string): Promise<void> {
    if (hi < this.lastHi || (hi === this.lastHi && lo <= this.lastLo))
      throw new SnapshotError(`internal: snapshot entries out of order at ${itemId}`, 'Internal');
    this.lastHi = hi;
    this.lastLo = lo;
    const o = this.inDigest * 4;
    this.digest[o] = hi;
    this.digest[o + 1] = lo;
    this.digest[o + 2] = hashA;
    this.digest[o + 3] = hashB;
    this.inDigest++;
    const id = Buffer.from(itemId, 'utf8');
    if (id.length > 255)
      throw new SnapshotError(`item id too long for a snapshot: ${itemId.slice(0, 40)}…`, 'Internal');
    this.ids.push(Buffer.from([id.length]), id);
    this.idsBytes += id.length + 1;
    this.count++;
    if (this.inDigest === BLOCK_ENTRIES) await this.flushDigest();
    if (this.idsBytes >= IDS_BLOCK_BYTES) await this.flushIds();
  }

  private async stage(client: BlockBlobClient, list: string[], body: Buffer): Promise<void> {
    const id = blockId(list.length + 1);
    list.push(id);
    // At most two blocks in flight per blob.
    const p = client.stageBlock(id, body, body.length, { abortSignal: this.meta.abortSignal });
    this.pending.push(p);
    if (this.pending.length > 4) await this.pending.shift();
  }

  private async flushDigest(): Promise<void> {
    if (!this.inDigest) return;
    const bytes = Buffer.from(this.digest.buffer, 0, this.inDigest * 16);
    await this.stage(this.data, this.digestBlocks, Buffer.from(bytes));
    this.inDigest = 0;
  }

  private async flushIds(): Promise<void> {
    if (!this.idsBytes) return;
    const body = Buffer.concat(this.ids);
    this.ids = [];
    this.idsBytes = 0;
    await this.stage(this.idData, this.idBlocks, body);
  }

  async finish(): Promise<SnapshotRef> {
    await this.flushDigest();
    await this.flushIds();
    await Promise.all(this.pending.splice(0));
    const ref: SnapshotRef = {
      version: this.version,
      blob: this.blob,
      idsBlob: this.idsBlob,
      count: this.count,
      createdAt: new Date(this.now()).toISOString(),
      ...(this.meta.crawlId ? { crawlId: this.meta.crawlId } : {}),
    };
    const json = (dataOffset: number) =>
      Buffer.from(
        JSON.stringify({ v: 2, connectionId: this.connectionId, ...ref, dataOffset } satisfies SnapshotHeader),
      );
    // The header names the data's offset, which depends on the header's length: settle it with room to spare.
    const dataOffset = Math.ceil((12 + json(0).length + 24) / 16) * 16;
    const header = Buffer.alloc(dataOffset);
    const text = json(dataOffset);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(text.length, 8);
    text.copy(header, 12);
    const headerId = blockId(0);
    await this.data.stageBlock(headerId, header, header.length, { abortSignal: this.meta.abortSignal });
    await this.data.commitBlockList([headerId, ...this.digestBlocks], { abortSignal: this.meta.abortSignal });
    await this.idData.commitBlockList(this.idBlocks, { abortSignal: this.meta.abortSignal });
    return ref;
  }
}

/** Length-prefixed ids from a byte stream. */
async function* readIds(stream: AsyncIterable<Buffer>, count: number, blob: string): AsyncGenerator<string> {
  let carry: Buffer = Buffer.alloc(0);
  let seen = 0;
  for await (const chunk of stream) {
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let p = 0;
    while (seen < count && p < buf.length) {
      const len = buf[p]!;
      if (p + 1 + len > buf.length) break;
      yield buf.toString('utf8', p + 1, p + 1 + len);
      p += 1 + len;
      seen++;
    }
    carry = Buffer.from(buf.subarray(p));
    if (seen >= count) return;
  }
  if (seen < count) throw new SnapshotError(`${blob}: ${count - seen} ids missing`);
}

/** Bits of a bitmap. */
export function getBit(bits: Uint8Array, i: number): boolean {
  return ((bits[i >>> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

export function setBit(bits: Uint8Array, i: number): void {
  bits[i >>> 3] = (bits[i >>> 3] ?? 0) | (1 << (i & 7));
}
