import type { ConfigurationRecord } from '../model/configuration.ts';
import type { ImageManifest, ImageRecord } from '../model/image.ts';
import { readManifest } from '../images/manifest.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { AutomationStore } from '../../ports/automation-store.ts';
import { AUTOMATION_METADATA_KEY, AUTOMATION_TAG, FINGERPRINT_METADATA_KEY } from './fingerprint.ts';

/** What plans read (they never write). */
export type EvaluationPorts = Pick<AppPorts, 'sessions' | 'configurations' | 'images' | 'artifacts' | 'git' | 'clock'> & {
  /** `RUNNER_VERSION`: part of every fingerprint. */
  runnerVersion: string;
};

/** What the trigger touches: the plans' reads, plus the automations (history) and the workflow (sessions it starts). */
export type TriggerPorts = EvaluationPorts & Pick<AppPorts, 'workflow'> & { automations: AutomationStore };

/**
 * One evaluation (a schedule tick, an event, a plan): every read it makes is made once and
 * shared by all the automations it evaluates. Above all `git ls-remote` runs once per distinct
 * repository and branch, however many configurations and automations name them, and the image
 * listing (source selection and the fingerprint lookup alike) is one read of the registry.
 * Promises are cached, not values, so automations evaluated at once share calls in flight.
 */
export class Evaluation {
  /** How many branch resolutions reached git (the benchmark reports it). */
  gitCalls = 0;
  private readonly branches = new Map<string, Promise<string>>();
  private readonly configurations = new Map<string, Promise<ConfigurationRecord | undefined>>();
  private readonly manifests = new Map<string, Promise<ImageManifest | undefined>>();
  private readonly sessionTags = new Map<string, Promise<Record<string, string> | undefined>>();
  private imageList?: Promise<ImageRecord[]>;
  private imageIndex?: Promise<Map<string, ImageRecord>>;
  private fingerprintIndex?: Promise<Map<string, ImageRecord[]>>;

  constructor(readonly ports: EvaluationPorts) {}

  /** The branch's current commit (one `git ls-remote` per repository and branch per evaluation). */
  resolveBranch(cloneUrl: string, branch: string): Promise<string> {
    const key = `${cloneUrl}\u0000${branch}`;
    let pending = this.branches.get(key);
    if (!pending) {
      this.gitCalls++;
      pending = this.ports.git.resolveBranch(cloneUrl, branch);
      this.branches.set(key, pending);
    }
    return pending;
  }

  configuration(name: string): Promise<ConfigurationRecord | undefined> {
    let pending = this.configurations.get(name);
    if (!pending) {
      pending = this.ports.configurations.get(name);
      this.configurations.set(name, pending);
    }
    return pending;
  }

  /** Every image record, read once per evaluation (one Query of the image list partition). */
  images(): Promise<ImageRecord[]> {
    this.imageList ??= this.ports.images.list();
    return this.imageList;
  }

  /**
   * Result images by input fingerprint: the images whose metadata carries `fingerprint`. Served
   * from the one image listing of this evaluation, indexed in memory (see table-schema.ts).
   */
  async imagesWithFingerprint(fingerprint: string): Promise<ImageRecord[]> {
    this.fingerprintIndex ??= this.images().then((images) => {
      const index = new Map<string, ImageRecord[]>();
      for (const image of images) {
        const value = image.metadata?.[FINGERPRINT_METADATA_KEY];
        if (value) index.set(value, [...(index.get(value) ?? []), image]);
      }
      return index;
    });
    return (await this.fingerprintIndex).get(fingerprint) ?? [];
  }

  manifest(image: ImageRecord): Promise<ImageManifest | undefined> {
    let pending = this.manifests.get(image.id);
    if (!pending) {
      pending = readManifest(this.ports.artifacts, image);
      this.manifests.set(image.id, pending);
    }
    return pending;
  }

  /** A session's tags, or undefined when it no longer exists. */
  tagsOfSession(name: string): Promise<Record<string, string> | undefined> {
    let pending = this.sessionTags.get(name);
    if (!pending) {
      pending = this.ports.sessions.get(name).then((session) => session?.tags);
      this.sessionTags.set(name, pending);
    }
    return pending;
  }

  /**
   * Which automation made `image`: its own mark (`cfs_automation`), else the automation tag of
   * the session named in its lineage (`cfs_session`); undefined for any other image.
   */
  async madeBy(image: Pick<ImageRecord, 'metadata'>): Promise<string | undefined> {
    const metadata = image.metadata ?? {};
    const marked = metadata[AUTOMATION_METADATA_KEY];
    if (marked !== undefined) return marked;
    const session = metadata.cfs_session;
    return session ? (await this.tagsOfSession(session))?.[AUTOMATION_TAG] : undefined;
  }

  /**
   * Why `image` may not be a source of `automation` (undefined when it may). The loop guard: an
   * image this automation made, or one made from such an image further down its lineage
   * (`cfs_source_image_id`), never is, so no two automations can feed each other's results back
   * and forth. Results of other automations are sources only where the automation asks for them
   * (`source.include_automation_results`): by default a pattern such as `compute-base-*` also
   * matches `compute-base-1_uan`, another automation's result, which is not meant as a base.
   */
  async sourceProblem(image: ImageRecord, automation: { name: string; source: { include_automation_results?: boolean } }): Promise<string | undefined> {
    const named = `image '${image.name}' (${image.id})`;
    const maker = await this.madeBy(image);
    if (maker === automation.name) return `loop guard: ${named} was made by this automation, and its own results never trigger it`;
    if (maker !== undefined && !automation.source.include_automation_results) {
      return `${named} was made by automation '${maker}'; results of other automations are sources only with source.include_automation_results`;
    }
    this.imageIndex ??= this.images().then((images) => new Map(images.map((i) => [i.id, i])));
    const byId = await this.imageIndex;
    let current: ImageRecord | undefined = image;
    for (let depth = 0; depth < 32 && current; depth++) {
      const parentId: string | undefined = current.metadata?.cfs_source_image_id;
      current = parentId ? (byId.get(parentId) ?? (await this.ports.images.get(parentId))) : undefined;
      if (current && (await this.madeBy(current)) === automation.name) {
        return `loop guard: ${named} was made from '${current.name}' (${current.id}), a result of this automation`;
      }
    }
    return undefined;
  }
}
