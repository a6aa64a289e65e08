/**
 * "What does this user find?": Graph's search API (`POST /search/query` for externalItem,
 * https://learn.microsoft.com/graph/api/search-query) run as a signed-in user, so results are trimmed by each
 * item's ACL exactly as Microsoft Search trims them. The sign-in is delegated:
 * - against the Graph emulator, its password grant for users of its directory (the emulator's userPassword,
 *   read from its admin API) through the connector's app, which holds ExternalItem.Read.All delegated;
 * - against a tenant, a device-code sign-in through a public client app registration with the delegated
 *   permission ExternalItem.Read.All (GRAPH_SEARCH_CLIENT_ID); the signed-in account must be the one asked for.
 * Shared by `graph-connector search` and the ACL check of `graph-connector run`.
 */
import { readFileSync } from 'node:fs';
import { DeviceCodeCredential, UsernamePasswordCredential, type TokenCredential } from '@azure/identity';
import { Agent } from 'undici';
import { ConnectorError, messageOf } from '../core/errors.js';
import { extraCaPipelinePolicy } from '../graph/credentials.js';
import { GraphConnectorClient } from '../graph/client.js';

/** What the emulator's admin API root says about itself (GET {baseUrl}/_emulator/). */
export interface EmulatorFacts {
  adminUrl: string;
  tenantId: string;
  clientId: string;
  userPassword: string;
  /** The token endpoint, e.g. https://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token. */
  tokenEndpoint: string;
}

export type EmulatorProbe = { ok: true; facts: EmulatorFacts } | { ok: false; reason: string };

function caOf(caCertPath: string | undefined): Buffer | undefined {
  if (!caCertPath) return undefined;
  try {
    return readFileSync(caCertPath);
  } catch (e) {
    throw new ConnectorError(
      `GRAPH_CA_CERT_PATH: cannot read '${caCertPath}' (${(e as NodeJS.ErrnoException).code ?? messageOf(e)}); point it at the emulator's caCertPath`,
      { code: 'CaCertUnreadable', cause: e },
    );
  }
}

/** Is there a Graph emulator at `baseUrl`? Asks its admin API (no token); never throws. */
export async function probeEmulator(baseUrl: string, caCertPath?: string): Promise<EmulatorProbe> {
  const adminUrl = `${baseUrl.replace(/\/+$/, '')}/_emulator`;
  let dispatcher: Agent | undefined;
  try {
    const ca = caOf(caCertPath);
    dispatcher = new Agent({ connect: ca ? { ca } : {} });
    const res = await fetch(`${adminUrl}/`, { dispatcher, signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    if (!res.ok) return { ok: false, reason: `${adminUrl}/ answered ${res.status}, so it is not the Graph emulator` };
    const body = JSON.parse(text) as Partial<EmulatorFacts> & { emulator?: string };
    if (!body.emulator || !body.userPassword || !body.tenantId || !body.clientId || !body.tokenEndpoint)
      return {
        ok: false,
        reason: `${adminUrl}/ does not describe delegated sign-in (an older emulator?): start a current one`,
      };
    return {
      ok: true,
      facts: {
        adminUrl,
        tenantId: body.tenantId,
        clientId: body.clientId,
        userPassword: body.userPassword,
        tokenEndpoint: body.tokenEndpoint,
      },
    };
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      reason: `its admin API ${adminUrl}/ did not answer (${cause?.code ?? cause?.message ?? messageOf(e)})`,
    };
  } finally {
    await dispatcher?.close().catch(() => undefined);
  }
}

/** A delegated credential for `upn` against the emulator: its password grant, trusting its CA. */
export function emulatorUserCredential(facts: EmulatorFacts, upn: string, caCertPath?: string): TokenCredential {
  const ca = caOf(caCertPath);
  const authorityHost = new URL(facts.tokenEndpoint).origin;
  return new UsernamePasswordCredential(facts.tenantId, facts.clientId, upn, facts.userPassword, {
    authorityHost,
    disableInstanceDiscovery: true,
    ...(ca ? { additionalPolicies: [{ position: 'perCall' as const, policy: extraCaPipelinePolicy(ca) }] } : {}),
  });
}

/**
 * A delegated credential for a tenant: device-code sign-in through a public client app (`clientId`, with the
 * delegated permission ExternalItem.Read.All). The prompt goes to `prompt`.
 */
export function deviceCodeCredential(options: {
  tenantId: string;
  clientId: string;
  authorityHost: string;
  customAuthority: boolean;
  caCertPath?: string;
  prompt: (message: string) => void;
}): TokenCredential {
  const ca = caOf(options.caCertPath);
  return new DeviceCodeCredential({
    tenantId: options.tenantId,
    clientId: options.clientId,
    authorityHost: options.authorityHost,
    ...(options.customAuthority ? { disableInstanceDiscovery: true } : {}),
    userPromptCallback: (info) => options.prompt(info.message),
    ...(ca ? { additionalPolicies: [{ position: 'perCall' as const, policy: extraCaPipelinePolicy(ca) }] } : {}),
  });
}

/** The signed-in user of a delegated token (`upn`, else `preferred_username` / `unique_name`). */
export async function signedInUser(credential: TokenCredential, scope: string): Promise<string | undefined> {
  const token = await credential.getToken(scope);
  if (!token) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(token.token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    const upn = claims.upn ?? claims.preferred_username ?? claims.unique_name;
    return typeof upn === 'string' ? upn : undefined;
  } catch {
    return undefined;
  }
}

export interface SearchHit {
  hitId: string;
  rank: number;
  summary?: string;
  contentSource?: string;
  properties: Record<string, unknown>;
}

export interface SearchPage {
  total: number;
  moreResultsAvailable: boolean;
  hits: SearchHit[];
}

interface SearchResponseBody {
  value?: {
    hitsContainers?: {
      total?: number;
      moreResultsAvailable?: boolean;
      hits?: {
        hitId: string;
        rank: number;
        summary?: string;
        contentSource?: string;
        resource?: { properties?: Record<string, unknown> };
      }[];
    }[];
  }[];
}

/** One page of `POST search/query` (externalItem, one connection or all). */
export async function searchPage(
  client: GraphConnectorClient,
  request: { connectionId?: string; query: string; from?: number; size?: number; fields?: string[] },
  options: { abortSignal?: AbortSignal } = {},
): Promise<SearchPage> {
  const body = {
    requests: [
      {
        entityTypes: ['externalItem'],
        ...(request.connectionId ? { contentSources: [`/external/connections/${request.connectionId}`] } : {}),
        query: { queryString: request.query },
        from: request.from ?? 0,
        size: request.size ?? 25,
        ...(request.fields ? { fields: request.fields } : {}),
      },
    ],
  };
  const res = await client.request('POST', 'search/query', {
    body,
    ...(options.abortSignal ? { signal: options.abortSignal } : {}),
  });
  const parsed = (await res.json()) as SearchResponseBody;
  const container = parsed.value?.[0]?.hitsContainers?.[0];
  return {
    total: container?.total ?? 0,
    moreResultsAvailable: container?.moreResultsAvailable ?? false,
    hits: (container?.hits ?? []).map((h) => ({
      hitId: h.hitId,
      rank: h.rank,
      ...(h.summary !== undefined ? { summary: h.summary } : {}),
      ...(h.contentSource !== undefined ? { contentSource: h.contentSource } : {}),
      properties: h.resource?.properties ?? {},
    })),
  };
}

/** Every hit of a query, page by page (500 a page, the search API's maximum). */
export async function searchAll(
  client: GraphConnectorClient,
  request: { connectionId?: string; query: string; fields?: string[] },
  options: { abortSignal?: AbortSignal } = {},
): Promise<SearchPage> {
  const hits: SearchHit[] = [];
  let page: SearchPage;
  do {
    page = await searchPage(client, { ...request, from: hits.length, size: 500 }, options);
    hits.push(...page.hits);
  } while (page.moreResultsAvailable && page.hits.length > 0);
  return { total: page.total, moreResultsAvailable: false, hits };
}

/** A Graph client that calls as the given (delegated) credential. */
export function userGraphClient(options: {
  baseUrl: string;
  apiVersion: string;
  credential: TokenCredential;
  caCertPath?: string;
}): GraphConnectorClient {
  return new GraphConnectorClient({
    baseUrl: options.baseUrl,
    apiVersion: options.apiVersion,
    credential: options.credential,
    ...(options.caCertPath ? { caCertPath: options.caCertPath } : {}),
    retry: { maxRetries: 3 },
  });
}
