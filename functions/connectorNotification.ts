// POST /api/notification: the Microsoft 365 admin center's "connector turned on/off" notification. Anonymous:
// Microsoft Graph sends no function key; the handler verifies the signed validation tokens (docs/deploy.md).
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const connectorNotification = {
  methods: ['POST' as const],
  authLevel: 'anonymous' as const,
  route: 'notification',
  handler: handlers.connectorNotification,
};
app.http('connectorNotification', connectorNotification);
