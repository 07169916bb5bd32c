// `tessera token create`: asks the running control plane (over <data-dir>/admin.sock) for a single-use join
// token bound to one SPIFFE ID; prints the token alone on stdout.
import { MAX_JOIN_TOKEN_TTL_MS } from '../../common/join-token-ttl.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, record, str } from '../admin-answer.js';
import { requiredString, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { durationFlag } from '../number-flags.js';
import { spiffeIdFlag } from '../spiffe-flags.js';

export async function runTokenCreate(args: ParsedArgs, io: CommandIo): Promise<number> {
  const id = spiffeIdFlag(args, 'spiffe-id')!; // required: the parser refused its absence
  // At most 30d: a join token is for a first attestation, not a credential.
  const ttlMs = durationFlag(args, 'ttl', { min: 1, max: MAX_JOIN_TOKEN_TTL_MS });
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/tokens', { spiffeId: id.toString(), ...(ttlMs ? { ttlMs } : {}) });
  const res = checkAnswer<{ token: string }>(answer, record({ token: str }), 'POST /v1/tokens');
  io.stdout(`${res.token}\n`);
  return EXIT_OK;
}
