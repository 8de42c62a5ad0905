// Accepting an agency's invitation: the link an agency shares is #/agency-accept/<token>.
// A signed-in admin with the invited email grants access with one button; someone without an
// account creates their workspace and admin account here, which grants access too. Either
// way the agency only ever reads the workspace, and its admins can unlink it at any time.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

/** Who is signed in (the session cookie), without the app's "session ended" handling. */
async function whoAmI() {
  try {
    const res = await fetch('/api/v1/auth/me', { credentials: 'same-origin' });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

export async function renderAgencyAccept(root, { token, onDone, onLogIn }) {
  const me = await whoAmI();
  const error = h('p', { class: 'form-error', role: 'alert', id: 'agency-accept-error' });
  const explain = h('p', { class: 'muted' }, 'An agency asks to follow your leads: it will read your leads, their timelines and your team report, never change anything. You can unlink it at any time (Agency page).');
  const message = (e) =>
    e.status === 410
      ? 'This invitation was cancelled, already used or has expired. Ask the agency for a new one.'
      : e.status === 403
        ? 'Only the admin of the workspace with the invited email can accept this invitation.'
        : e.message;

  if (me) {
    const button = h('button', { type: 'button', class: 'btn primary wide', id: 'agency-accept-grant' }, 'Grant access');
    const done = h('p', { role: 'status', id: 'agency-accept-done' });
    button.addEventListener('click', async () => {
      error.textContent = '';
      button.disabled = true;
      try {
        const out = await api.post('/agency-invitations/accept', { accept_token: token });
        done.textContent = `${out.managed_by.name} now manages ${out.workspace.name}.`;
        await onDone();
      } catch (e) {
        error.textContent = message(e);
        button.disabled = false;
      }
    });
    replace(
      root,
      h(
        'main',
        { class: 'login' },
        h(
          'div',
          { class: 'login-card', role: 'region', 'aria-labelledby': 'agency-accept-title' },
          h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Switchboard'),
          h('h1', { id: 'agency-accept-title' }, 'Grant an agency access'),
          explain,
          h('p', {}, `Signed in as ${me.user.email}.`),
          error,
          done,
          button,
          h('p', { class: 'small muted' }, h('a', { href: '#/inbox' }, 'Not now')),
        ),
      ),
    );
    return;
  }

  const workspace = h('input', { id: 'agency-accept-workspace', type: 'text', required: true, maxlength: 200, autocomplete: 'organization' });
  const name = h('input', { id: 'agency-accept-name', type: 'text', required: true, maxlength: 200, autocomplete: 'name' });
  const password = h('input', { id: 'agency-accept-password', type: 'password', required: true, minlength: 8, maxlength: 1024, autocomplete: 'new-password', 'aria-describedby': 'agency-accept-hint' });
  const again = h('input', { id: 'agency-accept-again', type: 'password', required: true, maxlength: 1024, autocomplete: 'new-password' });
  const submit = h('button', { type: 'submit', class: 'btn primary wide', id: 'agency-accept-create' }, 'Create workspace and grant access');
  const login = h('button', { type: 'button', class: 'btn ghost', id: 'agency-accept-login' }, 'I have an account: log in first');
  login.addEventListener('click', () => onLogIn());
  const form = h(
    'form',
    { class: 'login-card', 'aria-labelledby': 'agency-accept-title', novalidate: true },
    h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Switchboard'),
    h('h1', { id: 'agency-accept-title' }, 'Grant an agency access'),
    explain,
    h('label', { for: 'agency-accept-workspace' }, 'Workspace name'),
    workspace,
    h('label', { for: 'agency-accept-name' }, 'Your name'),
    name,
    h('label', { for: 'agency-accept-password' }, 'Choose a password'),
    password,
    h('span', { class: 'hint', id: 'agency-accept-hint' }, 'At least 8 characters.'),
    h('label', { for: 'agency-accept-again' }, 'Repeat the password'),
    again,
    error,
    submit,
    login,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!workspace.value.trim() || !name.value.trim()) {
      error.textContent = 'Name your workspace and yourself.';
      return;
    }
    if (password.value.length < 8) {
      error.textContent = 'The password needs at least 8 characters.';
      password.focus();
      return;
    }
    if (password.value !== again.value) {
      error.textContent = 'The two passwords differ.';
      again.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api.post('/agency-invitations/accept', { accept_token: token, workspace_name: workspace.value.trim(), name: name.value.trim(), password: password.value });
      password.value = '';
      again.value = '';
      await onDone();
    } catch (e) {
      error.textContent = e.status === 409 ? `${e.message}.` : message(e);
      submit.disabled = false;
    }
  });
  replace(root, h('main', { class: 'login' }, form));
  workspace.focus();
}
