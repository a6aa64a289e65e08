// GET /api/deadletters: dead-lettered operations and rejected records.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const deadLetters = {
  methods: ['GET' as const],
  authLevel: 'function' as const,
  route: 'deadletters',
  handler: handlers.deadLetters,
};
app.http('deadLetters', deadLetters);
