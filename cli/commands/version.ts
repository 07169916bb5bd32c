// `tessera version` (also `tessera --version`): the build's version and the Node.js and OpenSSL it runs on.
import { versionLine } from '../../common/build-info.js';
import { readBuildInfo } from '../read-build-info.js';
import { type Command, EXIT_OK } from '../command.js';

export const versionCommand: Command = {
  path: ['version'],
  summary: 'Print the version: tessera <semver> (node <version>, openssl <version>)',
  usage: '',
  details: '`tessera --version` prints the same line.',
  flags: {},
  async run(_args, io) {
    io.stdout(`${versionLine(readBuildInfo())}\n`);
    return EXIT_OK;
  },
};
