/**
 * Logs under the Functions host go through the invocation's context (context.debug/info/warn/error), so
 * Application Insights gets each line with its severity and the invocation's operation id
 * (https://learn.microsoft.com/azure/azure-functions/functions-reference-node#logging).
 *
 * Every handler runs inside {@link runInInvocation}; a logger whose sink is {@link invocationRoutedSink} — the
 * runtime's default logger, and every child of it (source, state, provision) — writes to the context of the
 * invocation it is called from, found through AsyncLocalStorage, so concurrent invocations never mix. Outside an
 * invocation (start-up, the local worker, the CLI) lines go to the fallback sink as before. The invocation's
 * traceparent is kept too, so dependency spans hang under the invocation's request.
 *
 * Only `import type` from @azure/functions (see handlers.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import type { LogEntry, LogFields, LogSink } from '../log.js';

interface Invocation {
  context: InvocationContext;
  /** Set when the handler returned: a straggling promise must not log on a finished invocation. */
  done: boolean;
}

const current = new AsyncLocalStorage<Invocation>();

/** Run `fn` as invocation `context`: loggers with {@link invocationRoutedSink} write to it meanwhile. */
export async function runInInvocation<T>(context: InvocationContext, fn: () => Promise<T>): Promise<T> {
  const invocation: Invocation = { context, done: false };
  try {
    return await current.run(invocation, fn);
  } finally {
    invocation.done = true;
  }
}

/** The W3C traceparent of the invocation running now (absent outside one). */
export function currentTraceParent(): string | undefined {
  const inv = current.getStore();
  return inv && !inv.done ? (inv.context.traceContext?.traceParent ?? undefined) : undefined;
}

/** Fields the context already carries (Application Insights has them as the invocation id and category). */
const CARRIED = new Set(['invocationId', 'functionName']);

/** `message {"field":…}`: the fields kept as a JSON suffix (Application Insights shows the message whole). */
export function invocationMessage(entry: LogEntry): string {
  const fields: LogFields = {};
  for (const [k, v] of Object.entries(entry.fields)) if (!CARRIED.has(k)) fields[k] = v;
  return Object.keys(fields).length ? `${entry.msg} ${JSON.stringify(fields)}` : entry.msg;
}

/** A sink writing to one invocation's context, with the entry's level as the severity. */
export function invocationSink(context: InvocationContext): LogSink {
  return (entry) => {
    const text = invocationMessage(entry);
    switch (entry.level) {
      case 'debug':
        context.debug(text);
        break;
      case 'info':
        context.info(text);
        break;
      case 'warn':
        context.warn(text);
        break;
      case 'error':
        context.error(text);
        break;
    }
  };
}

/** The context of the invocation running now, else `fallback`. */
export function invocationRoutedSink(fallback: LogSink): LogSink {
  return (entry) => {
    const inv = current.getStore();
    if (inv && !inv.done) invocationSink(inv.context)(entry);
    else fallback(entry);
  };
}
