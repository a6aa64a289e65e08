// Provision queue: one step of the provisioning orchestration (connection → schema → poll → groups).
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const provision = {
  queueName: '%PROVISION_QUEUE%',
  connection: 'AzureWebJobsStorage',
  handler: handlers.provision,
};
app.storageQueue('provision', provision);
