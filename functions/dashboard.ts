// GET /api/dashboard: the status page (open it with ?code=<function key>; it passes the key on to the API).
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const dashboard = {
  methods: ['GET' as const],
  authLevel: 'function' as const,
  route: 'dashboard',
  handler: handlers.dashboard,
};
app.http('dashboard', dashboard);
