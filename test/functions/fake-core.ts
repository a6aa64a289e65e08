/**
 * Captures Azure Functions registrations outside the host. `@azure/functions` loads the host-provided module
 * `@azure/functions-core` lazily with a CommonJS require on its first `app.*` call; we supply a stand-in that
 * records `{ metadata, callback }` in the same RPC shape the host receives (local-stack.md §1).
 * Import this module BEFORE importing any file under functions/.
 */
import Module from 'node:module';

export interface Registration {
  metadata: {
    name: string;
    bindings: Record<string, { type: string; direction: string; [k: string]: unknown }>;
    retryOptions?: unknown;
  };
  callback: (...args: unknown[]) => unknown;
}

export const registered: Registration[] = [];

const fakeCore = {
  setProgrammingModel() {},
  getProgrammingModel() {
    return undefined;
  },
  log() {},
  registerHook() {
    return { dispose() {} };
  },
  registerFunction(metadata: Registration['metadata'], callback: Registration['callback']) {
    registered.push({ metadata, callback });
    return { dispose() {} };
  },
};

type Loader = (request: string, ...rest: unknown[]) => unknown;
const M = Module as unknown as { _load: Loader };
const original = M._load;
M._load = function (this: unknown, request: string, ...rest: unknown[]) {
  return request === '@azure/functions-core' ? fakeCore : original.call(this, request, ...rest);
};

/** The trigger binding of a registered function (the one binding with direction `in` and a trigger type). */
export function triggerOf(name: string) {
  const reg = registered.find((r) => r.metadata.name === name);
  if (!reg)
    throw new Error(
      `function "${name}" was not registered; registered: ${registered.map((r) => r.metadata.name).join(', ')}`,
    );
  const trigger = Object.values(reg.metadata.bindings).find((b) => b.direction === 'in' && b.type.endsWith('Trigger'));
  if (!trigger) throw new Error(`function "${name}" has no trigger binding`);
  return trigger;
}
