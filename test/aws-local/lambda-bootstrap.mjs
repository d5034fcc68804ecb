// One Lambda invocation in a process of its own, as Lambda's Node.js runtime runs it: imports the
// handler module from the function's code directory, calls the exported handler with the event
// and a context, and reports the result, or the runtime's error shape {errorType, errorMessage, trace}.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [codeDir, handlerSpec, functionName, functionArn, memory, timeoutSeconds, requestId] = process.argv.slice(2);
const dot = handlerSpec.lastIndexOf('.');
const deadline = Date.now() + Number(timeoutSeconds) * 1000;

const report = (message) =>
  new Promise((resolve) => {
    process.send(message, () => resolve());
  });

function errorShape(error) {
  if (error instanceof Error) return { errorType: error.name, errorMessage: error.message, trace: String(error.stack ?? '').split('\n') };
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

process.once('message', async (event) => {
  try {
    const module = await import(pathToFileURL(join(codeDir, `${handlerSpec.slice(0, dot)}.mjs`)).href);
    const handler = module[handlerSpec.slice(dot + 1)];
    if (typeof handler !== 'function') throw Object.assign(new Error(`${handlerSpec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
    const context = {
      functionName,
      functionVersion: '$LATEST',
      invokedFunctionArn: functionArn,
      memoryLimitInMB: memory,
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${functionName}`,
      logStreamName: requestId,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    const result = await handler(event, context);
    await report({ ok: true, payload: result === undefined ? null : result });
  } catch (error) {
    await report({ ok: false, payload: errorShape(error) });
  }
  process.exit(0);
});
