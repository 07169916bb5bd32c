// The list of `tessera` sub-commands, in help order. Each lives in its own file.
import type { Command } from '../command.js';
import { benchCommand } from './bench.js';
import { benchReportCommand } from './bench-report.js';
import { demoAppCommand } from './demo-app.js';
import { injectCommand } from './inject.js';
import { loadCommand } from './load.js';
import { policyCheckCommand } from './policy-check.js';
import { svidVerifyCommand } from './svid-verify.js';

export const COMMANDS: readonly Command[] = [
  svidVerifyCommand,
  policyCheckCommand,
  demoAppCommand,
  injectCommand,
  benchCommand,
  benchReportCommand,
  loadCommand,
];
