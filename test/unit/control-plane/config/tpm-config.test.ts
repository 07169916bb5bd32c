// The attestors.tpm config block through the real YAML validator: defaults, a PCR policy (indices, digest sizes
// per bank, a 0x prefix), and each refusal naming its key; the idTemplate is checked when the file is read. Also
// through the control plane's whole config (cp-config.ts), where a refusal names the file and line.
import { describe, expect, test } from 'vitest';
import type { ObjectSchema } from '../../../../common/config/schema.js';
import { lineOf, parseYamlConfig } from '../../../../common/config/validate-yaml.js';
import { TesseraError } from '../../../../common/errors.js';
import { parseControlPlaneConfig } from '../../../../control-plane/src/config/cp-config.js';
import { TPM_ATTESTOR_SCHEMA, type TpmAttestorInput, resolveTpmAttestorConfig } from '../../../../control-plane/src/config/tpm-config.js';

const schema: ObjectSchema = { type: 'object', properties: { attestors: { type: 'object', properties: { tpm: TPM_ATTESTOR_SCHEMA } } } };

function load(yaml: string) {
  const parsed = parseYamlConfig<{ attestors: { tpm: TpmAttestorInput } }>(yaml, '/etc/tessera/cp.yaml', schema);
  return resolveTpmAttestorConfig(parsed.value.attestors.tpm, '/etc/tessera', (path, message) => {
    const key = path.join('.');
    return new TesseraError('TESSERA_ERR_CONFIG_INVALID', `cp.yaml:${lineOf(parsed, path)}: ${key}: ${message}`, { key });
  });
}

const z = '00'.repeat(32);

describe('attestors.tpm', () => {
  test('defaults: no PCR policy, the /tpm/{akHash} template, 60 s nonces; caFile resolved against the file', () => {
    const c = load('attestors:\n  tpm: { caFile: ./tpm-ca.pem }\n');
    expect(c).toEqual({ caFile: '/etc/tessera/tpm-ca.pem', idTemplate: '/tpm/{akHash}', nonceTtlMs: 60_000 });
  });

  test('a PCR policy: quoted digests, with or without 0x, by index', () => {
    const c = load(`attestors:\n  tpm:\n    caFile: ca.pem\n    idTemplate: /node/{cn}\n    nonceTtl: 30s\n    pcrPolicy:\n      bank: sha256\n      pcrs: { 0: "0x${z}", 7: "${'AB'.repeat(32)}" }\n`);
    expect(c.idTemplate).toBe('/node/{cn}');
    expect(c.nonceTtlMs).toBe(30_000);
    expect(c.pcrPolicy?.bank).toBe('sha256');
    expect([...(c.pcrPolicy?.pcrs.keys() ?? [])]).toEqual([0, 7]);
    expect(c.pcrPolicy?.pcrs.get(7)?.toString('hex')).toBe('ab'.repeat(32));
  });

  test('refusals name the key: index, digest size for the bank, empty policy, unquoted number, bad template', () => {
    const policy = (pcrs: string, bank = 'sha256') => `attestors:\n  tpm:\n    caFile: ca.pem\n    pcrPolicy:\n      bank: ${bank}\n      pcrs: ${pcrs}\n`;
    expect(() => load(policy(`{ 24: "${z}" }`))).toThrow(/cp.yaml:6: attestors.tpm.pcrPolicy.pcrs.24: "24" is not a PCR index/);
    expect(() => load(policy(`{ "07": "${z}" }`))).toThrow(/"07" is not a PCR index/);
    expect(() => load(policy(`{ 7: "${z}" }`, 'sha1'))).toThrow(/a sha1 PCR value is 40 hex characters, not 64/);
    expect(() => load(policy('{}'))).toThrow(/attestors.tpm.pcrPolicy.pcrs: names no PCR/);
    expect(() => load(policy('{ 7: 0 }'))).toThrow(/must be a string/);
    expect(() => load(policy('{ 7: "xyz" }'))).toThrow(/not a hex digest/);
    expect(() => load(policy(`{ 7: "${z}" }`, 'md5'))).toThrow(/must be one of sha1, sha256, sha384, sha512/);
    expect(() => load('attestors:\n  tpm: { caFile: ca.pem, idTemplate: "/tpm/{serial}" }\n')).toThrow(/unknown placeholder \{serial\}/);
    expect(() => load('attestors:\n  tpm: { caFile: ca.pem, nonceTtl: 1h }\n')).toThrow(/nonceTtl/);
    expect(() => load('attestors:\n  tpm: { idTemplate: /x }\n')).toThrow(/caFile/);
  });

  test('in the control plane config: resolved under attestors.tpm; absent by default; errors name file:line', () => {
    const base = 'trustDomain: example.org\ndataDir: ./data\n';
    expect(parseControlPlaneConfig(base, '/etc/tessera/cp.yaml').attestors.tpm).toBeUndefined();
    const c = parseControlPlaneConfig(`${base}attestors:\n  tpm: { caFile: ./tpm-ca.pem, nonceTtl: 20s }\n`, '/etc/tessera/cp.yaml');
    expect(c.attestors).toEqual({ joinToken: { enabled: true }, tpm: { caFile: '/etc/tessera/tpm-ca.pem', idTemplate: '/tpm/{akHash}', nonceTtlMs: 20_000 } });
    expect(() => parseControlPlaneConfig(`${base}attestors:\n  tpm:\n    caFile: ca.pem\n    pcrPolicy: { pcrs: { 30: "${z}" } }\n`, '/etc/tessera/cp.yaml')).toThrow(/^\/etc\/tessera\/cp\.yaml:6: attestors\.tpm\.pcrPolicy\.pcrs\.30: "30" is not a PCR index/);
    expect(() => parseControlPlaneConfig(`${base}attestors:\n  tpm: { caFile: ca.pem, nonceTtl: 5s, extra: 1 }\n`, '/etc/tessera/cp.yaml')).toThrow(/attestors\.tpm\.extra/);
  });
});
