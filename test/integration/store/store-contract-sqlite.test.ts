// The store contract suite against the embedded SQLite store, in a fresh data dir.
import { openSqliteStore } from '../../../control-plane/src/store/sqlite/open-sqlite-store.js';
import { makeTempDir } from '../../helpers/run.js';
import { storeContractSuite } from './store-contract-suite.js';

storeContractSuite('sqlite', async () => {
  const tmp = await makeTempDir();
  const store = await openSqliteStore(tmp.dir);
  return {
    store,
    dataDir: tmp.dir,
    async dispose() {
      await store.close();
      await tmp.cleanup();
    },
  };
});
