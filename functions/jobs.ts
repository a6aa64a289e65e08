// GET /api/jobs?top=: the newest crawl jobs with live counts and progress.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const jobs = {
  methods: ['GET' as const],
  authLevel: 'function' as const,
  route: 'jobs',
  handler: handlers.jobs,
};
app.http('jobs', jobs);
