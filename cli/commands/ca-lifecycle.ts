// `tessera ca prepare|activate|retire`: the CA rotation steps, carried out by the running control plane over
// <data-dir>/admin.sock. Each prints what it did, then the new status (or JSON with --json).
import { adminRequest } from '../../control-plane/src/admin/admin-client.js';
import { checkAnswer, list, optional, record, str } from '../admin-answer.js';
import { boolFlag, requiredString, stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { CA_STATUS_SHAPE, type CaStatusView, formatCaStatus } from './ca-status.js';

type Step = 'prepare' | 'activate' | 'retire';

const SUMMARY: Readonly<Record<Step, string>> = {
  prepare: 'Add a new authority to the trust bundle (not signing yet)',
  activate: 'Make the prepared authority sign; the active one becomes retired',
  retire: 'Remove retired authorities whose SVIDs have all expired (or discard a prepared one)',
};

const DETAILS: Readonly<Record<Step, string>> = {
  prepare: 'Wait until every proxy has the new bundle (Config/Watch pushes it at once) before `tessera ca activate`.',
  activate: 'Without --authority: the prepared one. New SVIDs chain to it; SVIDs of the retired one stay valid until they expire.',
  retire: 'Without --authority: every retired authority. Refused while live SVIDs still chain to it (the control plane also removes it by itself once they have expired).',
};

function lifecycleCommand(step: Step): Command {
  return {
    path: ['ca', step],
    summary: SUMMARY[step],
    usage: `--data-dir D${step === 'prepare' ? '' : ' [--authority ID]'} [--json]`,
    details: DETAILS[step],
    flags: {
      'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
      ...(step === 'prepare' ? {} : { authority: { type: 'string' as const, value: 'ID', description: 'The authority id (see `tessera ca status`)' } }),
      json: { type: 'boolean', description: 'Print the result as JSON' },
    },
    async run(args, io) {
      const authority = stringFlag(args, 'authority');
      const answer = await adminRequest(requiredString(args, 'data-dir'), 'POST', `/v1/ca/${step}`, authority === undefined ? {} : { authority });
      const shape = record({ prepared: optional(str), activated: optional(str), removed: optional(list(str)), status: CA_STATUS_SHAPE });
      const res = checkAnswer<{ prepared?: string; activated?: string; removed?: string[]; status: CaStatusView }>(answer, shape, `POST /v1/ca/${step}`);
      if (boolFlag(args, 'json')) {
        io.stdout(`${JSON.stringify(res, null, 2)}\n`);
        return EXIT_OK;
      }
      const did = res.prepared ? `prepared authority ${res.prepared}` : res.activated ? `activated authority ${res.activated}` : res.removed?.length ? `removed authority ${res.removed.join(', ')}` : 'nothing to remove';
      io.stdout(`${did}\n\n${formatCaStatus(res.status)}`);
      return EXIT_OK;
    },
  };
}

export const caPrepareCommand = lifecycleCommand('prepare');
export const caActivateCommand = lifecycleCommand('activate');
export const caRetireCommand = lifecycleCommand('retire');
