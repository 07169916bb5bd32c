// `tessera version` (also `tessera --version`): the build's version and the Node.js and OpenSSL it runs on.
import { versionLine } from '../../common/build-info.js';
import { readBuildInfo } from '../read-build-info.js';
import type { ParsedArgs } from '../args.js';
import { type CommandIo, EXIT_OK } from '../command.js';

export async function runVersion(_args: ParsedArgs, io: CommandIo): Promise<number> {
  io.stdout(`${versionLine(readBuildInfo())}\n`);
  return EXIT_OK;
}
