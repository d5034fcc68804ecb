// One session: what it targets, its steps as a timeline, each layer's log and each image's test
// logs (followed while they grow), its result images and why it failed. Polls the session until
// it completes.
import { ApiError, getJson, listImages, poll, pollInterval } from './api.js';
import { badge, durationBetween, formatDuration, h, imageHref, sessionState, timeEl } from './dom.js';
import { cachedFromText, changesSummaryText, packageChangeText, stepDurationMs, stepLabel, testLogTitle } from './steps.js';

/** A link to an image showing its name when known, its id always. */
function imageLink(id, names) {
  const name = names.get(id);
  return h('a', { href: imageHref(id) }, name ? `${name} ` : '', h('code', {}, id));
}

function facts(session) {
  const { session: s, message } = session.status;
  const tags = Object.entries(session.tags ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const rows = [
    ['State', badge(sessionState(session))],
    ['Configuration', session.configuration.name + (session.configuration.limit ? ` (layers ${session.configuration.limit})` : '')],
    ['Started', timeEl(s.start_time)],
    ['Completed', s.completion_time ? timeEl(s.completion_time) : 'not yet'],
    ['Duration', formatDuration(durationBetween(s.start_time, s.completion_time))],
    ['Job', s.job ? h('code', {}, s.job) : ''],
    ['Tags', tags || 'none'],
    message ? ['Progress', message] : null,
  ].filter(Boolean);
  return h('dl', { class: 'facts' }, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function failureSection(session, names) {
  const failure = session.status.failure;
  if (!failure) return null;
  return h(
    'section',
    { class: 'failure', 'aria-labelledby': 'failure-title' },
    h('h2', { id: 'failure-title' }, 'Why it failed'),
    h('p', {}, h('strong', {}, 'Step: '), failure.step, failure.layer ? [' · ', h('strong', {}, 'layer: '), failure.layer] : '', failure.image_id ? [' · ', h('strong', {}, 'image: '), imageLink(failure.image_id, names)] : ''),
    h('p', { class: 'reason' }, failure.reason),
    holdParagraph(session),
  );
}

/**
 * A failed session's debug hold (`debug_on_failure`): while it lasts the session is still
 * running; say until when, where, and the commands that enter it or end it.
 */
function holdParagraph(session) {
  const hold = session.status.debug;
  if (!hold) return null;
  if (hold.released_at) return h('p', { class: 'hold' }, h('strong', {}, 'Debug hold: '), 'ended ', timeEl(hold.released_at), '; its workspace is removed.');
  const image = hold.images.find((i) => i.image_id === session.status.failure?.image_id) ?? hold.images[0];
  return h(
    'p',
    { class: 'hold' },
    h('strong', {}, 'Held for debugging until '),
    timeEl(hold.until),
    ' (the session stays running until then): workspace ',
    h('code', {}, hold.workspace),
    '. As root on the server\'s machine: ',
    h('code', {}, image ? image.enter : `cfs sessions debug ${session.name}`),
    '; ',
    h('code', {}, `cfs sessions release ${session.name}`),
    ' ends the hold now.',
  );
}

function targetSection(session, names) {
  const plan = session.status.plan ?? [];
  const artifacts = session.status.artifacts ?? [];
  const mapped = new Map((session.target.image_map ?? []).map((m) => [m.source_id, m.result_name]));
  const resultOf = (id) => artifacts.find((a) => a.image_id === id)?.result_id;
  const images = [...new Set(session.target.groups.flatMap((g) => g.members))];
  return h(
    'section',
    { 'aria-labelledby': 'target-title' },
    h('h2', { id: 'target-title' }, 'Target groups and images'),
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, 'Target groups'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Group'), h('th', { scope: 'col' }, 'Images'))),
      h('tbody', {}, session.target.groups.map((g) => h('tr', {}, h('th', { scope: 'row' }, g.name), h('td', {}, g.members.map((id, i) => [i ? ', ' : '', imageLink(id, names)]))))),
    ),
    h('h3', {}, 'Images'),
    h(
      'table',
      { class: 'plan' },
      h('caption', { class: 'visually-hidden' }, 'Each source image and its result'),
      h('thead', {}, h('tr', {}, ['Source image', 'Result name', 'Result image', 'Input fingerprint'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        images.map((id) => {
          const entry = plan.find((p) => p.image_id === id);
          const result = resultOf(id);
          return h(
            'tr',
            {},
            h('td', {}, imageLink(id, names)),
            h('td', {}, entry?.result_name ?? mapped.get(id) ?? '(default, when staged)'),
            h('td', {}, result ? imageLink(result, names) : session.status.session.status === 'complete' ? 'none' : 'not yet'),
            h('td', {}, entry?.fingerprint ? h('code', { class: 'nowrap', title: entry.fingerprint }, entry.fingerprint.slice(0, 16)) : ''),
          );
        }),
      ),
    ),
  );
}

function timelineSection(session, names) {
  const steps = session.status.steps ?? [];
  const start = Date.parse(session.status.session.start_time);
  const times = steps.flatMap((st) => [st.start_time, st.end_time]).filter(Boolean).map(Date.parse);
  const end = session.status.session.completion_time ? Date.parse(session.status.session.completion_time) : Date.now();
  const span = Math.max(1, Math.max(end, ...times) - start);
  return h(
    'section',
    { 'aria-labelledby': 'steps-title' },
    h('h2', { id: 'steps-title' }, 'Steps'),
    steps.length === 0
      ? h('p', {}, 'No step has started yet.')
      : h(
          'ol',
          { class: 'timeline', 'aria-label': 'Steps in the order they started, with durations' },
          steps.map((st) => {
            const from = st.start_time ? Date.parse(st.start_time) - start : 0;
            const to = st.end_time ? Date.parse(st.end_time) - start : end - start;
            const left = (100 * Math.max(0, from)) / span;
            const width = (100 * Math.max(0, to - from)) / span;
            return h(
              'li',
              { 'data-step': st.name, 'data-state': st.state },
              h('span', {}, stepLabel(st, names), ' ', badge(st.state), st.cached_from ? ` ${cachedFromText(st)}` : ''),
              h('span', { class: 'track', 'aria-hidden': 'true' }, h('span', { class: `bar ${st.state}`, style: { left: `${left.toFixed(2)}%`, width: `${width.toFixed(2)}%` } })),
              h('span', { class: 'duration' }, st.start_time ? formatDuration(stepDurationMs(st)) : ''),
            );
          }),
        ),
  );
}

const FILE_MARKS = { added: '+', modified: '~', removed: '−' };

/** One layer's report on one image: collapsed lists of its package changes and its file changes. */
function layerChanges(label, answer) {
  if (answer.error) return h('li', {}, `${label}: no changes recorded (${answer.error})`);
  const report = answer.report;
  const packages = report.packages?.changes ?? [];
  return h(
    'li',
    { 'data-layer': report.layer_index },
    h(
      'details',
      {},
      h('summary', {}, `${label}: ${changesSummaryText(report)}`),
      report.packages
        ? h('details', {}, h('summary', {}, `Packages (${report.packages.manager}): ${packages.length}`), h('ul', {}, packages.map((p) => h('li', {}, packageChangeText(p)))))
        : h('p', {}, 'No package database (dpkg or rpm) in this root.'),
      h(
        'details',
        {},
        h('summary', {}, `Files: ${report.files.length}${report.files_truncated ? ' (the list stops at 100,000)' : ''}`),
        h('ul', { class: 'changed-files' }, report.files.map((f) => h('li', {}, `${FILE_MARKS[f.change]} `, h('code', {}, f.path), f.type === 'file' ? '' : ` (${f.type})`, ` ${f.change}`))),
      ),
    ),
  );
}

/**
 * What each layer changed in each image (issue 19), from the layer cache's reports: read once
 * the session's layer keys are known (they do not change after), a layer without one says why.
 */
async function changesSection(session, names, signal) {
  const keys = session.status.layer_keys;
  if (!keys) return null;
  const layers = session.status.layers ?? [];
  const images = Object.keys(keys);
  const blocks = [];
  for (const image of images) {
    const items = [];
    for (const [index, layer] of layers.entries()) {
      // Only a layer that ended well has a report: asking for the others would only get a 404.
      const state = (session.status.steps ?? []).find((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined)?.state ?? 'pending';
      if (state !== 'succeeded' && state !== 'cached') {
        items.push(h('li', {}, `Layer ${index} ${layer.name}: no changes recorded (the layer ${state === 'failed' ? 'failed' : state === 'running' ? 'is running' : 'did not run'})`));
        continue;
      }
      const url = `/apis/cfs/v3/sessions/${encodeURIComponent(session.name)}/layers/${index}/changes?image_id=${encodeURIComponent(image)}`;
      let answer;
      try {
        answer = { report: await getJson(url, signal) };
      } catch (error) {
        if (signal.aborted) throw error;
        answer = { error: error.message };
      }
      items.push(layerChanges(`Layer ${index} ${layer.name}`, answer));
    }
    blocks.push(images.length > 1 ? h('h3', {}, names.get(image) ?? image) : null, h('ul', { class: 'changes', 'data-image': image }, items));
  }
  return h('section', { 'aria-labelledby': 'changes-title' }, h('h2', { id: 'changes-title' }, 'Changes'), blocks);
}

function artifactsSection(session, names) {
  const artifacts = session.status.artifacts ?? [];
  return h(
    'section',
    { 'aria-labelledby': 'artifacts-title' },
    h('h2', { id: 'artifacts-title' }, 'Artifacts'),
    artifacts.length === 0
      ? h('p', {}, session.status.session.status === 'complete' ? 'No result image was registered.' : 'Result images appear here once registered.')
      : h(
          'table',
          {},
          h('caption', { class: 'visually-hidden' }, 'Result images'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Source image'), h('th', { scope: 'col' }, 'Result image'), h('th', { scope: 'col' }, 'Lineage'))),
          h(
            'tbody',
            {},
            artifacts.map((a) =>
              h('tr', { 'data-result': a.result_id }, h('td', {}, imageLink(a.image_id, names)), h('td', {}, imageLink(a.result_id, names)), h('td', {}, h('a', { href: `${imageHref(a.result_id)}?section=lineage` }, 'Lineage'))),
            ),
          ),
        ),
  );
}

/**
 * One log, followed with the API's cursor until the API says it is complete: a layer's
 * (`{layer}`: its index) or a test's (`{test}`: the logs API's `tests[].test`).
 */
function followedLog(sessionName, which, interval) {
  const { titleId, title, query, stateOf, attrs, kind } = which;
  const state = h('span', {}, badge(which.state));
  const pre = h('pre', { class: 'log', tabindex: '0', 'aria-labelledby': titleId, ...attrs });
  const follow = h('input', { type: 'checkbox', checked: true });
  const section = h(
    'section',
    { class: kind, 'aria-labelledby': titleId },
    h('h3', { id: titleId }, `${title} `, state),
    h('label', {}, follow, ' Follow the end of the log'),
    pre,
  );
  let cursor = '';
  const stop = poll(async (signal) => {
    const params = new URLSearchParams(query);
    if (cursor) params.set('cursor', cursor);
    const chunk = await getJson(`/apis/cfs/v3/sessions/${encodeURIComponent(sessionName)}/logs?${params}`, signal);
    if (chunk.text) {
      pre.append(document.createTextNode(chunk.text));
      if (follow.checked) pre.scrollTop = pre.scrollHeight;
    }
    cursor = chunk.cursor;
    const now = stateOf(chunk);
    if (now && state.textContent !== now) state.replaceChildren(badge(now));
    section.dataset.complete = String(chunk.complete);
    return !chunk.complete;
  }, interval);
  return { section, stop };
}

const layerLog = (sessionName, layer, interval) =>
  followedLog(
    sessionName,
    {
      kind: 'log-layer',
      titleId: `log-title-${layer.index}`,
      title: `Layer ${layer.index}: ${layer.name}`,
      state: layer.state,
      query: { layer: String(layer.index) },
      stateOf: (chunk) => chunk.layers?.[layer.index]?.state,
      attrs: { 'data-layer': layer.index },
    },
    interval,
  );

const testLog = (sessionName, test, index, names, interval) =>
  followedLog(
    sessionName,
    {
      kind: 'log-test',
      titleId: `test-log-title-${index}`,
      title: testLogTitle(test, names),
      state: test.state,
      query: { test: test.test },
      stateOf: (chunk) => chunk.tests?.find((t) => t.test === test.test)?.state,
      attrs: { 'data-test': test.test },
    },
    interval,
  );

function logsSection(session, interval, names) {
  const list = h('div');
  const element = h('section', { 'aria-labelledby': 'logs-title' }, h('h2', { id: 'logs-title' }, 'Logs'), list);
  const followers = [];
  const url = `/apis/cfs/v3/sessions/${encodeURIComponent(session.name)}/logs?max_bytes=1`;
  const follow = (follower) => {
    followers.push(follower);
    list.append(follower.section);
  };
  let started = false;
  let testsListed = false;
  return {
    element,
    /**
     * Starts following once the API lists the layers (the logs route may be missing on older
     * servers); the test logs are listed once the session's run is planned (its Ansible step has
     * started), so a page opened early asks again on each refresh until then.
     */
    async start(signal, current) {
      if (started && testsListed) return;
      const planned = current.status.session.status === 'complete' || (current.status.steps ?? []).some((st) => st.name === 'ansible');
      try {
        const first = await getJson(url, signal);
        if (!started) {
          started = true;
          if (first.layers.length === 0) list.replaceChildren(h('p', {}, 'This session has no layers.'));
          for (const layer of first.layers) follow(layerLog(session.name, layer, interval));
        }
        // Each image's checks and boot console, after the layers (older servers list no tests).
        const tests = first.tests ?? [];
        tests.forEach((test, index) => follow(testLog(session.name, test, index, names(), interval)));
        testsListed = tests.length > 0 || planned;
      } catch (error) {
        if (signal.aborted) return;
        started = true;
        testsListed = true;
        list.replaceChildren(h('p', {}, error instanceof ApiError && error.status === 404 ? 'This server does not keep session logs.' : `Could not read the logs: ${error.message}`));
      }
    },
    stop: () => followers.forEach((f) => f.stop()),
  };
}

/** `#/sessions/<name>`. */
export function sessionView(name) {
  const interval = pollInterval(1000);
  const heading = h('h1', { id: 'session-title' }, 'Session ', h('span', { class: 'name' }, name));
  const parts = { facts: h('div'), failure: h('div'), target: h('div'), steps: h('div'), artifacts: h('div'), changes: h('div') };
  const status = h('p', { class: 'updated' }, 'Loading…');
  const element = h(
    'article',
    { 'aria-labelledby': 'session-title', 'data-session': name },
    h('p', {}, h('a', { href: '#/sessions' }, '← All sessions')),
    heading,
    status,
    parts.facts,
    parts.failure,
    parts.target,
    parts.steps,
    parts.artifacts,
    parts.changes,
  );
  let logs;
  let names = new Map();
  let namesKnownFor = '';
  let changesFor = 'null';
  const rendered = {};
  const render = (key, node) => {
    const text = node ? node.outerHTML : '';
    if (rendered[key] === text) return;
    rendered[key] = text;
    parts[key].replaceChildren(...(node ? [node] : []));
  };
  const stopSession = poll(async (signal) => {
    let session;
    try {
      session = await getJson(`/apis/cfs/v3/sessions/${encodeURIComponent(name)}`, signal);
    } catch (error) {
      if (signal.aborted) return false;
      status.replaceChildren(h('span', { class: 'error' }, error instanceof ApiError && error.status === 404 ? `No session named ${name}.` : `Could not read the session: ${error.message}`));
      return !(error instanceof ApiError && error.status === 404);
    }
    // Image names for the links: read again when the set of result images changes.
    const resultKey = (session.status.artifacts ?? []).map((a) => a.result_id).join(',');
    if (namesKnownFor !== `:${resultKey}`) {
      names = new Map((await listImages(signal)).map((i) => [i.id, i.name]));
      namesKnownFor = `:${resultKey}`;
    }
    element.dataset.state = sessionState(session);
    render('facts', facts(session));
    render('failure', failureSection(session, names));
    render('target', targetSection(session, names));
    render('steps', timelineSection(session, names));
    render('artifacts', artifactsSection(session, names));
    // The reports never change once the keys are known: read them once per set of keys.
    const changesKey = JSON.stringify(session.status.layer_keys ?? null);
    if (changesKey !== changesFor) {
      render('changes', await changesSection(session, names, signal));
      changesFor = changesKey;
    }
    if (!logs) {
      logs = logsSection(session, interval, () => names);
      element.append(logs.element);
    }
    await logs.start(signal, session);
    const complete = session.status.session.status === 'complete';
    const held = session.status.debug && !session.status.debug.released_at;
    status.textContent = complete
      ? `Completed; ${sessionState(session)}.`
      : `${held ? `Failed; held for debugging until ${new Date(session.status.debug.until).toLocaleString()}. ` : ''}Live: updated ${new Date().toLocaleTimeString()}`;
    return !complete;
  }, interval);
  return {
    element,
    stop: () => {
      stopSession();
      logs?.stop();
    },
    title: `Session ${name}`,
  };
}

