// GET /api/jobs/{id}: one crawl job with live counts.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const job = {
  methods: ['GET' as const],
  authLevel: 'function' as const,
  route: 'jobs/{id}',
  handler: handlers.job,
};
app.http('job', job);
