// `tessera ca sign-intermediate`: the root holder's side of an offline root, for a machine with no control plane
// (and no openssl recipe at hand): signs an intermediate CSR from `tessera ca intermediate-csr` with the root's key,
// as the control plane will check it (basicConstraints CA pathlen 0, keyUsage keyCertSign+cRLSign, both critical;
// the URI SAN spiffe://<trust domain> the CSR asks for; never outliving the root). Nothing is sent anywhere.
import { type Command, runOnDemand } from '../command.js';

export const DEFAULT_TTL = '720h';
/** 1 ms to 100 years: the certificate never outlives the root anyway; past that a value is a typo. */
export const TTL_RANGE = { min: 1, max: 36_500 * 86_400_000 } as const;

export const caSignIntermediateCommand: Command = {
  path: ['ca', 'sign-intermediate'],
  summary: 'Sign an intermediate CSR with an offline root (run where the root key lives, not on the control plane)',
  usage: '--root-cert FILE --root-key FILE --csr FILE --out FILE [--ttl D] [--trust-domain TD]',
  details: [
    'Reads the root key locally and sends nothing anywhere. The CSR must ask for exactly one URI SAN, spiffe://<trust domain>',
    '(--trust-domain, when given, must be that one). Default --ttl 720h, capped at the root\'s NotAfter. The same as the',
    'openssl recipe in docs/offline-root.md.',
  ].join('\n'),
  flags: {
    'root-cert': { type: 'string', value: 'FILE', description: 'The root certificate (PEM)', required: true },
    'root-key': { type: 'string', value: 'FILE', description: "The root's private key (PEM)", required: true },
    csr: { type: 'string', value: 'FILE', description: 'The CSR `tessera ca intermediate-csr` wrote', required: true },
    out: { type: 'string', value: 'FILE', description: 'Where to write the intermediate certificate (PEM)', required: true },
    ttl: { type: 'string', value: 'DURATION', description: `Lifetime of the intermediate, at most 36500d (default ${DEFAULT_TTL}; never past the root)` },
    'trust-domain': { type: 'string', value: 'TD', description: 'Refuse a CSR for any other trust domain' },
  },
  run: runOnDemand(() => import('../run/ca-sign-intermediate.js'), (m) => m.runCaSignIntermediate),
};
