import type { ArtifactStore } from '../ports/artifact-store.ts';
import type { Clock } from '../ports/clock.ts';
import type { EventPublisher } from '../ports/event-publisher.ts';
import type { ImageRegistry } from '../ports/image-registry.ts';
import type { SessionStore } from '../ports/session-store.ts';
import type { SourceAccessIssuer } from '../ports/source-access.ts';
import type { SourceStore } from '../ports/source-store.ts';

/** Settings the control-plane steps read (from the options in the store, or defaults). */
export interface WorkflowSettings {
  /** How long a session waits for its source images before it fails. */
  imageWaitTimeoutSeconds: number;
  /** How often a waiting session re-checks when no Image Registered event wakes it. */
  imagePollIntervalSeconds: number;
  /** The runner's whole budget (staging, every layer, packaging). */
  runnerTimeoutSeconds: number;
  squashfs: { compressor: 'source' | 'gzip' | 'xz' | 'lzo' | 'lz4' | 'zstd'; level?: number };
  allowedCloneSchemes: string[];
  /** `debug_wait_time`: how long a failed session with `debug_on_failure` keeps its workspace (0: not at all; default 3600). */
  debugWaitSeconds?: number;
  /** `session_ttl`: how long a completed session (record and logs) is kept; 0 keeps it for ever (default 7 days). */
  sessionTtlSeconds?: number;
  /**
   * Embedded engine: how long a runner told to stop (a session deleted, the server stopping) may
   * take after SIGTERM before its process group is killed (default 30 s). In AWS the runner task
   * definition's stop timeout does this (ECS sends SIGKILL after it).
   */
  runnerStopGraceSeconds?: number;
  /**
   * The layer cache (issue 19), from the settings `layer_cache`, `layer_cache_max_age_seconds` and
   * `layer_cache_max_bytes` (null: the deployment's cap, e.g. 10% of the embedded server's data
   * directory's filesystem). Absent: on, 7 days, the deployment's cap.
   */
  layerCache?: LayerCacheSettings;
}

export interface LayerCacheSettings {
  enabled: boolean;
  maxAgeSeconds: number;
  maxBytes: number | null;
}

export const DEFAULT_LAYER_CACHE_SETTINGS: LayerCacheSettings = { enabled: true, maxAgeSeconds: 7 * 86_400, maxBytes: null };

export const DEFAULT_WORKFLOW_SETTINGS: WorkflowSettings = {
  imageWaitTimeoutSeconds: 3600,
  imagePollIntervalSeconds: 30,
  runnerTimeoutSeconds: 4 * 3600,
  squashfs: { compressor: 'source' },
  allowedCloneSchemes: ['https', 'ssh', 'file'],
  debugWaitSeconds: 3600,
  sessionTtlSeconds: 7 * 86_400,
  runnerStopGraceSeconds: 30,
  layerCache: DEFAULT_LAYER_CACHE_SETTINGS,
};

/** What every control-plane step receives from a composition root (Lambda or the embedded engine). */
export interface StepPorts {
  sessions: SessionStore;
  images: ImageRegistry;
  artifacts: ArtifactStore;
  events: EventPublisher;
  clock: Clock;
  /** CFS v3 sources: render-inventory names a source-backed layer's secret and CA bundle to the runner. */
  sources?: SourceStore;
  /** AWS only: render-inventory leaves the runner credentials that read just its session's sources' secrets. */
  sourceAccess?: SourceAccessIssuer;
  /** The settings in force, read at each call (from the options in the store, the root's settings as defaults), so a PATCH of the options takes effect for the next step. */
  settings: () => Promise<WorkflowSettings>;
}
