/**
 * A zip reader that trusts nothing in the archive: the central directory is read with bounds checks, only the
 * parts a caller asks for are inflated, and inflated bytes are counted as zlib produces them against one budget
 * per file (`maxInflatedBytes`), so a part whose header lies about its size stops at the budget, not at the end of
 * its data. A part that is itself a zip is refused: archives are never opened inside archives.
 */
import { constants as bufferConstants } from 'node:buffer';
import { inflateRawSync } from 'node:zlib';
import { ExtractError } from './types.js';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated */
  method: number;
  compressedSize: number;
  /** what the archive claims; only used to refuse early, never to size a buffer */
  declaredSize: number;
  localHeaderOffset: number;
  encrypted: boolean;
}

/** More entries than any real Office file has (a 500-slide deck has about 2,000). */
export const MAX_ZIP_ENTRIES = 50_000;

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** The inflated-bytes budget of one file: every part read from it draws on the same total. */
export class InflateBudget {
  private used = 0;
  constructor(
    readonly limit: number,
    /** how the file is named in messages */
    readonly file: string,
  ) {}

  get spent(): number {
    return this.used;
  }

  get remaining(): number {
    return Math.max(0, this.limit - this.used);
  }

  take(bytes: number, part: string): void {
    this.used += bytes;
    if (this.used > this.limit) throw this.exceeded(part);
  }

  exceeded(part: string): ExtractError {
    return new ExtractError(
      'too-large',
      `${this.file} inflates past the limit of ${this.limit} inflated bytes (maxInflatedBytes) at part ${part}; ` +
        'it may be a zip bomb; if the file is genuine, raise maxInflatedBytes',
    );
  }
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

export class ZipArchive {
  private readonly byName = new Map<string, ZipEntry>();

  private constructor(
    private readonly bytes: Uint8Array,
    readonly entries: readonly ZipEntry[],
  ) {
    for (const e of entries) if (!this.byName.has(e.name)) this.byName.set(e.name, e);
  }

  /** Read the central directory (nothing is inflated). Throws `corrupt` for anything malformed. */
  static open(bytes: Uint8Array): ZipArchive {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const corrupt = (what: string) => new ExtractError('corrupt', `the zip container could not be read: ${what}`);
    // End of central directory: 22 bytes plus a comment of at most 65,535 bytes, searched backwards.
    let eocd = -1;
    for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
      if (view.getUint32(i, true) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw corrupt('no end-of-central-directory record (truncated or not a zip)');
    const count = view.getUint16(eocd + 10, true);
    const cdSize = view.getUint32(eocd + 12, true);
    const cdOffset = view.getUint32(eocd + 16, true);
    if (count === 0xffff || cdOffset === 0xffffffff || cdSize === 0xffffffff)
      throw new ExtractError('unsupported', 'ZIP64 archives are not supported (no Office file needs one)');
    if (count > MAX_ZIP_ENTRIES)
      throw new ExtractError('too-large', `the zip has ${count} entries, above the limit of ${MAX_ZIP_ENTRIES}`);
    if (cdOffset + cdSize > eocd) throw corrupt('the central directory lies outside the file');
    const entries: ZipEntry[] = [];
    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > eocd || view.getUint32(p, true) !== CENTRAL)
        throw corrupt(`central directory entry ${i} is damaged`);
      const flags = view.getUint16(p + 8, true);
      const method = view.getUint16(p + 10, true);
      const compressedSize = view.getUint32(p + 20, true);
      const declaredSize = view.getUint32(p + 24, true);
      const nameLength = view.getUint16(p + 28, true);
      const extraLength = view.getUint16(p + 30, true);
      const commentLength = view.getUint16(p + 32, true);
      const localHeaderOffset = view.getUint32(p + 42, true);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > eocd) throw corrupt(`central directory entry ${i} runs past the directory`);
      const rawName = bytes.subarray(p + 46, p + 46 + nameLength);
      const name = (flags & 0x800 ? utf8 : latin1).decode(rawName);
      entries.push({ name, method, compressedSize, declaredSize, localHeaderOffset, encrypted: (flags & 1) === 1 });
      p = end;
    }
    return new ZipArchive(bytes, entries);
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * Inflate one part, drawing on `budget`. Undefined when the archive has no such part. The declared size is
   * checked first (an honest bomb is refused without inflating anything); then zlib stops as soon as its output
   * passes what is left of the budget, whatever the headers said.
   */
  read(name: string, budget: InflateBudget): Uint8Array | undefined {
    const e = this.byName.get(name);
    if (!e) return undefined;
    if (e.encrypted) throw new ExtractError('encrypted', `the zip part ${name} is encrypted`);
    if (e.declaredSize > budget.remaining) throw budget.exceeded(name);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const at = e.localHeaderOffset;
    if (at + 30 > this.bytes.length || view.getUint32(at, true) !== LOCAL)
      throw new ExtractError('corrupt', `the zip container could not be read: the local header of ${name} is damaged`);
    const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
    const end = start + e.compressedSize;
    if (end > this.bytes.length)
      throw new ExtractError('corrupt', `the zip container could not be read: ${name} runs past the end (truncated)`);
    const data = this.bytes.subarray(start, end);
    let out: Uint8Array;
    if (e.method === 0) {
      out = data;
    } else if (e.method === 8) {
      const allowed = Math.min(budget.remaining, bufferConstants.MAX_LENGTH);
      if (allowed === 0) throw budget.exceeded(name);
      try {
        out = inflateRawSync(data, { maxOutputLength: allowed });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw budget.exceeded(name);
        throw new ExtractError(
          'corrupt',
          `the zip container could not be read: ${name} does not inflate (${(err as Error).message})`,
        );
      }
    } else {
      throw new ExtractError('unsupported', `the zip part ${name} uses compression method ${e.method}`);
    }
    budget.take(out.length, name);
    if (out.length >= 4 && out[0] === 0x50 && out[1] === 0x4b && out[2] === 0x03 && out[3] === 0x04)
      throw new ExtractError('corrupt', `the part ${name} is itself a zip archive; nested archives are not opened`);
    return out;
  }

  /** Inflate a part and decode it as UTF-8 text (a UTF-16 part, with its BOM, is decoded as such). */
  readText(name: string, budget: InflateBudget): string | undefined {
    const bytes = this.read(name, budget);
    if (!bytes) return undefined;
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2));
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes.subarray(2));
    return utf8.decode(bytes);
  }
}
