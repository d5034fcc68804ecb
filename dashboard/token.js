// The form that asks for the API token when the server refuses a data call (no sign-in link opened
// in this browser, or the dashboard token in AWS). The token is kept in sessionStorage (this tab
// only) and sent as `Authorization: Bearer` on every data call.
import { h } from './dom.js';

/**
 * The token form: a labelled password field and a button, the server's reason when a token was
 * refused (announced as an alert), and `onToken(token)` called on submit.
 */
export function tokenView(detail, rejected, onToken) {
  const input = h('input', {
    id: 'api-token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    size: 40,
    'aria-describedby': rejected ? 'token-why token-error' : 'token-why',
    'aria-invalid': rejected ? 'true' : undefined,
  });
  const form = h(
    'form',
    { class: 'token-form' },
    h('label', { for: 'api-token' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Use this token'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token) onToken(token);
  });
  const element = h(
    'section',
    { 'aria-labelledby': 'token-title', 'data-view': 'token' },
    h('h1', { id: 'token-title' }, 'API token required'),
    h(
      'p',
      { id: 'token-why' },
      'This server asks for an API token before it shows sessions and images. Open the sign-in link cfs server printed, or enter the token you were given (the output of cfs auth token on the server\'s machine, or the dashboard token of the AWS deployment). It is kept in this browser tab only and sent with every request the dashboard makes.',
    ),
    rejected ? h('p', { id: 'token-error', class: 'error', role: 'alert' }, `The server refused that token: ${detail}`) : null,
    form,
  );
  return { element, input };
}
