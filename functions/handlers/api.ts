import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { awsRoot } from '../adapters/aws/index.ts';
import { createApp } from '../api/app.ts';
import type { AppPorts } from '../ports/index.ts';

/** The API Gateway (REST, proxy integration) entry point of an app built on `ports`. */
export function apiHandler(ports: () => AppPorts) {
  let serve: ReturnType<typeof handle> | undefined;
  return (event: LambdaEvent, context?: LambdaContext) => {
    // The same app as the embedded server, built once per instance on the AWS ports.
    serve ??= handle(createApp(ports()));
    return serve(event, context);
  };
}

// Only the API arms and disarms automation schedules, so only its bundle carries the Scheduler client.
export const handler = apiHandler(() => awsRoot({ scheduler: () => new SchedulerClient({}) }).appPorts());
