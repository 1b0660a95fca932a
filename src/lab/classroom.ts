// Classroom mode for the whole room: the teacher's tab loads a lesson, every tab of the room runs it
// (classroom-lesson.ts: one gated ring all-reduce over the real transport; pipeline-lesson.ts: a
// pipeline schedule, one op at a time; tensor-class-lesson.ts: a tensor-parallel two-layer MLP), and only the teacher's Next releases each step, everywhere.
//
// Where a lesson runs (a "venue"):
// - during a training run, over the run's own mesh and transport (the lesson's tags use their own
//   collective id, so they never meet training's messages);
// - otherwise over the classroom's standby mesh: every tab that opened a room link (without
//   autostart) joins it at once, so the students are listening before the teacher clicks Load. It
//   is a sibling room ("<room>-class"), not the training room itself, because a tab sitting in the
//   training room would be counted as a member of the next training run's ring.
import type { Transport } from '../collective/types';
import { DataChannelTransport } from '../peer/datachannel-transport';
import { openMesh } from '../peer/open-mesh';
import { normalizeRoomName } from '../peer/room-code';
import { ClassroomLesson, LessonAborted } from './classroom-lesson';
import { MAX_LESSON_MICRO, meshClassroomChannel, type ClassroomChannel, type ClassroomMessage, type LessonTopic, type StartMessage } from './classroom-protocol';
import { PIPELINE_SCHEDULES } from '../collective/pipeline-schedules';
import { PipelineLesson } from './pipeline-lesson';
import { TensorLesson } from './tensor-class-lesson';
import type { LabConfig } from './config';
import { EventBus, type LabEvent } from '../shared/events';
import type { JoinedRoom } from './room';

/** A mesh a lesson can run over. */
export interface ClassroomVenue {
  readonly channel: ClassroomChannel;
  /** Teacher side: the members (rank order) a lesson here has; waits for the room to fill. */
  members(): Promise<string[]>;
  /** The transport among `members` for one lesson; `done()` once the lesson no longer needs it. */
  transport(members: string[]): { transport: Transport; done(): void };
}

/** Early messages kept for lessons this tab has not heard the start of yet (their links race). */
const MAX_EARLY_MESSAGES = 256;

/** A pipeline lesson's schedule and micro-batches, as the teacher picks them. */
export type PipelineLessonChoice = NonNullable<StartMessage['pipeline']>;

/** The default pipeline lesson: GPipe, two micro-batches (they show the overlap and stay short). */
export const PIPELINE_LESSON: PipelineLessonChoice = { schedule: 'gpipe', micro: 2 };

/** Why a teacher's choice cannot be a lesson (the students' tabs refuse the same in the start message), or null. */
export function pipelineLessonProblem(choice: PipelineLessonChoice): string | null {
  if (!PIPELINE_SCHEDULES.includes(choice.schedule)) return `a pipeline lesson runs ${PIPELINE_SCHEDULES.join(' or ')}, not ${JSON.stringify(choice.schedule)}`;
  if (!Number.isInteger(choice.micro) || choice.micro < 1 || choice.micro > MAX_LESSON_MICRO) return `a pipeline lesson steps through 1 to ${MAX_LESSON_MICRO} micro-batches, not ${choice.micro}`;
  return null;
}

type AnyLesson = ClassroomLesson | PipelineLesson | TensorLesson;

interface Running {
  lesson: AnyLesson;
  venue: ClassroomVenue;
  done(): void;
}

/**
 * Runs lessons on this tab: as the teacher (load, next) or as a student of whichever tab sent the
 * start. One lesson at a time; a new start (from any tab) replaces the running one.
 */
export class Classroom {
  private running: Running | null = null;
  private early: { venue: ClassroomVenue; from: string; message: ClassroomMessage }[] = [];
  private readonly attached = new Map<ClassroomVenue, () => void>();

  constructor(private readonly publish: (event: LabEvent) => void) {}

  /** Listens for lessons on `venue`. Returns the detach function. */
  attach(venue: ClassroomVenue): () => void {
    const existing = this.attached.get(venue);
    if (existing) return existing;
    const unlisten = venue.channel.listen((from, message) => this.onMessage(venue, from, message));
    const detach = () => {
      unlisten();
      this.attached.delete(venue);
      if (this.running?.venue === venue) this.stop('the room was left');
    };
    this.attached.set(venue, detach);
    return detach;
  }

  /** Starts a lesson that this tab teaches, among the members of `venue` (a pipeline lesson runs `pipeline`'s schedule and micro-batches). */
  async load(venue: ClassroomVenue, topic: LessonTopic = 'ring', pipeline: PipelineLessonChoice = PIPELINE_LESSON): Promise<void> {
    const problem = topic === 'pipeline' ? pipelineLessonProblem(pipeline) : null;
    if (problem) throw new Error(problem);
    this.attach(venue);
    const members = await venue.members();
    if (members.length < 2) throw new Error('a lesson needs at least two tabs in the room: open the room link in another tab');
    const start: StartMessage = { kind: 'start', lesson: newLessonNumber(), teacher: venue.channel.selfId, members };
    if (topic === 'pipeline') Object.assign(start, { topic, pipeline: { schedule: pipeline.schedule, micro: pipeline.micro } });
    if (topic === 'tensor') start.topic = topic;
    for (const member of members) {
      if (member !== venue.channel.selfId) venue.channel.send(member, start);
    }
    this.begin(venue, start);
  }

  /** Teacher: releases one more step everywhere; resolves once every rank has reported it. */
  next(): Promise<void> {
    if (!this.running) return Promise.reject(new Error('no lesson loaded: load one first'));
    return this.running.lesson.next();
  }

  /** The lesson running on this tab, if any (tests, status). */
  current(): AnyLesson | null {
    return this.running?.lesson ?? null;
  }

  // --- messages ------------------------------------------------------------------------------------

  private onMessage(venue: ClassroomVenue, from: string, message: ClassroomMessage): void {
    const running = this.running;
    if (message.kind === 'start') {
      if (from !== message.teacher) return venue.channel.refuse(from, `classroom: ${from} started a lesson in the name of ${message.teacher}`);
      if (!message.members.includes(venue.channel.selfId)) return; // a lesson among other tabs
      if (running?.lesson.lesson === message.lesson) return;
      this.begin(venue, message);
      return;
    }
    if (!running || running.lesson.lesson !== message.lesson || running.venue !== venue) {
      // Possibly a lesson whose start has not reached this tab yet (another rank's link was faster).
      this.early.push({ venue, from, message });
      if (this.early.length > MAX_EARLY_MESSAGES) this.early.shift();
      return;
    }
    this.deliver(running, from, message);
  }

  private deliver(running: Running, from: string, message: ClassroomMessage): void {
    const { lesson, venue } = running;
    if (message.kind === 'release') {
      if (from !== lesson.teacher) return venue.channel.refuse(from, `classroom: ${from} released a step but does not teach the lesson`);
      lesson.release(message.step);
    } else if (message.kind === 'state' || message.kind === 'op') {
      const problem =
        message.kind === 'state' && lesson instanceof ClassroomLesson
          ? lesson.receiveState(from, message)
          : message.kind === 'op' && (lesson instanceof PipelineLesson || lesson instanceof TensorLesson)
            ? lesson.receiveOp(from, message)
            : `classroom: a ${message.kind} report does not belong to lesson ${lesson.lesson}`;
      if (problem) venue.channel.refuse(from, problem);
    }
  }

  private begin(venue: ClassroomVenue, start: StartMessage): void {
    this.stop(`lesson ${start.lesson} replaced it`);
    let lesson: AnyLesson;
    let done: () => void;
    try {
      const link = venue.transport(start.members);
      done = link.done;
      try {
        const common = { lesson: start.lesson, members: start.members, teacher: start.teacher, channel: venue.channel, transport: link.transport };
        lesson =
          start.topic === 'pipeline' && start.pipeline
            ? new PipelineLesson({ ...common, ...start.pipeline, publish: this.publish })
            : start.topic === 'tensor'
              ? new TensorLesson({ ...common, publish: this.publish })
              : new ClassroomLesson({ ...common, publishSnapshot: this.publish, publishChunk: this.publish });
      } catch (error) {
        link.done();
        throw error;
      }
    } catch (error) {
      this.log('error', `classroom: cannot join lesson ${start.lesson}: ${describe(error)}`);
      return;
    }
    const running: Running = { lesson, venue, done: once(done) };
    this.running = running;
    this.log('info', `classroom: lesson ${start.lesson} loaded (${start.members.length} ranks, this tab rank ${lesson.rank}${lesson.teaching ? ', teaching' : ''})`);
    lesson
      .run()
      .catch((error: unknown) => {
        if (!(error instanceof LessonAborted)) this.log('error', `classroom lesson ${start.lesson} failed: ${describe(error)}`);
      })
      .finally(() => running.done());
    const early = this.early.filter((e) => e.message.lesson === start.lesson && e.venue === venue);
    this.early = this.early.filter((e) => e.message.lesson !== start.lesson);
    for (const e of early) this.deliver(running, e.from, e.message);
  }

  private stop(reason: string): void {
    if (!this.running) return;
    this.running.lesson.abort(reason);
    this.running.done();
    this.running = null;
  }

  private log(level: 'info' | 'error', message: string): void {
    this.publish({ type: 'log', level, message, t: performance.now() });
  }
}

function newLessonNumber(): number {
  return 1 + Math.floor(Math.random() * 0x7ffffffe);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

// --- venues over the real mesh ------------------------------------------------------------------------

/** A training run's room: the lesson shares its mesh and its transport (same members, same ranks). */
export function trainingVenue(room: JoinedRoom): ClassroomVenue {
  return {
    channel: meshClassroomChannel(room.mesh),
    members: async () => room.members.slice(),
    transport(members) {
      if (members.length !== room.members.length || members.some((id, rank) => room.members[rank] !== id)) {
        throw new Error("the lesson's ranks are not this run's ranks");
      }
      return { transport: room.transport, done: () => undefined };
    },
  };
}

/** The classroom's own room next to a training room (see the header). */
export function standbyRoomName(room: string): string {
  return `${normalizeRoomName(room).slice(0, 26)}-class`;
}

/** How long the teacher's tab waits for the room's links before a lesson. */
const STANDBY_WAIT_MS = 20_000;

export interface StandbyVenue extends ClassroomVenue {
  readonly room: string;
  close(): void;
}

/**
 * Joins the standby room's mesh. The mesh reports refusals and its log on `bus`, but not its peer
 * table: the dashboard's peers and room code stay the training room's.
 */
export async function joinStandbyVenue(room: string, signal: string | undefined, bus: EventBus, expect: () => number): Promise<StandbyVenue> {
  const quiet = new EventBus();
  quiet.subscribe((event) => {
    if (event.type === 'refused' || event.type === 'log') bus.publish(event);
  });
  const name = standbyRoomName(room);
  const mesh = await openMesh({ room: name, signal, bus: quiet });
  return {
    room,
    channel: meshClassroomChannel(mesh),
    members: () => mesh.waitForRoom(Math.max(2, expect()), STANDBY_WAIT_MS),
    transport(members) {
      const transport = new DataChannelTransport(mesh, { members });
      return { transport, done: () => transport.close('the lesson is over') };
    },
    close: () => mesh.close(),
  };
}

// --- the controller's classroom member --------------------------------------------------------------

export interface LabClassroomDeps {
  /** A function, because the controller builds its classroom before its own fields are set. */
  bus(): EventBus;
  config(): LabConfig;
  /** The running session's room, once it has joined one. */
  trainingRoom(): JoinedRoom | null;
  /** Joins the standby room (injectable for tests). */
  joinStandby?: typeof joinStandbyVenue;
}

/**
 * `controller.classroom`: teaches over the training run's mesh when there is one, otherwise over the
 * standby mesh. Listens on both, so a tab follows a lesson from whichever room it comes.
 */
export class LabClassroom {
  private readonly classroom: Classroom;
  private training: { room: JoinedRoom; venue: ClassroomVenue; detach(): void } | null = null;
  private standby: Promise<StandbyVenue> | null = null;
  private standbyRoom: string | null = null;

  private listening = false;

  constructor(private readonly deps: LabClassroomDeps) {
    this.classroom = new Classroom((event) => deps.bus().publish(event));
  }

  /**
   * Starts hearing lessons: over the training run's mesh whenever a session has joined one, and over
   * the standby room when the page was opened on a room link without autostart (a training tab hears
   * lessons over its run's mesh instead). Call again after the room changes.
   */
  listen(): void {
    if (!this.listening) {
      this.listening = true;
      // A session joins its room while it runs: follow it (its state and peer events say when).
      this.deps.bus().subscribe((event) => {
        if (event.type === 'state' || event.type === 'peers') this.followTraining();
      });
    }
    const { room, autostart } = this.deps.config();
    if (room && !autostart) void this.joinStandby().catch((error: unknown) => this.log(`classroom: cannot join the room: ${describe(error)}`));
  }

  load = async (topic: LessonTopic = 'ring', pipeline?: PipelineLessonChoice): Promise<void> => {
    this.followTraining();
    const venue = this.training?.venue ?? (await this.joinStandby());
    await this.classroom.load(venue, topic, pipeline);
  };

  next = (): Promise<void> => this.classroom.next();

  private followTraining(): void {
    const room = this.deps.trainingRoom();
    if (room === (this.training?.room ?? null)) return;
    this.training?.detach();
    this.training = null;
    if (!room) return;
    const venue = trainingVenue(room);
    this.training = { room, venue, detach: this.classroom.attach(venue) };
  }

  private joinStandby(): Promise<StandbyVenue> {
    const { room, signal } = this.deps.config();
    if (!room) return Promise.reject(new Error('join or create a room first: a lesson runs among the tabs of a room'));
    if (this.standby && this.standbyRoom === room) return this.standby;
    // The room changed: leave the old standby room.
    void this.standby?.then((venue) => venue.close()).catch(() => undefined);
    this.standbyRoom = room;
    const join = this.deps.joinStandby ?? joinStandbyVenue;
    const joining = join(room, signal || undefined, this.deps.bus(), () => this.deps.config().world).then((venue) => {
      const detach = this.classroom.attach(venue);
      const close = venue.close;
      return Object.assign(venue, {
        close: () => {
          detach();
          close();
        },
      });
    });
    joining.catch(() => {
      if (this.standby === joining) this.standby = null;
    });
    this.standby = joining;
    return joining;
  }

  private log(message: string): void {
    this.deps.bus().publish({ type: 'log', level: 'error', message, t: performance.now() });
  }
}
