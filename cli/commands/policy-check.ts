// `tessera policy check`: load a policy directory and explain the decision for one request (who, to whom, what).
import { type Command, runOnDemand } from '../command.js';

export const policyCheckCommand: Command = {
  path: ['policy', 'check'],
  summary: 'Explain the authorization decision for one request against a directory of policy files',
  usage: '--policies DIR (--from ID | --unauthenticated) --to ID [--port P] [--method M] [--path P] [--protocol http|grpc|tcp] [--default allow|deny] [--json]',
  details:
    'Reads every *.yaml / *.yml file in DIR. Prints the decision and the policy and rule behind it, plus what ' +
    'audit-mode policies would decide; --json prints {"allowed","policy","rule","reason","mode"} (+ "audit"). ' +
    'Exit 0 when allowed, 1 when denied or when a policy file is invalid (file:line on stderr), 2 on usage errors.',
  flags: {
    policies: { type: 'string', value: 'DIR', description: 'Directory of AuthorizationPolicy YAML files', required: true },
    from: { type: 'string', value: 'ID', description: 'SPIFFE ID of the caller' },
    unauthenticated: { type: 'boolean', description: 'The caller presented no client certificate' },
    to: { type: 'string', value: 'ID', description: 'SPIFFE ID of the destination workload', required: true },
    port: { type: 'string', value: 'P', description: 'Destination port, 1 to 65535' },
    method: { type: 'string', value: 'M', description: 'HTTP method (upper case)' },
    path: { type: 'string', value: 'P', description: 'HTTP request path (normalized as the proxy does)' },
    protocol: { type: 'string', value: 'http|grpc|tcp', description: 'Request protocol (default http; tcp has no method or path)' },
    default: { type: 'string', value: 'allow|deny', description: 'Decision when no ALLOW policy selects the destination (default deny)' },
    json: { type: 'boolean', description: 'Print the decision as JSON' },
  },
  run: runOnDemand(() => import('../run/policy-check.js'), (m) => m.runPolicyCheck),
};
