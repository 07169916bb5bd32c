// A small, strict flag parser: declared flags only, "--flag value" or "--flag=value", booleans, positionals.
import { TesseraError } from '../common/errors.js';

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly required?: boolean;
  /** Shown in help, e.g. "FILE". */
  readonly value?: string;
  readonly multiple?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

export function parseArgs(argv: readonly string[], specs: FlagSpecs): ParsedArgs {
  const flags: Record<string, string | boolean | string[] | undefined> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '--') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (!spec) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `unknown flag --${name}`);
    if (spec.type === 'boolean') {
      if (eq !== -1) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} needs a value`);
    // An empty value is a missing one (`--config ""`, `--out=`): refused here, as a usage error naming the flag,
    // rather than as a file or ID that does not exist.
    if (value === '') throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} needs a value (got an empty one)`);
    if (spec.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    else if (flags[name] !== undefined) {
      // The last one winning would do half of what was asked (audit 55a F3: `revoke id --spiffe-id A --spiffe-id B`
      // banned only B): only flags declared repeatable take several values.
      throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} given twice; it takes one value (run the command once per value)`);
    } else flags[name] = value;
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.required && flags[name] === undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} is required`);
  }
  return { flags, positionals };
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function requiredString(args: ParsedArgs, name: string): string {
  const v = stringFlag(args, name);
  if (v === undefined) throw new TesseraError('TESSERA_ERR_CLI_USAGE', `--${name} is required`);
  return v;
}

export function boolFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}
