// `tessera svid verify`: judge a certificate chain as an X.509-SVID against a bundle file, at a chosen time; with
// --jwt, a JWT-SVID against a SPIFFE bundle (svid-verify-jwt.ts).
import { type Command, runOnDemand } from '../command.js';

export const svidVerifyCommand: Command = {
  path: ['svid', 'verify'],
  summary: 'Check a certificate (chain, leaf first) as an X.509-SVID, or a JWT-SVID (--jwt), against a trust bundle',
  usage: '--bundle F [--id ID] [--at TIME] [--trust-domain TD] [--jwt --audience A [--any-s]] CERT|TOKEN',
  details: 'Prints {"valid","spiffeId","reason","code",...} as JSON. Exit 0 when valid, 1 when not, 2 on usage errors.',
  positionals: 1,
  flags: {
    bundle: { type: 'string', value: 'FILE', description: 'PEM file with the trust bundle (one or more CAs); with --jwt, a SPIFFE bundle (bundle.spiffe.json)', required: true },
    id: { type: 'string', value: 'ID', description: 'The SPIFFE ID the SVID must carry' },
    at: { type: 'string', value: 'TIME', description: 'Verify at this time (ISO-8601 or Unix seconds) instead of now' },
    'trust-domain': { type: 'string', value: 'TD', description: 'Treat every CA in the bundle file as this trust domain' },
    jwt: { type: 'boolean', description: 'The argument is a JWT-SVID (TOKEN) and --bundle a SPIFFE bundle (JWKS)' },
    audience: { type: 'string', value: 'A', description: 'With --jwt: the audience the token must be for' },
    'any-s': { type: 'boolean', description: 'With --jwt: take an ECDSA signature with a high S too (a token of another issuer, e.g. SPIRE; Tessera signs low S only)' },
  },
  run: runOnDemand(() => import('../run/svid-verify.js'), (m) => m.runSvidVerify),
};
