// `tessera ca status`: the CA's authorities with their states (prepared, active, retired), whose root is offline,
// expiries and how many live SVIDs chain to each, read from the running control plane over <data-dir>/admin.sock.
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer } from '../admin-answer.js';
import { boolFlag, requiredString, type ParsedArgs } from '../args.js';
import { CA_STATUS_SHAPE, type CaStatusView, formatCaStatus } from '../ca-status-view.js';
import { type CommandIo, EXIT_OK } from '../command.js';

export async function runCaStatus(args: ParsedArgs, io: CommandIo): Promise<number> {
  const status = checkAnswer<CaStatusView>(await adminRequest(requiredString(args, 'data-dir'), 'GET', '/v1/ca'), CA_STATUS_SHAPE, 'GET /v1/ca');
  io.stdout(boolFlag(args, 'json') ? `${JSON.stringify(status, null, 2)}\n` : formatCaStatus(status));
  return EXIT_OK;
}
