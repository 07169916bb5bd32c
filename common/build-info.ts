// What a build is (Tessera's version, the Node.js and OpenSSL it runs on) and how `tessera --version` prints it.
// Read by the CLI (cli/read-build-info.ts) and injected into the proxy and control plane for tessera_build_info.

export interface BuildInfo {
  readonly version: string;
  readonly node: string;
  readonly openssl: string;
}

/** `tessera <semver> (node <v>, openssl <v>)`. */
export function versionLine(info: BuildInfo): string {
  return `tessera ${info.version} (node ${info.node}, openssl ${info.openssl})`;
}
