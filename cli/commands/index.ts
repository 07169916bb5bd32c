// The list of `tessera` sub-commands, in help order. Each lives in its own file.
import type { Command } from '../command.js';
import { demoAppCommand } from './demo-app.js';
import { svidVerifyCommand } from './svid-verify.js';

export const COMMANDS: readonly Command[] = [
  svidVerifyCommand,
  demoAppCommand,
];
