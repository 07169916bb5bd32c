// `tessera version` (also `tessera --version`): the build's version and the Node.js and OpenSSL it runs on.
import { type Command, runOnDemand } from '../command.js';

export const versionCommand: Command = {
  path: ['version'],
  summary: 'Print the version: tessera <semver> (node <version>, openssl <version>)',
  usage: '',
  details: '`tessera --version` prints the same line.',
  flags: {},
  run: runOnDemand(() => import('../run/version.js'), (m) => m.runVersion),
};
