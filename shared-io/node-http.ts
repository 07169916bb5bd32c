// `node:http` loaded through require. Its ESM namespace reads every export, and some of them are lazy getters
// (WebSocket, fetch's helpers), so `import … from 'node:http'` loads undici, http2 and zlib: ~7 MB of RSS an idle
// sidecar never uses. Modules on the sidecar's path take the HTTP server and client from here.
import { createRequire } from 'node:module';

export const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');
