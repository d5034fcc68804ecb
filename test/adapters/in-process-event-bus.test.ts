import { describe, expect, it } from 'vitest';
import { InProcessEventBus, type DeliveredEvent } from '../../functions/adapters/local/in-process-event-bus.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';

const registered: ProductEvent = { source: 'cfs.ims', detailType: 'Image Registered', detail: { id: 'i', name: 'n', arch: 'x86_64', metadata: {} } };

describe('InProcessEventBus', () => {
  it('delivers an event to the subscribers of its detail type only, after publish returns, with an id and time', async () => {
    // Arrange
    const bus = new InProcessEventBus();
    const received: DeliveredEvent[] = [];
    const other: DeliveredEvent[] = [];
    bus.subscribe('Image Registered', (event) => void received.push(event));
    bus.subscribe('Session Completed', (event) => void other.push(event));
    // Act
    await bus.publish(registered);
    const deliveredBeforeIdle = received.length;
    await bus.idle();
    // Assert
    expect(deliveredBeforeIdle).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ ...registered, id: expect.any(String), time: expect.stringMatching(/Z$/) });
    expect(other).toHaveLength(0);
  });

  it('logs a failing subscriber and still delivers to the others without failing the publisher', async () => {
    // Arrange
    const logged: string[] = [];
    const bus = new InProcessEventBus((message) => logged.push(message));
    const received: string[] = [];
    bus.subscribe('Image Registered', () => {
      throw new Error('handler broke');
    });
    bus.subscribe('Image Registered', async () => Promise.reject(new Error('async handler broke')));
    bus.subscribe('Image Registered', (event) => void received.push(event.detail.id as string));
    // Act
    await bus.publish(registered);
    await bus.idle();
    // Assert
    expect(received).toEqual(['i']);
    expect(logged).toEqual(["event handler for 'Image Registered' failed", "event handler for 'Image Registered' failed"]);
  });

  it('gives each subscriber its own copy and stops delivering after unsubscribe', async () => {
    // Arrange
    const bus = new InProcessEventBus();
    const seen: unknown[] = [];
    const unsubscribe = bus.subscribe('Image Registered', (event) => {
      event.detail.name = 'mutated';
    });
    bus.subscribe('Image Registered', (event) => void seen.push(event.detail.name));
    // Act
    await bus.publish(registered);
    await bus.idle();
    unsubscribe();
    await bus.publish(registered);
    await bus.idle();
    // Assert
    expect(seen).toEqual(['n', 'n']);
    expect(registered.detail.name).toBe('n');
  });
});
