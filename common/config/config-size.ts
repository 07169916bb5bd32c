// The bound of every YAML config file, in bytes: apart from the YAML parser so that the readers of config files
// (shared-io/read-named-file.ts) apply it without loading the parser.

/** A config file is a few KiB; anything past this is a mistake (a wrong file) that would cost its size many times over in memory. */
export const MAX_CONFIG_BYTES = 1 << 20;
