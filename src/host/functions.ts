/** The handlers the Functions host calls, bound to the process-wide runtime (built from app settings on first use). */
import { createHandlers } from './handlers.js';
import { getRuntime } from './runtime.js';

export const handlers = createHandlers(getRuntime);
