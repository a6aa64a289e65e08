// Timer: start a crawl on CRAWL_SCHEDULE (a 6-field NCRONTAB app setting).
import { app } from '@azure/functions';
import { handlers } from '../src/host/functions.js';

export const crawlTimer = {
  schedule: '%CRAWL_SCHEDULE%',
  runOnStartup: false,
  useMonitor: true,
  handler: handlers.crawlTimer,
};
app.timer('crawlTimer', crawlTimer);
