// The login form. The server answers with an HttpOnly, SameSite=Strict session cookie.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

export function renderLogin(root, { notice, onLoggedIn }) {
  const email = h('input', { id: 'login-email', name: 'email', type: 'email', autocomplete: 'username', required: true, maxlength: 320 });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const error = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
  const button = h('button', { type: 'submit', class: 'btn primary wide', id: 'login-submit' }, 'Log in');
  const form = h(
    'form',
    { class: 'login-card', 'aria-labelledby': 'login-title', novalidate: true },
    h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Switchboard'),
    h('h1', { id: 'login-title' }, 'Log in to your inbox'),
    notice ? h('p', { class: 'notice' }, notice) : null,
    h('label', { for: 'login-email' }, 'Email'),
    email,
    h('label', { for: 'login-password' }, 'Password'),
    password,
    error,
    button,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!email.value.trim() || !password.value) {
      error.textContent = 'Enter your email and password.';
      return;
    }
    button.disabled = true;
    try {
      await api.post('/auth/login', { email: email.value.trim(), password: password.value });
      password.value = '';
      await onLoggedIn();
    } catch (e) {
      error.textContent =
        e.status === 401 ? 'Wrong email or password.' : e.status === 429 ? `Too many attempts. ${e.message}` : e.message;
      button.disabled = false;
      if (e.status === 401) password.value = '';
      password.focus();
    }
  });
  replace(root, h('main', { class: 'login' }, form));
  email.focus();
}
