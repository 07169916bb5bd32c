// The proxy's own answers: every refusal reason, at each HTTP status it is answered with, makes a well-formed
// response that names the reason in x-tessera-error and the body and carries the status's own reason phrase.
import { describe, expect, test } from 'vitest';
import { REFUSAL_REASONS, type RefusalReason } from '../../../../common/refusal-reasons.js';
import { localResponse } from '../../../../proxy/src/http1/head-rewrite.js';
import { parseHead } from '../../../../proxy/src/http1/http1-head.js';

const answered = Object.entries(REFUSAL_REASONS).flatMap(([reason, r]) => r.http.map((status) => [reason as RefusalReason, status] as const));

describe('localResponse', () => {
  test.each(answered)('%s %d', (reason, status) => {
    const raw = localResponse(status, reason, true);
    const parsed = parseHead(raw, 0, 'response', { maxHeaderBytes: 4096, maxHeaders: 20 });
    if (!('head' in parsed)) throw new Error(`not a response head: ${JSON.stringify(parsed)}`);
    const statusLine = raw.toString('latin1', 0, raw.indexOf('\r\n'));
    expect(statusLine).toMatch(new RegExp(`^HTTP/1\\.1 ${status} [A-Z]`));
    expect(statusLine).not.toBe(`HTTP/1.1 ${status} Error`);
    const text = raw.toString('latin1');
    expect(text).toContain(`\r\nx-tessera-error: ${reason}\r\n`);
    expect(text).toContain('\r\nconnection: close\r\n');
    expect(text.endsWith(`\r\n\r\n${reason}\n`)).toBe(true);
    expect(text).toContain(`\r\ncontent-length: ${reason.length + 1}\r\n`);
  });
});
