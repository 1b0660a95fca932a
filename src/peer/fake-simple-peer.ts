// TEST SUPPORT ONLY: an in-memory stand-in for simple-peer, so that mesh.ts's own logic (who links to
// whom, signal routing, heartbeats, dead-peer detection, refusals) is unit-tested in Node, where there
// is no WebRTC. Offers and answers carry a pairing id instead of SDP; "channels" deliver after a timer.
// The real simple-peer over real WebRTC is covered by e2e/ring.spec.ts.

type Handler = (...args: unknown[]) => void;

let nextPairing = 1;
const offers = new Map<number, FakePeer>();

export class FakeChannel {
  readyState: RTCDataChannelState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  constructor(readonly owner: FakePeer) {}
  addEventListener(): void {}
  removeEventListener(): void {}
  send(bytes: Uint8Array): void {
    if (this.readyState !== 'open') throw new Error('channel not open');
    const remote = this.owner.remote;
    if (this.owner.muted || !remote) return; // a frozen or crashed tab: bytes go nowhere
    const copy = bytes.slice();
    setTimeout(() => {
      if (!remote.destroyed) remote.emit('data', copy);
    }, 0);
  }
}

export class FakePeer {
  static created: FakePeer[] = [];
  readonly initiator: boolean;
  remote: FakePeer | null = null;
  destroyed = false;
  /** Set by a test to make this end silent without closing (what a closed tab looks like remotely). */
  muted = false;
  _channel: FakeChannel | null = null;
  _pc = { sctp: { maxMessageSize: 262144 } };
  private handlers = new Map<string, Handler[]>();

  constructor(opts: { initiator?: boolean } = {}) {
    this.initiator = Boolean(opts.initiator);
    FakePeer.created.push(this);
    if (this.initiator) {
      const id = nextPairing++;
      offers.set(id, this);
      setTimeout(() => this.emit('signal', { type: 'offer', sdp: String(id) }), 0);
    }
  }

  on(event: string, handler: Handler): this {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), handler]);
    return this;
  }

  emit(event: string, ...args: unknown[]): void {
    for (const h of this.handlers.get(event) ?? []) h(...args);
  }

  signal(data: { type?: string; sdp?: string }): void {
    if (this.destroyed) throw new Error('cannot signal after peer is destroyed');
    if (data.type === 'offer') {
      const other = offers.get(Number(data.sdp));
      if (!other) throw new Error('unknown offer');
      this.remote = other;
      other.remote = this;
      setTimeout(() => this.emit('signal', { type: 'answer', sdp: data.sdp }), 0);
    } else if (data.type === 'answer') {
      offers.delete(Number(data.sdp));
      const other = this.remote;
      setTimeout(() => {
        for (const p of [this, other]) {
          if (!p || p.destroyed) continue;
          p._channel = new FakeChannel(p);
          p.emit('connect');
        }
      }, 0);
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this._channel) this._channel.readyState = 'closed';
    const remote = this.remote;
    // pc.close() on one side closes the other's channel promptly (docs/architecture.md), unless muted (crashed)
    if (remote && !this.muted) setTimeout(() => !remote.destroyed && remote.emit('close'), 0);
  }
}
