// An elastic room: the ring is a sequence of membership epochs. Each epoch has its member list (rank
// order), its own transport (frames carry the epoch, so nothing of an old ring is ever summed into a
// new one) and a state every member starts it from. When a tab dies or a new one asks to join, the
// current epoch is aborted, every reachable tab says `ready` with the state it holds, and the
// coordinator (roster.ts) announces the next roster. The session then moves the state to whoever lacks
// it and rebuilds its run for the new rank and world size (session.ts).
//
// Rooms up to ELASTIC_MAX_MEMBERS (32) tabs, where not every pair is linked (membership.ts): the
// coordinator is the lowest id, a hub linked to every tab, so readies reach it and its roster reaches
// everyone; an abort is passed on by every tab that hears it, so it floods the ring's links; an epoch
// asks the mesh for the links it needs (ringLinks) and starts once they are open. docs/elastic-rooms.md
// says what is guaranteed and what is not.
import { DataChannelTransport, type DataChannelTransportOptions, type MeshLinks } from '../../peer/datachannel-transport';
import { meshElasticChannel, type ElasticChannel, type ElasticMessage, type StateCard } from '../../peer/elastic-protocol';
import type { Frame } from '../../peer/frame';
import { ELASTIC_MAX_MEMBERS, FULL_MESH_MAX, ringLinks } from '../../peer/membership';
import { StallTimer } from '../../shared/stall-timer';
import { chooseSource, coordinatorOf, decideRoster, needsState } from './roster';

/** What the elastic room needs of the mesh (mesh.ts; unit tests use fake-mesh.ts). */
export interface ElasticMesh extends MeshLinks {
  /** Room members in rank order, self included. */
  memberList(): string[];
  isOpen(peerId: string): boolean;
  /** Peers the mesh links this tab to by its topology (and what was required). */
  wanted(): string[];
  /** Asks the mesh for links an epoch needs (both ends ask). */
  require(peerIds: readonly string[]): void;
}

export interface Formation {
  epoch: number;
  members: string[];
  rank: number;
  world: number;
  /** Each member's state card, by rank, as the coordinator collected them. */
  cards: StateCard[];
  /** The rank whose state everyone starts from (-1: nobody holds any yet, a new room). */
  source: number;
  transport: DataChannelTransport;
  /** Other members of this epoch that were not in this tab's previous one, and the other way round. */
  joined: string[];
  left: string[];
}

export interface ElasticRoomOptions {
  /** How long the coordinator waits for reachable tabs that have not said ready (default 5 s). */
  graceMs?: number;
  /**
   * A member this tab should be linked to whose link has not been open for this long stops counting as
   * a coordinator candidate (default 20 s): a tab whose links never open cannot hold up every re-form.
   */
  unreachableMs?: number;
  /** Rings up to this size wait for a link to every member before starting (the mesh's full-mesh size). */
  fullMeshMax?: number;
  /**
   * form() rejects when no roster came and nothing new happened for this long (default 120 s): a tab
   * joining the room, a link opening or a tab saying ready restarts the wait, so a room whose tabs open
   * one at a time waits as long as they keep coming. Opening the roster's links waits the same way.
   */
  formTimeoutMs?: number;
  /** Data frames of a coming epoch kept at most (bytes) until its transport exists (default 64 MiB). */
  maxPendingBytes?: number;
  /** Options of every epoch's transport (deadline, message check...). */
  transport?: Omit<DataChannelTransportOptions, 'members' | 'epoch' | 'nextEpochExpected'>;
  /** Whether this room takes new tabs mid-run: true, or the reason it does not (told to the newcomer). */
  admits?: () => true | string;
  log?: (level: 'info' | 'warn', message: string) => void;
}

interface Forming {
  card: StateCard;
  minMembers: number;
  startedAt: number;
  resolve: (formation: Formation) => void;
  reject: (error: Error) => void;
  stall: StallTimer;
  tick: ReturnType<typeof setInterval>;
}

const TICK_MS = 200;

export class ElasticRoom {
  /** The current (or last) epoch; 0 before the first ring formed. */
  epoch = 0;
  private current: Formation | null = null;
  private live = false;
  private forming: Forming | null = null;
  private reason: string | null = null;
  private readonly readies = new Map<string, { left: number; card: StateCard }>();
  /** Wanted members without an open link, and since when (performance.now()). */
  private readonly unreachableSince = new Map<string, number>();
  private readonly pending: { peerId: string; frame: Frame }[] = [];
  private pendingBytes = 0;
  private readonly channel: ElasticChannel;
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly mesh: ElasticMesh,
    private readonly opts: ElasticRoomOptions = {},
  ) {
    this.channel = meshElasticChannel(mesh);
    this.unsubscribe = [
      this.channel.listen((from, message) => this.onMessage(from, message)),
      mesh.on({
        frame: (peerId, frame) => this.onDataFrame(peerId, frame),
        members: () => this.evaluate(),
        peerOpen: (peerId) => this.onPeerOpen(peerId),
        peerLost: (peerId, why) => this.onPeerLost(peerId, why),
      }),
    ];
  }

  /** The current epoch's transport (throws before the first ring formed). */
  get transport(): DataChannelTransport {
    if (!this.current) throw new Error('the room has not formed a ring yet');
    return this.current.transport;
  }

  get members(): string[] {
    return this.current ? this.current.members.slice() : [];
  }

  /** Why the ring must re-form at the next step boundary (a tab joined, left or aborted it), or null. */
  reformWanted(): string | null {
    return this.reason;
  }

  /** Ends the current epoch here and tells its other members (they abort and re-form too). */
  abort(reason: string): void {
    if (!this.current || !this.live) return;
    this.reason ??= reason;
    this.live = false;
    this.current.transport.close(`the ring is re-forming: ${reason}`);
    for (const id of this.current.members) {
      if (id !== this.mesh.peerId) this.channel.send(id, { kind: 'abort', epoch: this.epoch, reason: reason.slice(0, 300) });
    }
  }

  /**
   * Leaves the current epoch (if any) and joins the next ring with the state this tab holds. Resolves
   * with the new epoch once the coordinator announced a roster with this tab in it.
   */
  form(card: StateCard, minMembers = 1): Promise<Formation> {
    if (this.forming) return Promise.reject(new Error('already forming a ring'));
    if (this.current && this.live) this.abort('re-forming');
    this.reason = null;
    return new Promise<Formation>((resolve, reject) => {
      const stall = new StallTimer(this.opts.formTimeoutMs ?? 120_000, () => {
        this.stopForming();
        reject(new Error(this.stalledMessage(minMembers, stall.ms)));
      });
      const tick = setInterval(() => this.evaluate(), TICK_MS);
      this.forming = { card, minMembers, startedAt: performance.now(), resolve, reject, stall, tick };
      this.sendReady();
      this.evaluate();
    });
  }

  close(): void {
    this.stopForming();
    this.current?.transport.close('left the room');
    this.live = false;
    for (const off of this.unsubscribe) off();
  }

  // --- forming ---------------------------------------------------------------------------------------

  /** Why form() gave up: how many tabs came (of how many it waited for), and for how long none came. */
  private stalledMessage(minMembers: number, ms: number): string {
    const present = this.mesh.memberList().length;
    const joined = minMembers > 1 ? `${present} of ${minMembers} tabs joined` : `${present} ${present === 1 ? 'tab' : 'tabs'} in the room`;
    return (
      `room ${this.mesh.roomHash.toString(16)}: no ring formed: ${joined} (reachable: ${this.view().length}, ready: ${this.readySet().size}); ` +
      `nothing new for ${formatSeconds(ms)}`
    );
  }

  private view(): string[] {
    const self = this.mesh.peerId;
    return this.mesh.memberList().filter((id) => id === self || this.mesh.isOpen(id));
  }

  private sendReady(to?: string): void {
    if (!this.forming) return;
    const message: ElasticMessage = { kind: 'ready', left: this.epoch, card: this.forming.card };
    for (const id of to ? [to] : this.view()) if (id !== this.mesh.peerId) this.channel.send(id, message);
  }

  /** Tabs whose ready counts for the ring being formed now (this tab's own included). */
  private readySet(): Set<string> {
    const ready = new Set<string>([this.mesh.peerId]);
    const previous = new Set(this.current?.members ?? []);
    for (const [id, r] of this.readies) {
      // A member of the last ring must have left that ring (an older ready is from an earlier re-form).
      if (!previous.has(id) || r.left >= this.epoch) ready.add(id);
    }
    return ready;
  }

  private evaluate(): void {
    const forming = this.forming;
    if (!forming) return;
    const self = this.mesh.peerId;
    const view = this.view();
    const ready = this.readySet();
    // Any tab that joined, became reachable or said ready for the first time restarts the wait.
    forming.stall.progress([...this.mesh.memberList().map((id) => `joined:${id}`), ...view.map((id) => `open:${id}`), ...[...ready].map((id) => `ready:${id}`)]);
    const graceOver = performance.now() - forming.startedAt > (this.opts.graceMs ?? 5_000);
    // The coordinator is the oldest tab of the room, as signalling lists it (not only those this tab
    // reaches yet: two tabs must never both think they coordinate). A reachable tab that stays silent
    // past the grace period (it is not training, or it is stuck) stops counting.
    // A member this tab should reach but has not for unreachableMs (its links never open) stops counting
    // too; one it is not meant to link to (a room past the full-mesh size) counts: it may be the hub.
    const unreachable = this.unreachable();
    const candidates = this.mesh
      .memberList()
      .filter((id) => id === self || ready.has(id) || (!(graceOver && this.mesh.isOpen(id)) && !unreachable.has(id)));
    if (coordinatorOf(candidates) !== self) return; // the coordinator announces; we wait for its roster
    const members = decideRoster({ view, ready, minMembers: forming.minMembers, maxMembers: ELASTIC_MAX_MEMBERS, graceOver });
    if (!members) return;
    const cardOf = (id: string) => (id === this.mesh.peerId ? forming.card : this.readies.get(id)!.card);
    const left = members.map((id) => (id === this.mesh.peerId ? this.epoch : this.readies.get(id)!.left));
    const epoch = Math.max(this.epoch, ...left) + 1;
    if (epoch > 0xffff) {
      this.stopForming();
      forming.reject(new Error('this room has re-formed 65,535 times: start a new room'));
      return;
    }
    const cards = members.map(cardOf);
    const roster = { kind: 'roster' as const, epoch, members, cards, source: chooseSource(cards) };
    for (const id of members) if (id !== this.mesh.peerId) this.channel.send(id, roster);
    this.adopt(roster);
  }

  /** Wanted members whose link has stayed closed for unreachableMs. */
  private unreachable(): Set<string> {
    const now = performance.now();
    const wanted = new Set(this.mesh.wanted());
    for (const id of this.unreachableSince.keys()) if (!wanted.has(id) || this.mesh.isOpen(id)) this.unreachableSince.delete(id);
    for (const id of wanted) if (!this.mesh.isOpen(id) && !this.unreachableSince.has(id)) this.unreachableSince.set(id, now);
    const limit = this.opts.unreachableMs ?? 20_000;
    return new Set([...this.unreachableSince].filter(([, since]) => now - since > limit).map(([id]) => id));
  }

  private adopt(roster: Extract<ElasticMessage, { kind: 'roster' }>): void {
    const forming = this.forming;
    if (!forming) return;
    this.stopForming();
    const previous = this.current?.members ?? [];
    this.epoch = roster.epoch;
    const transport = new DataChannelTransport(this.mesh, {
      ...this.opts.transport,
      members: roster.members,
      epoch: roster.epoch,
      nextEpochExpected: true,
    });
    this.current = {
      epoch: roster.epoch,
      members: roster.members,
      rank: transport.rank,
      world: transport.world,
      cards: roster.cards,
      source: roster.source,
      transport,
      joined: roster.members.filter((id) => id !== this.mesh.peerId && !previous.includes(id)),
      left: previous.filter((id) => !roster.members.includes(id)),
    };
    this.live = true;
    this.reason = null;
    for (const id of roster.members) this.readies.delete(id);
    // Frames of this epoch that came before its roster: hand them over; older ones are stale.
    const kept = this.pending.splice(0);
    this.pendingBytes = 0;
    for (const { peerId, frame } of kept) {
      if (frame.epoch === this.epoch) transport.deliver(peerId, frame);
      else if (frame.epoch > this.epoch) this.keep(peerId, frame);
    }
    // Tabs that said ready too late for this roster ask again: the next boundary re-forms with them.
    for (const id of this.readies.keys()) this.onReady(id, this.readies.get(id)!);
    // The coordinator saw every member reachable from its side; this tab's own links may still be
    // opening. A small ring waits for all of them (any collective may talk to any rank); a large one for
    // what its ring needs, which the mesh is asked to open.
    const formation = this.current;
    const self = this.mesh.peerId;
    const receivers = roster.source < 0 ? [] : roster.cards.flatMap((card, r) => (needsState(card, roster.cards[roster.source]) ? [r] : []));
    const needed = ringLinks(self, roster.members, roster.source, receivers);
    this.mesh.require(needed);
    const waitFor = roster.members.length <= (this.opts.fullMeshMax ?? FULL_MESH_MAX) ? roster.members : needed;
    this.linksOpen(waitFor, this.opts.formTimeoutMs ?? 120_000).then(
      () => forming.resolve(formation),
      (error: Error) => forming.reject(error),
    );
  }

  /** Resolves once this tab has an open link to every one of `members`; rejects after `timeoutMs` in which none opened. */
  private linksOpen(members: string[], timeoutMs: number): Promise<void> {
    const self = this.mesh.peerId;
    const others = members.filter((id) => id !== self);
    const missing = () => others.filter((id) => !this.mesh.isOpen(id));
    if (missing().length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        const absent = missing();
        stall.progress(others.filter((id) => !absent.includes(id)));
        if (absent.length > 0) return;
        stop();
        resolve();
      };
      const stall = new StallTimer(timeoutMs, () => {
        stop();
        const absent = missing();
        reject(new Error(`ring epoch ${this.epoch}: no link to ${absent.join(', ')} (${others.length - absent.length} of ${others.length} open); none opened for ${formatSeconds(timeoutMs)}`));
      });
      const poll = setInterval(check, TICK_MS);
      const off = this.mesh.on({ peerOpen: check });
      const stop = () => {
        stall.stop();
        clearInterval(poll);
        off();
      };
      check();
    });
  }

  private stopForming(): void {
    if (!this.forming) return;
    this.forming.stall.stop();
    clearInterval(this.forming.tick);
    this.forming = null;
  }

  // --- messages --------------------------------------------------------------------------------------

  private onMessage(from: string, message: ElasticMessage): void {
    switch (message.kind) {
      case 'ready':
        this.readies.set(from, { left: message.left, card: message.card });
        if (this.forming) this.evaluate();
        else this.onReady(from, message);
        return;
      case 'roster': {
        if (message.epoch <= this.epoch) return; // an old roster, overtaken
        if (!message.members.includes(this.mesh.peerId)) {
          // A ring formed without this tab (it was late, or thought gone): leave ours and ask to join.
          if (this.live) this.abort(`a ring of epoch ${message.epoch} formed without this tab`);
          this.sendReady(from);
          return;
        }
        if (!this.forming) {
          // The others re-formed while this tab still trained: it will redo its step in the new ring.
          this.abort(`the ring re-formed (epoch ${message.epoch})`);
          return;
        }
        this.adopt(message);
        return;
      }
      case 'abort':
        // Passed on to this tab's own links: in a large room not every member hears the first abort.
        if (message.epoch === this.epoch && this.live) this.abort(message.reason);
        return;
      case 'closed':
        if (this.forming) {
          const forming = this.forming;
          this.stopForming();
          forming.reject(new Error(`the room turned this tab away: ${message.reason}`));
        }
        return;
    }
  }

  /** A ready while this tab trains: a member left the ring, or a new tab wants in. */
  private onReady(from: string, ready: { left: number }): void {
    if (!this.current || !this.live) return;
    if (this.current.members.includes(from)) {
      if (ready.left >= this.epoch) this.abort(`rank ${this.current.members.indexOf(from)} left the ring`);
      return;
    }
    // Newcomers are rank 0's business (every member would otherwise abort at once).
    if (this.current.members[0] !== this.mesh.peerId) return;
    const admits = this.opts.admits?.() ?? true;
    if (admits !== true) {
      this.channel.send(from, { kind: 'closed', reason: admits });
      this.readies.delete(from);
      return;
    }
    if (this.current.members.length >= ELASTIC_MAX_MEMBERS) {
      this.channel.send(from, { kind: 'closed', reason: `the room is full (${ELASTIC_MAX_MEMBERS} training tabs)` });
      this.readies.delete(from);
      return;
    }
    this.reason ??= `tab ${from} asks to join`;
  }

  private onPeerOpen(peerId: string): void {
    // A link that opens while forming: tell the tab behind it (it may be the coordinator).
    this.sendReady(peerId);
    this.evaluate();
  }

  private onPeerLost(peerId: string, why: string): void {
    this.readies.delete(peerId);
    if (this.current && this.live && this.current.members.includes(peerId)) {
      this.abort(`rank ${this.current.members.indexOf(peerId)} (${peerId}) is gone: ${why}`);
    }
    this.evaluate();
  }

  // --- data frames of a coming epoch ----------------------------------------------------------------

  private onDataFrame(peerId: string, frame: Frame): void {
    if (frame.type !== 'data') return;
    // The live transport takes its own epoch's frames; this room keeps those of the next ring.
    if (frame.epoch <= this.epoch) return;
    if (this.live) {
      if (frame.epoch === this.epoch + 1) this.keep(peerId, frame);
      return; // anything further ahead: the transport refuses it
    }
    // Between rings. A tab that was in epoch E can next be in E + 1, or E + 2 when a ring formed
    // without it; a new tab (E = 0) may be joining a room at any epoch.
    if (this.epoch > 0 && frame.epoch > this.epoch + 2) {
      this.mesh.refuse(peerId, `data frame of membership epoch ${frame.epoch}; this tab was last in epoch ${this.epoch}`);
      return;
    }
    this.keep(peerId, frame);
  }

  private keep(peerId: string, frame: Frame): void {
    const limit = this.opts.maxPendingBytes ?? 64 * 1024 * 1024;
    if (this.pendingBytes + frame.payload.length > limit) {
      this.mesh.refuse(peerId, `too many bytes for a ring that has not formed yet (epoch ${frame.epoch})`);
      return;
    }
    this.pending.push({ peerId, frame });
    this.pendingBytes += frame.payload.length;
  }
}

/** 120000 -> '120 s', 300 -> '0.3 s'. */
function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
