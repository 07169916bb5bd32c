// `tessera revoke id|serial|token|list|lift`: operator bans of a SPIFFE ID or an SVID serial, revocation of an
// unused join token, the list of bans, and lifting one; carried out by the running control plane over
// <data-dir>/admin.sock, audited there and pushed to every proxy as the deny-list.
import { TesseraError } from '../../common/errors.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { bool, checkAnswer, list, optional, record, str } from '../admin-answer.js';
import { type ParsedArgs, boolFlag, requiredString, stringFlag } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { spiffeIdFlag } from '../spiffe-flags.js';
import { whoAmI } from '../who-am-i.js';

interface BanView {
  readonly kind: 'spiffe_id' | 'serial';
  readonly value: string;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly notAfter?: string;
  readonly created?: boolean;
  /** Serial bans: the live SVIDs renewed from it, banned with it. */
  readonly renewals?: readonly string[];
  /** A lifted serial ban: the bans of its renewals, which stay. */
  readonly renewalsStillBanned?: readonly string[];
}

const BAN_SHAPE = record({
  kind: str,
  value: str,
  reason: str,
  createdBy: str,
  createdAt: str,
  notAfter: optional(str),
  created: optional(bool),
  renewals: optional(list(str)),
  renewalsStillBanned: optional(list(str)),
});

const subject = (b: BanView) => (b.kind === 'serial' ? `serial ${b.value}` : b.value);

/** Exactly one of two flags; usage error otherwise. */
function oneOf(args: ParsedArgs, a: string, b: string): { flag: string; value: string } {
  const va = stringFlag(args, a);
  const vb = stringFlag(args, b);
  if ((va === undefined) === (vb === undefined)) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `give exactly one of --${a} or --${b}`);
  return va !== undefined ? { flag: a, value: va } : { flag: b, value: vb! };
}

function print(io: CommandIo, args: ParsedArgs, value: unknown, text: string): number {
  io.stdout(boolFlag(args, 'json') ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
  return EXIT_OK;
}

/** A ban of a SPIFFE ID (`revoke id`) or of an SVID serial (`revoke serial`). */
export async function runBan(kind: 'spiffe_id' | 'serial', args: ParsedArgs, io: CommandIo): Promise<number> {
  const flag = kind === 'serial' ? 'serial' : 'spiffe-id';
  const value = kind === 'serial' ? requiredString(args, flag) : spiffeIdFlag(args, flag)!.toString();
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/revocations', {
    kind,
    value,
    reason: stringFlag(args, 'reason') ?? '',
    createdBy: whoAmI(),
    ...(kind === 'serial' && boolFlag(args, 'force') ? { force: true } : {}),
  });
  const ban = checkAnswer<BanView>(answer, BAN_SHAPE, 'POST /v1/revocations');
  const head = ban.created ? `banned ${subject(ban)}` : `already banned since ${ban.createdAt}: ${subject(ban)}`;
  const renewals = (ban.renewals ?? []).map((s) => `\nbanned serial ${s} (renewed from it)`).join('');
  return print(io, args, ban, head + renewals);
}

export async function runRevokeToken(args: ParsedArgs, io: CommandIo): Promise<number> {
  const which = oneOf(args, 'token', 'token-id');
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/tokens/revoke', {
    [which.flag === 'token' ? 'token' : 'tokenId']: which.value,
    reason: stringFlag(args, 'reason') ?? '',
    createdBy: whoAmI(),
  });
  const res = checkAnswer<{ tokenId: string; spiffeId: string; revokedAt: string }>(answer, record({ tokenId: str, spiffeId: str, revokedAt: str }), 'POST /v1/tokens/revoke');
  return print(io, args, res, `revoked join token ${res.tokenId} (for ${res.spiffeId}) at ${res.revokedAt}`);
}

export async function runRevokeList(args: ParsedArgs, io: CommandIo): Promise<number> {
  const bans = checkAnswer<BanView[]>(await adminRequest(requiredString(args, 'data-dir'), 'GET', '/v1/revocations'), list(BAN_SHAPE), 'GET /v1/revocations');
  const lines = [`${'BANNED AT'.padEnd(26)}${'KIND'.padEnd(11)}VALUE`];
  for (const b of bans) lines.push(`${b.createdAt.padEnd(26)}${b.kind.padEnd(11)}${b.value}${b.reason ? `  (${b.reason})` : ''}`);
  lines.push(`${bans.length} ban(s)`);
  return print(io, args, bans, lines.join('\n'));
}

export async function runRevokeLift(args: ParsedArgs, io: CommandIo): Promise<number> {
  const which = oneOf(args, 'spiffe-id', 'serial');
  if (which.flag === 'spiffe-id') spiffeIdFlag(args, 'spiffe-id');
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/revocations/lift', {
    kind: which.flag === 'serial' ? 'serial' : 'spiffe_id',
    value: which.value,
    createdBy: whoAmI(),
  });
  const ban = checkAnswer<BanView>(answer, BAN_SHAPE, 'POST /v1/revocations/lift');
  const kept = (ban.renewalsStillBanned ?? []).map((s) => `\nserial ${s}, renewed from it, stays banned (tessera revoke lift --serial ${s})`).join('');
  return print(io, args, ban, `lifted the ban on ${subject(ban)}${kept}`);
}
