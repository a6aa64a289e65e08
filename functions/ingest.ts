// Item queue: PUT or DELETE one externalItem on Graph, then settle it in the ledger.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const ingest = { queueName: '%ITEMS_QUEUE%', connection: 'AzureWebJobsStorage', handler: handlers.ingest };
app.storageQueue('ingest', ingest);
