// Which run loop a config gets: session.ts for runs whose tabs hold the whole model (one tab, data
// parallelism, the parameter server, ZeRO; elastic), partitioned-session.ts for runs that split the
// model across tabs, with the kind that splits it (partitioned-run.ts). The controller (and so
// `window.lab`) sees either through TrainingSession, the surface both share.
import type { LabConfig } from './config';
import type { StagedCheckpoint } from './checkpoint-keeper';
import { EXPERT_RUN_KIND } from './expert-run';
import { PartitionedSession } from './partitioned-session';
import type { PartitionedRunKind } from './partitioned-run';
import { PIPELINE_RUN_KIND } from './pipeline-run';
import { LabSession, type SessionEnv } from './session';
import { TENSOR_RUN_KIND } from './tensor-run';

export type TrainingSession = Pick<
  LabSession,
  'status' | 'metrics' | 'logLines' | 'pause' | 'resume' | 'params' | 'paramsHash' | 'checkpoint' | 'checkpointKey' | 'refusalStats' | 'joinedRoom' | 'start' | 'dispose'
> & {
  fuzzAsMember: LabSession['fuzzAsMember'] | PartitionedSession['fuzzAsMember'];
  exportModel: LabSession['exportModel'] | PartitionedSession['exportModel'];
};

/** The partitioned kind the config asks for, or null (the model is whole on every tab). */
export function partitionedKindOf(config: LabConfig): PartitionedRunKind | null {
  if (config.pipeline > 1) return PIPELINE_RUN_KIND;
  if (config.tensor > 1) return TENSOR_RUN_KIND;
  if (config.experts > 1 && config.room !== '') return EXPERT_RUN_KIND;
  return null;
}

export function createSession(config: LabConfig, env: SessionEnv, staged?: StagedCheckpoint): TrainingSession {
  const kind = partitionedKindOf(config);
  return kind ? new PartitionedSession(config, env, kind, staged) : new LabSession(config, env, staged);
}
