// A `host:port` address as configs and flags write it (IPv6 in brackets): its own file, so that a command that only
// checks an address (`tessera demo-app --listen`, `tessera svid fetch --control-plane`) does not load the YAML parser.

const ADDRESS = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

export function parseAddress(text: string): { host: string; port: number } | null {
  const m = ADDRESS.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? m[2]!, port };
}
