import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ManagedIdentityCredential, DefaultAzureCredential } from '@azure/identity';
import { ConfigError } from '../../src/config/problems.js';
import { createMemoryLogger, redact } from '../../src/log.js';
import {
  createStorage,
  credentialFromEnv,
  decodeQueueMessage,
  encodeQueueMessage,
  parseConnectionString,
  stateNamesFromEnv,
} from '../../src/state/storage.js';
import { uid } from './helpers.js';

describe('storage clients factory', () => {
  it('builds working queue, table and blob clients from an Azurite connection string (http)', async () => {
    const conn = inject('storageConnectionString');
    const s = createStorage({ AzureWebJobsStorage: conn }, { logger: createMemoryLogger() });
    expect(s.kind).toBe('connectionString');
    expect(s.endpoints.table).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    const id = uid();
    const q = s.queue(`q-${id}`);
    await q.create();
    await q.sendMessage(encodeQueueMessage('hi'));
    const got = await q.receiveMessages();
    expect(decodeQueueMessage(got.receivedMessageItems[0]!.messageText)).toBe('hi');
    const t = s.table(`t${id}`);
    await t.createTable();
    await t.createTable(); // idempotent
    await t.upsertEntity({ partitionKey: 'p', rowKey: 'r', v: 1 });
    expect((await t.getEntity('p', 'r')).v).toBe(1);
    const c = s.container(`c-${id}`);
    await c.create();
    await c.getBlockBlobClient('b').upload('x', 1);
    expect((await c.getBlobClient('b').downloadToBuffer()).toString()).toBe('x');
    // The account key is registered as a secret: it never appears in logs.
    const key = parseConnectionString(conn).get('accountkey')!;
    expect(redact(`key=${key}`)).not.toContain(key);
  });

  it('explains a missing storage configuration, naming the variables', () => {
    expect(() => createStorage({})).toThrow(ConfigError);
    expect(() => createStorage({})).toThrow(/AzureWebJobsStorage__queueServiceUri/);
  });

  it('identity-based: requires all three https service URIs and names the missing one', () => {
    const env = {
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'http://acct.table.core.windows.net',
    };
    let err: unknown;
    try {
      createStorage(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const paths = (err as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual(['AzureWebJobsStorage__blobServiceUri', 'AzureWebJobsStorage__tableServiceUri']);
  });

  it('identity-based: builds clients for the given endpoints with the configured credential (no network)', () => {
    const env = {
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      AzureWebJobsStorage__blobServiceUri: 'https://acct.blob.core.windows.net',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
    };
    const s = createStorage(env);
    expect(s.kind).toBe('identity');
    expect(s.queue('graph-items').url).toBe('https://acct.queue.core.windows.net/graph-items');
    expect(s.container('graph-claims').url).toBe('https://acct.blob.core.windows.net/graph-claims');
    expect(s.table('gcitems').tableName).toBe('gcitems');
    expect(credentialFromEnv(env)).toBeInstanceOf(ManagedIdentityCredential);
    expect(credentialFromEnv({})).toBeInstanceOf(DefaultAzureCredential);
    expect(() => credentialFromEnv({ AzureWebJobsStorage__credential: 'password' })).toThrow(/managedidentity/);
    const byAccount = createStorage({ AzureWebJobsStorage__accountName: 'acct2' });
    expect(byAccount.endpoints.blob).toBe('https://acct2.blob.core.windows.net');
  });

  it('reads resource names from the env contract with defaults', () => {
    expect(stateNamesFromEnv({})).toEqual({
      itemsQueue: 'graph-items',
      provisionQueue: 'graph-provision',
      tablePrefix: 'gc',
      claimsContainer: 'graph-claims',
      stateContainer: 'graph-state',
    });
    expect(stateNamesFromEnv({ ITEMS_QUEUE: 'q2', LEDGER_TABLE_PREFIX: 'x' }).tablePrefix).toBe('x');
  });

  it('base64 queue encoding round-trips unicode and tolerates plain text', () => {
    const s = JSON.stringify({ a: 'é漢字' });
    expect(decodeQueueMessage(encodeQueueMessage(s))).toBe(s);
    expect(decodeQueueMessage('{"plain":true}')).toBe('{"plain":true}');
  });
});
