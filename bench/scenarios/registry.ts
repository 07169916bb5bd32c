// The scenarios `tessera bench` knows, in the order `tessera bench all` runs them.
import type { BenchScenario } from '../harness/scenario.js';
import { authzScenario } from './authz.js';
import { balanceScenario } from './balance.js';
import { handshakeScenario } from './handshake.js';
import { issuanceScenario } from './issuance.js';
import { issuanceStoreScenario } from './issuance-store.js';
import { meshCprScenario, meshScenario } from './mesh.js';
import { meshH2Scenario } from './mesh-h2.js';
import { reuseScenario } from './reuse.js';
import { rotationScenario } from './rotation.js';
import { workersScenario } from './workers.js';

export const SCENARIOS: readonly BenchScenario[] = [meshScenario, meshCprScenario, meshH2Scenario, reuseScenario, handshakeScenario, rotationScenario, authzScenario, issuanceScenario, issuanceStoreScenario, balanceScenario, workersScenario];

export function findScenario(name: string): BenchScenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
