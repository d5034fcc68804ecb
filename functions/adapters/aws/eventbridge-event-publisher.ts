import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { TransientError } from '../../core/errors.ts';
import type { EventPublisher, ProductEvent } from '../../ports/event-publisher.ts';
import { rethrowSdkError } from './sdk-errors.ts';

const TRANSIENT = new Set(['ThrottlingException', 'InternalFailure', 'InternalException', 'ServiceUnavailable', 'TimeoutError']);

/**
 * Publishes product events (`Image Registered`, `Session Completed`) to an EventBridge bus.
 * PutEvents answers 200 even when it drops an entry, so the per-entry result is checked: a
 * publish either lands on the bus or throws (TransientError when a retry can help), because the
 * image rule relies on a failed announcement being retried.
 */
export class EventBridgeEventPublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async publish(event: ProductEvent): Promise<void> {
    let out;
    try {
      out = await this.client.send(
        new PutEventsCommand({
          Entries: [{ EventBusName: this.busName, Source: event.source, DetailType: event.detailType, Detail: JSON.stringify(event.detail) }],
        }),
      );
    } catch (error) {
      rethrowSdkError(error, TRANSIENT, 'event bus', `publishing '${event.detailType}'`);
    }
    const entry = out.Entries?.[0];
    if (!out.FailedEntryCount && entry?.EventId) return;
    const code = entry?.ErrorCode ?? 'unknown';
    const message = `EventBridge did not accept '${event.detailType}' on bus ${this.busName}: ${code}${entry?.ErrorMessage ? ` (${entry.ErrorMessage})` : ''}`;
    // Anything else (an oversized detail, a missing bus) is not fixed by a retry.
    throw TRANSIENT.has(code) ? new TransientError(message) : new Error(message);
  }
}
