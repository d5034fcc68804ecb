import { imageNameProblem } from '../sessions/session-rules.ts';
import { fieldError } from '../sessions/validation.ts';

/**
 * `result_name_template`: the name of each image an automation builds. Placeholders are
 * `{source_name}`, `{automation}`, `{date}` (UTC, YYYYMMDD) and `{fingerprint}` (its first 12
 * hex digits); `{{` and `}}` stand for literal braces.
 */

export const DEFAULT_RESULT_NAME_TEMPLATE = '{source_name}_{automation}';
export const RESULT_NAME_PLACEHOLDERS = ['source_name', 'automation', 'date', 'fingerprint'] as const;
export type ResultNameValues = Record<(typeof RESULT_NAME_PLACEHOLDERS)[number], string>;

const FIELD = 'result_name_template';

/** The template's pieces: literal text and placeholder names; throws a ValidationError on a bad template. */
function parseTemplate(template: string): Array<{ text: string } | { placeholder: string }> {
  const parts: Array<{ text: string } | { placeholder: string }> = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if ((ch === '{' || ch === '}') && template[i + 1] === ch) {
      text += ch;
      i++;
    } else if (ch === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw fieldError(FIELD, `'${template}' has a '{' without its closing '}'`);
      const name = template.slice(i + 1, end);
      if (!(RESULT_NAME_PLACEHOLDERS as readonly string[]).includes(name)) {
        throw fieldError(FIELD, `unknown placeholder '{${name}}'; the placeholders are ${RESULT_NAME_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      }
      if (text) parts.push({ text });
      text = '';
      parts.push({ placeholder: name });
      i = end;
    } else if (ch === '}') {
      throw fieldError(FIELD, `'${template}' has a '}' without its opening '{' (write '}}' for a literal one)`);
    } else {
      text += ch;
    }
  }
  if (text) parts.push({ text });
  return parts;
}

/** `{date}`: the day in UTC as YYYYMMDD. */
export function templateDate(now: Date): string {
  return now.toISOString().slice(0, 10).replaceAll('-', '');
}

/** Renders the template; throws a ValidationError when the template is bad or the name is not a valid image name. */
export function renderResultName(template: string, values: ResultNameValues): string {
  const name = parseTemplate(template)
    .map((part) => ('text' in part ? part.text : values[part.placeholder as keyof ResultNameValues]))
    .join('');
  const problem = imageNameProblem(name);
  if (problem) throw fieldError(FIELD, `renders '${name}', which is not a valid image name: ${problem}`);
  return name;
}

/** Checks a template by rendering it with sample values (a ValidationError naming the field otherwise). */
export function checkResultNameTemplate(template: string, automation: string): void {
  renderResultName(template, { source_name: 'source', automation, date: '20260101', fingerprint: '0123456789ab' });
}
