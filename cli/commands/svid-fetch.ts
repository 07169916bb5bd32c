// `tessera svid fetch`: one-shot attestation with a join token. The key is generated here and never sent; a CSR
// goes to the control plane (verified by its SPIFFE ID against --bundle); the answer is verified before
// svid.pem (chain, leaf first), key.pem (0600) and bundle.pem are written to --out. With --jwt, the fresh SVID
// then authenticates (mTLS) a JWT-SVID request for --audience, and the JWT alone is printed.
import { type Command, runOnDemand } from '../command.js';

export const svidFetchCommand: Command = {
  path: ['svid', 'fetch'],
  summary: 'Attest with a join token and fetch an X.509-SVID (key generated locally)',
  usage: '--control-plane HOST:PORT --bundle F --join-token T (--out DIR | --jwt --audience A) [--trust-domain TD]',
  details:
    'Writes DIR/svid.pem (chain, leaf first), DIR/key.pem (0600) and DIR/bundle.pem; prints {"spiffeId","serial","notAfter","dir"} as JSON. With --jwt: prints the JWT-SVID for the audience(s) alone (and still writes DIR when --out is given).',
  flags: {
    'control-plane': { type: 'string', value: 'HOST:PORT', description: 'The control plane gRPC address', required: true },
    bundle: { type: 'string', value: 'FILE', description: 'Trust anchor for the control plane (its <dataDir>/bundle.pem)', required: true },
    'join-token': { type: 'string', value: 'TOKEN', description: 'A token from `tessera token create`', required: true },
    out: { type: 'string', value: 'DIR', description: 'Directory to write svid.pem, key.pem, bundle.pem into (required without --jwt)' },
    jwt: { type: 'boolean', description: 'Also fetch a JWT-SVID (authenticated by the new X.509-SVID) and print it alone' },
    audience: { type: 'string', value: 'A', description: 'With --jwt: an audience of the JWT-SVID (repeat for several)', multiple: true },
    'trust-domain': { type: 'string', value: 'TD', description: 'Trust domain of the control plane (default: from the bundle)' },
  },
  run: runOnDemand(() => import('../run/svid-fetch.js'), (m) => m.runSvidFetch),
};
