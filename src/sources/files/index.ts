/**
 * The file sources (`csv`, `jsonLines`, `jsonArray`) over a local file, an http(s) URL or a blob: their registry
 * entries. The paged, resumable read is in read.ts.
 */
import type { ConfigProblem } from '../../config/problems.js';
import { readGroups } from '../groups.js';
import type { PositionStamp } from '../position.js';
import { definitionFingerprint } from '../position.js';
import type { SourceValidationContext } from '../shared/common.js';
import type { Obj } from '../shared/validate.js';
import type { PagedReadOptions, ReadOptions, Source, SourceCapabilities, SourceDeps } from '../types.js';
import { abortSignalOf, SourceError } from '../types.js';
import type { FileSourceDefinition, FileSourceType } from './definition.js';
import { validateFileSource } from './definition.js';
import type { FileReadSpec } from './read.js';
import { readFilePages, readFileRecords } from './read.js';

export type { FileSourceDefinition } from './definition.js';

function createFileSource(def: FileSourceDefinition, deps: SourceDeps): Source {
  const { type, path, url, blob, encoding, delimiter, quote, keyField } = def;
  const fields = { type, path, url, blob, encoding, delimiter, quote, keyField };
  const stamp: PositionStamp = { source: def.type, def: definitionFingerprint(fields) };
  const spec: FileReadSpec = { ...def, format: def.type };
  const refuseCursor = (options: ReadOptions) => {
    if (options.cursor !== undefined) {
      throw new SourceError('SourceConfig', `a ${def.type} source cannot read incrementally; run a full crawl`);
    }
  };
  const source: Source = {
    kind: def.type,
    capabilities: fileCapabilities(def),
    read(options: ReadOptions = {}) {
      refuseCursor(options);
      return readFileRecords(spec, stamp, deps, options);
    },
    readPages(options: PagedReadOptions = {}) {
      refuseCursor(options);
      return readFilePages(spec, stamp, deps, options);
    },
  };
  if (def.groups) {
    const groups = def.groups;
    source.groups = (options = {}) => readGroups(groups, deps, { abortSignal: abortSignalOf(options) });
  }
  return source;
}

function fileCapabilities(def: FileSourceDefinition): SourceCapabilities {
  return { incremental: false, groups: def.groups !== undefined };
}

/** The registry entry of one file source type. */
export function fileSourceType(type: FileSourceType) {
  return {
    type,
    validate: (value: Obj, path: string, ctx: SourceValidationContext): ConfigProblem[] =>
      validateFileSource(value, path, ctx),
    create: createFileSource,
    capabilities: fileCapabilities,
  };
}
