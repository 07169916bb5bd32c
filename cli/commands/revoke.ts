// `tessera revoke id|serial|token|list|lift`: operator bans of a SPIFFE ID or an SVID serial, revocation of an
// unused join token, the list of bans, and lifting one; carried out by the running control plane over
// <data-dir>/admin.sock, audited there and pushed to every proxy as the deny-list.
import { TesseraError } from '../../common/errors.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { bool, checkAnswer, list, optional, record, str } from '../admin-answer.js';
import { type ParsedArgs, boolFlag, requiredString, stringFlag } from '../args.js';
import type { FlagSpecs } from '../args.js';
import { type Command, type CommandIo, EXIT_OK } from '../command.js';
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

const DATA_DIR: FlagSpecs = { 'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true } };
const REASON: FlagSpecs = { reason: { type: 'string', value: 'TEXT', description: 'Why (recorded in the audit log)' } };
const JSON_FLAG: FlagSpecs = { json: { type: 'boolean', description: 'Print the result as JSON' } };

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

function banCommand(kind: 'spiffe_id' | 'serial'): Command {
  const flag = kind === 'serial' ? 'serial' : 'spiffe-id';
  return {
    path: ['revoke', kind === 'serial' ? 'serial' : 'id'],
    summary: kind === 'serial' ? 'Ban one SVID by its serial: no renewal, refused by every proxy' : 'Ban a SPIFFE ID: no SVID issued or renewed, refused by every proxy',
    usage: `--data-dir D --${flag} ${kind === 'serial' ? 'SERIAL [--force]' : 'ID'} [--reason TEXT] [--json]`,
    details:
      kind === 'serial'
        ? 'SERIAL in hex, whole, as `tessera certs list` or a proxy\'s /certs show it (case and ":" do not matter). A serial no SVID in the inventory has is refused (TESSERA_ERR_REVOCATION_UNKNOWN_SERIAL): a cut or mistyped one would ban nothing; --force bans it anyway (an SVID issued from a data dir this control plane no longer holds). The live SVIDs renewed from it (and from those) are banned with it: whoever held its key may have renewed. Each until `tessera revoke lift`.'
        : 'The ban holds until `tessera revoke lift`; a new SVID for the ID can be issued only after that.',
    flags: {
      ...DATA_DIR,
      [flag]: { type: 'string', value: kind === 'serial' ? 'SERIAL' : 'ID', description: kind === 'serial' ? 'The SVID serial (hex, as certs list prints it; case, leading zeros and ":" do not matter)' : 'The SPIFFE ID to ban (exact, no pattern)', required: true },
      ...(kind === 'serial' ? { force: { type: 'boolean', description: 'Ban it even if no SVID in the inventory has this serial' } } : {}),
      ...REASON,
      ...JSON_FLAG,
    },
    async run(args, io) {
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
    },
  };
}

export const revokeIdCommand = banCommand('spiffe_id');
export const revokeSerialCommand = banCommand('serial');

export const revokeTokenCommand: Command = {
  path: ['revoke', 'token'],
  summary: 'Revoke an unused join token',
  usage: '--data-dir D (--token T | --token-id ID) [--reason TEXT] [--json]',
  details: 'ID: the token id audit lines show as join_token:<id> (or a longer prefix of the token hash). A token already used cannot be revoked: ban the SPIFFE ID it attested instead.',
  flags: {
    ...DATA_DIR,
    token: { type: 'string', value: 'TOKEN', description: 'The join token itself' },
    'token-id': { type: 'string', value: 'ID', description: 'The token id from the audit log (join_token:<id>)' },
    ...REASON,
    ...JSON_FLAG,
  },
  async run(args, io) {
    const which = oneOf(args, 'token', 'token-id');
    const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/tokens/revoke', {
      [which.flag === 'token' ? 'token' : 'tokenId']: which.value,
      reason: stringFlag(args, 'reason') ?? '',
      createdBy: whoAmI(),
    });
    const res = checkAnswer<{ tokenId: string; spiffeId: string; revokedAt: string }>(answer, record({ tokenId: str, spiffeId: str, revokedAt: str }), 'POST /v1/tokens/revoke');
    return print(io, args, res, `revoked join token ${res.tokenId} (for ${res.spiffeId}) at ${res.revokedAt}`);
  },
};

export const revokeListCommand: Command = {
  path: ['revoke', 'list'],
  summary: 'List the banned SPIFFE IDs and SVID serials',
  usage: '--data-dir D [--json]',
  details: '--json prints an array of {kind, value, reason, createdBy, createdAt, notAfter?}.',
  flags: { ...DATA_DIR, ...JSON_FLAG },
  async run(args, io) {
    const bans = checkAnswer<BanView[]>(await adminRequest(requiredString(args, 'data-dir'), 'GET', '/v1/revocations'), list(BAN_SHAPE), 'GET /v1/revocations');
    const lines = [`${'BANNED AT'.padEnd(26)}${'KIND'.padEnd(11)}VALUE`];
    for (const b of bans) lines.push(`${b.createdAt.padEnd(26)}${b.kind.padEnd(11)}${b.value}${b.reason ? `  (${b.reason})` : ''}`);
    lines.push(`${bans.length} ban(s)`);
    return print(io, args, bans, lines.join('\n'));
  },
};

export const revokeLiftCommand: Command = {
  path: ['revoke', 'lift'],
  summary: 'Lift a ban on a SPIFFE ID or an SVID serial',
  usage: '--data-dir D (--spiffe-id ID | --serial SERIAL) [--json]',
  details: 'Proxies accept the peer again once the new deny-list reaches them; the workload renews or re-attests as usual.',
  flags: {
    ...DATA_DIR,
    'spiffe-id': { type: 'string', value: 'ID', description: 'The banned SPIFFE ID' },
    serial: { type: 'string', value: 'SERIAL', description: 'The banned SVID serial (hex)' },
    ...JSON_FLAG,
  },
  async run(args, io) {
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
  },
};
