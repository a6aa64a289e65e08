#!/usr/bin/env node
// The `graph-connector` command. Runs the compiled CLI (npm run build first; `npm start` does it for you).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/index.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('graph-connector: the project is not built yet. Run `npm run build` (or `npm start`) first.\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
