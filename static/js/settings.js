// Shared pieces of the settings pages (team, labels, numbers, assignment, webhook journal):
// the page frame, labelled fields, inline two-step confirmations and status lines.

import { h, replace } from './dom.js';

let uid = 0;
/** A fresh element id with a prefix, for label/for pairs. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * The frame of a settings page: a scrolling region with a heading, an intro line and the
 * page's sections. Returns the inner column to fill.
 */
export function settingsFrame(root, title, intro) {
  const body = h('div', { class: 'settings-body' });
  replace(
    root,
    h(
      'div',
      { class: 'settings-scroll' },
      h('section', { class: 'settings', 'aria-labelledby': 'settings-title' }, h('h1', { id: 'settings-title' }, title), intro ? h('p', { class: 'muted settings-intro' }, intro) : null, body),
    ),
  );
  return body;
}

/** The page shown when the caller may not use a settings page. */
export function notAllowed(root, title, who) {
  replace(
    root,
    h(
      'div',
      { class: 'settings-scroll' },
      h(
        'section',
        { class: 'settings', 'aria-labelledby': 'settings-title' },
        h('h1', { id: 'settings-title' }, title),
        h('p', { class: 'notice', id: 'not-allowed', role: 'alert' }, `Only ${who} can use this page. Ask an admin if you need it.`),
        h('p', {}, h('a', { href: '#/inbox' }, 'Back to the inbox')),
      ),
    ),
  );
  return {};
}

/** A card-like section with a heading. */
export function panel(title, ...children) {
  const id = nextId('panel');
  return h('section', { class: 'settings-panel', 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** A labelled control: <label for> + control (+ optional hint), stacked. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId('f');
  const hintEl = hint ? h('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, labelText), control, hintEl);
}

/** A checkbox with its label on the right. */
export function checkbox(labelText, { checked = false, value, name, hint, id } = {}) {
  const input = h('input', { type: 'checkbox', checked, value, name, id: id || nextId('c') });
  const label = h('label', { class: 'check', for: input.id }, input, h('span', {}, labelText), hint ? h('span', { class: 'hint' }, hint) : null);
  return { input, label };
}

/** An error line that screen readers announce. */
export function errorLine(id) {
  return h('p', { class: 'form-error', role: 'alert', id });
}

/** A polite status line ("Saved."). */
export function statusLine(id) {
  return h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite', id });
}

/**
 * A button that asks once more before acting: the first press turns it into
 * "Confirm …" / "Keep" buttons; the second runs `action`.
 */
export function confirmButton(text, confirmText, action, { danger = true, id } = {}) {
  const wrap = h('span', { class: 'confirm' });
  const start = h('button', { type: 'button', class: ['btn small', danger && 'danger'], id }, text);
  const yes = h('button', { type: 'button', class: ['btn small', danger ? 'danger-solid' : 'primary'], dataset: { confirm: '1' } }, confirmText);
  const no = h('button', { type: 'button', class: 'btn small ghost' }, 'Keep');
  const ask = () => {
    replace(wrap, yes, no);
    yes.focus();
  };
  const reset = () => {
    replace(wrap, start);
  };
  start.addEventListener('click', ask);
  no.addEventListener('click', () => {
    reset();
    start.focus();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      await action();
    } finally {
      yes.disabled = false;
      if (wrap.isConnected) reset();
    }
  });
  replace(wrap, start);
  return wrap;
}

/** A small "label: value" chip for a member's status. */
export function statusChip(status) {
  const text = { invite_sent: 'Invite sent', active: 'Active', deactivated: 'Deactivated', pending: 'Pending', done: 'Done', failed: 'Failed' }[status] || status;
  return h('span', { class: `chip state state-${status}`, dataset: { status } }, text);
}

/** Runs `fn` with the button disabled; shows a thrown API error in `error`. */
export async function busy(button, error, fn) {
  if (error) error.textContent = '';
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    if (error) error.textContent = e.message || String(e);
    else throw e;
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Copies text to the clipboard when allowed; the text stays selectable either way. */
export function copyButton(getText, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'btn small' }, label);
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(getText());
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
  });
  return b;
}

/** The contract's permission flags, in the order people think about them. */
export const PERMISSIONS = [
  ['view_others_leads', 'See others’ chats', 'See leads and chats assigned to others, and assign or reassign them'],
  ['view_unassigned', 'See unassigned chats', 'See unassigned leads and chats, and claim them'],
  ['manage_groups', 'Manage groups', 'Create and edit lead groups'],
  ['delete_leads', 'Delete leads', 'Delete leads assigned to themselves'],
  ['create_content', 'Create content', 'Write quick replies and pages (private until shared)'],
  ['manage_content_visibility', 'Manage content visibility', 'Share content with their teams or the whole workspace'],
  ['edit_others_content', 'Edit others’ content', 'Edit content others made that they can see'],
  ['manage_members', 'Manage members', 'Invite and manage members (not admins)'],
  ['manage_integrations', 'Manage integrations', 'Connect numbers and import leads'],
];
