// The list of `tessera` sub-commands, in help order. Each lives in its own file, which declares only what help, flag
// parsing and usage errors need; what the command does is in cli/run/, loaded when it runs (cli/command.ts
// runOnDemand). Every `tessera` process loads this table, so a file here imports nothing but cli/command.ts and
// types (test/unit/cli/command-table-imports.test.ts).
import type { Command } from '../command.js';
import { benchCommand } from './bench.js';
import { benchReportCommand } from './bench-report.js';
import { caActivateCommand, caPrepareCommand, caRetireCommand } from './ca-lifecycle.js';
import { caInstallIntermediateCommand, caIntermediateCsrCommand } from './ca-offline-root.js';
import { caSignIntermediateCommand } from './ca-sign-intermediate.js';
import { caStatusCommand } from './ca-status.js';
import { certsListCommand } from './certs-list.js';
import { controlPlaneCommand } from './control-plane.js';
import { demoAppCommand } from './demo-app.js';
import { injectCommand } from './inject.js';
import { injectorCommand } from './injector.js';
import { loadCommand } from './load.js';
import { policyBreakGlassCommand } from './policy-break-glass.js';
import { policyCheckCommand } from './policy-check.js';
import { proxyCommand } from './proxy.js';
import { revokeIdCommand, revokeLiftCommand, revokeListCommand, revokeSerialCommand, revokeTokenCommand } from './revoke.js';
import { svidFetchCommand } from './svid-fetch.js';
import { svidVerifyCommand } from './svid-verify.js';
import { tokenCreateCommand } from './token-create.js';
import { upCommand } from './up.js';
import { versionCommand } from './version.js';

export const COMMANDS: readonly Command[] = [
  upCommand,
  proxyCommand,
  controlPlaneCommand,
  caStatusCommand,
  caPrepareCommand,
  caActivateCommand,
  caRetireCommand,
  caIntermediateCsrCommand,
  caInstallIntermediateCommand,
  caSignIntermediateCommand,
  tokenCreateCommand,
  certsListCommand,
  svidVerifyCommand,
  svidFetchCommand,
  policyCheckCommand,
  policyBreakGlassCommand,
  revokeIdCommand,
  revokeSerialCommand,
  revokeTokenCommand,
  revokeListCommand,
  revokeLiftCommand,
  demoAppCommand,
  injectCommand,
  injectorCommand,
  benchCommand,
  benchReportCommand,
  loadCommand,
  versionCommand,
];
