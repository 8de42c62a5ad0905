// Accepting an invitation: the link an admin shares is #/accept/<token>. The person picks a
// password (and may fix their name); the server answers like a login, with the session cookie.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

export function renderAccept(root, { token, onAccepted }) {
  const name = h('input', { id: 'accept-name', name: 'name', type: 'text', autocomplete: 'name', maxlength: 200 });
  const password = h('input', { id: 'accept-password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 1024, 'aria-describedby': 'accept-hint' });
  const again = h('input', { id: 'accept-again', name: 'password-again', type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024 });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'accept-error' });
  const button = h('button', { type: 'submit', class: 'btn primary wide', id: 'accept-submit' }, 'Join the team');
  const form = h(
    'form',
    { class: 'login-card', 'aria-labelledby': 'accept-title', novalidate: true },
    h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Switchboard'),
    h('h1', { id: 'accept-title' }, 'Accept your invitation'),
    h('label', { for: 'accept-name' }, 'Your name (optional)'),
    name,
    h('label', { for: 'accept-password' }, 'Choose a password'),
    password,
    h('span', { class: 'hint', id: 'accept-hint' }, 'At least 8 characters.'),
    h('label', { for: 'accept-again' }, 'Repeat the password'),
    again,
    error,
    button,
    h('p', { class: 'small muted' }, 'Already joined? ', h('a', { href: '#/inbox' }, 'Log in')),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
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
    const body = { accept_token: token, password: password.value };
    if (name.value.trim()) body.name = name.value.trim();
    button.disabled = true;
    try {
      await api.post('/invitations/accept', body);
      password.value = '';
      again.value = '';
      await onAccepted();
    } catch (e) {
      error.textContent = e.status === 410 ? 'This invitation was cancelled, already used or has expired. Ask an admin for a new one.' : e.message;
      button.disabled = false;
    }
  });
  replace(root, h('main', { class: 'login' }, form));
  password.focus();
}
