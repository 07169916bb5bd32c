// `tessera ca intermediate-csr` and `tessera ca install-intermediate`: the control plane's side of an offline root
// (docs/offline-root.md). The first has the control plane make an intermediate key (kept in its CA store, never
// printed) and writes the CSR for it; the second hands back the certificate the root's holder signed, with that
// root, for the control plane to check and install. Both go through the running control plane's admin.sock.
import { resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { errnoReason, readNamedFile } from '../../shared-io/read-named-file.js';
import { writeAtomic } from '../../shared-io/write-atomic.js';
import { bool, checkAnswer, lines, record, str } from '../admin-answer.js';
import { boolFlag, requiredString, stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { CA_STATUS_SHAPE, type CaStatusView, formatCaStatus } from './ca-status.js';

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
  async run(args, io) {
    const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/ca/intermediate-csr', { newKey: boolFlag(args, 'new-key') });
    const res = checkAnswer<{ csrPem: string; requestedAt: string; newKey: boolean }>(answer, record({ csrPem: lines, requestedAt: str, newKey: bool }), 'POST /v1/ca/intermediate-csr');
    // Only a CSR goes to the operator's file (it is signed offline next): not whatever text the socket sent.
    if (!/^-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----\r?\n?$/.test(res.csrPem)) {
      throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', 'POST /v1/ca/intermediate-csr: csrPem is not one PEM certificate request');
    }
    const out = stringFlag(args, 'out');
    if (out !== undefined) {
      const path = resolve(io.cwd, out);
      await writeAtomic(path, res.csrPem, 0o644).catch((e: unknown) => {
        throw new TesseraError('TESSERA_ERR_CLI_FILE_UNWRITABLE', `--out ${path}: ${errnoReason(e, 'cannot be written')}`, { file: path });
      });
    }
    if (boolFlag(args, 'json')) io.stdout(`${JSON.stringify(res, null, 2)}\n`);
    else if (out === undefined) io.stdout(res.csrPem);
    else io.stdout(`wrote ${resolve(io.cwd, out)}: the CSR of ${res.newKey ? 'a new' : 'the pending'} intermediate request (${res.requestedAt}); its key stays in the control plane\n`);
    return EXIT_OK;
  },
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
  async run(args, io) {
    const read = async (flag: string) => (await readNamedFile({ path: resolve(io.cwd, requiredString(args, flag)), what: `--${flag}` })).toString('utf8');
    const body = { certPem: await read('cert'), rootPem: await read('root'), activate: boolFlag(args, 'activate') };
    const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/ca/install-intermediate', body);
    const shape = record({ authority: str, serial: str, notAfter: str, newAuthority: bool, state: str, status: CA_STATUS_SHAPE });
    const res = checkAnswer<{ authority: string; serial: string; notAfter: string; newAuthority: boolean; state: string; status: CaStatusView }>(answer, shape, 'POST /v1/ca/install-intermediate');
    if (boolFlag(args, 'json')) {
      io.stdout(`${JSON.stringify(res, null, 2)}\n`);
      return EXIT_OK;
    }
    const what = res.newAuthority ? `new ${res.state} authority ${res.authority} (offline root)` : `authority ${res.authority} (${res.state})`;
    io.stdout(`installed intermediate ${res.serial} (not after ${res.notAfter}) in ${what}\n\n${formatCaStatus(res.status)}`);
    return EXIT_OK;
  },
};
