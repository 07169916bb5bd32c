// `tessera up`: the whole mesh on loopback in one command (embedded demo, or --config mesh.yaml).
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { NODE_FLAGS } from '../../shared-io/node-flags.js';
import { MAX_POLICY_FILE_BYTES } from '../../shared-io/policy-dir-source.js';
import { configText, readNamedFileSync } from '../../shared-io/read-named-file.js';
import { boolFlag, type ParsedArgs, stringFlag } from '../args.js';
import { type CommandIo, EXIT_FAILURE, EXIT_OK } from '../command.js';
import { selfCommand } from '../self-command.js';
import { launchMesh } from '../up/launch-mesh.js';
import { defaultMesh, loadMeshFile } from '../up/mesh-spec.js';
import { buildState, renderSummary } from '../up/summary.js';

async function readPolicyDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    // Bounded and UTF-8, as the control plane that is given them reads its policy files.
    const path = join(dir, name);
    out[name] = configText(readNamedFileSync({ path, what: 'policy file', code: 'TESSERA_ERR_CONFIG_UNREADABLE', maxBytes: MAX_POLICY_FILE_BYTES, emptyOk: true }), path, 'TESSERA_ERR_POLICY_INVALID');
  }
  return out;
}

export async function runUp(args: ParsedArgs, io: CommandIo): Promise<number> {
  const stateDir = resolve(io.cwd, stringFlag(args, 'state-dir') ?? '.tessera');
  const configPath = stringFlag(args, 'config');
  const spec = configPath ? await loadMeshFile(resolve(io.cwd, configPath), readPolicyDir) : defaultMesh();
  const quiet = boolFlag(args, 'quiet');
  const log = (line: string) => {
    if (!quiet) io.stderr(`tessera up: ${line}\n`);
  };
  const self = [process.execPath, ...NODE_FLAGS, process.argv[1]!];
  const mesh = await launchMesh(spec, { stateDir, tessera: self, log, timers: io.timers, clock: io.clock });
  let failed: string | null = null;
  const died = new Promise<void>((resolveDied) => {
    mesh.supervisor.onUnexpectedExit((name, code, signal) => {
      failed = `${name} exited unexpectedly (code ${code}, signal ${signal}); see ${join(stateDir, 'logs', `${name}.log`)}`;
      resolveDied();
    });
  });
  const state = buildState(spec, mesh, selfCommand(process.execPath, process.argv[1]!, io.env['PATH']));
  await writeFile(join(stateDir, 'up.json'), `${JSON.stringify(state, null, 2)}\n`);
  if (!quiet) io.stdout(renderSummary(spec, state, io.cwd));
  io.stdout('tessera up: ready\n');
  await Promise.race([io.stopSignal, died]);
  log(failed ?? 'stopping (draining sidecars first)…');
  await mesh.supervisor.stopAll();
  log('stopped');
  return failed ? EXIT_FAILURE : EXIT_OK;
}
