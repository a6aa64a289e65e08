import type { Command } from '../command.js';

/**
 * Every subcommand of `graph-connector`, in the order `--help` lists them.
 * Each lives in its own file in this folder and is registered here.
 */
export const commands: Command[] = [];
