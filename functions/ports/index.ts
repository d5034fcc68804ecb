import type { ArtifactStore } from './artifact-store.ts';
import type { AutomationScheduleSync, AutomationStore } from './automation-store.ts';
import type { Clock } from './clock.ts';
import type { ConfigurationStore } from './configuration-store.ts';
import type { EventPublisher } from './event-publisher.ts';
import type { GitResolver } from './git-resolver.ts';
import type { ImageRegistry } from './image-registry.ts';
import type { OptionsStore } from './options-store.ts';
import type { SessionStore } from './session-store.ts';
import type { SourceSecretStore, SourceStore } from './source-store.ts';
import type { WorkflowStarter } from './workflow-starter.ts';

/**
 * Everything the API app and the use cases need from the outside world. Built by exactly two
 * composition roots: `functions/server/embedded-runtime.ts` (one machine) and
 * `functions/adapters/aws/index.ts` (AWS).
 */
export interface AppPorts {
  sessions: SessionStore;
  configurations: ConfigurationStore;
  images: ImageRegistry;
  artifacts: ArtifactStore;
  workflow: WorkflowStarter;
  events: EventPublisher;
  git: GitResolver;
  clock: Clock;
  /** The service options (page size, image waits, compression, clone URL schemes, ...). */
  options: OptionsStore;
  /** Automations (their routes answer 501 where a composition root does not provide them). */
  automations?: AutomationStore;
  /** Arms and disarms the runtime's schedules as automations are stored and deleted. */
  automationSchedules?: AutomationScheduleSync;
  /** CFS v3 sources and their credentials (their routes answer 501 where a composition root does not provide them). */
  sources?: SourceStore;
  sourceSecrets?: SourceSecretStore;
}

export type { ArtifactStore, AutomationScheduleSync, AutomationStore, Clock, ConfigurationStore, EventPublisher, GitResolver, ImageRegistry, OptionsStore, SessionStore, SourceSecretStore, SourceStore, WorkflowStarter };
