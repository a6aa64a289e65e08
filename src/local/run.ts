/**
 * `graph-connector run` (what `npm start` runs): the whole connector on one machine.
 *
 * Starts Azurite and the Graph emulator unless real endpoints are configured, provisions the connection,
 * crawls the source, drains the queues with the local worker (the same handlers the functions call), and ends
 * with a reconciliation table and — against an emulator — an ACL check: Graph's search API as each user.
 * Local state lives in `.local/` (git-ignored), so a second run sees the first; `reset` starts clean.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { loadConnectorDefinition } from '../config/definition.js';
import { startEmulator, type EmulatorHandle, type EmulatorInfo } from '../emulator/index.js';
import type { AttachmentReport } from '../attachments/service.js';
import { GraphError } from '../graph/errors.js';
import { commandLogger, type Logger } from '../log.js';
import type { CrawlProgress } from '../crawl/deps.js';
import { failCrawl } from '../crawl/start.js';
import type { IngestOutcome } from '../ingest/ingest.js';
import { crawlLocally } from './crawl-locally.js';
import { runProvisionToCompletion } from '../provision/provision.js';
import { createRuntime, type Runtime } from '../host/runtime.js';
import type { CrawlJob, CrawlMode } from '../state/jobs.js';
import { createHandlers } from '../host/handlers.js';
import { startApiServer, type ApiServer } from './api-server.js';
import { startAzurite, type AzuriteHandle } from './azurite.js';
import { runWorker } from './worker.js';
import {
  exportLines,
  LocalStateError,
  readKeptServices,
  removeKeptServices,
  writeKeptServices,
  type KeptServices,
} from './local-services.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from './emulator-client.js';
import { emulatorUserCredential, probeEmulator, searchAll, userGraphClient, type SearchHit } from './user-search.js';

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  signal: AbortSignal;
  mode: CrawlMode;
  force: boolean;
  reset: boolean;
  concurrency: number;
  /** Where local state lives (default `.local` under cwd). */
  stateDir?: string;
  /** Connector definition (default CONNECTOR_CONFIG or ./connector.json). */
  configPath?: string;
  /** Users the ACL check searches as (UPNs); default every user of the definition's mapping.acl.directory. */
  users?: string[];
  /**
   * Serve the status page and its API on 127.0.0.1 while the crawl runs (port 0: any free port), and after the
   * report until the signal aborts, with the worker still draining what the page replays.
   */
  dashboard?: { port: number };
  /**
   * Leave Azurite and the emulator running when the run ends (`run --keep`): they are recorded in
   * `<stateDir>/kept.json` for the inspection commands, and how to reach them is printed; `RunResult.kept` stops them.
   */
  keep?: boolean;
  /** Log at info level (default: warnings and errors; LOG_LEVEL=debug shows everything). */
  verbose?: boolean;
}

export interface RunResult {
  job?: CrawlJob;
  busy?: string;
  exitCode: number;
  /** With `keep`: the services left running, and how to stop them (also removes `kept.json`). */
  kept?: { services: KeptServices; close(): Promise<void> };
}

function isTty(stream: Writable): boolean {
  return (stream as Writable & { isTTY?: boolean }).isTTY === true;
}

export async function runLocal(options: RunOptions): Promise<RunResult> {
  const out = (line = '') => options.stdout.write(line + '\n');
  const stateDir = resolve(options.cwd, options.stateDir ?? '.local');
  // A `run --keep` still holding this state: never start a second Azurite or emulator on the same folders.
  const keptBefore = await readKeptServices(stateDir);
  if (keptBefore && (options.reset || options.keep)) {
    throw new LocalStateError(
      `graph-connector run --keep (pid ${keptBefore.pid}) keeps Azurite and the emulator running on ${stateDir}: ` +
        `stop it first (Ctrl-C where it runs, or kill ${keptBefore.pid})${options.reset ? ', then --reset' : ', or run without --keep to use them'}`,
    );
  }
  if (options.reset && existsSync(stateDir)) {
    await rm(stateDir, { recursive: true, force: true });
    out(`reset: removed ${stateDir}`);
  }
  await mkdir(stateDir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...options.env };
  const configPath = resolve(options.cwd, options.configPath ?? env.CONNECTOR_CONFIG ?? 'connector.json');
  env.CONNECTOR_CONFIG = configPath;
  env.CRAWL_SCHEDULE ??= '0 0 */6 * * *';
  // An invalid definition stops the run before anything starts (ConfigError: exit 2, as `validate` exits).
  await loadConnectorDefinition(configPath);

  if (keptBefore) {
    if (keptBefore.storage && !env.AzureWebJobsStorage && !env.AzureWebJobsStorage__queueServiceUri)
      env.AzureWebJobsStorage = keptBefore.storage.connectionString;
    if (keptBefore.graph && !env.GRAPH_BASE_URL)
      Object.assign(env, graphEnvForEmulator(keptBefore.graph as EmulatorInfo));
    out(`kept      using the Azurite and emulator of graph-connector run --keep (pid ${keptBefore.pid})`);
  }

  let emulator: EmulatorHandle | undefined;
  let admin: EmulatorAdmin | undefined;
  let azurite: AzuriteHandle | undefined;
  let dashboard: ApiServer | undefined;
  let keepOpen = false;
  const logger: Logger = commandLogger(options.stderr, {
    env: options.env,
    verbose: options.verbose ?? false,
  });
  try {
    if (!env.GRAPH_BASE_URL) {
      const t0 = Date.now();
      // Its directory (for the ACL check) is the definition's mapping.acl.directory, loaded below.
      emulator = await startEmulator({
        stateDir: join(stateDir, 'emulator'),
        schemaDelayMs: 1500,
        log: () => {},
      });
      const i = emulator.info;
      Object.assign(env, graphEnvForEmulator(i));
      admin = await emulatorAdmin(i);
      out(
        `graph     emulator at ${i.baseUrl} (state in ${join(stateDir, 'emulator')}, started in ${Date.now() - t0} ms)`,
      );
    } else {
      out(`graph     ${env.GRAPH_BASE_URL} (GRAPH_BASE_URL)`);
    }
    // An emulator started by hand (GRAPH_BASE_URL) serves the same admin API and search: use it too.
    const probe = emulator ? undefined : await probeEmulator(env.GRAPH_BASE_URL!, env.GRAPH_CA_CERT_PATH);
    if (probe?.ok)
      admin = await emulatorAdmin({
        adminUrl: probe.facts.adminUrl,
        ...(env.GRAPH_CA_CERT_PATH ? { caCertPath: env.GRAPH_CA_CERT_PATH } : {}),
      } as EmulatorInfo);
    if (!env.AzureWebJobsStorage && !env.AzureWebJobsStorage__queueServiceUri) {
      const t0 = Date.now();
      azurite = await startAzurite({ location: join(stateDir, 'azurite') });
      env.AzureWebJobsStorage = azurite.connectionString;
      out(
        `storage   Azurite on ports ${azurite.ports.queue}/${azurite.ports.table}/${azurite.ports.blob} (data in ${join(stateDir, 'azurite')}, started in ${Date.now() - t0} ms)`,
      );
    } else {
      out('storage   AzureWebJobsStorage');
    }

    const rt = await createRuntime({ env, logger });
    out(`connector ${rt.definition.connection.id} — ${rt.definition.connection.name} (${configPath})`);
    await rt.ensureStorage();
    if (options.dashboard) {
      dashboard = await startApiServer(
        createHandlers(async () => rt),
        { port: options.dashboard.port, logger },
      );
      out(`dashboard ${dashboard.dashboardUrl} (the status page; API under ${dashboard.origin}/api/)`);
    }
    const directory = await loadDirectoryForCheck(rt, admin, Boolean(emulator));
    if (directory.note) out(`directory ${directory.note}`);
    if (options.reset && !emulator) await resetConnection(rt, env, Boolean(azurite), out);

    // Provision: connection → schema → operation → ready, with visible progress.
    let lastProgress = '';
    await runProvisionToCompletion(
      { graph: rt.graph, definition: rt.definition, logger, store: rt.provisionStore },
      {
        abortSignal: options.signal,
        onProgress: (s) => {
          if (s.progress !== lastProgress) out(`provision [${s.phase}] ${s.progress}`);
          lastProgress = s.progress;
        },
      },
    );

    // Crawl with live progress.
    const tty = isTty(options.stdout);
    const started = Date.now();
    let lastLine = 0;
    rt.pipeline.onProgress = (p: CrawlProgress) => {
      const now = Date.now();
      if (!tty && now - lastLine < 2000 && p.phase === 'enumerating') return;
      lastLine = now;
      if (p.phase === 'groups') {
        // Groups are synced before the first record is read: say what happens, not "read 0".
        const text = `crawl     [groups] ${p.groups === undefined ? 'syncing external groups…' : `${p.groups} external group${p.groups === 1 ? '' : 's'} synced`}`;
        if (tty) options.stdout.write(`\r\x1b[2K${text}${p.groups === undefined ? '' : '\n'}`);
        else out(text);
        return;
      }
      const text = `crawl     [${p.phase}] read ${p.enumerated} · queued ${p.enqueued} · unchanged ${p.unchanged} · rejected ${p.rejected}  (${((now - started) / 1000).toFixed(1)} s)`;
      if (tty) options.stdout.write(`\r\x1b[2K${text}`);
      else out(text);
    };
    // Attachments extracted by the ingest, one line per file (never their text).
    const onOutcome = (o: IngestOutcome) => {
      if ((o.outcome !== 'ingested' && o.outcome !== 'deadLettered') || !o.attachments) return;
      for (const line of extractionLines(o.itemId, o.attachments.files)) {
        if (tty) options.stdout.write(`\r\x1b[2K${line}\n`);
        else out(line);
      }
    };
    const result = await crawlLocally(
      rt.pipeline,
      { mode: options.mode, trigger: 'cli', force: options.force },
      {
        concurrency: options.concurrency,
        ...(options.signal ? { abortSignal: options.signal } : {}),
        pollMs: 100,
        // An item operation stays hidden while it runs: longer than a file's extraction time limit, so a slow
        // OCR is not delivered a second time meanwhile (the local worker does not renew visibility).
        visibilityTimeoutMs: Math.max(30_000, 2 * (rt.pipeline.attachments?.settings.timeoutMs ?? 0)),
        onOutcome,
      },
    );
    if (tty) out();
    if (result.start.status === 'busy') {
      out(
        `crawl     another crawl (${result.start.crawlId ?? result.start.holder}) holds the connection until ${result.start.expiresAt}; nothing was done`,
      );
      return { busy: result.start.crawlId ?? result.start.holder, exitCode: 3 };
    }
    let job = result.job;
    if (!job) throw new Error('the crawl job disappeared from the ledger');
    if (options.signal?.aborted && !['completed', 'failed', 'cancelled'].includes(job.status)) {
      // Stopped here (Ctrl-C): a crawl could resume from its checkpoint, but `run` is one sitting: cancel it, so
      // the connection is free for the next run (nothing is deleted, the watermark stays).
      await failCrawl(
        rt.pipeline,
        job.crawlId,
        'the crawl was cancelled (graph-connector run was stopped)',
        'cancelled',
      );
      job = (await rt.pipeline.state.jobs.get(rt.pipeline.connectionId, job.crawlId)) ?? job;
    }
    out(
      `crawl     ${job.status} in ${((Date.now() - started) / 1000).toFixed(1)} s (crawl ${job.crawlId}, ${job.mode})`,
    );
    out();
    const attachmentStats = rt.pipeline.attachments ? result.stats?.attachments : undefined;
    const writes = await graphWrites(admin, rt, { since: new Date(started).toISOString(), clear: Boolean(emulator) });
    out(reconciliationTable(job, writes, attachmentStats));
    if (job.error) out(`note: ${job.error}`);
    const rejected = await firstRejections(rt, job.crawlId, 5);
    if (rejected.length) {
      out();
      out(`rejected records (first ${rejected.length}; all in GET /api/deadletters?op=reject):`);
      for (const r of rejected) out(`  - ${r}`);
    }
    out();
    out(
      await aclCheck({
        rt,
        admin,
        env,
        ...(probe ? { probe } : {}),
        ...(emulator ? { emulator: emulator.info } : {}),
        users: options.users ?? directory.users,
        usersFrom: options.users ? '--users' : directory.file,
      }),
    );
    if (dashboard && !options.signal.aborted) {
      out();
      out(
        `dashboard still at ${dashboard.dashboardUrl}: press Ctrl-C to stop (replayed dead letters are ingested meanwhile)`,
      );
      await runWorker(rt.pipeline, {
        concurrency: options.concurrency,
        pollMs: 500,
        abortSignal: options.signal,
        stopWhen: async () => options.signal.aborted,
      });
    }
    const exitCode = job.status === 'completed' ? 0 : 1;
    if (options.keep && (emulator || azurite)) {
      const services: KeptServices = {
        pid: process.pid,
        since: new Date().toISOString(),
        ...(azurite
          ? {
              storage: {
                connectionString: azurite.connectionString,
                ports: azurite.ports,
                location: join(stateDir, 'azurite'),
              },
            }
          : {}),
        ...(emulator
          ? {
              graph: {
                baseUrl: emulator.info.baseUrl,
                authorityHost: emulator.info.authorityHost,
                tenantId: emulator.info.tenantId,
                clientId: emulator.info.clientId,
                clientSecret: emulator.info.clientSecret,
                adminUrl: emulator.info.adminUrl,
                ...(emulator.info.caCertPath ? { caCertPath: emulator.info.caCertPath } : {}),
              },
            }
          : {}),
      };
      await writeKeptServices(stateDir, services);
      out();
      out(keptBanner(services, stateDir));
      keepOpen = true;
      const [a, e, z] = [admin, emulator, azurite];
      return {
        job,
        exitCode,
        kept: {
          services,
          close: async () => {
            await removeKeptServices(stateDir);
            await a?.close().catch(() => undefined);
            await e?.close().catch(() => undefined);
            await z?.stop().catch(() => undefined);
          },
        },
      };
    }
    return { job, exitCode };
  } finally {
    await dashboard?.close().catch(() => undefined);
    if (!keepOpen) {
      await admin?.close().catch(() => undefined);
      await emulator?.close().catch(() => undefined);
      await azurite?.stop().catch(() => undefined);
    }
  }
}

/** What `run --keep` prints: where the services are, how to reach them from another shell, how to stop them. */
export function keptBanner(kept: KeptServices, stateDir: string): string {
  const lines = [`kept      Azurite and the emulator keep running in this process (pid ${kept.pid}):`];
  if (kept.storage) {
    const p = kept.storage.ports;
    lines.push(
      `  storage   Azurite: queue http://127.0.0.1:${p.queue}, table http://127.0.0.1:${p.table}, blob http://127.0.0.1:${p.blob} (data in ${kept.storage.location})`,
    );
  }
  if (kept.graph)
    lines.push(
      `  graph     emulator: ${kept.graph.baseUrl} (admin API ${kept.graph.adminUrl}, CA ${kept.graph.caCertPath ?? 'none'})`,
    );
  lines.push(
    `  graph-connector status, deadletters and search (run from here, or with --state-dir ${stateDir}) find them on their own.`,
    '  For other tools or a shell of your own:',
    ...exportLines(kept).map((l) => `    ${l}`),
    `  Stop them with Ctrl-C here (or kill ${kept.pid}); their data stays in ${stateDir} for the next run.`,
  );
  return lines.join('\n');
}

async function graphWrites(
  admin: EmulatorAdmin | undefined,
  rt: Runtime,
  window: { since: string; clear: boolean },
): Promise<{ puts: number; deletes: number } | undefined> {
  if (!admin) return undefined;
  const { value } = await admin<{ value: { method: string; route: string; status: number }[] }>(
    `requests?connectionId=${rt.definition.connection.id}&since=${encodeURIComponent(window.since)}`,
  );
  // The log of an emulator started by hand is its owner's: leave it.
  if (window.clear) await admin('requests', { method: 'DELETE' });
  const items = value.filter((e) => e.route === 'item' && e.status < 300);
  return {
    puts: items.filter((e) => e.method === 'PUT').length,
    deletes: items.filter((e) => e.method === 'DELETE').length,
  };
}

/**
 * Every record ends in exactly one bucket: enumerated = ingested + unchanged + rejected + dead-lettered
 * (+ superseded by a newer crawl); the sweep's deletes are counted on their own.
 */
export function reconciliationTable(
  job: CrawlJob,
  writes?: { puts: number; deletes: number },
  attachments?: { extracted: number; failed: number },
): string {
  const c = job.counts;
  // Deletes the crawl sent besides its records' upserts: the sweep's, and the old ids of moved items.
  const sweepDeletes = Math.max(0, c.enqueued - (c.enumerated - c.unchanged - c.rejected) - c.moved);
  const otherDeletes = sweepDeletes + c.moved;
  const recordSide = c.ingested + c.unchanged + c.rejected + c.deadLettered + c.superseded + c.deleted - otherDeletes;
  const ok = c.enumerated === recordSide;
  const row = (k: string, v: number | string, note = '') => `  ${k.padEnd(14)} ${String(v).padStart(8)}  ${note}`;
  return [
    `reconciliation — crawl ${job.crawlId} (${job.mode}, ${job.status})`,
    row('enumerated', c.enumerated, 'records read from the source'),
    row('ingested', c.ingested, 'PUT to Graph and settled'),
    row('unchanged', c.unchanged, 'same hash as the ledger: not sent'),
    row('rejected', c.rejected, 'mapping refused them (reasons in dead letters)'),
    row('dead-lettered', c.deadLettered, "Graph refused them (with Graph's error)"),
    row('superseded', c.superseded, 'replaced by a newer crawl before they settled'),
    row('deleted', c.deleted, 'removed from Graph by the sweep'),
    ...(c.moved ? [row('moved', c.moved, 'ids whose format changed: the old id deleted, the new one written')] : []),
    ...(writes
      ? [row('graph writes', `${writes.puts}/${writes.deletes}`, 'PUT/DELETE requests the emulator answered 2xx')]
      : []),
    ...(attachments
      ? [
          row(
            'attachments',
            `${attachments.extracted}/${attachments.failed}`,
            'files extracted/failed (unchanged files are not re-read; a failed one dead-letters its item)',
          ),
        ]
      : []),
    `  check: ${c.enumerated} enumerated = ${c.ingested} + ${c.unchanged} + ${c.rejected} + ${c.deadLettered} + ${c.superseded}` +
      `${c.deleted - otherDeletes ? ` + ${c.deleted - otherDeletes}` : ''} ${ok ? '✓' : '✗ MISMATCH'}`,
  ].join('\n');
}

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(bytes < 10_240 ? 1 : 0)} KB`;
}

/** `extract   TSP100000: report.pdf (2 pages, 1.2 KB text)` — one line per attachment file. */
export function extractionLines(itemId: string, files: readonly AttachmentReport[]): string[] {
  return files.map((f) => {
    if (!f.ok) return `extract   ${itemId}: ${f.name} FAILED (${f.code}: ${f.reason ?? ''})`;
    const facts = [
      f.format?.toUpperCase(),
      f.pageCount !== undefined ? `${f.pageCount} page${f.pageCount === 1 ? '' : 's'}` : undefined,
      f.ocrUsed ? 'OCR' : undefined,
      `${kb(f.textBytes ?? 0)} text`,
    ].filter(Boolean);
    return `extract   ${itemId}: ${f.name} (${facts.join(', ')})`;
  });
}

async function firstRejections(rt: Runtime, crawlId: string, max: number): Promise<string[]> {
  const out: string[] = [];
  for await (const dl of rt.pipeline.state.deadLetters.list(rt.pipeline.connectionId, { crawlId })) {
    out.push(dl.op === 'reject' ? dl.message : `${dl.itemId}: ${dl.status} ${dl.code ?? ''} ${dl.message}`);
    if (out.length >= max) break;
  }
  return out;
}

/**
 * `--reset` against a Graph this run did not start: the ledger that remembered what the connection holds is gone
 * (it lived in .local), so the connection goes too — Graph deletes it over a while, and provisioning waits until
 * its id is free to create it again. With storage of its own (AzureWebJobsStorage) the ledger stays, and so does
 * the connection.
 */
async function resetConnection(
  rt: Runtime,
  env: NodeJS.ProcessEnv,
  ledgerWasLocal: boolean,
  out: (line: string) => void,
): Promise<void> {
  const cid = rt.definition.connection.id;
  if (!ledgerWasLocal) {
    out(
      `reset: kept connection ${cid} on ${env.GRAPH_BASE_URL}: the ledger in AzureWebJobsStorage still remembers what it holds`,
    );
    return;
  }
  try {
    await rt.graph.deleteConnection(cid);
    out(
      `reset: deleted connection ${cid} on ${env.GRAPH_BASE_URL} (its items were what the removed ledger remembered); provisioning creates it again once the deletion has finished`,
    );
  } catch (e) {
    if (!(e instanceof GraphError && e.status === 404)) throw e;
    out(`reset: connection ${cid} is not on ${env.GRAPH_BASE_URL}; nothing to delete`);
  }
}

/**
 * The users of the definition's directory (mapping.acl.directory), and — against an emulator — that directory in
 * the emulator too, so its search resolves the same users and groups the mapping resolved. An emulator started by
 * hand keeps a directory it already has.
 */
async function loadDirectoryForCheck(
  rt: Runtime,
  admin: EmulatorAdmin | undefined,
  ours: boolean,
): Promise<{ users: string[]; file?: string; note?: string }> {
  const rel = rt.definition.mapping.acl?.directory;
  if (!rel) return { users: [] };
  const file = resolve(rt.baseDir, rel);
  let parsed: { users?: { userPrincipalName?: unknown }[] };
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as typeof parsed;
  } catch (e) {
    return { users: [], file: rel, note: `cannot read ${file} for the ACL check: ${(e as Error).message}` };
  }
  const users = (parsed.users ?? []).map((u) => u.userPrincipalName).filter((u): u is string => typeof u === 'string');
  if (!admin) return { users, file: rel };
  try {
    const current = await admin<{ users: unknown[] }>('directory');
    if (!ours && current.users.length > 0) return { users, file: rel };
    await admin('directory', { method: 'POST', body: parsed });
    return { users, file: rel, ...(ours ? {} : { note: `${rel} loaded into the emulator (its directory was empty)` }) };
  } catch (e) {
    return { users, file: rel, note: `the emulator refused ${rel} as its directory: ${(e as Error).message}` };
  }
}

/**
 * The ACL check: Graph's search API (`*`, every page) as each user, with a delegated sign-in from the emulator's
 * token endpoint — what each user finds, trimmed by each item's ACL. Says when and why it is skipped.
 */
export async function aclCheck(ctx: {
  rt: Runtime;
  admin: EmulatorAdmin | undefined;
  env: NodeJS.ProcessEnv;
  probe?: Awaited<ReturnType<typeof probeEmulator>>;
  emulator?: EmulatorInfo;
  users: string[];
  usersFrom: string | undefined;
}): Promise<string> {
  const cid = ctx.rt.definition.connection.id;
  const skipped = (why: string) => `ACL check skipped: ${why}`;
  if (!ctx.users.length)
    return skipped(
      `no users to check: the definition names no mapping.acl.directory${ctx.usersFrom ? ` users (${ctx.usersFrom})` : ''}; give --users a@contoso.com,b@contoso.com`,
    );
  let facts;
  if (ctx.emulator) {
    const probe = await probeEmulator(ctx.emulator.baseUrl, ctx.emulator.caCertPath);
    if (!probe.ok) return skipped(`the emulator did not answer: ${probe.reason}`);
    facts = probe.facts;
  } else if (ctx.probe?.ok) facts = ctx.probe.facts;
  else
    return skipped(
      `GRAPH_BASE_URL (${ctx.env.GRAPH_BASE_URL}) is not the Graph emulator${ctx.probe ? ` — ${ctx.probe.reason}` : ''}. ` +
        'To see what a user finds in a tenant, run graph-connector search --as <user> "*" with a delegated sign-in (GRAPH_SEARCH_CLIENT_ID)',
    );
  const baseUrl = ctx.emulator?.baseUrl ?? ctx.env.GRAPH_BASE_URL!;
  const caCertPath = ctx.emulator?.caCertPath ?? ctx.env.GRAPH_CA_CERT_PATH;
  const total = ctx.admin
    ? (await ctx.admin<{ value: unknown[] }>(`connections/${cid}/items`)).value.length
    : undefined;
  const views: { user: string; hits?: SearchHit[]; error?: string }[] = [];
  for (const user of ctx.users) {
    const client = userGraphClient({
      baseUrl,
      apiVersion: ctx.env.GRAPH_API_VERSION ?? 'v1.0',
      credential: emulatorUserCredential(facts, user, caCertPath),
      ...(caCertPath ? { caCertPath } : {}),
    });
    try {
      views.push({ user, hits: (await searchAll(client, { connectionId: cid, query: '*' })).hits });
    } catch (e) {
      const msg = (e as Error).message;
      views.push({ user, error: /AADSTS50034/.test(msg) ? "not in the emulator's directory" : msg.split('\n')[0] });
    }
  }
  const width = Math.max(22, ...ctx.users.map((u) => u.length));
  const lines = [
    `ACL check (Graph's search API as each user${ctx.usersFrom ? ` of ${ctx.usersFrom}` : ''}, signed in through the emulator; results trimmed by each item's ACL):`,
  ];
  for (const v of views)
    lines.push(
      v.hits
        ? `  ${v.user.padEnd(width)} finds ${String(v.hits.length).padStart(4)}${total !== undefined ? ` of ${total}` : ''} items`
        : `  ${v.user.padEnd(width)} not checked: ${v.error}`,
    );
  const [a, b] = views.filter((v) => v.hits);
  if (a?.hits && b?.hits) {
    const idsA = new Set(a.hits.map((h) => h.hitId));
    const idsB = new Set(b.hits.map((h) => h.hitId));
    const onlyA = a.hits.filter((h) => !idsB.has(h.hitId));
    const onlyB = b.hits.filter((h) => !idsA.has(h.hitId));
    const title = (h: SearchHit) => {
      const t = h.properties.title;
      const team = h.properties.team;
      return `${h.hitId}  ${typeof t === 'string' ? t.slice(0, 60) : ''}${typeof team === 'string' ? ` [${team}]` : ''}`;
    };
    lines.push(`  only ${a.user}: ${onlyA.length}${onlyA[0] ? `, e.g. ${title(onlyA[0])}` : ''}`);
    lines.push(`  only ${b.user}: ${onlyB.length}${onlyB[0] ? `, e.g. ${title(onlyB[0])}` : ''}`);
  }
  return lines.join('\n');
}
