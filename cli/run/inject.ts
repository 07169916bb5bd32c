// `tessera inject`: the sidecar injection of the Kubernetes webhook, offline, over a YAML manifest stream.
import { resolve } from 'node:path';
import { TesseraError } from '../../common/errors.js';
import { certificatesOf, readNamedFile } from '../../shared-io/read-named-file.js';
import { stringFlag, type ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';
import { DEFAULT_CONTROL_PLANE } from '../commands/inject.js';
import { readBuildInfo } from '../read-build-info.js';

/** A manifest stream of many objects (`kubectl get deploy -A -o yaml`) is larger than any config; still bounded. */
export const MAX_MANIFEST_BYTES = 64 << 20;

async function readInput(path: string, what: string, cwd: string): Promise<Buffer> {
  // stdin may be a pipe; a file named is a regular file, as every file flag.
  const stdin = path === '-';
  return readNamedFile({ path: stdin ? '/dev/stdin' : resolve(cwd, path), what, maxBytes: MAX_MANIFEST_BYTES, pipeOk: stdin });
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

export async function runInject(args: ParsedArgs, io: CommandIo): Promise<number> {
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
}
