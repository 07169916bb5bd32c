// `tessera policy break-glass`: opens a time-bounded, audited allow for named callers to a destination; the
// control plane pushes it in Config/Watch snapshots and it expires by itself.
import { TesseraError } from '../../common/errors.js';
import { parseDuration } from '../../common/duration.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, record, str } from '../admin-answer.js';
import { boolFlag, requiredString } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { idPatternFlags } from '../spiffe-flags.js';
import { whoAmI } from '../who-am-i.js';

export const policyBreakGlassCommand: Command = {
  path: ['policy', 'break-glass'],
  summary: 'Open a time-bounded, audited allow for named callers',
  usage: '--data-dir D --to ID --from ID [--from ID…] --for DURATION --reason TEXT [--json]',
  details: '--to and --from take SPIFFE ID patterns (`*` one segment, final `**` the rest). At most 24h; every use is logged and counted by the proxies.',
  flags: {
    'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
    to: { type: 'string', value: 'ID', description: 'Destination SPIFFE ID (pattern)', required: true },
    from: { type: 'string', value: 'ID', description: 'Caller SPIFFE ID (pattern); repeat for several', required: true, multiple: true },
    for: { type: 'string', value: 'DURATION', description: 'How long the grant lasts (e.g. 15m)', required: true },
    reason: { type: 'string', value: 'TEXT', description: 'Why (recorded in the audit log)', required: true },
    json: { type: 'boolean', description: 'Print the grant as JSON' },
  },
  async run(args, io) {
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
  },
};
