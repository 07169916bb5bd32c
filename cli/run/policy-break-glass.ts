// `tessera policy break-glass`: opens a time-bounded, audited allow for named callers to a destination; the
// control plane pushes it in Config/Watch snapshots and it expires by itself.
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, record, str } from '../admin-answer.js';
import { boolFlag, requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { durationFlag } from '../number-flags.js';
import { idPatternFlags } from '../spiffe-flags.js';
import { whoAmI } from '../who-am-i.js';

export async function runPolicyBreakGlass(args: ParsedArgs, io: CommandIo): Promise<number> {
  const to = idPatternFlags(args, 'to')[0]!;
  const from = idPatternFlags(args, 'from');
  // The control plane's bound (MAX_BREAK_GLASS_MS, 24h), checked here with the flag's name (audit 55a F12).
  const forMs = durationFlag(args, 'for', { min: 1, max: 24 * 3_600_000 })!; // required: the parser refused its absence
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/break-glass', {
    to,
    from,
    forMs,
    reason: requiredString(args, 'reason'),
    createdBy: whoAmI(),
  });
  const grant = checkAnswer<{ id: string; to: string; from: string[]; expiresAt: string }>(answer, record({ id: str, to: str, from: list(str), expiresAt: str }), 'POST /v1/break-glass');
  io.stdout(boolFlag(args, 'json') ? `${JSON.stringify(grant, null, 2)}\n` : `break-glass ${grant.id}: ${grant.from.join(', ')} -> ${grant.to} until ${grant.expiresAt}\n`);
  return EXIT_OK;
}
