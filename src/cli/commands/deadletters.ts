import { resolve } from 'node:path';
import { commandLogger } from '../../log.js';
import { createRuntime } from '../../host/runtime.js';
import { replayDeadLetters } from '../../host/status.js';
import { localServices } from '../../local/local-services.js';
import { runWorker } from '../../local/worker.js';
import type { DeadLetter, DeadLetterOp } from '../../state/dead-letters.js';
import {
  CONFIG_FLAG,
  JSON_FLAG,
  STATE_DIR_FLAG,
  VERBOSE_FLAG,
  defineCommand,
  parseDuration,
  parseWholeNumber,
} from '../args.js';
import { UsageError } from '../command.js';

const OPS = ['upsert', 'delete', 'activities', 'reject', 'unknown'] as const;

const help = `Usage: graph-connector deadletters [filters] [--json]
       graph-connector deadletters --replay (--all | filters) [--drain]

Lists the dead letters of the connection — item operations Graph refused (with Graph's status, code and request
id) and records the mapping rejected (with the reasons, naming the record and where it was) — one entry per item
or record and reason, with how many crawls recorded it. Read straight from storage: no Functions host needed.
Uses AzureWebJobsStorage and the GRAPH_* settings like every other command; without them it reads the local state
of \`graph-connector run\` (.local/), starting Azurite (and the emulator) on it for this command, or uses what
\`run --keep\` keeps running.

--replay re-enqueues the selected item operations on the item queue through the same code as
POST /api/deadletters/replay (a rejected record is not replayable: fix it at the source, the next crawl reads it
again). The Functions host, \`graph-connector worker\`, or --drain here sends them.

Filters (all given must match):
      --crawl <id>        dead letters of this crawl
      --op <op>           upsert, delete, activities, reject or unknown
      --code <code>       Graph's error code or inner code (InvalidRequest), the HTTP status (400), or a
                          rejection's rule (unique-id); case-insensitive
      --item <id>         this item id or record key (repeatable, or a,b,c)

Options:
  -c, --config <file>     the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --top <n>           how many to list (default 50, at most 1000)
      --replay            re-enqueue what the filters select (or everything, with --all)
      --all               with --replay and no filter: every dead letter
      --drain             after --replay, run the local worker until the queues stay empty (sends them to Graph)
      --idle <dur>        with --drain, how long the queues must stay empty (default 2s)
      --state-dir <dir>   the local state of \`graph-connector run\` (default .local)
      --json              print {value, count} (or the replay result) as JSON
  -v, --verbose           log at info level (default: warnings and errors)

Exit codes: 0 listed or replayed (also when nothing matched); 1 a failure; 2 usage or configuration error.`;

/** `--item a,b --item c` → [a, b, c]. */
function itemList(raw: string[] | undefined): string[] | undefined {
  const ids = (raw ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return ids.length ? ids : undefined;
}

/** --code matches Graph's code or inner code, the HTTP status, or a rejection's rule, ignoring case. */
export function matchesCode(dl: DeadLetter, code: string): boolean {
  const c = code.toLowerCase();
  if (dl.code?.toLowerCase() === c || dl.innerCode?.toLowerCase() === c) return true;
  if (dl.status && String(dl.status) === c) return true;
  return dl.op === 'reject' && [dl.message, ...(dl.reasons ?? [])].some((r) => r.toLowerCase().includes(`rule: ${c}`));
}

function line(dl: DeadLetter): string {
  const times = dl.count > 1 ? ` ×${dl.count}` : '';
  if (dl.op === 'reject') {
    return `  reject  ${dl.itemId}${dl.position ? ` (${dl.position})` : ''}${times}  crawl ${dl.crawlId}  ${dl.at}\n          ${dl.message}`;
  }
  const code = [dl.status || undefined, dl.code, dl.innerCode].filter(Boolean).join(' ');
  return (
    `  ${dl.op.padEnd(6)}  ${dl.itemId}${times}  ${code}  crawl ${dl.crawlId}  ${dl.at}` +
    `${dl.requestId ? `  request-id ${dl.requestId}` : ''}\n          ${dl.message}`
  );
}

export const deadLettersCommand = defineCommand({
  name: 'deadletters',
  summary: 'List dead letters and rejected records (filters), or --replay them through the item queue',
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      ...JSON_FLAG,
      ...VERBOSE_FLAG,
      ...STATE_DIR_FLAG,
      crawl: { type: 'string' },
      op: { type: 'string' },
      code: { type: 'string' },
      item: { type: 'string', multiple: true },
      top: { type: 'string', default: '50' },
      replay: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      drain: { type: 'boolean', default: false },
      idle: { type: 'string', default: '2s' },
    },
  },
  async run({ values }, io) {
    const top = parseWholeNumber('--top', values.top, 1, 1000);
    const op = values.op as DeadLetterOp | undefined;
    if (op !== undefined && !OPS.includes(op))
      throw new UsageError(`--op must be upsert, delete, activities, reject or unknown, got '${values.op}'`);
    const items = itemList(values.item);
    const code = values.code?.trim() || undefined;
    const filtered = Boolean(values.crawl || op || code || items);
    if (!values.replay && (values.all || values.drain))
      throw new UsageError(`${values.all ? '--all' : '--drain'} goes with --replay`);
    if (values.replay && !filtered && !values.all)
      throw new UsageError(
        'say what to replay: --all, or filters (--crawl <id>, --op upsert, --code <code>, --item <id>)',
      );
    if (values.replay && values.all && filtered)
      throw new UsageError('--all replays every dead letter: give either --all or filters, not both');
    if (values.replay && op === 'reject')
      throw new UsageError('rejected records are not replayable: fix them at the source; the next crawl reads them');
    const idleMs = parseDuration(values.idle, '--idle');

    const local = await localServices({
      env: io.env,
      stateDir: resolve(values['state-dir'] ?? '.local'),
      storage: true,
      graph: true,
      command: 'deadletters',
    });
    try {
      for (const note of local.notes) io.stderr.write(note + '\n');
      const logger = commandLogger(io.stderr, { env: io.env, verbose: values.verbose });
      const rt = await createRuntime({
        env: local.env,
        logger,
        ...(values.config ? { configPath: values.config } : {}),
      });
      const cid = rt.pipeline.connectionId;
      const wanted = items ? new Set(items) : undefined;
      const matches = (dl: DeadLetter) =>
        (!wanted || wanted.has(dl.itemId)) && (!code || matchesCode(dl, code)) && (!op || dl.op === op);

      if (!values.replay) {
        const value: DeadLetter[] = [];
        let more = false;
        for await (const dl of rt.pipeline.state.deadLetters.list(cid, {
          ...(values.crawl ? { crawlId: values.crawl } : {}),
          ...(op ? { op } : {}),
          abortSignal: io.abortSignal,
        })) {
          if (!matches(dl)) continue;
          if (value.length >= top) {
            more = true;
            break;
          }
          value.push(dl);
        }
        if (values.json) {
          io.stdout.write(JSON.stringify({ value, count: value.length, more }, null, 2) + '\n');
          return 0;
        }
        io.stdout.write(
          `${value.length}${more ? '+' : ''} dead letter${value.length === 1 ? '' : 's'} of connection ${cid}${filtered ? ' matching the filters' : ''}${value.length ? ':' : ''}\n`,
        );
        for (const dl of value) io.stdout.write(line(dl) + '\n');
        if (more) io.stdout.write(`  … more: --top ${Math.min(1000, top * 2)}\n`);
        return 0;
      }

      const result = await replayDeadLetters(
        rt,
        {
          all: values.all,
          ...(values.crawl ? { crawlId: values.crawl } : {}),
          ...(items ? { itemIds: items } : {}),
        },
        { abortSignal: io.abortSignal, where: matches },
      );
      let drained;
      if (values.drain && result.replayed > 0) {
        await rt.ensureStorage();
        let idleSince: number | undefined;
        drained = await runWorker(rt.pipeline, {
          concurrency: 8,
          abortSignal: io.abortSignal,
          pollMs: 100,
          stopWhen: () => {
            const now = Date.now();
            idleSince ??= now;
            return Promise.resolve(now - idleSince >= idleMs);
          },
          onOutcome: () => {
            idleSince = undefined;
          },
        });
      }
      if (values.json) {
        io.stdout.write(JSON.stringify({ ...result, ...(drained ? { drained } : {}) }, null, 2) + '\n');
        return 0;
      }
      io.stdout.write(
        `replayed ${result.replayed} dead letter${result.replayed === 1 ? '' : 's'} of connection ${cid} onto the item queue (${rt.pipeline.state.names.itemsQueue})\n`,
      );
      for (const s of result.skipped) io.stdout.write(`  skipped ${s.itemId}: ${s.reason}\n`);
      if (drained) {
        io.stdout.write(
          `drained: ${drained.ingested} ingested, ${drained.deleted} deleted, ${drained.deadLettered} dead-lettered again, ${drained.superseded} superseded, ${drained.throttled} throttled\n`,
        );
      } else if (result.replayed > 0) {
        io.stdout.write(
          'they are sent when the Functions host or `graph-connector worker --until-idle` drains the queue (or replay with --drain)\n',
        );
      }
      return 0;
    } finally {
      await local.close();
    }
  },
});
