#!/usr/bin/env node
/**
 * The xlb command: `serve` and `down` run on the load balancer; every other verb
 * talks to a daemon's API (--api, default 127.0.0.1:9180) and prints a table, or
 * JSON with --json.
 */
import { Command } from 'commander';
import { VERSION } from '../paths.js';
import { addApiCommands } from './api-commands.js';
import { addCaptureCommand } from './capture-command.js';
import { fail } from './errors.js';
import { addEventsCommand } from './events-command.js';
import { addHostCommands } from './host-commands.js';
import { addTraceCommand } from './trace-command.js';

function buildCli(): Command {
  const program = new Command('xlb').version(VERSION).description('XDP layer-4 load balancer').showHelpAfterError();
  addHostCommands(program);
  addApiCommands(program);
  addEventsCommand(program);
  addTraceCommand(program);
  addCaptureCommand(program);
  return program;
}

/** The exit code of a process a shell saw killed by SIGPIPE. */
const READER_GONE = 141;
// A reader that goes away (`xlb events | head`) ends the command quietly, as SIGPIPE would.
process.stdout.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? process.exit(READER_GONE) : fail(error)));

buildCli().parseAsync(process.argv).catch(fail);
