// identity.controlPlane.tpm in the proxy config: the evidence option beside the token keys (exactly one of them),
// its defaults, paths resolved against the config file's directory, and mistakes named with file, line and key.
import { describe, expect, test } from 'vitest';
import { isTesseraError } from '../../../../common/errors.js';
import { parseProxyConfig } from '../../../../proxy/src/config/proxy-config.js';
import { evidenceProvider } from '../../../../proxy/src/identity/attestation-evidence.js';

const LISTENER = 'inbound:\n  - { name: app, listen: 127.0.0.1:0, forwardTo: 127.0.0.1:8080 }\n';

function parse(evidence: string) {
  return parseProxyConfig(`identity:\n  controlPlane:\n    address: 127.0.0.1:8443\n    bundleFile: ./b.pem\n${evidence}${LISTENER}`, '/etc/tessera/proxy.yaml');
}

function problem(evidence: string): string {
  try {
    parse(evidence);
  } catch (e) {
    if (isTesseraError(e, 'TESSERA_ERR_CONFIG_INVALID')) return e.message;
    throw e;
  }
  throw new Error('parsed');
}

describe('identity.controlPlane.tpm', () => {
  test('defaults: the AK at 0x81010002, its own hash, the tpm2-tools TCTI; akCertFile resolved against the file', () => {
    const c = parse('    tpm: { akCertFile: ./ak.pem }\n');
    expect(c.identity).toMatchObject({ kind: 'controlPlane', tpm: { akCertFile: '/etc/tessera/ak.pem', quoter: { ak: '0x81010002' } } });
    expect(c.identity.kind === 'controlPlane' && c.identity.tpm?.quoter).not.toHaveProperty('tcti');
    // No hash unless given: the quoter reads the AK's (audit 56a F5: a default sha256 failed every quote of a sha384
    // AK).
    expect(c.identity.kind === 'controlPlane' && c.identity.tpm?.quoter).not.toHaveProperty('hash');
  });

  test('an AK context file is a path; a TCTI and hash are passed on', () => {
    const c = parse('    tpm: { akCertFile: /pki/ak.pem, ak: ak.ctx, tcti: "swtpm:host=127.0.0.1,port=2321", hash: sha384 }\n');
    expect(c.identity).toMatchObject({ tpm: { akCertFile: '/pki/ak.pem', quoter: { ak: '/etc/tessera/ak.ctx', tcti: 'swtpm:host=127.0.0.1,port=2321', hash: 'sha384' } } });
  });

  test('with a token key too, without akCertFile, or with an unknown hash: refused naming the key', () => {
    expect(problem('    joinTokenFile: ./t\n    tpm: { akCertFile: ./ak.pem }\n')).toMatch(/identity\.controlPlane: exactly one of joinToken \/ joinTokenFile \/ kubernetesTokenFile \/ tpm must be set \(found joinTokenFile and tpm\)/);
    expect(problem('    tpm: { ak: "0x81010002" }\n')).toMatch(/proxy\.yaml:5:\d+: identity\.controlPlane\.tpm\.akCertFile/);
    expect(problem('    tpm: { akCertFile: ./ak.pem, hash: sha1 }\n')).toMatch(/identity\.controlPlane\.tpm\.hash/);
    expect(problem('')).toContain('exactly one of joinToken / joinTokenFile / kubernetesTokenFile / tpm must be set');
  });

  test('the evidence provider: TPM evidence can always be had again, and reading it costs no quote yet', async () => {
    const c = parse('    tpm: { akCertFile: ./ak.pem }\n');
    if (c.identity.kind !== 'controlPlane' || !c.identity.tpm) throw new Error('no tpm');
    const p = evidenceProvider({ tpm: c.identity.tpm });
    expect(p.description).toBe('TPM attestation key 0x81010002');
    // The quote needs the nonce and the CSR: ControlPlaneClient.attest asks the source for it.
    expect((await p.read()).kind).toBe('tpm');
    p.consumed();
    expect(p.canReattest()).toBe(true);
  });
});
