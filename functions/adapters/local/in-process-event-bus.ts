import { randomUUID } from 'node:crypto';
import type { EventPublisher, ProductEvent } from '../../ports/event-publisher.ts';

/** An event as a subscriber receives it: the published event plus an id and time, as EventBridge adds. */
export interface DeliveredEvent extends ProductEvent {
  id: string;
  time: string;
}

export type EventHandler = (event: DeliveredEvent) => void | Promise<void>;

/**
 * The embedded runtime's event bus (EventBridge's stand-in on one machine): `publish` returns
 * once the event is queued, and each subscriber of the event's detail type runs on its own,
 * later, like an EventBridge target. A subscriber that throws is logged and never affects the
 * publisher or the other subscribers.
 */
export class InProcessEventBus implements EventPublisher {
  private readonly handlers = new Map<string, Set<EventHandler>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly log: (message: string, error: unknown) => void = (message, error) => console.error(message, error)) {}

  /** Calls `handler` for every event of `detailType` published from now on; returns the unsubscribe function. */
  subscribe(detailType: ProductEvent['detailType'], handler: EventHandler): () => void {
    const set = this.handlers.get(detailType) ?? new Set<EventHandler>();
    set.add(handler);
    this.handlers.set(detailType, set);
    return () => set.delete(handler);
  }

  async publish(event: ProductEvent): Promise<void> {
    const delivered: DeliveredEvent = { ...event, id: randomUUID(), time: new Date().toISOString() };
    for (const handler of this.handlers.get(event.detailType) ?? []) {
      const run = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => handler(structuredClone(delivered)))
        .catch((error: unknown) => this.log(`event handler for '${event.detailType}' failed`, error))
        .finally(() => this.inFlight.delete(run));
      this.inFlight.add(run);
    }
  }

  /** Resolves once every delivery started so far has finished (tests and shutdown wait on it). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }
}
