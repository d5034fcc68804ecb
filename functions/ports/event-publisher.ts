/** A product event, shaped as an EventBridge entry. */
export interface ProductEvent {
  source: 'cfs.ims' | 'cfs.sessions';
  detailType: 'Image Registered' | 'Session Completed';
  detail: Record<string, unknown>;
}

/** Publishes product events (EventBridge in AWS, an in-process bus locally). */
export interface EventPublisher {
  publish(event: ProductEvent): Promise<void>;
}
