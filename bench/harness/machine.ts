// What machine and software a result was measured on: CPUs, kernel, Node/OpenSSL and the peers' versions.
import { createRequire } from 'node:module';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { findBinary, toolVersion } from './peer-binaries.js';

export async function machineInfo(clockTicksPerSecond: number): Promise<Record<string, string | number>> {
  const cpuList = cpus();
  const require = createRequire(import.meta.url);
  let autocannonVersion = 'unknown';
  try {
    autocannonVersion = (require('autocannon/package.json') as { version: string }).version;
  } catch {
    // leave unknown
  }
  const info: Record<string, string | number> = {
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    cpuCount: cpuList.length,
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    clockTicksPerSecond,
    autocannon: autocannonVersion,
  };
  const versions: [string, string | null, string[]][] = [
    ['systemOpenssl', findBinary('openssl'), ['version']],
    ['nginx', findBinary('nginx'), ['-v']],
    ['haproxy', findBinary('haproxy'), ['-v']],
    ['h2load', findBinary('h2load'), ['--version']],
  ];
  for (const [key, bin, args] of versions) {
    const v = await toolVersion(bin, args);
    if (v) info[key] = v.replace(/^nginx version: /, '').replace(/ - https?:\/\/\S+$/, '');
  }
  return info;
}
