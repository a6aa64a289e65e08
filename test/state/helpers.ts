import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createStateLayer, createStorage, type StateLayer } from '../../src/state/index.js';

/** A short unique lowercase alphanumeric suffix. */
export function uid(n = 4): string {
  return randomBytes(n).toString('hex');
}

/** A state layer on the shared Azurite with names unique to this test. */
export async function freshState(options: { maxInlineBytes?: number; now?: () => number } = {}): Promise<StateLayer> {
  const id = uid();
  const storage = createStorage({ AzureWebJobsStorage: inject('storageConnectionString') });
  const state = createStateLayer({
    storage,
    names: {
      itemsQueue: `items-${id}`,
      tablePrefix: `t${id}`,
      claimsContainer: `claims-${id}`,
      stateContainer: `state-${id}`,
      provisionQueue: `prov-${id}`,
    },
    ...options,
  });
  await state.ensure();
  return state;
}

export function connectionId(): string {
  return `conn${uid(3)}`;
}
