// POST /api/provision: start the provisioning orchestration.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const provisionHttp = {
  methods: ['POST' as const],
  authLevel: 'function' as const,
  route: 'provision',
  handler: handlers.provisionHttp,
};
app.http('provisionHttp', provisionHttp);
