// One multiplexed session over an mTLS connection between two Tessera proxies (ALPN `tessera-mux/1`): the frames
// of every stream are parsed from the socket's reads (several requests per read under load) and the frames written
// in one event-loop turn go out in one TLS write, from setImmediate after the poll phase (while the socket is full,
// later turns wait and go together at 'drain'). The dialing side opens streams (odd ids, increasing); the serving
// side announces how many it serves at once. Faults of the peer (oversized or unknown frames, a reused stream id, a
// window overrun, a flood of frames that carry nothing or make work for nothing, window credit for bytes never sent
// among them) end the session with GOAWAY and a code, never the process. Keepalive PINGs find a dead peer; GOAWAY drains.
import type { Socket } from 'node:net';
import { KeepaliveClock } from '../upstream/keepalive-clock.js';
import { DataRun } from './data-run.js';
import { FloodBudget } from './flood-budget.js';
import { FrameWriter } from './frame-writer.js';
import { Flag, FrameType, HEADER_BYTES, MAX_DATA_PAYLOAD, MuxCode, STREAM_WINDOW } from './mux-frame.js';
import type { MuxEndReason, MuxSessionOptions } from './mux-session-options.js';
import { MuxStream, type StreamPort } from './mux-stream.js';
import { PartialFrame } from './partial-frame.js';
import { HIGH_WATER, MAX_BACKLOG, MAX_STREAM_ID } from './session-bounds.js';

export type { MuxEndReason, MuxRole, MuxSessionOptions } from './mux-session-options.js';

export class MuxSession implements StreamPort {
  readonly socket: Socket;
  readonly #o: MuxSessionOptions;
  readonly #streams = new Map<number, MuxStream>();
  readonly #partial = new PartialFrame();
  readonly #run = new DataRun<MuxStream>((s, payload) => s.onData(payload));
  readonly #out = new FrameWriter();
  #flushing = false;
  /** The socket's last write returned false and no 'drain' came since. */
  #socketFull = false;
  /** A writer was told to wait (`congested`): it gets 'drain' once the socket has taken the backlog. */
  #writersWait = false;
  /** Bytes waiting in the streams' queues for window (MuxStream reports them). */
  #queued = 0;
  /** Client: next id to open. Server: highest id the peer opened. */
  #nextId = 1;
  #lastPeerId = 0;
  #peerMaxStreams = 0;
  #ready = false;
  #goneAway = false;
  #peerGoneAway = false;
  #ended = false;
  #reported = false;
  readonly #flood = new FloodBudget();
  readonly #keepalive: KeepaliveClock;
  #lastBusyMs: number;
  #pingValue = 0;
  /** Server draining: the PING sent after GOAWAY; once answered the client has seen the GOAWAY. */
  #drainPing = 0;
  #drainSentMs = 0;
  /** A turn was written since the last tick: a session that wrote none lets its frame slab go. */
  #wroteSinceTick = false;
  /** Server draining: what waits for the dialer to have read the GOAWAY (closing idle streams). */
  #afterGoAwaySeen: (() => void)[] = [];

  constructor(socket: Socket, opts: MuxSessionOptions) {
    this.socket = socket;
    this.#o = opts;
    this.#lastBusyMs = opts.nowMs();
    this.#keepalive = new KeepaliveClock({ intervalMs: opts.keepaliveIntervalMs, timeoutMs: opts.keepaliveTimeoutMs }, this.#lastBusyMs);
    socket.on('data', (chunk: Buffer) => this.#onRead(chunk));
    socket.on('drain', () => {
      this.#socketFull = false;
      if (this.#out.length > 0) this.#flush(); // what the turns wrote meanwhile, in one write
      else this.#wakeWriters();
    });
    socket.on('close', () => this.#onSocketGone());
    socket.on('error', () => this.#onSocketGone());
    if (opts.role === 'server') {
      this.#ready = true;
      this.#frameOut(FrameType.Settings, 0, 0, 0, opts.maxStreams);
    }
  }

  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }

  get remotePort(): number | undefined { return this.socket.remotePort; }

  get streamCount(): number { return this.#streams.size; }

  get ended(): boolean { return this.#ended; }

  /** Client: may open a stream now (ready, not going away, under the server's limit). */
  get canOpen(): boolean {
    return this.#ready && !this.#ended && !this.#goneAway && !this.#peerGoneAway && this.#streams.size < this.#peerMaxStreams && this.#nextId < MAX_STREAM_ID;
  }

  /**
   * Writers wait: the socket has a backlog, or this turn queued more than HIGH_WATER. Read per stream write; a true
   * answer is remembered, so that the writer hears 'drain' even when the socket takes the turn whole (no 'drain' of
   * its own then): a writer that waits for one never sent would stall its stream.
   */
  get congested(): boolean {
    if (!this.#socketFull && this.#out.length <= HIGH_WATER) return false;
    this.#writersWait = true;
    return true;
  }

  /** The backlog is gone: every stream told to wait (and not waiting for window) may write again. */
  #wakeWriters(): void {
    this.#writersWait = false;
    for (const s of this.#streams.values()) s.onSessionDrain();
  }

  /** Ready for streams: the server's SETTINGS arrived (client), or always (server). */
  get ready(): boolean { return this.#ready; }

  /** Client: a new stream; its SYN goes with its first frame. */
  open(): MuxStream {
    // The SYN goes now, not with the stream's first bytes: ids reach the server in the order they were given,
    // whichever stream writes first (a stream leased and released unwritten must not send a lower id later).
    const s = new MuxStream(this.#nextId, this);
    this.#nextId += 2;
    this.#streams.set(s.id, s);
    this.#frameOut(FrameType.Data, Flag.Syn, 0, s.id, 0);
    this.#lastBusyMs = this.#o.nowMs();
    return s;
  }

  // ---- StreamPort

  data(stream: MuxStream, payload: Buffer | null, flags: number): void {
    if (this.#ended) return;
    if (!payload || payload.length === 0) {
      this.#frameOut(FrameType.Data, flags, 0, stream.id, 0);
      return;
    }
    for (let at = 0; at < payload.length; at += MAX_DATA_PAYLOAD) {
      const part = at === 0 && payload.length <= MAX_DATA_PAYLOAD ? payload : payload.subarray(at, at + MAX_DATA_PAYLOAD);
      this.#frameOut(FrameType.Data, at === 0 ? flags & ~Flag.Fin : 0, 0, stream.id, part.length);
      this.#out.payload(part);
    }
    if (flags & Flag.Fin) this.#frameOut(FrameType.Data, Flag.Fin, 0, stream.id, 0);
  }

  windowUpdate(stream: MuxStream, increment: number): void {
    if (!this.#ended) this.#frameOut(FrameType.WindowUpdate, 0, 0, stream.id, increment);
  }

  reset(stream: MuxStream, code: MuxCode): void {
    if (!this.#ended) this.#frameOut(FrameType.Data, Flag.Rst, code, stream.id, 0);
  }

  queued(delta: number): void {
    this.#queued += delta;
    // Not part of `congested`: one stream out of window must not hold up its siblings. Only their sum is bounded.
    if (delta > 0 && !this.#ended && this.#backlog() > MAX_BACKLOG) this.#fail(MuxCode.Internal, 'write_backlog', 'peer reads nothing');
  }

  /** What waits for the peer: the socket's backlog, the frames held while it is full and the streams' queues. */
  #backlog(): number {
    return this.socket.writableLength + this.#out.length + this.#queued;
  }

  forget(stream: MuxStream): void {
    if (!this.#streams.delete(stream.id)) return;
    this.#lastBusyMs = this.#o.nowMs();
    if (this.#streams.size === 0 && this.#closesWhenIdle()) this.close();
  }

  /** Going away (either side said so): closes once no stream is left and, serving, the client has seen the GOAWAY. */
  #closesWhenIdle(): boolean {
    return (this.#goneAway || this.#peerGoneAway) && this.#drainPing === 0;
  }

  /** Serving and going away: a stream that said all it will say need not wait for the dialer's FIN (MuxStream.dropIfDone). */
  get draining(): boolean {
    return this.#goneAway && this.#o.role === 'server';
  }

  /** Going away or ended: its idle streams are not to be reused. */
  get retiring(): boolean {
    return this.#goneAway || this.#peerGoneAway || this.#ended;
  }

  fault(code: MuxCode, reason: string): void {
    this.#fail(code, code === MuxCode.FlowControl ? 'flow_control' : 'protocol', reason);
  }

  // ---- lifecycle

  /** Graceful drain: GOAWAY, no new streams from this side; the session closes once its streams are done. The server
   * serves streams the client opened before it saw the GOAWAY: a PING sent after it, once answered, proves it read it. */
  drain(): void {
    if (this.#goneAway || this.#ended) return;
    this.#goneAway = true;
    this.#frameOut(FrameType.GoAway, 0, MuxCode.None, this.#o.role === 'server' ? this.#lastPeerId : 0, 0);
    if (this.#o.role === 'server') {
      this.#drainPing = 0x7fff_ffff;
      this.#drainSentMs = this.#o.nowMs();
      this.#frameOut(FrameType.Ping, 0, 0, 0, this.#drainPing);
      for (const s of [...this.#streams.values()]) s.dropIfDone(); // the others when they are done (sendFin)
    } else if (this.#streams.size === 0) this.close();
    this.#lastBusyMs = this.#o.nowMs();
  }

  /** Server: runs `fn` once the dialer has read this side's GOAWAY (now if it has). From then on it sends no new
   * exchange on any stream of this session, so an idle stream may close without a request crossing its close. */
  whenGoAwaySeen(fn: () => void): void {
    if (this.#goneAway && this.#drainPing === 0) fn();
    else this.#afterGoAwaySeen.push(fn);
  }

  /** Server: the dialer has read the GOAWAY (its drain PING came back), or is taken to have (tick). */
  #goAwaySeen(): void {
    this.#run.flushAll(); // requests read before the PING's answer reach their streams before idle ones close
    this.#drainPing = 0;
    for (const fn of this.#afterGoAwaySeen.splice(0)) fn();
    if (this.#streams.size === 0) this.close();
  }

  /** Ends the session now: what was queued is written, then the socket is closed. */
  close(): void {
    if (this.#ended) return;
    this.#flush(true);
    this.#ended = true;
    this.socket.destroySoon();
    this.#endStreams(MuxCode.Cancel, 'session closed');
    this.#report('closed');
  }

  /** The listener's sweep: a quiet peer gets a PING, an unanswered PING ends the session, an idle session (no stream
   * for `idleMs`) closes. Returns the next time it wants a check. */
  tick(idleMs: number): number {
    const now = this.#o.nowMs();
    if (this.#ended) return Number.POSITIVE_INFINITY;
    // An idle peer's session (a sidecar may keep one per service it calls) holds no write slab between ticks.
    if (!this.#wroteSinceTick) this.#out.release();
    this.#wroteSinceTick = false;
    if (this.#keepalive.expired(now)) {
      this.#fail(MuxCode.Keepalive, 'keepalive', 'no answer to a keepalive PING');
      return Number.POSITIVE_INFINITY;
    }
    // A dialer that answers keepalive PINGs but not the drain PING would keep opening streams and sending requests
    // on idle ones: past the keepalive timeout it is taken to have read the GOAWAY (an honest one answers in an RTT).
    if (this.#drainPing !== 0 && now - this.#drainSentMs > this.#o.keepaliveTimeoutMs) this.#goAwaySeen();
    if (this.#streams.size === 0 && now - this.#lastBusyMs > idleMs) {
      // GOAWAY first, so the peer reads a deliberate close. The dialer's idle limit is the shorter one
      // (upstreamIdleTimeout < idleTimeout), so a server rarely closes under a stream just being opened.
      this.drain();
      this.close();
      return Number.POSITIVE_INFINITY;
    }
    if (this.#keepalive.pingDue(now)) {
      this.#pingValue = (this.#pingValue + 1) & 0x3fff_ffff;
      this.#frameOut(FrameType.Ping, 0, 0, 0, this.#pingValue);
    }
    const next = this.#keepalive.nextCheckMs();
    return this.#drainPing === 0 ? next : Math.min(next, this.#drainSentMs + this.#o.keepaliveTimeoutMs + 1);
  }

  // ---- reading

  #onRead(chunk: Buffer): void {
    if (this.#ended) return;
    this.#o.onRead?.();
    this.#keepalive.read(this.#o.nowMs());
    const b = this.#partial.take(chunk);
    if (b === null) return;
    let at = 0;
    while (b.length - at >= HEADER_BYTES && !this.#ended) {
      // The header's fields read in place (readHeader's layout): no object per frame.
      const type = b[at]!;
      const length = b.readUInt32BE(at + 8);
      if (type === FrameType.Data && length > MAX_DATA_PAYLOAD) {
        this.#fail(MuxCode.FrameSize, 'frame_size', `DATA of ${length} bytes`);
        return;
      }
      const len = type === FrameType.Data ? length : 0;
      if (b.length - at < HEADER_BYTES + len) break;
      const payload = len > 0 ? b.subarray(at + HEADER_BYTES, at + HEADER_BYTES + len) : null;
      const flags = b[at + 1]!;
      const code = b.readUInt16BE(at + 2);
      const stream = b.readUInt32BE(at + 4);
      at += HEADER_BYTES + len;
      const plain = type === FrameType.Data && (flags & (Flag.Syn | Flag.Fin | Flag.Rst)) === 0;
      const open = type === FrameType.Data ? this.#streams.get(stream) : undefined;
      if (plain && payload && open?.remoteEnded === false) this.#run.push(open, payload);
      else {
        if (open) this.#run.flush(open); // its bytes before its FIN or RST; other flags mean nothing on DATA
        this.#frame(type, flags, code, stream, length, payload);
      }
    }
    if (at < b.length && !this.#ended) this.#partial.hold(b.subarray(at));
  }

  #frame(type: number, flags: number, code: number, id: number, length: number, payload: Buffer | null): void {
    // Only a DATA frame opens a stream: SYN on any other frame is a fault, never a second way to open one.
    if (flags & Flag.Syn && type !== FrameType.Data) return void this.#fail(MuxCode.Protocol, 'protocol', `SYN on a frame of type ${type}`);
    switch (type) {
      case FrameType.Data:
      case FrameType.WindowUpdate: {
        const s = this.#streamFor(id, flags);
        if (!s) return; // none (the session ended), or ended: a late frame, counted there
        if (type === FrameType.WindowUpdate) {
          // Work for nothing unless it pays back bytes of ours the peer read, in halves of the window as readers do.
          if (length < STREAM_WINDOW / 2 || !s.repays(length)) this.#empty();
          if (length > 0) s.onWindowUpdate(length);
          return;
        }
        // Work for nothing counts against the flood budget (rapid reset, by RST or by FIN): an empty DATA frame, a
        // frame after the peer's FIN, a reset, a FIN before any exchange (no byte either way, or no answer yet). The
        // SYN that opens a stream and the FIN after an exchange do not.
        const rst = (flags & Flag.Rst) !== 0;
        if (s.remoteEnded && !rst) return void this.#empty();
        if (payload) s.onData(payload);
        if (rst || (!payload && !(flags & (Flag.Fin | Flag.Syn))) || ((flags & Flag.Fin) !== 0 && !(s.carried && s.wrote))) this.#empty();
        // A server that refuses a stream this side opened within its limit disagrees on what the session may carry
        // (it is draining, or past a limit of its own): the session opens no stream more (the refused one is replayed).
        if (rst && code === MuxCode.Refused && this.#o.role === 'client') this.drain();
        if (rst) s.onReset(code, `peer reset the stream (code ${code})`, true);
        else if (flags & Flag.Fin) s.onFin();
        return;
      }
      case FrameType.Ping:
        if (id !== 0) {
          this.#fail(MuxCode.Protocol, 'protocol', 'PING on a stream');
          return;
        }
        if (flags & Flag.Ack) {
          if (length === this.#pingValue && this.#keepalive.awaiting) this.#keepalive.answered();
          else if (length !== this.#drainPing || this.#drainPing === 0) return void this.#empty(); // no PING of ours
          else this.#goAwaySeen();
          return;
        }
        this.#empty();
        this.#frameOut(FrameType.Ping, Flag.Ack, 0, 0, length);
        return;
      case FrameType.GoAway:
        // One GOAWAY says it all; each one after it carries nothing.
        if (this.#peerGoneAway) return void this.#empty();
        this.#peerGoneAway = true;
        if (this.#streams.size === 0 && this.#drainPing === 0) this.close();
        return;
      case FrameType.Settings:
        if (this.#o.role === 'server' || id !== 0 || length === 0) {
          this.#fail(MuxCode.Protocol, 'protocol', 'SETTINGS from the dialer, on a stream, or allowing no stream');
          return;
        }
        this.#peerMaxStreams = length;
        if (!this.#ready) {
          this.#ready = true;
          this.#o.onReady?.();
        }
        return;
      default:
        this.#fail(MuxCode.Protocol, 'protocol', `unknown frame type ${type}`);
    }
  }

  /**
   * The stream a frame names: a new one (server, SYN with the next odd id), the open one, null for a stream that
   * ended (its late frames are dropped, and counted against the flood budget), undefined when the session ended.
   */
  #streamFor(id: number, flags: number): MuxStream | null | undefined {
    const open = this.#streams.get(id);
    if (open) {
      if (flags & Flag.Syn) this.#fail(MuxCode.Protocol, 'stream_id', `stream ${id} opened twice`);
      return this.#ended ? undefined : open;
    }
    if (flags & Flag.Syn) {
      if (this.#o.role === 'client') return void this.#fail(MuxCode.Protocol, 'stream_id', 'the server opened a stream');
      if (id % 2 === 0 || id <= this.#lastPeerId || id > MAX_STREAM_ID) return void this.#fail(MuxCode.Protocol, 'stream_id', `stream id ${id} not new, odd and below 2^31`);
      this.#lastPeerId = id;
      // Refused: over the limit, or draining and the dialer has seen the GOAWAY (its drain PING came back).
      if (this.#streams.size >= this.#o.maxStreams || this.#peerGoneAway || (this.#goneAway && this.#drainPing === 0)) {
        this.#empty();
        this.#frameOut(FrameType.Data, Flag.Rst, MuxCode.Refused, id, 0);
        return null;
      }
      const s = new MuxStream(id, this);
      this.#streams.set(id, s);
      this.#lastBusyMs = this.#o.nowMs();
      this.#o.onStream?.(s);
      return s;
    }
    // Only the dialer opens streams, all with odd ids: an even id was never opened, whatever its size.
    const known = id % 2 === 1 && (this.#o.role === 'server' ? id <= this.#lastPeerId : id < this.#nextId);
    if (!known) return void this.#fail(MuxCode.Protocol, 'stream_id', `frame for stream ${id}, never opened`);
    this.#empty();
    return null;
  }

  #empty(): void {
    if (!this.#flood.spend(this.#o.nowMs())) this.#fail(MuxCode.Flood, 'flood', 'too many frames that carry nothing');
  }

  // ---- writing

  #frameOut(type: FrameType, flags: number, code: number, stream: number, length: number): void {
    this.#out.frame(type, flags, code, stream, length);
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => this.#flush());
  }

  // While the socket is full the turns' frames wait in the writer (one buffer, doubling) for 'drain', unless `now`: a
  // write per turn would cost the socket a queued entry (~200 bytes) for a 12-byte PING answer, unseen by the backlog.
  #flush(now = false): void {
    this.#flushing = false;
    const out = this.#socketFull && !now && !this.#ended ? null : this.#out.take();
    if (out !== null && !this.socket.destroyed) {
      this.#wroteSinceTick = true;
      this.#o.onWrite?.();
      if (this.socket.write(out)) {
        if (this.#writersWait && !this.#ended) this.#wakeWriters();
        return;
      }
      this.#socketFull = true;
    }
    // A peer that stops reading while we keep answering it (PINGs, window updates) must not grow our memory.
    if (this.#socketFull && !this.#ended && this.#backlog() > MAX_BACKLOG) this.#fail(MuxCode.Internal, 'write_backlog', 'peer reads nothing');
  }

  #fail(code: MuxCode, reason: MuxEndReason, detail: string): void {
    if (this.#ended) return;
    // Ended first: the flush below must not come back here (a backlog check on its write).
    this.#ended = true;
    this.#out.clear();
    this.#out.frame(FrameType.GoAway, 0, code, this.#lastPeerId, 0);
    this.#flush();
    // Written, then destroyed: a peer that never closes its side must not keep the descriptor. One that reads
    // nothing would keep the backlog with it: destroyed now.
    if (reason === 'write_backlog') this.socket.destroy();
    else this.socket.destroySoon();
    this.#endStreams(code, detail);
    this.#report(reason);
  }

  #report(reason: MuxEndReason): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#o.onEnd?.(reason);
  }

  #endStreams(code: MuxCode, detail: string): void {
    for (const s of [...this.#streams.values()]) s.onReset(code, detail);
    this.#streams.clear();
  }

  #onSocketGone(): void {
    this.#ended = true;
    this.#out.clear();
    this.#endStreams(MuxCode.Internal, 'connection lost');
    this.socket.destroy();
    this.#report('closed');
  }
}
