import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeEventPublisher } from '../../functions/adapters/aws/eventbridge-event-publisher.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';

const registered: ProductEvent = { source: 'cfs.ims', detailType: 'Image Registered', detail: { id: 'img-1', name: 'base', arch: 'x86_64', metadata: {} } };

describe('EventBridgeEventPublisher', () => {
  const events = mockClient(EventBridgeClient);
  const publisher = new EventBridgeEventPublisher(new EventBridgeClient({ region: 'eu-west-1' }), 'cfs-events');
  beforeEach(() => events.reset());
  afterAll(() => events.restore());

  it('puts the event on the named bus with its source, detail type and JSON detail', async () => {
    // Arrange
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    // Act
    await publisher.publish(registered);
    // Assert
    expect(events.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries).toEqual([
      { EventBusName: 'cfs-events', Source: 'cfs.ims', DetailType: 'Image Registered', Detail: JSON.stringify(registered.detail) },
    ]);
  });

  it('fails with a TransientError when EventBridge drops the entry for throttling (the call itself answers 200)', async () => {
    // Arrange
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] });
    // Act
    const publishing = publisher.publish(registered);
    // Assert
    await expect(publishing).rejects.toMatchObject({ name: 'TransientError', message: expect.stringContaining('ThrottlingException') });
  });

  it('fails with a plain error naming the code when the entry is refused for good', async () => {
    // Arrange
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed' }] });
    // Act
    const publishing = publisher.publish(registered);
    // Assert
    await expect(publishing).rejects.toThrow(/MalformedDetail \(Detail is malformed\)/);
    await expect(publishing).rejects.not.toMatchObject({ name: 'TransientError' });
  });

  it('turns a service fault of the call into a TransientError', async () => {
    // Arrange
    events.on(PutEventsCommand).rejects(Object.assign(new Error('internal'), { name: 'InternalException', $metadata: { httpStatusCode: 500 } }));
    // Act
    const publishing = publisher.publish(registered);
    // Assert
    await expect(publishing).rejects.toMatchObject({ name: 'TransientError' });
  });

  it('lets an authorization failure through unchanged', async () => {
    // Arrange
    events.on(PutEventsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
    // Act
    const publishing = publisher.publish(registered);
    // Assert
    await expect(publishing).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});
