/**
 * Every handler run as the host runs it: a real InvocationContext / HttpRequest / Timer, against the stack
 * (Azurite + emulator). The HTTP triggers refuse bad requests with the right status and enqueue nothing.
 */
import { createHash } from 'node:crypto';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers, type Handlers } from '../../src/host/handlers.js';
import { drainCrawl } from '../../src/local/crawl-locally.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let handlers: Handlers;
const records = Array.from({ length: 12 }, (_, i) =>
  JSON.stringify({
    ticketId: `TSP9${String(i).padStart(5, '0')}`,
    title: `Handler test ticket ${i}`,
    description: 'Exercised through the Functions handlers.',
    status: 'open',
    priority: 2,
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: 'payments',
    tags: ['test'],
    createdDate: '2026-01-02T03:04:05Z',
    lastEditedDate: '2026-01-03T03:04:05Z',
    visibility: 'team',
  }),
).join('\n');

function ctx(name: string, triggerMetadata: Record<string, unknown> = {}) {
  return new InvocationContext({
    functionName: name,
    invocationId: `t-${name}`,
    logHandler: () => {},
    triggerMetadata,
  });
}
function post(route: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return new HttpRequest({
    method: 'POST',
    url: `http://localhost:7071/api/${route}`,
    headers,
    body: { string: body },
  });
}
function get(route: string, params: Record<string, string> = {}) {
  return new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/${route}`, params });
}
async function queueDepth() {
  const props = await stack.rt.pipeline.control.client.getProperties();
  return props.approximateMessagesCount ?? 0;
}

beforeAll(async () => {
  stack = await startStack({ records });
  handlers = createHandlers(async () => stack.rt);
}, 60_000);
afterAll(async () => stack?.close());

describe('HTTP triggers', () => {
  it('POST /api/resync refuses malformed, wrong-type and oversized bodies and enqueues nothing', async () => {
    const before = await queueDepth();
    const bad = await handlers.resync(post('resync', '{"mode": "sometimes", "force": "yes"}'), ctx('resync'));
    expect(bad.status).toBe(400);
    const problems = (bad.jsonBody as { error: { problems: string[] } }).error.problems.join('\n');
    expect(problems).toMatch(/"mode" must be one of full, incremental, acl, items/);
    expect(problems).toMatch(/"force" must be true or false/);
    expect((await handlers.resync(post('resync', '{nope'), ctx('resync'))).status).toBe(400);
    expect((await handlers.resync(post('resync', '{}', { 'content-type': 'text/plain' }), ctx('resync'))).status).toBe(
      415,
    );
    expect(
      (
        await handlers.resync(
          post('resync', JSON.stringify({ mode: 'items', itemIds: ['x'.repeat(70_000)] })),
          ctx('resync'),
        )
      ).status,
    ).toBe(413);
    expect(await queueDepth()).toBe(before);
  });

  it('POST /api/resync starts a crawl (202 + job id + status URL); a second one gets 409 with the running id', async () => {
    const first = await handlers.resync(post('resync', '{"mode":"full"}'), ctx('resync'));
    expect(first.status).toBe(202);
    const body = first.jsonBody as { crawlId: string; statusUrl: string };
    expect(body.statusUrl).toBe(`http://localhost:7071/api/jobs/${body.crawlId}`);
    const second = await handlers.resync(post('resync', '{"mode":"full"}'), ctx('resync'));
    expect(second.status).toBe(409);
    expect((second.jsonBody as { runningCrawlId: string }).runningCrawlId).toBe(body.crawlId);

    // The crawl runs from the queues, as under the host: drive them here with the local worker.
    const { job } = await drainCrawl(stack.rt.pipeline, body.crawlId, { concurrency: 4, pollMs: 50 });
    expect(job?.status).toBe('completed');
    expect(job?.counts.ingested).toBe(12);

    const jobRes = await handlers.job(get(`jobs/${body.crawlId}`, { id: body.crawlId }), ctx('job'));
    expect(jobRes.status).toBe(200);
    expect(jobRes.jsonBody).toMatchObject({ crawlId: body.crawlId, status: 'completed', trigger: 'http' });
    expect((await handlers.job(get('jobs/0000000000000', { id: '0000000000000' }), ctx('job'))).status).toBe(404);
    expect((await handlers.job(get('jobs/<script>', { id: '<script>' }), ctx('job'))).status).toBe(400);
  });

  it('GET /api/status shows provisioning, recent jobs and the queue', async () => {
    const res = await handlers.status(get('status'), ctx('status'));
    expect(res.status).toBe(200);
    const body = res.jsonBody;
    expect(body.connectionId).toBe('contosotasks');
    expect(body.provisioning.phase).toBe('ready');
    expect(body.runningCrawl).toBeNull();
    expect(body.jobs[0].status).toBe('completed');
  });

  it('GET /api/jobs lists the newest jobs with live counts and progress; a bad "top" gets 400', async () => {
    const list = (url: string) => handlers.jobs(new HttpRequest({ method: 'GET', url }), ctx('jobs'));
    const res = await list('http://localhost/api/jobs?top=5');
    expect(res.status).toBe(200);
    const body = res.jsonBody as { value: { status: string; counts: { ingested: number }; progress: object }[] };
    expect(body.value[0]).toMatchObject({ status: 'completed', counts: { ingested: 12 } });
    expect(body.value[0]!.progress).toMatchObject({ enumerated: true, slices: 1 });
    expect(body.value[0]).not.toHaveProperty('checkpoint');
    expect(body.value[0]).not.toHaveProperty('etag');
    for (const top of ['0', '101', 'ten', '1.5', '-1']) {
      const bad = await list(`http://localhost/api/jobs?top=${top}`);
      expect(bad.status, top).toBe(400);
      expect((bad.jsonBody as { error: { problems: string[] } }).error.problems[0]).toMatch(
        /"top" must be an integer from 1 to 100/,
      );
    }
  });

  it('GET /api/dashboard is one HTML page whose policy runs only its own script and style', async () => {
    const res = await handlers.dashboard(get('dashboard'), ctx('dashboard'));
    expect(res.status).toBe(200);
    const headers = res.headers as Record<string, string>;
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    const html = res.body as string;
    expect(typeof html).toBe('string');
    const csp = headers['content-security-policy']!;
    const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64');
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`script-src 'sha256-${digest(script)}'`);
    expect(csp).toContain(`style-src 'sha256-${digest(style)}'`);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    expect(headers['referrer-policy']).toBe('no-referrer');
    // Self-contained: nothing loaded from elsewhere, and no HTML parsing of what the API returns.
    expect(html).not.toMatch(/\b(?:src|href)=["']?(?:https?:)?\/\//i);
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  it('dead letters are listed and replayed; bad filters get 400', async () => {
    expect(
      (
        await handlers.deadLetters(
          new HttpRequest({ method: 'GET', url: 'http://localhost/api/deadletters?op=bogus' }),
          ctx('dl'),
        )
      ).status,
    ).toBe(400);
    const list = await handlers.deadLetters(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/deadletters' }),
      ctx('dl'),
    );
    expect(list.status).toBe(200);
    expect((await handlers.replay(post('deadletters/replay', '{}'), ctx('replay'))).status).toBe(400);
    const replay = await handlers.replay(post('deadletters/replay', '{"all":true}'), ctx('replay'));
    expect(replay.status).toBe(202);
    expect(replay.jsonBody).toMatchObject({ replayed: 0 });
  });

  it('POST /api/provision accepts an empty body and refuses unknown fields', async () => {
    expect((await handlers.provisionHttp(post('provision', '{"connectionId":"x"}'), ctx('provision'))).status).toBe(
      400,
    );
    const res = await handlers.provisionHttp(post('provision', ''), ctx('provision'));
    expect(res.status).toBe(202);
  });
});

describe('queue and timer triggers', () => {
  it('the timer starts a crawl, the control and item handlers finish it', async () => {
    await handlers.crawlTimer(
      { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } },
      ctx('crawlTimer'),
    );
    // Drive the queues through the handlers themselves, as the host would deliver them.
    const { state, control } = stack.rt.pipeline;
    for (let round = 0; round < 200; round++) {
      const ctl = await control.receive(4, 30_000);
      for (const m of ctl) {
        await handlers.crawlControl(JSON.stringify(m.message), ctx('crawlControl', { dequeueCount: m.dequeueCount }));
        await control.delete(m);
      }
      const items = await state.queue.receive(16, 30_000);
      for (const m of items) {
        await handlers.ingest(m.message, ctx('ingest', { dequeueCount: m.dequeueCount }));
        await state.queue.delete(m);
      }
      const [job] = await state.jobs.list('contosotasks', 1);
      if (job && job.status === 'completed') {
        expect(job.trigger).toBe('timer');
        expect(job.counts.unchanged).toBe(12);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the timer-started crawl did not complete');
  });

  it('a poison message becomes a dead letter that names it', async () => {
    const msg = {
      v: 1,
      op: 'upsert',
      connectionId: 'contosotasks',
      itemId: 'TSP900001',
      crawlId: '0000000000001aaaa',
      generation: 1,
      hash: 'x',
      attempt: 3,
      item: {
        id: 'TSP900001',
        acl: [{ type: 'everyone', value: 'x', accessType: 'grant' }],
        properties: { title: 'x' },
      },
    };
    await handlers.ingestPoison(msg, ctx('ingestPoison', { dequeueCount: 6 }));
    const found = [];
    for await (const dl of stack.rt.pipeline.state.deadLetters.list('contosotasks', { crawlId: '0000000000001aaaa' }))
      found.push(dl);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ itemId: 'TSP900001', code: 'RetriesExhausted' });
  });
});
