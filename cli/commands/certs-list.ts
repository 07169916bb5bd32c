// `tessera certs list`: the unexpired SVIDs the control plane issued (who, serial, validity), soonest expiry
// first, optionally only those expiring within a duration; read over <data-dir>/admin.sock.
import { type Command, runOnDemand } from '../command.js';

/** 1 ms to 100 years: a wider window is every SVID anyway, and the control plane takes at most 15 digits of ms. */
export const EXPIRING_WITHIN_RANGE = { min: 1, max: 36_500 * 86_400_000 } as const;

export const certsListCommand: Command = {
  path: ['certs', 'list'],
  summary: 'List live SVIDs the control plane issued (what expires when)',
  usage: '--data-dir D [--expiring-within D] [--json]',
  details: '--json prints an array of {serial, spiffeId, notBefore, notAfter, attestedAs, issuedAt, authority, kind, caller}.',
  flags: {
    'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
    'expiring-within': { type: 'string', value: 'DURATION', description: 'Only SVIDs whose NotAfter is within this duration (e.g. 24h; at most 36500d)' },
    json: { type: 'boolean', description: 'Print JSON' },
  },
  run: runOnDemand(() => import('../run/certs-list.js'), (m) => m.runCertsList),
};
