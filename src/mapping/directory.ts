/**
 * The directory that turns UPNs (and group display names) into Entra object ids for `user` / `group` ACL rules:
 * passed in by the caller, or loaded from `mapping.acl.directory` (relative to connector.json).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MappingSetupError } from './types.js';

/** Load `directory.json` ({users:[{id,userPrincipalName}], groups:[{id,displayName}]}) into a lookup map. */
export function directoryFromJson(json: unknown): Map<string, string> {
  const map = new Map<string, string>();
  const obj = (json ?? {}) as { users?: unknown; groups?: unknown };
  for (const u of Array.isArray(obj.users) ? (obj.users as Record<string, unknown>[]) : []) {
    if (typeof u.id === 'string' && typeof u.userPrincipalName === 'string')
      map.set(u.userPrincipalName.toLowerCase(), u.id);
    if (typeof u.id === 'string' && typeof u.mail === 'string') map.set(u.mail.toLowerCase(), u.id);
  }
  for (const g of Array.isArray(obj.groups) ? (obj.groups as Record<string, unknown>[]) : []) {
    if (typeof g.id === 'string' && typeof g.displayName === 'string') map.set(g.displayName.toLowerCase(), g.id);
  }
  return map;
}

/** Read and parse mapping.acl.directory; errors name the field, the file and the fix. */
export async function loadDirectoryFile(path: string, baseDir: string): Promise<Map<string, string>> {
  const file = resolve(baseDir, path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new MappingSetupError(
      `mapping.acl.directory: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); fix the path (relative to connector.json)`,
      { cause: e },
    );
  }
  try {
    return directoryFromJson(JSON.parse(text));
  } catch (e) {
    throw new MappingSetupError(
      `mapping.acl.directory: ${file} is not valid JSON (${(e as Error).message}); fix the file`,
      { cause: e },
    );
  }
}
