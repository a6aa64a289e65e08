// POST /api/deadletters/replay {all | crawlId | itemIds}: re-enqueue dead-lettered operations.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const replay = {
  methods: ['POST' as const],
  authLevel: 'function' as const,
  route: 'deadletters/replay',
  handler: handlers.replay,
};
app.http('replay', replay);
