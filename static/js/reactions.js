// Reactions and typing, for the chat view. A message of the customer (or ours) gets a "React"
// button opening a row of common emoji; picking one sends `{"type":"reaction"}` (an empty emoji
// takes ours back). Our reactions are outbound messages of type `reaction` whose context names
// the target: they are drawn under the target, not as rows of their own. The customer's
// reactions come on the message itself (`reactions`).
//
// Typing: while the assignee writes, WhatsApp is told (`POST /typing`) at most once per 20 s
// (the indicator lasts about that long), never for an empty box or a "/" quick-reply search.

import { api } from './api.js';
import { h } from './dom.js';
import { full } from './format.js';

export const COMMON = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

/** Our current reaction per target wamid: the newest reaction message not failed. */
export function ourReactions(messages) {
  const out = new Map();
  for (const m of messages) {
    if (m.type !== 'reaction' || m.direction !== 'out' || m.status === 'failed') continue;
    const target = (m.context && m.context.wamid) || (m.content && m.content.reaction && m.content.reaction.message_id);
    if (target) out.set(target, m.text || '');
  }
  for (const [k, v] of [...out]) if (!v) out.delete(k);
  return out;
}

/** Whether a message is drawn as a row (our reaction messages are not). */
export function isRow(m) {
  return m.type !== 'reaction';
}

/** The reactions under a message: the customer's, then ours. */
export function reactionsLine(m, ours) {
  const theirs = m.reactions || [];
  if (!theirs.length && !ours) return null;
  return h(
    'div',
    { class: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    theirs.map((r) => h('span', { class: 'reaction', title: `${r.from} · ${full(r.at)}`, 'aria-label': `Customer reacted ${r.emoji}` }, r.emoji)),
    ours ? h('span', { class: 'reaction mine', title: 'Your reaction', 'aria-label': `You reacted ${ours}` }, ours) : null,
  );
}

/**
 * The "React" button of message `m` (it needs a wamid). `ours` is our current emoji on it;
 * `onSent(message)` gets the stored reaction message; `onError(text)` a refusal.
 */
export function reactButton(conv, m, ours, onSent, onError) {
  const wrap = h('span', { class: 'react' });
  const open = h('button', { type: 'button', class: 'btn ghost small react-btn', 'aria-label': 'React to this message', 'aria-expanded': 'false', tabindex: '-1' }, '☺');
  const picker = h('div', { class: 'react-picker', role: 'group', 'aria-label': 'Pick a reaction', hidden: true });
  const close = () => {
    picker.hidden = true;
    open.setAttribute('aria-expanded', 'false');
  };
  const send = async (emoji) => {
    close();
    try {
      const sent = await api.post(`/conversations/${conv.id}/messages`, { type: 'reaction', reaction: { message_id: m.id, emoji } });
      onSent(sent);
    } catch (e) {
      onError(e.message || 'the reaction was refused');
    }
  };
  const buttons = COMMON.map((e) => {
    // Not tab stops (a long chat would need presses per message): arrows move in the picker.
    const b = h('button', { type: 'button', class: ['btn ghost small', ours === e && 'on'], 'aria-label': `React ${e}`, 'aria-pressed': String(ours === e), tabindex: '-1' }, e);
    b.addEventListener('click', () => send(ours === e ? '' : e));
    return b;
  });
  if (ours) {
    const remove = h('button', { type: 'button', class: 'btn ghost small', 'aria-label': 'Remove my reaction', tabindex: '-1' }, '✕');
    remove.addEventListener('click', () => send(''));
    buttons.push(remove);
  }
  picker.append(...buttons);
  open.addEventListener('click', () => {
    picker.hidden = !picker.hidden;
    open.setAttribute('aria-expanded', String(!picker.hidden));
    if (!picker.hidden) buttons[0].focus();
  });
  picker.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      close();
      open.focus();
    } else if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
      ev.preventDefault();
      const i = buttons.indexOf(document.activeElement);
      buttons[(i + (ev.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length].focus();
    }
  });
  wrap.append(open, picker);
  return wrap;
}

/** Tells WhatsApp the assignee is typing in `input`: once per 20 s, never for an empty box. */
export function typingNotifier(input, canType, convId) {
  let sentAt = 0;
  input.addEventListener('input', () => {
    const now = Date.now();
    // A "/" opens quick replies: a search, not words for the customer yet.
    if (!input.value.trim() || input.value.startsWith('/') || now - sentAt < 20000 || !canType()) return;
    sentAt = now;
    api.post(`/conversations/${convId()}/typing`, {}).catch(() => {});
  });
}
