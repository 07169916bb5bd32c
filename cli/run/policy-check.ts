// `tessera policy check`: load a policy directory and explain the decision for one request (who, to whom, what).
import { TesseraError } from '../../common/errors.js';
import { evaluate } from '../../common/policy/evaluate.js';
import { checkMethod } from '../../common/policy/policy-schema.js';
import { compilePolicies } from '../../common/policy/policy-snapshot.js';
import type { AuthorizationPolicy, AuthzRequest, Decision } from '../../common/policy/policy-types.js';
import { readPolicyDir } from '../../shared-io/policy-dir-source.js';
import { boolFlag, type ParsedArgs, requiredString, stringFlag } from '../args.js';
import { type CommandIo, EXIT_FAILURE, EXIT_OK } from '../command.js';
import { numberFlag } from '../number-flags.js';
import { spiffeIdFlag } from '../spiffe-flags.js';

function usage(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_CLI_USAGE', message);
}

function buildRequest(args: ParsedArgs, nowMs: number): AuthzRequest {
  const unauthenticated = boolFlag(args, 'unauthenticated');
  const source = spiffeIdFlag(args, 'from');
  if (unauthenticated === (source !== undefined)) throw usage('give exactly one of --from ID and --unauthenticated');
  const destination = spiffeIdFlag(args, 'to');
  if (!destination) throw usage('--to is required');
  const protocol = stringFlag(args, 'protocol') ?? 'http';
  if (protocol !== 'http' && protocol !== 'grpc' && protocol !== 'tcp') throw usage(`--protocol must be http, grpc or tcp (got "${protocol}")`);
  const req: AuthzRequest = { source: source ?? null, destination, protocol, nowMs };
  const port = numberFlag(args, 'port', true, { min: 1, max: 65_535 });
  if (port !== undefined) req.port = port;
  const method = stringFlag(args, 'method');
  const path = stringFlag(args, 'path');
  if (protocol === 'tcp' && (method !== undefined || path !== undefined)) throw usage('a tcp request has no --method or --path');
  if (method !== undefined) {
    const bad = checkMethod(method);
    if (bad) throw usage(`--method ${bad}`);
    req.method = method;
  }
  if (path !== undefined) req.path = path;
  return req;
}

function ruleText(d: { policy: string | null; rule: number | null }): string {
  return d.rule === null ? `${d.policy}` : `policy ${d.policy} rule ${d.rule}`;
}

/** One human line for the decision, then one for the audit outcome when there is one. */
export function describeDecision(d: Decision, req: AuthzRequest, selecting: readonly AuthorizationPolicy[], defaultAction: string): string[] {
  const verdict = d.allowed ? 'ALLOW' : 'DENY';
  const to = req.destination.toString();
  const denies = selecting.filter((p) => p.action === 'DENY' && p.mode === 'enforce').map((p) => p.name);
  let line: string;
  switch (d.reason) {
    case 'allowed_by_rule':
    case 'denied_by_rule':
      line = `${verdict} by ${ruleText(d)} (${d.mode})`;
      break;
    case 'break_glass':
      line = `ALLOW by break-glass grant ${d.policy} (overrides every policy until it expires)`;
      break;
    case 'no_matching_rule':
    case 'unauthenticated': {
      const allows = selecting.filter((p) => p.action === 'ALLOW' && p.mode === 'enforce').map((p) => p.name);
      const who = d.reason === 'unauthenticated' ? 'an unauthenticated caller' : req.source!.toString();
      line = `DENY: no rule of the ALLOW policies selecting ${to} (${allows.join(', ')}) matches ${who}`;
      break;
    }
    case 'no_policy':
    case 'default_allow':
      line =
        denies.length === 0
          ? `${verdict}: no policy selects ${to} (default ${defaultAction})`
          : `${verdict}: no ALLOW policy selects ${to} and no rule of ${denies.join(', ')} matches (default ${defaultAction})`;
      break;
    case 'invalid_path':
      line = `DENY: path ${JSON.stringify(req.path)} cannot be safely normalized (invalid_path), whatever the policies say`;
      break;
  }
  const out = [line];
  if (d.audit) {
    const a = d.audit;
    const what = a.policy === null ? a.reason : `${ruleText(a)}, ${a.reason}`;
    out.push(`audit: with audit-mode policies enforced this would be ${a.allowed ? 'ALLOW' : 'DENY'} (${what}); not enforced`);
  }
  return out;
}

export async function runPolicyCheck(args: ParsedArgs, io: CommandIo): Promise<number> {
  const defaultAction = stringFlag(args, 'default') ?? 'deny';
  if (defaultAction !== 'allow' && defaultAction !== 'deny') throw usage(`--default must be allow or deny (got "${defaultAction}")`);
  const req = buildRequest(args, io.clock.nowMs());
  // The same read as the proxy's and the control plane's watched directory: the same files make the same set.
  const read = readPolicyDir(requiredString(args, 'policies'), 'TESSERA_ERR_CLI_FILE_UNREADABLE');
  if (!read.ok) {
    for (const e of read.errors) io.stderr(`tessera policy check: ${e.code}: ${e.message}\n`);
    return EXIT_FAILURE;
  }
  const snapshot = compilePolicies(read.policies, { defaultAction });
  const d = evaluate(snapshot, req);
  if (boolFlag(args, 'json')) {
    const out: Record<string, unknown> = { allowed: d.allowed, policy: d.policy, rule: d.rule, reason: d.reason, mode: d.mode };
    if (d.audit) out['audit'] = d.audit;
    io.stdout(`${JSON.stringify(out)}\n`);
  } else {
    io.stdout(`${describeDecision(d, req, snapshot.selecting(req.destination), defaultAction).join('\n')}\n`);
  }
  return d.allowed ? EXIT_OK : EXIT_FAILURE;
}
