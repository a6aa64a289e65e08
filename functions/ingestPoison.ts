// Poison queue of the item queue: operations that failed on every delivery become dead letters.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const ingestPoison = {
  queueName: '%ITEMS_QUEUE%-poison',
  connection: 'AzureWebJobsStorage',
  handler: handlers.ingestPoison,
};
app.storageQueue('ingestPoison', ingestPoison);
