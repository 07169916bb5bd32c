// `tessera ca intermediate-csr` and `tessera ca install-intermediate`: the control plane's side of an offline root
// (docs/offline-root.md). The first has the control plane make an intermediate key (kept in its CA store, never
// printed) and writes the CSR for it; the second hands back the certificate the root's holder signed, with that
// root, for the control plane to check and install. Both go through the running control plane's admin.sock.
import { type Command, runOnDemand } from '../command.js';

const DATA_DIR = { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true } as const;

export const caIntermediateCsrCommand: Command = {
  path: ['ca', 'intermediate-csr'],
  summary: 'Have the control plane make an intermediate key and write its CSR, for an offline root to sign',
  usage: '--data-dir D [--out FILE] [--new-key] [--json]',
  details: [
    'The key stays in the control plane (its CA directory or shared database, 0600) as the pending request; only the CSR',
    '(PKCS#10, ECDSA P-256, URI SAN spiffe://<trust domain>) leaves. Asked again, it gives a CSR for the same key',
    'unless --new-key (which replaces the pending request). Sign it where the root key lives (openssl x509 -req, or',
    '`tessera ca sign-intermediate`), then `tessera ca install-intermediate`. docs/offline-root.md.',
  ].join('\n'),
  flags: {
    'data-dir': DATA_DIR,
    out: { type: 'string', value: 'FILE', description: 'Write the CSR here (PEM) instead of printing it' },
    'new-key': { type: 'boolean', description: 'Replace the pending request with a new key' },
    json: { type: 'boolean', description: 'Print {csrPem, requestedAt, newKey} as JSON' },
  },
  run: runOnDemand(() => import('../run/ca-offline-root.js'), (m) => m.runIntermediateCsr),
};

export const caInstallIntermediateCommand: Command = {
  path: ['ca', 'install-intermediate'],
  summary: 'Install an intermediate an offline root signed for the pending request',
  usage: '--data-dir D --cert FILE --root FILE [--activate] [--json]',
  details: [
    'Checked before use, each fault refused with its own code (docs/errors.md): chains to --root, certifies the pending',
    "request's key, a CA with keyCertSign, URI SAN exactly spiffe://<trust domain>, valid now. The root of an existing",
    'authority adds a signing intermediate to it; a new root becomes a new authority: active if there is none yet,',
    'else prepared (`tessera ca activate`, or --activate at once).',
  ].join('\n'),
  flags: {
    'data-dir': DATA_DIR,
    cert: { type: 'string', value: 'FILE', description: 'The signed intermediate (PEM; may be followed by the root)', required: true },
    root: { type: 'string', value: 'FILE', description: 'The root certificate that signed it (PEM); never its key', required: true },
    activate: { type: 'boolean', description: 'Make a new authority sign at once (the active one is retired)' },
    json: { type: 'boolean', description: 'Print the result as JSON' },
  },
  run: runOnDemand(() => import('../run/ca-offline-root.js'), (m) => m.runInstallIntermediate),
};
