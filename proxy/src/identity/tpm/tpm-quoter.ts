// Makes a TPM2 quote with the local TPM by running tpm2-tools' `tpm2_quote` (through the one process supervisor):
// the attestation key (a persistent handle such as 0x81010002, or a context file) signs the selected PCRs and the
// qualifying data, with the signing scheme and hash the key was created with (read first with `tpm2_readpublic`: an
// RSA-PSS AK refuses tpm2_quote's RSASSA default, a `-g sha384` AK its SHA-256). The TPM is reached through a TCTI
// ("device:/dev/tpmrm0", "swtpm:host=…,port=…"); the outputs go to a private temporary directory that is removed
// afterwards.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TesseraError } from '../../../../common/errors.js';
import { ProcessSupervisor } from '../../../../shared-io/process-supervisor.js';
import { type Timers, realTimers } from '../../../../shared-io/timers.js';
import { type QuoteHash, akScheme } from './tpm-ak-scheme.js';

const BANKS = new Set(['sha1', 'sha256', 'sha384', 'sha512']);
const MAX_PCR = 23;

export interface TpmQuoterOptions {
  /** The attestation key as `tpm2_quote -c` takes it: a persistent handle ("0x81010002") or a context file. */
  readonly ak: string;
  /** TPM2TOOLS_TCTI for the child; absent = tpm2-tools' default (the kernel resource manager /dev/tpmrm0). */
  readonly tcti?: string;
  /**
   * The signature's hash (`tpm2_quote -g`) for a key without a scheme of its own; default sha256. An AK fixes its
   * hash when it is created (tpm2_createak -g): then it is used, and a different `hash` is an error naming both.
   */
  readonly hash?: QuoteHash;
  /** The tpm2_quote executable; default `tpm2_quote` on PATH. */
  readonly command?: string;
  /** The tpm2_readpublic executable (reads the AK's scheme); default `tpm2_readpublic` on PATH. */
  readonly readPublicCommand?: string;
  /** Default 15 s: a real TPM signs in well under a second, a busy one may queue. */
  readonly timeoutMs?: number;
  readonly timers?: Timers;
}

export interface TpmQuoteRequest {
  /** Becomes the quote's extraData (at most 64 bytes). */
  readonly qualifyingData: Uint8Array;
  readonly pcrBank: string;
  readonly pcrs: readonly number[];
}

export interface TpmQuoteResult {
  /** TPMS_ATTEST. */
  readonly quote: Buffer;
  /** TPMT_SIGNATURE. */
  readonly signature: Buffer;
}

function failed(detail: string, tool = 'tpm2_quote'): TesseraError {
  return new TesseraError('TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', `${tool}: ${detail}`);
}

export class TpmQuoter {
  readonly #o: TpmQuoterOptions;
  readonly #supervisor: ProcessSupervisor;

  constructor(opts: TpmQuoterOptions) {
    this.#o = opts;
    this.#supervisor = new ProcessSupervisor({ failureCode: 'TESSERA_ERR_IDENTITY_TPM_QUOTE_FAILED', graceMs: 2_000, ...(opts.timers ? { timers: opts.timers } : {}) });
  }

  async quote(req: TpmQuoteRequest): Promise<TpmQuoteResult> {
    // The selection comes from the control plane: check it before it becomes an argument.
    if (!BANKS.has(req.pcrBank)) throw failed(`PCR bank ${JSON.stringify(req.pcrBank.slice(0, 20))} is not one of sha1, sha256, sha384, sha512`);
    if (req.pcrs.length === 0 || req.pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > MAX_PCR)) throw failed(`PCR selection ${JSON.stringify(req.pcrs.slice(0, 32))} is not a list of 0…${MAX_PCR}`);
    if (req.qualifyingData.length === 0 || req.qualifyingData.length > 64) throw failed(`qualifying data of ${req.qualifyingData.length} bytes (1…64)`);
    const dir = await mkdtemp(join(tmpdir(), 'tessera-tpm-'));
    try {
      // Read each time, not once: the key at a handle may be replaced (a new AK, another algorithm) while the proxy
      // runs.
      const publicFile = join(dir, 'ak.pub');
      await this.#run('tpm2_readpublic', this.#o.readPublicCommand, ['-c', this.#o.ak, '-o', publicFile]);
      const publicArea = await readFile(publicFile).catch((e: Error) => {
        throw failed(`exited 0 but wrote no public area (${e.message})`, 'tpm2_readpublic');
      });
      const own = akScheme(publicArea, this.#o.ak);
      if (own.hash && this.#o.hash && own.hash !== this.#o.hash) {
        throw failed(`identity.controlPlane.tpm.hash is ${this.#o.hash}, but the attestation key ${this.#o.ak} signs with ${own.hash} only (fixed by tpm2_createak -g): remove \`hash\`, it is read from the AK`, 'tpm2_readpublic');
      }
      const hash = own.hash ?? this.#o.hash ?? 'sha256';
      const quoteFile = join(dir, 'quote.bin');
      const sigFile = join(dir, 'sig.bin');
      const pcrs = [...new Set(req.pcrs)].sort((a, b) => a - b).join(',');
      const args = ['-c', this.#o.ak, '-l', `${req.pcrBank}:${pcrs}`, '-q', Buffer.from(req.qualifyingData).toString('hex'), '--scheme', own.scheme, '-g', hash, '-m', quoteFile, '-s', sigFile];
      await this.#run('tpm2_quote', this.#o.command, args);
      const [quote, signature] = await Promise.all([readFile(quoteFile), readFile(sigFile)]).catch((e: Error) => {
        throw failed(`exited 0 but wrote no quote (${e.message})`);
      });
      return { quote, signature };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async #run(tool: string, command: string | undefined, args: readonly string[]): Promise<void> {
    const env = { ...process.env, ...(this.#o.tcti ? { TPM2TOOLS_TCTI: this.#o.tcti } : {}) };
    const proc = await this.#supervisor.start({ name: tool, command: command ?? tool, args, env, outputLimitChars: 16 * 1024 });
    const timers = this.#o.timers ?? realTimers;
    let timedOut = false;
    const timer = timers.setTimeout(() => {
      timedOut = true;
      void proc.stop({ graceMs: 1_000 });
    }, this.#o.timeoutMs ?? 15_000);
    const status = await proc.exited;
    timers.clearTimeout(timer);
    if (proc.pid === -1) throw failed(`could not start ${command ?? tool} (is tpm2-tools installed?)`, tool);
    if (timedOut) throw failed(`no answer within ${this.#o.timeoutMs ?? 15_000} ms`, tool);
    if (status.code !== 0) {
      const err = proc.stderr().trim().split('\n').slice(-6).join('\n');
      throw failed(`exited with ${status.code ?? status.signal}${err ? `:\n${err}` : ''}`, tool);
    }
  }
}
