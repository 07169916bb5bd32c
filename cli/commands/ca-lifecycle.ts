// `tessera ca prepare|activate|retire`: the CA rotation steps, carried out by the running control plane over
// <data-dir>/admin.sock. Each prints what it did, then the new status (or JSON with --json).
import { type Command, runOnDemand } from '../command.js';

export type CaStep = 'prepare' | 'activate' | 'retire';

const SUMMARY: Readonly<Record<CaStep, string>> = {
  prepare: 'Add a new authority to the trust bundle (not signing yet)',
  activate: 'Make the prepared authority sign; the active one becomes retired',
  retire: 'Remove retired authorities whose SVIDs have all expired (or discard a prepared one)',
};

const DETAILS: Readonly<Record<CaStep, string>> = {
  prepare: 'Wait until every proxy has the new bundle (Config/Watch pushes it at once) before `tessera ca activate`; with federation also at least the bundle refresh hint (300 s) and the peers\' fetch interval.',
  activate: 'Without --authority: the prepared one. New SVIDs chain to it; SVIDs of the retired one stay valid until they expire.',
  retire: 'Without --authority: every retired authority. Refused while live SVIDs still chain to it, and until svid.maxTtl after its retirement (SVIDs this control plane does not know of, as over a writable copy of a Secret, may live that long; --force skips that wait, not the live SVIDs it knows). The control plane also removes it by itself once both have passed.',
};

function lifecycleCommand(step: CaStep): Command {
  return {
    path: ['ca', step],
    summary: SUMMARY[step],
    usage: `--data-dir D${step === 'prepare' ? '' : ' [--authority ID]'}${step === 'retire' ? ' [--force]' : ''} [--json]`,
    details: DETAILS[step],
    flags: {
      'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
      ...(step === 'prepare' ? {} : { authority: { type: 'string' as const, value: 'ID', description: 'The authority id (see `tessera ca status`)' } }),
      ...(step === 'retire' ? { force: { type: 'boolean' as const, description: 'Remove before svid.maxTtl has passed since its retirement (not while known SVIDs live)' } } : {}),
      json: { type: 'boolean', description: 'Print the result as JSON' },
    },
    run: runOnDemand(
      () => import('../run/ca-lifecycle.js'),
      (m) => (args, io) => m.runCaStep(step, args, io),
    ),
  };
}

export const caPrepareCommand = lifecycleCommand('prepare');
export const caActivateCommand = lifecycleCommand('activate');
export const caRetireCommand = lifecycleCommand('retire');
