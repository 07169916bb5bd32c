// The environment variable that makes `tessera proxy` a listener worker of the primary that spawned it (its value:
// the worker's slot). Its own file with no imports: the CLI checks it before loading any proxy module.
export const WORKER_ENV = 'TESSERA_PROXY_WORKER';
