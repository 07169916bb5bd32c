// The long fuzzing run (`npm run fuzz [-- --minutes M --scale K --seed S]`): the property tests of `npm test`,
// each with K times its runs (default 20), from a fresh random seed per round, round after round until M minutes
// (default 5) have passed. Prints every round's seed; on a failure prints the seed and the command that replays
// it, and exits 1. Run with Node 24 (it strips the types itself).
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';

export const PROPERTY_FILES = [
  'test/unit/proxy/http1/http1-framing.property.test.ts',
  'test/unit/proxy/http1/http1-response-framing.property.test.ts',
  'test/unit/proxy/http1/http1-session-forwarding.property.test.ts',
  'test/unit/common/policy/normalize-path.property.test.ts',
  'test/unit/common/spiffe/x509-der.property.test.ts',
  'test/unit/control-plane/issuance/csr-reader.property.test.ts',
  'test/unit/proxy/mux/mux-session.property.test.ts',
  'test/unit/common/spiffe/jwt-svid.property.test.ts',
  'test/unit/common/tracing/traceparent.property.test.ts',
  'test/unit/proxy/telemetry/access-log-json.property.test.ts',
];

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, scale: { type: 'string', default: '20' }, seed: { type: 'string' } } });
const deadline = Date.now() + Number(values.minutes) * 60_000;
const scale = values.scale!;
let rounds = 0;

do {
  const seed = values.seed ?? String(randomInt(2 ** 31));
  const started = Date.now();
  process.stdout.write(`round ${++rounds}: seed ${seed}, scale ${scale} ... `);
  const r = spawnSync('npx', ['vitest', 'run', '--reporter=dot', ...PROPERTY_FILES], {
    env: { ...process.env, TESSERA_FUZZ_SEED: seed, TESSERA_FUZZ_SCALE: scale },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.log('FAILED');
    console.log(r.stdout, r.stderr);
    console.log(`replay: TESSERA_FUZZ_SEED=${seed} TESSERA_FUZZ_SCALE=${scale} npx vitest run ${PROPERTY_FILES.join(' ')}`);
    process.exit(1);
  }
  console.log(`passed in ${Math.round((Date.now() - started) / 1000)} s`);
} while (!values.seed && Date.now() < deadline);
console.log(`${rounds} round(s), no counterexample`);
