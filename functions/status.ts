// GET /api/status: provisioning, the running crawl, recent jobs, queue depth, dead letters.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const status = {
  methods: ['GET' as const],
  authLevel: 'function' as const,
  route: 'status',
  handler: handlers.status,
};
app.http('status', status);
