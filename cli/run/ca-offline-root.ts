// `tessera ca intermediate-csr` and `tessera ca install-intermediate`: the control plane's side of an offline root
// (docs/offline-root.md). The first has the control plane make an intermediate key (kept in its CA store, never
// printed) and writes the CSR for it; the second hands back the certificate the root's holder signed, with that
// root, for the control plane to check and install. Both go through the running control plane's admin.sock.
import { resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { readNamedFile } from '../../shared-io/read-named-file.js';
import { bool, checkAnswer, lines, record, str } from '../admin-answer.js';
import { boolFlag, type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { CA_STATUS_SHAPE, type CaStatusView, formatCaStatus } from '../ca-status-view.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { checkOutFile, writeOutFile } from '../output-files.js';

export async function runIntermediateCsr(args: ParsedArgs, io: CommandIo): Promise<number> {
  const out = stringFlag(args, 'out');
  const path = out === undefined ? undefined : resolve(io.cwd, out);
  // Checked before the control plane is asked: with --new-key it replaces its pending request's key.
  if (path !== undefined) await checkOutFile('out', path);
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', '/v1/ca/intermediate-csr', { newKey: boolFlag(args, 'new-key') });
  const res = checkAnswer<{ csrPem: string; requestedAt: string; newKey: boolean }>(answer, record({ csrPem: lines, requestedAt: str, newKey: bool }), 'POST /v1/ca/intermediate-csr');
  // Only a CSR goes to the operator's file (it is signed offline next): not whatever text the socket sent.
  if (!/^-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----\r?\n?$/.test(res.csrPem)) {
    throw new TesseraError('TESSERA_ERR_CP_ADMIN_BAD_ANSWER', 'POST /v1/ca/intermediate-csr: csrPem is not one PEM certificate request');
  }
  if (path !== undefined) await writeOutFile('out', path, res.csrPem, 0o644);
  if (boolFlag(args, 'json')) io.stdout(`${JSON.stringify(res, null, 2)}\n`);
  else if (out === undefined) io.stdout(res.csrPem);
  else io.stdout(`wrote ${path}: the CSR of ${res.newKey ? 'a new' : 'the pending'} intermediate request (${res.requestedAt}); its key stays in the control plane\n`);
  return EXIT_OK;
}

export async function runInstallIntermediate(args: ParsedArgs, io: CommandIo): Promise<number> {
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
}
