// The one door to @peculiar/x509: its DI container needs reflect-metadata loaded first, and it must be told to
// use Node's WebCrypto. Every module that builds or parses ASN.1 imports `x509` from here.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The library keeps its crypto provider in its own module state; setting it once here is idempotent.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
