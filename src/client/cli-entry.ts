#!/usr/bin/env node
// Runs the client commands on their own, until src/cli/main.ts dispatches to them
// (and for tests that need a real process to kill).
import { runClientCli } from './cli.js';

runClientCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`estgw: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
