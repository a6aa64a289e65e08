import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TokenCredential } from '@azure/identity';
import { loadConnectorDefinition, type ConnectorDefinition } from '../../config/definition.js';
import { localServices } from '../../local/local-services.js';
import {
  deviceCodeCredential,
  emulatorUserCredential,
  probeEmulator,
  searchPage,
  signedInUser,
  userGraphClient,
  type SearchPage,
} from '../../local/user-search.js';
import { CONFIG_FLAG, defineCommand, JSON_FLAG, parseWholeNumber } from '../args.js';
import { UsageError } from '../command.js';

const help = `Usage: graph-connector search --as <user> [options] <query…>

Runs Graph's search API (POST /search/query, entityTypes externalItem) as <user>, so each item's ACL trims the
results exactly as Microsoft Search trims them: "what does this user find?" before anyone deploys.

<query> is Microsoft Search's query language (KQL): words match whole words of the content and searchable
properties (payment*, "a phrase"), property:value restricts queryable ones (status:open, priority>2),
AND / OR / NOT combine them, * matches every item.

Where it searches, and how it signs in as <user>:
  - GRAPH_BASE_URL is the Graph emulator (graph-connector emulator, or the one \`run\` starts): its password grant
    for users of its directory (start it with --directory FILE), through its app (ExternalItem.Read.All delegated);
  - GRAPH_BASE_URL unset: the emulator \`graph-connector run --keep\` keeps running, or — when none runs and
    .local/emulator holds the state \`graph-connector run\` left — that state, in an emulator started for this search;
  - otherwise a tenant (GRAPH_BASE_URL, default https://graph.microsoft.com): a device-code sign-in through the
    public client app GRAPH_SEARCH_CLIENT_ID (delegated permission ExternalItem.Read.All, public client flows
    allowed) in GRAPH_TENANT_ID; sign in as <user> (anyone else is refused).
GRAPH_CA_CERT_PATH, GRAPH_AUTHORITY_HOST and GRAPH_API_VERSION apply as for every command.

Options:
      --as <user>          the user to search as (UPN, e.g. adele@contoso.com); required
      --connection <id>    the connection to search (default: connection.id of the definition; all if none)
  -c, --config <file>      the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --top <n>            hits to show (default 10, at most 500)
      --from <n>           the first hit to show, 0-based (default 0)
      --fields <a,b>       properties to return (default: every retrievable one)
      --state-dir <dir>    local state of \`graph-connector run\` (default .local)
      --json               print {total, moreResultsAvailable, hits} as JSON

Exit codes: 0 searched (even with no hit); 1 the search failed; 2 usage or configuration error.`;

function int(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
  return raw === undefined ? dflt : parseWholeNumber(`--${name}`, raw, min, max);
}

/** The definition, when there is one to read (its connection id and title property). */
async function definitionIfAny(path: string): Promise<ConnectorDefinition | undefined> {
  if (!existsSync(path)) return undefined;
  return (await loadConnectorDefinition(path)).definition;
}

/** `<c0>word</c0>` highlights as [word], `<ddd/>` as …, on one line. */
function plainSummary(summary: string): string {
  return summary
    .replace(/<c0>(.*?)<\/c0>/g, '[$1]')
    .replace(/<ddd\/>/g, '…')
    .replace(/\s+/g, ' ')
    .trim();
}

export const searchCommand = defineCommand({
  name: 'search',
  summary: "Search as a user (Graph's search API, trimmed by each item's ACL): what does this user find?",
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      ...JSON_FLAG,
      as: { type: 'string' },
      connection: { type: 'string' },
      top: { type: 'string' },
      from: { type: 'string' },
      fields: { type: 'string' },
      'state-dir': { type: 'string' },
    },
    allowPositionals: true,
  },
  async run({ values, positionals }, io) {
    const user = values.as?.trim();
    if (!user || !user.includes('@'))
      throw new UsageError('--as <user> is required: the UPN to search as, e.g. --as adele@contoso.com');
    const query = positionals.join(' ').trim();
    if (!query)
      throw new UsageError('give the query to run, e.g. graph-connector search --as adele@contoso.com "payment"');
    const top = int('top', values.top, 10, 1, 500);
    const from = int('from', values.from, 0, 0, 1_000_000);
    const fields = values.fields
      ?.split(',')
      .map((f) => f.trim())
      .filter(Boolean);
    const env = io.env;
    const err = (line: string) => io.stderr.write(line + '\n');

    const definition = values.connection
      ? undefined
      : await definitionIfAny(resolve(values.config ?? env.CONNECTOR_CONFIG ?? 'connector.json'));
    const connectionId = values.connection ?? definition?.connection.id;
    const titleProperty = definition?.schema.properties.find((p) => p.labels?.includes('title'))?.name ?? 'title';

    const apiVersion = env.GRAPH_API_VERSION ?? 'v1.0';
    let baseUrl = env.GRAPH_BASE_URL?.replace(/\/+$/, '');
    let caCertPath = env.GRAPH_CA_CERT_PATH;
    let credential: TokenCredential;
    let where: string;
    // GRAPH_BASE_URL unset: the emulator `run --keep` keeps, or one started on the state `run` left in .local.
    const local = await localServices({
      env,
      stateDir: resolve(values['state-dir'] ?? '.local'),
      graph: true,
      command: 'search',
    });
    try {
      for (const note of local.notes) err(`search    ${note.replace(/^graph\s+/, '')}`);
      if (!baseUrl && local.env.GRAPH_BASE_URL) {
        baseUrl = local.env.GRAPH_BASE_URL;
        caCertPath = local.env.GRAPH_CA_CERT_PATH;
      }
      const probe = baseUrl ? await probeEmulator(baseUrl, caCertPath) : undefined;
      if (probe?.ok) {
        credential = emulatorUserCredential(probe.facts, user, caCertPath);
        where = `the emulator at ${baseUrl}`;
      } else {
        baseUrl ??= 'https://graph.microsoft.com';
        const tenantId = env.GRAPH_TENANT_ID;
        const clientId = env.GRAPH_SEARCH_CLIENT_ID;
        if (!tenantId || !clientId)
          throw new UsageError(
            `${baseUrl} is not the Graph emulator${probe ? ` (${probe.reason})` : ''}, so searching as ${user} needs a delegated sign-in: set GRAPH_TENANT_ID and GRAPH_SEARCH_CLIENT_ID (a public client app registration with the delegated permission ExternalItem.Read.All and public client flows allowed)`,
          );
        const authorityHost = (env.GRAPH_AUTHORITY_HOST ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
        credential = deviceCodeCredential({
          tenantId,
          clientId,
          authorityHost,
          customAuthority: new URL(authorityHost).host.toLowerCase() !== 'login.microsoftonline.com',
          ...(caCertPath ? { caCertPath } : {}),
          prompt: (m) => err(`sign in as ${user}: ${m}`),
        });
        const who = await signedInUser(credential, 'https://graph.microsoft.com/ExternalItem.Read.All');
        if (!who || who.toLowerCase() !== user.toLowerCase())
          throw new UsageError(
            `signed in as ${who ?? 'an account without a UPN'}, not ${user}: sign in as ${user} to see what they find`,
          );
        where = baseUrl;
      }

      const client = userGraphClient({
        baseUrl: baseUrl ?? 'https://graph.microsoft.com',
        apiVersion,
        credential,
        ...(caCertPath ? { caCertPath } : {}),
      });
      const page: SearchPage = await searchPage(
        client,
        { ...(connectionId ? { connectionId } : {}), query, from, size: top, ...(fields ? { fields } : {}) },
        { abortSignal: io.abortSignal },
      );
      if (values.json) {
        io.stdout.write(JSON.stringify(page, null, 2) + '\n');
        return 0;
      }
      const out = (l = '') => io.stdout.write(l + '\n');
      const scope = connectionId ? `connection ${connectionId}` : 'every connection';
      out(
        `${user} finds ${page.total} item${page.total === 1 ? '' : 's'} for ${JSON.stringify(query)} in ${scope} (${where})` +
          (page.hits.length ? `; ${from + 1}–${from + page.hits.length}:` : ''),
      );
      const width = Math.max(4, ...page.hits.map((h) => h.hitId.length));
      for (const h of page.hits) {
        const title = h.properties[titleProperty];
        out(`  ${String(h.rank).padStart(3)}  ${h.hitId.padEnd(width)}  ${typeof title === 'string' ? title : ''}`);
        if (h.summary) out(`       ${' '.repeat(width)}  ${plainSummary(h.summary).slice(0, 160)}`);
      }
      if (page.moreResultsAvailable) out(`  … more: --from ${from + page.hits.length}`);
      return 0;
    } finally {
      await local.close();
    }
  },
});
