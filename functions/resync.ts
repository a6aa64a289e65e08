// POST /api/resync {mode: full|incremental|acl|items, itemIds?, force?}: start a crawl on demand.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const resync = {
  methods: ['POST' as const],
  authLevel: 'function' as const,
  route: 'resync',
  handler: handlers.resync,
};
app.http('resync', resync);
