// `tessera policy break-glass`: opens a time-bounded, audited allow for named callers to a destination; the
// control plane pushes it in Config/Watch snapshots and it expires by itself.
import { type Command, runOnDemand } from '../command.js';

export const policyBreakGlassCommand: Command = {
  path: ['policy', 'break-glass'],
  summary: 'Open a time-bounded, audited allow for named callers',
  usage: '--data-dir D --to ID --from ID [--from ID…] --for DURATION --reason TEXT [--json]',
  details: '--to and --from take SPIFFE ID patterns (`*` one segment, final `**` the rest). At most 24h; every use is logged and counted by the proxies.',
  flags: {
    'data-dir': { type: 'string', value: 'DIR', description: 'The control plane data dir (holds admin.sock)', required: true },
    to: { type: 'string', value: 'ID', description: 'Destination SPIFFE ID (pattern)', required: true },
    from: { type: 'string', value: 'ID', description: 'Caller SPIFFE ID (pattern); repeat for several', required: true, multiple: true },
    for: { type: 'string', value: 'DURATION', description: 'How long the grant lasts (e.g. 15m; at most 24h)', required: true },
    reason: { type: 'string', value: 'TEXT', description: 'Why (recorded in the audit log)', required: true },
    json: { type: 'boolean', description: 'Print the grant as JSON' },
  },
  run: runOnDemand(() => import('../run/policy-break-glass.js'), (m) => m.runPolicyBreakGlass),
};
