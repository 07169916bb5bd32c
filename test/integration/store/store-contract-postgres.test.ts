// The store contract suite against PostgreSQL: a real private server (test/helpers/postgres-server.ts), one store.
import { afterAll, beforeAll } from 'vitest';
import { type PostgresServer, startPostgres } from '../../helpers/postgres-server.js';
import { openTestPgStore } from '../../helpers/postgres-store.js';
import { storeContractSuite } from './store-contract-suite.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 90_000);

afterAll(async () => {
  await server?.destroy();
});

storeContractSuite('postgres', () => openTestPgStore(server.url));
