import type { ApiClient } from '../api-client.ts';
import { CliError, type CliIo } from '../io.ts';
import type { OutputFormat } from '../output.ts';

/**
 * The v3 listings' paging on the CLI side: one page, or (`--all`) every page, following `next`
 * (sent back as it came, `search_stopped_early` included, which the server takes) until it is
 * null. After one page the human output says how to go on: "more match" for a full page, "the
 * search stopped early" when the server ran out of its time budget before finding `limit`
 * matches (more may or may not match).
 */

/** A v3 `next`: the query of the following page. */
type Next = Record<string, unknown> & { after_id?: unknown; search_stopped_early?: unknown };

/** One v3 listing's answer: the records under `key`, and `next`. */
export interface ListedPages {
  records: unknown[];
  next: Next | null;
}

/** One page (or every page with `all`) of `GET path` from `query`; `key` is `sessions` or `configurations`. */
export async function listPages(api: ApiClient, path: string, key: string, query: Record<string, string>, all: boolean): Promise<ListedPages> {
  const records: unknown[] = [];
  let current: Record<string, string> = query;
  let lastAfter: string | undefined;
  for (;;) {
    const { body } = await api.request('GET', path, { query: current });
    const page = (body ?? {}) as Record<string, unknown>;
    records.push(...((page[key] as unknown[] | undefined) ?? []));
    const next = (page.next as Next | null | undefined) ?? null;
    if (!all || next === null) return { records, next };
    const after = String(next.after_id);
    // A server that does not move on would be followed forever.
    if (lastAfter !== undefined && after <= lastAfter) throw new CliError(`the server's next page does not move on (after_id ${after}); stopped following it`);
    lastAfter = after;
    current = Object.fromEntries(Object.entries(next).map(([name, value]) => [name, String(value)]));
  }
}

/** What a human reader is told after one page: nothing at the end, how to go on otherwise. */
export function printPagingHint(io: CliIo, format: OutputFormat, kind: string, next: Next | null): void {
  if (format !== 'human' || !next) return;
  const after = String(next.after_id);
  if (next.search_stopped_early === true) {
    io.out(`The search stopped early (the server's time limit per request) before filling the page; more ${kind} may match: run with --all, or add --after-id ${after} to search on.`);
  } else {
    io.out(`More ${kind} match: add --after-id ${after} for the next page. Run with --all for every page.`);
  }
}
