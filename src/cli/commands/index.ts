import type { Command } from '../command.js';
import { appPackageCommand } from './app-package.js';
import { graphCommand } from './graph.js';
import { provisionCommand } from './provision.js';
import { validateCommand } from './validate.js';
import { emulatorCommand } from './emulator.js';
import { doctorCommand } from './doctor.js';
import { runCommand } from './run.js';
import { searchCommand } from './search.js';
import { statusCommand } from './status.js';
import { deadLettersCommand } from './deadletters.js';
import { workerCommand } from './worker.js';

/**
 * Every subcommand of `graph-connector`, in the order `--help` lists them.
 * Each lives in its own file in this folder and is registered here.
 */
export const commands: Command[] = [
  runCommand,
  emulatorCommand,
  validateCommand,
  provisionCommand,
  graphCommand,
  searchCommand,
  doctorCommand,
  statusCommand,
  deadLettersCommand,
  workerCommand,
  appPackageCommand,
];
