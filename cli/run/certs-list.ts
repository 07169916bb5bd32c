// `tessera certs list`: the unexpired SVIDs the control plane issued (who, serial, validity), soonest expiry
// first, optionally only those expiring within a duration; read over <data-dir>/admin.sock.
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, record, str } from '../admin-answer.js';
import { boolFlag, requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { EXPIRING_WITHIN_RANGE } from '../commands/certs-list.js';
import { durationFlag } from '../number-flags.js';

interface CertRow {
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly attestedAs: string;
  readonly kind: string;
  readonly authority: string;
}

export async function runCertsList(args: ParsedArgs, io: CommandIo): Promise<number> {
  // Checked here, with the flag's name: the control plane's own check names its query field instead (audit 55a F12).
  const within = durationFlag(args, 'expiring-within', EXPIRING_WITHIN_RANGE);
  const query = within === undefined ? '' : `?expiringWithinMs=${within}`;
  // The fields the table prints; --json passes the rest through as the control plane sent it.
  const rowShape = record({ serial: str, spiffeId: str, notAfter: str, kind: str });
  const rows = checkAnswer<CertRow[]>(await adminRequest(requiredString(args, 'data-dir'), 'GET', `/v1/certs${query}`), list(rowShape), 'GET /v1/certs');
  if (boolFlag(args, 'json')) {
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return EXIT_OK;
  }
  const lines = [`${'NOT AFTER'.padEnd(26)}${'SERIAL'.padEnd(34)}${'KIND'.padEnd(8)}SPIFFE ID`];
  for (const r of rows) lines.push(`${r.notAfter.padEnd(26)}${r.serial.padEnd(34)}${r.kind.padEnd(8)}${r.spiffeId}`);
  lines.push(`${rows.length} live SVID(s)`);
  io.stdout(`${lines.join('\n')}\n`);
  return EXIT_OK;
}
