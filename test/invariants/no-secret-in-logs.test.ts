/**
 * Invariant 6: no secret value appears in any log line, error message, job record or dead letter — on the
 * happy path and on the failure paths (a wrong Graph client secret, a source that refuses its token, a
 * dead-lettered item).
 * Bug class prevented: credentials leaking into logs, job records or dead letters through error messages,
 * request dumps or debug output.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createMemoryLogger } from '../../src/log.js';
import { ingestItem, ingestPoison } from '../../src/ingest/ingest.js';
import { createRuntime } from '../../src/host/runtime.js';
import { statusReport } from '../../src/host/status.js';
import { startStack, type Stack } from '../support/stack.js';
import {
  addFault,
  deadLetters,
  recs,
  restSourceDefinition,
  startRestSource,
  type RestSourceServer,
} from './helpers.js';

const logger = createMemoryLogger('debug');
const sourceToken = `src-${randomBytes(18).toString('base64url')}`;
const wrongGraphSecret = `wrong~${randomBytes(18).toString('base64url')}`;
const records = recs(20);
const badId = String(records[3]!.ticketId);
const errors: string[] = [];
let stack: Stack;
let rest: RestSourceServer;

/** Access tokens (JWTs) and bearer headers: none may be written anywhere. */
const TOKEN_PATTERNS = [/eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/, /bearer\s+[\w~.+/=-]{12,}/i];

function leaks(text: string, secrets: string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) if (text.includes(s)) found.push(`secret ${s.slice(0, 6)}…`);
  for (const p of TOKEN_PATTERNS) {
    const m = p.exec(text);
    if (m) found.push(`token ${m[0].slice(0, 16)}…`);
  }
  return found;
}

beforeAll(async () => {
  rest = await startRestSource([...records]);
  rest.authorization = `Bearer ${sourceToken}`;
  stack = await startStack({
    logger,
    env: { CRM_TOKEN: sourceToken },
    editDefinition: (def) => {
      def.source = restSourceDefinition(rest.base, { auth: { type: 'bearer', tokenSecret: 'crm-token' } });
    },
  });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await rest?.close();
});

describe('no secret in logs, errors, job records or dead letters', () => {
  it('runs the happy path and the failure paths', async () => {
    // A crawl with a throttled PUT (503 + Retry-After) and a dead letter (400).
    await addFault(stack, { match: { method: 'PUT', route: 'item', itemId: badId }, action: 'status', status: 400 });
    await addFault(stack, { match: { method: 'PUT', route: 'item' }, action: 'status', status: 503, retryAfter: 1 });
    const ok = await stack.crawl({ mode: 'full' });
    expect(ok.job?.status, ok.job?.error).toBe('completed');
    expect(ok.job!.counts.deadLettered).toBe(1);

    // The source refuses its token: the crawl fails with an auth error.
    rest.authorization = 'Bearer something-else';
    const failed = await stack.crawl({ mode: 'full' });
    expect(failed.job?.status).toBe('failed');
    expect(failed.job?.error).toMatch(/auth|401/i);
    rest.authorization = `Bearer ${sourceToken}`;

    // A runtime with a wrong Graph client secret: the token request fails; its error and dead letter are scanned.
    const names = stack.rt.pipeline.state.names;
    const info = stack.emu.info;
    const wrong = await createRuntime({
      logger,
      env: {
        CONNECTOR_CONFIG: join(stack.dir, 'connector.json'),
        GRAPH_BASE_URL: info.baseUrl,
        GRAPH_AUTHORITY_HOST: info.authorityHost,
        GRAPH_TENANT_ID: info.tenantId,
        GRAPH_CLIENT_ID: info.clientId,
        GRAPH_CREDENTIAL: 'clientSecret',
        GRAPH_CLIENT_SECRET: wrongGraphSecret,
        ...(info.caCertPath ? { GRAPH_CA_CERT_PATH: info.caCertPath } : {}),
        CRM_TOKEN: sourceToken,
        AzureWebJobsStorage: inject('storageConnectionString'),
        ITEMS_QUEUE: names.itemsQueue,
        PROVISION_QUEUE: names.provisionQueue,
        LEDGER_TABLE_PREFIX: names.tablePrefix,
        CLAIMS_CONTAINER: names.claimsContainer,
        CRAWL_QUEUE: `crawlwrong${randomBytes(3).toString('hex')}`,
        LOG_LEVEL: 'debug',
      },
    });
    const item = await stack.admin<{ id: string }>(
      `connections/${stack.rt.definition.connection.id}/items/${String(records[0]!.ticketId)}`,
    );
    const message = {
      v: 1,
      op: 'upsert',
      connectionId: stack.rt.pipeline.connectionId,
      itemId: item.id,
      crawlId: '0000000000000ffff',
      generation: 99,
      hash: 'x',
      attempt: 0,
      item: { ...item, acl: [{ type: 'user', value: '821a90b9-f6e5-59d1-aa60-ed677782f646', accessType: 'grant' }] },
    };
    await expect(ingestItem(wrong.pipeline, { payload: message, dequeueCount: 1 })).rejects.toThrow();
    try {
      await ingestItem(wrong.pipeline, { payload: message, dequeueCount: 2 });
    } catch (err) {
      errors.push(String(err), (err as Error).stack ?? '', JSON.stringify(err));
    }
    const poisoned = await ingestPoison(wrong.pipeline, message, { dequeueCount: 6 });
    expect(poisoned.outcome).toBe('deadLettered');
    expect(errors.join('\n')).toMatch(/AADSTS7000215|invalid_client|client secret/i); // the failure really happened
  });

  it('scans every log line, error, job record and dead letter: no secret, no token', async () => {
    const secrets = [stack.emu.info.clientSecret, wrongGraphSecret, sourceToken];
    expect(logger.lines.length).toBeGreaterThan(20);
    expect(logger.lines.some((l) => l.includes('"level":"debug"') || l.includes('debug'))).toBe(true);
    const found: string[] = [];
    logger.lines.forEach((line, i) => found.push(...leaks(line, secrets).map((f) => `log line ${i}: ${f}`)));
    errors.forEach((e) => found.push(...leaks(e, secrets).map((f) => `error: ${f}`)));
    const jobs = await stack.rt.pipeline.state.jobs.list(stack.rt.pipeline.connectionId, 20);
    expect(jobs.length).toBeGreaterThanOrEqual(2);
    for (const j of jobs) found.push(...leaks(JSON.stringify(j), secrets).map((f) => `job ${j.crawlId}: ${f}`));
    const dls = await deadLetters(stack);
    expect(dls.length).toBeGreaterThanOrEqual(2);
    for (const d of dls) {
      found.push(...leaks(JSON.stringify(d), secrets).map((f) => `dead letter ${d.key}: ${f}`));
      const body = await stack.rt.pipeline.state.deadLetters.body(d);
      found.push(...leaks(body ?? '', secrets).map((f) => `dead letter body ${d.key}: ${f}`));
    }
    const status = JSON.stringify(await statusReport(stack.rt, { jobs: 20 }));
    expect(status).toContain(stack.rt.pipeline.connectionId);
    found.push(...leaks(status, secrets).map((f) => `status report: ${f}`));
    expect(found).toEqual([]);
  });
});
