// What `tessera ca prepare|activate|retire` do (their flags and help: cli/commands/ca-lifecycle.ts): ask the running
// control plane over <data-dir>/admin.sock to take the step, then print what it did and the new status (or JSON).
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, optional, record, str } from '../admin-answer.js';
import { boolFlag, type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { CA_STATUS_SHAPE, type CaStatusView, formatCaStatus } from '../ca-status-view.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import type { CaStep } from '../commands/ca-lifecycle.js';

export async function runCaStep(step: CaStep, args: ParsedArgs, io: CommandIo): Promise<number> {
  const authority = stringFlag(args, 'authority');
  const body = { ...(authority === undefined ? {} : { authority }), ...(step === 'retire' && boolFlag(args, 'force') ? { force: true } : {}) };
  const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', `/v1/ca/${step}`, body);
  const shape = record({ prepared: optional(str), activated: optional(str), removed: optional(list(str)), warning: optional(str), status: CA_STATUS_SHAPE });
  const res = checkAnswer<{ prepared?: string; activated?: string; removed?: string[]; warning?: string; status: CaStatusView }>(answer, shape, `POST /v1/ca/${step}`);
  // The step is done either way; the warning goes to stderr so it is seen even with --json piped on.
  if (res.warning) io.stderr(`warning: ${res.warning}\n`);
  if (boolFlag(args, 'json')) {
    io.stdout(`${JSON.stringify(res, null, 2)}\n`);
    return EXIT_OK;
  }
  const did = res.prepared ? `prepared authority ${res.prepared}` : res.activated ? `activated authority ${res.activated}` : res.removed?.length ? `removed authority ${res.removed.join(', ')}` : 'nothing to remove';
  io.stdout(`${did}\n\n${formatCaStatus(res.status)}`);
  return EXIT_OK;
}
