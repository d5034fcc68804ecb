/**
 * Keys the DynamoDB document client cannot carry as they are: its marshaller takes any object
 * with an own `constructor` key for a class instance (and throws), and it builds maps by
 * assignment, so a `__proto__` key vanishes both ways. Records keep maps whose keys clients
 * choose (image metadata, session tags), so those two keys are escaped in what is stored: one
 * `~` is prefixed to `__proto__`, `constructor` and any of them already prefixed with `~`s
 * (`~constructor` is stored as `~~constructor`), which makes the escape reversible.
 */
const ESCAPED_KEY = /^~*(?:__proto__|constructor)$/;

function isMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function rebuild(value: unknown, key: (name: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => rebuild(item, key));
  if (!isMap(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value)) {
    // defineProperty, not assignment: a decoded `__proto__` key must become data, not the prototype.
    Object.defineProperty(out, key(name), { value: rebuild(item, key), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A map key as the table stores it (for expressions naming a key inside a stored map). */
export function storedKey(name: string): string {
  return ESCAPED_KEY.test(name) ? `~${name}` : name;
}

/** A record as the table stores it: every map key the marshaller cannot carry escaped. */
export function toStoredDoc<T>(record: T): T {
  return rebuild(record, storedKey) as T;
}

/** A record as the table stored it, its escaped keys restored. */
export function fromStoredDoc<T>(stored: unknown): T {
  return rebuild(stored, (name) => (name.startsWith('~') && ESCAPED_KEY.test(name) ? name.slice(1) : name)) as T;
}
