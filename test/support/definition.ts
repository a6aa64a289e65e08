/** The shipped connector definition (connector.json) as a starting point for tests. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectorDefinition } from '../../src/config/definition.js';

const EXAMPLE = new URL('../../connector.json', import.meta.url);

/** The example definition, a fresh copy each call; `connectionId` replaces its connection id. */
export function exampleDefinition(connectionId?: string): ConnectorDefinition {
  const definition = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as ConnectorDefinition;
  if (connectionId) definition.connection.id = connectionId;
  return definition;
}

/** Writes the example with `connectionId` to `<dir>/<connectionId>.json` and returns the path. */
export function writeExampleDefinition(dir: string, connectionId: string): string {
  const path = join(dir, `${connectionId}.json`);
  writeFileSync(path, JSON.stringify(exampleDefinition(connectionId), null, 2));
  return path;
}
