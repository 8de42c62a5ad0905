// Internal notes in the chat. A note is drawn as its own kind of row, plainly not a WhatsApp
// message (its own colour, "Internal note", its author and the members it mentions), and the
// note box under the chat writes one; typing "@" there offers the members who can see the
// chat (from the conversation's access list), and only those can be mentioned.

import { api } from './api.js';
import { h, linkify, replace } from './dom.js';
import { time, full } from './format.js';

/** A note among the chat's messages. */
export function noteRow(m, ctx) {
  const by = m.sent_by && typeof m.sent_by === 'object' ? (m.sent_by.id === ctx.me.id ? 'You' : m.sent_by.name || m.sent_by.email) : '';
  const mentioned = (m.mention_ids || []).map((id) => `@${ctx.memberName(id)}`);
  return h(
    'div',
    { class: 'row note-row', dataset: { id: m.id, type: 'note', direction: 'internal' } },
    h(
      'div',
      { class: 'note', id: `m-${m.id}`, role: 'note', 'aria-label': `Internal note by ${by}` },
      h('div', { class: 'note-head' }, h('strong', {}, 'Internal note'), ` · ${by} · `, h('time', { datetime: m.created_at, title: full(m.created_at) }, time(m.created_at))),
      h('div', { class: 'msg-text' }, linkify(m.text || '')),
      mentioned.length ? h('div', { class: 'note-mentions muted small' }, `Mentioned: ${mentioned.join(', ')}`) : null,
    ),
  );
}

/** The note box of conversation `conv`; `onNote(note)` gets the note written. */
export function noteBox(ctx, conv, onNote) {
  const box = h('div', { class: 'note-box' });
  if (!ctx.can(conv, 'note')) {
    box.hidden = true;
    return box;
  }
  let members = null; // [{member_id, name}] who can see the chat, loaded on the first "@"
  const chosen = new Map(); // name → id
  const input = h('textarea', { id: 'note-text', class: 'composer-input', rows: '1', maxlength: '4096', placeholder: 'Write an internal note — @ to mention', 'aria-label': 'Internal note' });
  const picker = h('ul', { class: 'mention-picker', role: 'listbox', 'aria-label': 'Mention a member', hidden: true });
  const add = h('button', { type: 'submit', class: 'btn', id: 'note-add' }, 'Add note');
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'note-form', 'aria-label': 'Internal note' }, h('div', { class: 'composer-row' }, input, add), picker, error);

  /** The "@word" just before the caret, if any. */
  const token = () => {
    const before = input.value.slice(0, input.selectionStart);
    const at = before.match(/(^|\s)@([^\s@]*)$/);
    return at ? { start: before.length - at[2].length - 1, query: at[2].toLowerCase() } : null;
  };

  let membersLoad = null; // one request, however many keystrokes wait for it
  const showPicker = async () => {
    if (!token()) {
      picker.hidden = true;
      return;
    }
    if (!members) {
      membersLoad = membersLoad || api.get(`/conversations/${conv.id}/access`).then((p) => p.members || [], () => []);
      members = await membersLoad;
    }
    // The box as it is now (keystrokes may have come while the list loaded).
    const t = token();
    if (!t) {
      picker.hidden = true;
      return;
    }
    const fits = members.filter((m) => (m.name || m.email).toLowerCase().startsWith(t.query));
    // The same options stay the same elements (a pointer on one keeps its target).
    const key = fits.map((m) => m.member_id).join(',');
    if (!picker.hidden && picker.dataset.key === key) return;
    picker.dataset.key = key;
    replace(
      picker,
      fits.map((m) => {
        const name = m.name || m.email;
        const li = h('li', { role: 'option', tabindex: '-1', class: 'mention-option', 'aria-selected': 'false' }, name);
        li.addEventListener('mousedown', (ev) => {
          ev.preventDefault();
          const tk = token();
          if (!tk) return;
          const caret = input.selectionStart;
          input.value = `${input.value.slice(0, tk.start)}@${name} ${input.value.slice(caret)}`;
          chosen.set(name, m.member_id);
          picker.hidden = true;
          input.focus();
        });
        return li;
      }),
    );
    picker.hidden = fits.length === 0;
  };

  input.addEventListener('input', showPicker);
  input.addEventListener('blur', () => setTimeout(() => (picker.hidden = true), 150));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const mention_ids = [...chosen].filter(([name]) => text.includes(`@${name}`)).map(([, id]) => id);
    add.disabled = true;
    error.textContent = '';
    try {
      const note = await api.post(`/conversations/${conv.id}/notes`, { text, mention_ids });
      input.value = '';
      chosen.clear();
      onNote(note);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      add.disabled = false;
    }
  });
  box.append(form);
  return box;
}
