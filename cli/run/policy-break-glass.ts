// `tessera policy break-glass`: opens a time-bounded, audited allow for named callers to a destination; the
// control plane pushes it in Config/Watch snapshots and it expires by itself.
import { TesseraError } from '../../common/errors.js';
import { parseDuration } from '../../common/duration.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, record, str } from '../admin-answer.js';
import { boolFlag, requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { idPatternFlags } from '../spiffe-flags.js';
import { whoAmI } from '../who-am-i.js';

export async function runPolicyBreakGlass(args: ParsedArgs, io: CommandIo): Promise<number> {
  const to = idPatternFlags(args, 'to')[0]!;
  const from = idPatternFlags(args, 'from');
  let forMs: number;
  try {
    forMs = parseDuration(requiredString(args, 'for'));
  } catch (e) {
    throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--for: ${(e as Error).message}`);
  }
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
