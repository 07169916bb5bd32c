// `tessera inject`: the sidecar injection of the Kubernetes webhook, offline, over a YAML manifest stream.
import { resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { certificatesOf, readNamedFile } from '../../shared-io/read-named-file.js';
import { stringFlag } from '../args.js';
import { type Command, EXIT_OK } from '../command.js';
import { readBuildInfo } from '../read-build-info.js';

export const DEFAULT_CONTROL_PLANE = 'tessera-control-plane.tessera-system.svc:8443';

async function readInput(path: string, what: string, cwd: string): Promise<Buffer> {
  return readNamedFile({ path: path === '-' ? '/dev/stdin' : resolve(cwd, path), what });
}

/** kubectl habit: `-f FILE` arrives as two positionals (the flag parser knows only --long flags). */
function manifestPath(flag: string | undefined, positionals: readonly string[]): string {
  const pos = positionals[0] === '-f' ? positionals.slice(1) : positionals;
  if (positionals[0] === '-f' && pos.length === 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', '-f needs a file name (or - for stdin)');
  if (pos.length > 1) throw new TesseraError('TESSERA_ERR_CLI_USAGE', 'give one manifest file');
  if (flag !== undefined && pos.length > 0) throw new TesseraError('TESSERA_ERR_CLI_USAGE', 'give the manifest either with --file or as an argument, not both');
  const path = flag ?? pos[0];
  if (path === undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', 'name the manifest: tessera inject -f pod.yaml (or - for stdin)');
  return path;
}

export const injectCommand: Command = {
  path: ['inject'],
  summary: 'Add the Tessera sidecar to the Pods and pod templates of a Kubernetes manifest (offline webhook)',
  usage: '-f FILE|- --bundle F [--image IMG] [--control-plane HOST:PORT]',
  details:
    'Does what the injection webhook does, without a cluster: every Pod, and the pod template of every Deployment, ' +
    'StatefulSet, DaemonSet, ReplicaSet, Job and CronJob (also inside a List or any *List), gets the native-sidecar proxy (unless annotated ' +
    'tessera.dev/inject: "false", already injected, or a pod the webhook skips: hostNetwork, Windows, a mirror pod); other objects pass through. The result goes to stdout as ' +
    'YAML (pipe it to kubectl apply -f -), one line per object to stderr. Namespace labels are not consulted. ' +
    'Exit 1 on a malformed tessera.dev annotation (the message names it), as the webhook would deny the pod, and on YAML ' +
    'kubectl would not read (not UTF-8, a recursive alias, aliases past the bound), each with its error code.',
  positionals: [0, 2],
  flags: {
    file: { type: 'string', value: 'FILE', description: 'Manifest to inject (YAML, several documents allowed); - reads stdin' },
    bundle: { type: 'string', value: 'FILE', description: "Trust bundle PEM (the control plane's <data dir>/bundle.pem)", required: true },
    image: { type: 'string', value: 'IMG', description: 'Sidecar image (default tessera:<version>)' },
    'control-plane': { type: 'string', value: 'HOST:PORT', description: `Control-plane gRPC address (default ${DEFAULT_CONTROL_PLANE})` },
    'pull-policy': { type: 'string', value: 'P', description: 'imagePullPolicy of the sidecar: Always, IfNotPresent (default) or Never' },
  },
  async run(args, io) {
    const [{ resolveInjectorConfig }, { injectManifests }] = await Promise.all([import('../../control-plane/src/injector/injector-config.js'), import('../../control-plane/src/injector/manifest-inject.js')]);
    const path = manifestPath(stringFlag(args, 'file'), args.positionals);
    const version = readBuildInfo().version;
    const pull = stringFlag(args, 'pull-policy');
    if (pull !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(pull)) {
      throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--pull-policy "${pull}" is not Always, IfNotPresent or Never`);
    }
    const config = resolveInjectorConfig({
      proxyImage: stringFlag(args, 'image') ?? `tessera:${version}`,
      controlPlaneAddress: stringFlag(args, 'control-plane') ?? DEFAULT_CONTROL_PLANE,
      version,
      ...(pull ? { imagePullPolicy: pull as 'Always' | 'IfNotPresent' | 'Never' } : {}),
    });
    const bundleFile = { path: resolve(io.cwd, stringFlag(args, 'bundle')!), what: '--bundle' };
    const bundleData = await readNamedFile(bundleFile);
    certificatesOf(bundleFile, bundleData);
    const bundlePem = bundleData.toString('utf8');
    // Bytes, not text: injectManifests refuses what is not UTF-8 rather than reading it as U+FFFD.
    const bytes = await readInput(path, path === '-' ? 'stdin' : 'manifest', io.cwd);
    const { output, reports } = injectManifests(bytes, { config, bundlePem });
    io.stdout(output);
    for (const r of reports) {
      io.stderr(`tessera inject: document ${r.document} ${r.kind || '(no kind)'} ${r.name || '(no name)'}: ${r.result}\n`);
      if (r.warning) io.stderr(`tessera inject: warning: ${r.warning}\n`);
    }
    return EXIT_OK;
  },
};
