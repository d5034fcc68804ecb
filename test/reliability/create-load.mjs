// Session creates at full speed for a while, from a process of its own so the load generator
// does not share the server's thread: `node create-load.mjs <api url> <image id> <seconds> <connections>`.
// Prints one JSON line: creates per second, status counts, latency percentiles (ms), names used.
import autocannon from 'autocannon';

const [url, imageId, seconds, connections] = process.argv.slice(2);
let next = 0;
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'POST',
      path: '/apis/cfs/v3/sessions',
      // The server's token, as the load test's parent passes it (every request needs it).
      headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.CFS_API_TOKEN}` },
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({
          name: `rate-${next++}`,
          configuration_name: 'rate',
          target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] },
        }),
      }),
    },
  ],
});
const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count]));
console.log(
  JSON.stringify({
    sent: next,
    completed: result.requests.total,
    perSecond: result.requests.total / result.duration,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  }),
);
