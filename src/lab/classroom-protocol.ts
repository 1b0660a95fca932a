// What the tabs of a room say to each other to hold a classroom lesson together. The lesson's numbers
// move as ordinary data frames of a ring all-reduce; these small messages only coordinate it, and
// travel as the mesh's control frames (frame.ts type 'control') with a JSON payload:
//   start   the teacher's tab opens lesson L among these members (rank order)
//   release the teacher lets every rank run schedule steps up to `step`
//   state   a rank reports the vector it really holds after `step` steps (and what it just received),
//           so that every tab can show every rank's real numbers
//   op      (pipeline lessons, pipeline-lesson.ts) a stage reports the op it just ran as lesson step
//           `step` and the tensors it really computed, sent or received; step 0 is its setup
//           (tensor lessons, tensor-class-lesson.ts, the same with their own op kinds)
// Everything that arrives is validated here: a malformed message is refused with a reason, never
// trusted and never thrown.
import { NO_RANK, encodeFrame, type Frame } from '../peer/frame';
import type { MeshLinks } from '../peer/datachannel-transport';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isObject, type Decoded } from '../peer/json-message';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { PIPELINE_SCHEDULES, type PipelineOpKind, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import { TENSOR_LESSON_OPS, type TensorLessonOpKind } from '../shared/events';

/**
 * Collective id of lesson all-reduces and of classroom control frames: an id of its own
 * (src/collective/collective-ids.ts), so a lesson's tags never meet a run's on the same mesh.
 */
export const CLASSROOM_COLLECTIVE = COLLECTIVE_IDS.classroomLesson.first;

/** Bounds that keep a hostile or confused peer from making a tab allocate much. */
const MAX_MEMBERS = 64;
const MAX_VALUES = 1024;
const MAX_STEP = 4096;
const MAX_PEER_ID = 128;
const MAX_TENSORS = 8;
const MAX_NAME = 40;
const OP_KINDS: readonly LessonOpKind[] = ['forward', 'backward', 'send-activation', 'recv-activation', 'send-grad', 'recv-grad', ...TENSOR_LESSON_OPS];

/** What an op report may name: a pipeline op, or a tensor lesson's op (micro-batch 0). */
export type LessonOpKind = PipelineOpKind | TensorLessonOpKind;

export interface StartMessage {
  kind: 'start';
  lesson: number;
  /** The peer id of the tab that leads the lesson (its Next releases the steps). */
  teacher: string;
  /** Peer ids in rank order: the lesson's ring (or the pipeline's stages). */
  members: string[];
  /** What the lesson runs: a ring all-reduce (the default) or a pipeline schedule. */
  topic?: LessonTopic;
  /** Pipeline lessons: the schedule and its micro-batches. */
  pipeline?: { schedule: PipelineScheduleKind; micro: number };
}

export type LessonTopic = 'ring' | 'pipeline' | 'tensor';

/** Most micro-batches a pipeline lesson steps through (each is several clicks on every stage). */
export const MAX_LESSON_MICRO = 8;

/** One named tensor of a pipeline lesson report, as the stage held it. */
export interface LessonTensor {
  name: string;
  values: number[];
  /** A matrix's row length (values are row-major); absent for a vector. */
  cols?: number;
}

export interface OpMessage {
  kind: 'op';
  lesson: number;
  /** Lesson step: 0 is the stage's setup, k >= 1 the k-th op of the whole pipeline. */
  step: number;
  /** The stage (= rank) reporting. */
  rank: number;
  op?: { kind: LessonOpKind; micro: number; peer?: number };
  tensors: LessonTensor[];
}

export interface ReleaseMessage {
  kind: 'release';
  lesson: number;
  /** Ranks may complete schedule steps 1..step (snapshot `step` is the state after them). */
  step: number;
}

export interface StateMessage {
  kind: 'state';
  lesson: number;
  step: number;
  rank: number;
  values: number[];
  received?: { chunk: number; from: number; values: number[] };
}

export type ClassroomMessage = StartMessage | ReleaseMessage | StateMessage | OpMessage;

export function encodeClassroomMessage(message: ClassroomMessage): Uint8Array {
  return encodeJsonMessage(message);
}

/** The message in `bytes`, or `{ error }` saying why it is not one. Never throws. */
export function decodeClassroomMessage(bytes: Uint8Array): Decoded<ClassroomMessage> {
  return decodeJsonMessage(bytes, 'classroom message', checkMessage);
}

export const isMessageError = isDecodeError<ClassroomMessage>;

const isCount = (x: unknown, max: number): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max;
const isLessonId = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) > 0 && (x as number) <= 0xffffffff;
const isNumbers = (x: unknown): boolean => Array.isArray(x) && x.length <= MAX_VALUES && x.every((v) => typeof v === 'number' && Number.isFinite(v));

function checkMessage(m: unknown): string | null {
  if (!isObject(m)) return 'not an object';
  if (!isLessonId(m.lesson)) return `bad lesson number ${String(m.lesson)}`;
  switch (m.kind) {
    case 'start': {
      if (typeof m.teacher !== 'string' || m.teacher.length === 0 || m.teacher.length > MAX_PEER_ID) return 'bad teacher id';
      const members = m.members;
      if (!Array.isArray(members) || members.length < 1 || members.length > MAX_MEMBERS) return 'bad member list';
      if (!members.every((id) => typeof id === 'string' && id.length > 0 && id.length <= MAX_PEER_ID)) return 'bad member id';
      if (new Set(members).size !== members.length) return 'a member is listed twice';
      if (!members.includes(m.teacher)) return 'the teacher is not a member';
      if (m.topic === undefined || m.topic === 'ring') return m.pipeline === undefined ? null : 'pipeline settings in a ring lesson';
      if (m.topic === 'tensor') return m.pipeline === undefined ? null : 'pipeline settings in a tensor lesson';
      if (m.topic !== 'pipeline') return `unknown lesson topic ${JSON.stringify(m.topic)}`;
      const p = m.pipeline;
      if (!isObject(p) || !PIPELINE_SCHEDULES.includes(p.schedule as PipelineScheduleKind)) return 'bad pipeline schedule';
      return isCount(p.micro, MAX_LESSON_MICRO) && (p.micro as number) >= 1 ? null : `bad micro-batch count ${String(p.micro)}`;
    }
    case 'op': {
      if (!isCount(m.step, MAX_STEP)) return `bad step ${String(m.step)}`;
      if (!isCount(m.rank, MAX_MEMBERS - 1)) return `bad rank ${String(m.rank)}`;
      const tensors = m.tensors;
      if (!Array.isArray(tensors) || tensors.length > MAX_TENSORS) return 'bad tensor list';
      for (const t of tensors) {
        if (!isObject(t) || typeof t.name !== 'string' || t.name.length === 0 || t.name.length > MAX_NAME) return 'bad tensor name';
        if (!isNumbers(t.values)) return 'tensor values are not a list of finite numbers';
        if (t.cols !== undefined && (!isCount(t.cols, MAX_VALUES) || t.cols === 0 || (t.values as number[]).length % (t.cols as number) !== 0)) return 'bad tensor row length';
      }
      if (m.op === undefined) return m.step === 0 ? null : 'an op report without its op';
      const op = m.op;
      if (!isObject(op) || !OP_KINDS.includes(op.kind as LessonOpKind) || !isCount(op.micro, MAX_LESSON_MICRO - 1)) return 'bad op';
      return op.peer === undefined || isCount(op.peer, MAX_MEMBERS - 1) ? null : 'bad op peer';
    }
    case 'release':
      return isCount(m.step, MAX_STEP) && (m.step as number) >= 1 ? null : `bad step ${String(m.step)}`;
    case 'state': {
      if (!isCount(m.step, MAX_STEP)) return `bad step ${String(m.step)}`;
      if (!isCount(m.rank, MAX_MEMBERS - 1)) return `bad rank ${String(m.rank)}`;
      if (!isNumbers(m.values)) return 'values are not a list of finite numbers';
      if (m.received === undefined) return null;
      const r = m.received;
      if (!isObject(r) || !isCount(r.chunk, MAX_MEMBERS - 1) || !isCount(r.from, MAX_MEMBERS - 1) || !isNumbers(r.values)) {
        return 'bad received chunk';
      }
      return null;
    }
    default:
      return `unknown kind ${JSON.stringify(m.kind)}`;
  }
}

/** How the classroom talks to the other tabs of a room: by peer id, one message at a time. */
export interface ClassroomChannel {
  readonly selfId: string;
  /** Sends to one peer. Throws when there is no open link to it. */
  send(to: string, message: ClassroomMessage): void;
  /** Hears every valid classroom message; returns the unsubscribe function. */
  listen(handler: (from: string, message: ClassroomMessage) => void): () => void;
  /** Reports a message that arrived but cannot be used (shown on the dashboard). */
  refuse(from: string, reason: string): void;
}

/** The classroom channel over a room's mesh: control frames with the classroom's collective id. */
export function meshClassroomChannel(mesh: Pick<MeshLinks, 'peerId' | 'roomHash' | 'on' | 'sendRaw' | 'refuse'>): ClassroomChannel {
  return {
    selfId: mesh.peerId,
    send(to, message) {
      const header = { type: 'control' as const, roomHash: mesh.roomHash, round: message.lesson, collective: CLASSROOM_COLLECTIVE, chunk: 0, sender: NO_RANK, part: 0, parts: 1 };
      mesh.sendRaw(to, encodeFrame(header, encodeClassroomMessage(message)));
    },
    listen(handler) {
      return mesh.on({
        frame: (peerId: string, frame: Frame) => {
          if (frame.type !== 'control' || frame.collective !== CLASSROOM_COLLECTIVE) return;
          const message = decodeClassroomMessage(frame.payload);
          if (isMessageError(message)) return mesh.refuse(peerId, message.error);
          if (message.lesson !== frame.round) return mesh.refuse(peerId, 'classroom message: lesson and frame round differ');
          handler(peerId, message);
        },
      });
    },
    refuse: (from, reason) => mesh.refuse(from, reason),
  };
}
