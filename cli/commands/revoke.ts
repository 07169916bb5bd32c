// `tessera revoke id|serial|token|list|lift`: operator bans of a SPIFFE ID or an SVID serial, revocation of an
// unused join token, the list of bans, and lifting one; carried out by the running control plane over
// <data-dir>/admin.sock, audited there and pushed to every proxy as the deny-list.
import type { FlagSpecs } from '../args.js';
import { type Command, runOnDemand } from '../command.js';

const DATA_DIR: FlagSpecs = { 'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true } };
const REASON: FlagSpecs = { reason: { type: 'string', value: 'TEXT', description: 'Why (recorded in the audit log)' } };
const JSON_FLAG: FlagSpecs = { json: { type: 'boolean', description: 'Print the result as JSON' } };

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
    run: runOnDemand(
      () => import('../run/revoke.js'),
      (m) => (args, io) => m.runBan(kind, args, io),
    ),
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
  run: runOnDemand(() => import('../run/revoke.js'), (m) => m.runRevokeToken),
};

export const revokeListCommand: Command = {
  path: ['revoke', 'list'],
  summary: 'List the banned SPIFFE IDs and SVID serials',
  usage: '--data-dir D [--json]',
  details: '--json prints an array of {kind, value, reason, createdBy, createdAt, notAfter?}.',
  flags: { ...DATA_DIR, ...JSON_FLAG },
  run: runOnDemand(() => import('../run/revoke.js'), (m) => m.runRevokeList),
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
  run: runOnDemand(() => import('../run/revoke.js'), (m) => m.runRevokeLift),
};
