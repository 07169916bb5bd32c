// The store contract suite against PostgreSQL: a real server, this file's own database (test/helpers/postgres-database.ts), one store.
import { afterAll, beforeAll } from 'vitest';
import { openPostgresDatabase, type PostgresDatabase } from '../../helpers/postgres-database.js';
import { openTestPgStore } from '../../helpers/postgres-store.js';
import { storeContractSuite } from './store-contract-suite.js';

let server: PostgresDatabase;

beforeAll(async () => {
  server = await openPostgresDatabase();
}, 90_000);

afterAll(async () => {
  await server?.destroy();
});

storeContractSuite('postgres', () => openTestPgStore(server.url));
