import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadEnvironment } from '../../src/config/env.js';
import { isValidNcrontab, validateNcrontab } from '../../src/config/ncrontab.js';
import { ConfigError } from '../../src/config/problems.js';

const base = { GRAPH_TENANT_ID: 't1', GRAPH_CLIENT_ID: 'c1' };
const caFile = fileURLToPath(new URL('../../connector.json', import.meta.url)); // any existing file

describe('loadEnvironment', () => {
  it('applies the documented defaults', () => {
    const env = loadEnvironment(base);
    expect(env).toMatchObject({
      connectorConfig: './connector.json',
      graph: {
        baseUrl: 'https://graph.microsoft.com',
        apiVersion: 'v1.0',
        authorityHost: 'https://login.microsoftonline.com',
        customAuthority: false,
        credential: 'clientSecret',
        clientSecretName: 'graph-client-secret',
        certificateSecretName: 'graph-certificate',
      },
      itemsQueue: 'graph-items',
      provisionQueue: 'graph-provision',
      ledgerTablePrefix: 'gc',
      claimsContainer: 'graph-claims',
      crawlSchedule: '0 0 */6 * * *',
      sweepMaxDeleteRatio: 0.1,
      logLevel: 'info',
    });
  });

  it('reads a local emulator setup (custom authority, extra CA, identity storage)', () => {
    const env = loadEnvironment({
      ...base,
      GRAPH_BASE_URL: 'https://127.0.0.1:8443/',
      GRAPH_AUTHORITY_HOST: 'https://127.0.0.1:8443',
      GRAPH_CREDENTIAL: 'workloadIdentity',
      AZURE_CLIENT_ID: 'mi-1',
      GRAPH_CA_CERT_PATH: caFile,
      AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
      AzureWebJobsStorage__credential: 'managedidentity',
      SWEEP_MAX_DELETE_RATIO: '1',
      CRAWL_SCHEDULE: '0 30 9-17/2 * JAN-jun mon-FRI',
    });
    expect(env.graph.baseUrl).toBe('https://127.0.0.1:8443');
    expect(env.graph.customAuthority).toBe(true);
    expect(env.graph.caCertPath).toBe(caFile);
    expect(env.storage).toMatchObject({ kind: 'identity', queueServiceUri: 'https://acct.queue.core.windows.net' });
    expect(env.sweepMaxDeleteRatio).toBe(1);
  });

  it('reports every bad variable at once, naming each and its fix', () => {
    let err: unknown;
    try {
      loadEnvironment({
        GRAPH_CREDENTIAL: 'password',
        GRAPH_BASE_URL: 'http://graph.contoso.com',
        CRAWL_SCHEDULE: '0 */6 * * *',
        SWEEP_MAX_DELETE_RATIO: '0',
        LOG_LEVEL: 'loud',
        ITEMS_QUEUE: 'Graph_Items',
        GRAPH_CA_CERT_PATH: '/nonexistent/ca.pem',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const byVar = Object.fromEntries((err as ConfigError).problems.map((p) => [p.path, p]));
    expect(Object.keys(byVar).sort()).toEqual(
      [
        'CRAWL_SCHEDULE',
        'GRAPH_BASE_URL',
        'GRAPH_CA_CERT_PATH',
        'GRAPH_CREDENTIAL',
        'ITEMS_QUEUE',
        'LOG_LEVEL',
        'SWEEP_MAX_DELETE_RATIO',
      ].sort(),
    );
    expect(byVar.GRAPH_CREDENTIAL!.fix).toMatch(/clientSecret, certificate, managedIdentity, workloadIdentity/);
    expect(byVar.CRAWL_SCHEDULE!.message).toMatch(/expected 6 fields/);
    expect(byVar.GRAPH_BASE_URL!.fix).toMatch(/127\.0\.0\.1\/localhost/);
  });

  it('requires the tenant and client for app credentials, and AZURE_CLIENT_ID for workload identity', () => {
    const problems = (() => {
      try {
        loadEnvironment({ GRAPH_CREDENTIAL: 'workloadIdentity' });
      } catch (e) {
        return (e as ConfigError).problems.map((p) => p.path);
      }
      return [];
    })();
    expect(problems.sort()).toEqual(['AZURE_CLIENT_ID', 'GRAPH_CLIENT_ID', 'GRAPH_TENANT_ID']);
    expect(() => loadEnvironment({ GRAPH_CREDENTIAL: 'managedIdentity' })).not.toThrow();
  });

  it('allows plain http only for a loopback Graph endpoint, never for the authority', () => {
    expect(loadEnvironment({ ...base, GRAPH_BASE_URL: 'http://localhost:7071' }).graph.baseUrl).toBe(
      'http://localhost:7071',
    );
    expect(() => loadEnvironment({ ...base, GRAPH_AUTHORITY_HOST: 'http://127.0.0.1:9' })).toThrow(
      /GRAPH_AUTHORITY_HOST/,
    );
  });

  it.each(['-0.1', '1.5', 'abc', '0'])('SWEEP_MAX_DELETE_RATIO=%s is outside (0,1]', (v) => {
    expect(() => loadEnvironment({ ...base, SWEEP_MAX_DELETE_RATIO: v })).toThrow(/SWEEP_MAX_DELETE_RATIO/);
  });
});

describe('NCRONTAB validator', () => {
  it.each([
    '0 0 */6 * * *',
    '*/30 * * * * *',
    '0 5,10,15 8-18 * * 1-5',
    '0 0 0 1 jan,jul sun',
    '0 0 12 * * Mon-Fri',
    '0 0 0 1-31/2 * *',
    '59 59 23 31 12 6',
  ])('accepts %s', (expr) => expect(validateNcrontab(expr)).toEqual([]));

  it.each([
    ['0 */6 * * *', /6 fields/],
    ['60 * * * * *', /second value 60/],
    ['0 0 24 * * *', /hour value 24/],
    ['0 0 0 0 * *', /day of month value 0/],
    ['0 0 0 * 13 *', /month value 13/],
    ['0 0 0 * * 7', /day of week value 7/],
    ['0 */0 * * * *', /positive whole number/],
    ['0 10-5 * * * *', /backwards/],
    ['0 0 0 * foo *', /not a valid month/],
    ['0 0 0 * * ,1', /empty list element/],
    ['', /6 fields/],
  ])('rejects %s', (expr, why) => {
    const problems = validateNcrontab(expr);
    expect(problems.join('; ')).toMatch(why);
    expect(isValidNcrontab(expr)).toBe(false);
  });
});
