// `tessera token create`: asks the running control plane (over <data-dir>/admin.sock) for a single-use join
// token bound to one SPIFFE ID; prints the token alone on stdout.
import { MAX_JOIN_TOKEN_TTL_MS } from '../../common/join-token-ttl.js';
import { TesseraError } from '../../common/errors.js';
import { parseDuration } from '../../common/duration.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, record, str } from '../admin-answer.js';
import { requiredString, stringFlag, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { spiffeIdFlag } from '../spiffe-flags.js';

export async function runTokenCreate(args: ParsedArgs, io: CommandIo): Promise<number> {
  const id = spiffeIdFlag(args, 'spiffe-id')!; // required: the parser refused its absence
  const ttl = stringFlag(args, 'ttl');
  let ttlMs: number | undefined;
  if (ttl !== undefined) {
    try {
      ttlMs = parseDuration(ttl);
    } catch (e) {
      throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--ttl: ${(e as Error).message}`);
    }
    if (ttlMs <= 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '--ttl must be positive');
    if (ttlMs > MAX_JOIN_TOKEN_TTL_MS) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--ttl ${ttl}: at most 30d (a join token is for a first attestation, not a credential)`);
  }
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/tokens', { spiffeId: id.toString(), ...(ttlMs ? { ttlMs } : {}) });
  const res = checkAnswer<{ token: string }>(answer, record({ token: str }), 'POST /v1/tokens');
  io.stdout(`${res.token}\n`);
  return EXIT_OK;
}
