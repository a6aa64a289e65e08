// Control queue: enumerate a started crawl, or finalize it once every item settled.
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const crawlControl = {
  queueName: '%CRAWL_QUEUE%',
  connection: 'AzureWebJobsStorage',
  handler: handlers.crawlControl,
};
app.storageQueue('crawlControl', crawlControl);
