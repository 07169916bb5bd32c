// Help text for the command tree and for one command.
import type { Command } from './command.js';

export function commandHelp(cmd: Command): string {
  const lines = [`Usage: tessera ${cmd.path.join(' ')} ${cmd.usage}`.trimEnd(), '', cmd.summary];
  if (cmd.details) lines.push('', cmd.details);
  const flags = Object.entries(cmd.flags);
  if (flags.length) {
    lines.push('', 'Flags:');
    for (const [name, f] of flags) {
      const left = `  --${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`;
      lines.push(`${left.padEnd(34)}${f.description}${f.required ? ' (required)' : ''}`);
    }
  }
  lines.push(`  --help                          Show this help`);
  return `${lines.join('\n')}\n`;
}

export function treeHelp(commands: readonly Command[], prefix: readonly string[] = []): string {
  const shown = commands.filter((c) => prefix.every((p, i) => c.path[i] === p));
  const title = prefix.length ? `tessera ${prefix.join(' ')}` : 'tessera — mTLS service-mesh sidecar proxy and control plane';
  const lines = [title, '', `Usage: tessera ${prefix.length ? `${prefix.join(' ')} ` : ''}<command> [flags]`, '', 'Commands:'];
  for (const c of shown) lines.push(`  ${c.path.join(' ').padEnd(28)}${c.summary}`);
  lines.push('', 'Run `tessera <command> --help` for the flags of one command; `tessera --version` for the version.', 'Exit codes: 0 ok, 1 failure, 2 usage.');
  return `${lines.join('\n')}\n`;
}
