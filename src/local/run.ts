/**
 * `graph-connector run` (what `npm start` runs): the whole connector on one machine.
 *
 * Starts Azurite and the Graph emulator unless real endpoints are configured, provisions the connection,
 * crawls the source, drains the queues with the local worker (the same handlers the functions call), and ends
 * with a reconciliation table and — against the emulator — an ACL demonstration from its search.
 * Local state lives in `.local/` (git-ignored), so a second run sees the first; `reset` starts clean.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { startEmulator, type EmulatorHandle } from '../emulator/index.js';
import { createLogger, type Logger } from '../log.js';
import type { CrawlProgress } from '../crawl/deps.js';
import { failCrawl } from '../crawl/start.js';
import type { IngestOutcome } from '../ingest/ingest.js';
import { crawlLocally } from './crawl-locally.js';
import { runProvisionToCompletion } from '../provision/provision.js';
import { createRuntime, type Runtime } from '../host/runtime.js';
import type { CrawlJob, CrawlMode } from '../state/jobs.js';
import { startAzurite, type AzuriteHandle } from './azurite.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from './emulator-client.js';

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
  /** Users whose views the ACL demonstration compares (UPNs in the emulator's directory). */
  demoUsers?: [string, string];
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface RunResult {
  job?: CrawlJob;
  busy?: string;
  exitCode: number;
}

function isTty(stream: Writable): boolean {
  return (stream as Writable & { isTTY?: boolean }).isTTY === true;
}

export async function runLocal(options: RunOptions): Promise<RunResult> {
  const out = (line = '') => options.stdout.write(line + '\n');
  const stateDir = resolve(options.cwd, options.stateDir ?? '.local');
  if (options.reset && existsSync(stateDir)) {
    await rm(stateDir, { recursive: true, force: true });
    out(`reset: removed ${stateDir}`);
  }
  await mkdir(stateDir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...options.env };
  const configPath = resolve(options.cwd, options.configPath ?? env.CONNECTOR_CONFIG ?? 'connector.json');
  env.CONNECTOR_CONFIG = configPath;
  env.CRAWL_SCHEDULE ??= '0 0 */6 * * *';

  let emulator: EmulatorHandle | undefined;
  let admin: EmulatorAdmin | undefined;
  let azurite: AzuriteHandle | undefined;
  const logger: Logger = createLogger({
    level: options.logLevel ?? 'warn',
    pretty: true,
    write: (l) => options.stderr.write(l + '\n'),
  });
  try {
    if (!env.GRAPH_BASE_URL) {
      const t0 = Date.now();
      emulator = await startEmulator({
        stateDir: join(stateDir, 'emulator'),
        directory: join(options.cwd, 'samples', 'contoso-tasks', 'directory.json'),
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
    out(reconciliationTable(job, await graphWrites(admin, rt), attachmentStats));
    if (job.error) out(`note: ${job.error}`);
    const rejected = await firstRejections(rt, job.crawlId, 5);
    if (rejected.length) {
      out();
      out(`rejected records (first ${rejected.length}; all in GET /api/deadletters?op=reject):`);
      for (const r of rejected) out(`  - ${r}`);
    }
    if (admin) {
      out();
      out(await aclDemo(admin, rt, options.demoUsers ?? ['adele@contoso.com', 'megan@contoso.com']));
    }
    return { job, exitCode: job.status === 'completed' ? 0 : 1 };
  } finally {
    await admin?.close().catch(() => undefined);
    await emulator?.close().catch(() => undefined);
    await azurite?.stop().catch(() => undefined);
  }
}

async function graphWrites(
  admin: EmulatorAdmin | undefined,
  rt: Runtime,
): Promise<{ puts: number; deletes: number } | undefined> {
  if (!admin) return undefined;
  const { value } = await admin<{ value: { method: string; route: string; status: number }[] }>(
    `requests?connectionId=${rt.definition.connection.id}`,
  );
  await admin('requests', { method: 'DELETE' });
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
export function extractionLines(
  itemId: string,
  files: {
    name: string;
    ok: boolean;
    format?: string;
    pageCount?: number;
    textBytes?: number;
    ocrUsed?: boolean;
    code?: string;
    reason?: string;
  }[],
): string[] {
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

interface SearchHit {
  id: string;
  properties: { title?: string; team?: string };
}

/** Two users, one query, different results: the ACLs at work, as the emulator's search resolves them. */
async function aclDemo(admin: EmulatorAdmin, rt: Runtime, users: [string, string]): Promise<string> {
  const cid = rt.definition.connection.id;
  const views = await Promise.all(
    users.map((u) =>
      admin<{ count: number; value: SearchHit[] }>(`search?connectionId=${cid}&user=${encodeURIComponent(u)}`),
    ),
  );
  const [a, b] = views as [{ count: number; value: SearchHit[] }, { count: number; value: SearchHit[] }];
  const idsB = new Set(b.value.map((h) => h.id));
  const idsA = new Set(a.value.map((h) => h.id));
  const onlyA = a.value.filter((h) => !idsB.has(h.id));
  const onlyB = b.value.filter((h) => !idsA.has(h.id));
  const { count: total } = { count: (await admin<{ value: unknown[] }>(`connections/${cid}/items`)).value.length };
  const title = (h: SearchHit) => `${h.id}  ${(h.properties.title ?? '').slice(0, 60)} [${h.properties.team ?? ''}]`;
  return [
    `ACL check (the emulator's search, which applies each item's ACL: deny beats grant; groups nested):`,
    `  ${users[0].padEnd(22)} sees ${String(a.count).padStart(4)} of ${total} items`,
    `  ${users[1].padEnd(22)} sees ${String(b.count).padStart(4)} of ${total} items`,
    `  only ${users[0]}: ${onlyA.length}${onlyA[0] ? `, e.g. ${title(onlyA[0])}` : ''}`,
    `  only ${users[1]}: ${onlyB.length}${onlyB[0] ? `, e.g. ${title(onlyB[0])}` : ''}`,
  ].join('\n');
}
